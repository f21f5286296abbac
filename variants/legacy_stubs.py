"""Bug: the legacy module API exists, warns, and does nothing — its functions are stubs.

This module *is* the variant's legacy module. The original MetaExtract kept `set_cache` and friends
as `pass` bodies "for compatibility" after the class API replaced them: old callers silently stop
caching. Expected to be caught by E9 (the legacy functions work — no stubs).
"""

import sys
import warnings

from tiercheck.reference import factory as reference_factory

_warned = set()


def _deprecated(name):
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"{name}() is deprecated", DeprecationWarning, stacklevel=3)


def get_file_hash_quick(file_path):
    _deprecated("get_file_hash_quick")  # BUG (every function below): a stub


def get_from_cache(file_path, tier="premium"):
    _deprecated("get_from_cache")


def set_cache(file_path, metadata, tier="premium", extraction_time_ms=0):
    _deprecated("set_cache")


def clear_cache_pattern(pattern):
    _deprecated("clear_cache_pattern")


def get_cache_stats():
    _deprecated("get_cache_stats")
    return {}


def get_cache():
    _deprecated("get_cache")


def clear_cache():
    _deprecated("clear_cache")


def get_cache_info():
    _deprecated("get_cache_info")
    return {}


def shutdown_cache():
    _deprecated("shutdown_cache")


def reset_warnings():
    _warned.clear()


def factory(env):
    cache = reference_factory(env)
    cache.legacy_module = sys.modules[__name__]
    return cache
