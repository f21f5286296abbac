"""The legacy module API of MetaExtract's cache: thin calls into one global MetadataCache (SPEC E9).

Each function warns once with DeprecationWarning. The global instance comes from `CacheConfig.from_env()`
on first use; after `shutdown_cache()` the next call creates a new one.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from .cache import MetadataCache
from .config import CacheConfig

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_instance: MetadataCache | None = None
_warned: set[str] = set()


def _deprecated(replacement: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            if fn.__name__ not in _warned:
                _warned.add(fn.__name__)
                warnings.warn(f"{fn.__name__}() is deprecated; use {replacement}", DeprecationWarning, stacklevel=2)
            return fn(*args, **kwargs)

        return inner

    return wrap


def _global() -> MetadataCache:
    global _instance
    with _lock:
        if _instance is None:
            _instance = MetadataCache(CacheConfig.from_env())
        return _instance


def install(cache: MetadataCache | None) -> None:
    """Make `cache` the global instance (the harness points the legacy API at its backends)."""
    global _instance
    with _lock:
        _instance = cache


def reset_warnings() -> None:
    """Forget which functions already warned, so a test can see the warning again."""
    _warned.clear()


@_deprecated("MetadataCache key derivation (content hash)")
def get_file_hash_quick(file_path: str) -> str:
    """The full-content hash of a file (the name is historical: it no longer samples the file)."""
    return _global()._hasher.content_id(file_path)


@_deprecated("MetadataCache.get")
def get_from_cache(file_path: str, tier: str = "premium") -> dict[str, Any] | None:
    return _global().get(file_path, tier)


@_deprecated("MetadataCache.put")
def set_cache(file_path: str, metadata: dict[str, Any], tier: str = "premium", extraction_time_ms: float = 0) -> bool:
    return _global().put(file_path, metadata, tier, extraction_time_ms)


@_deprecated("MetadataCache.remove_matching")
def clear_cache_pattern(pattern: str) -> int:
    """Remove entries whose cache key (`<content hash>.<tier hash>`) matches a glob; return the count."""
    return _global().remove_matching(pattern)


@_deprecated("MetadataCache.get_stats")
def get_cache_stats() -> dict[str, Any]:
    return _global().get_stats()


@_deprecated("MetadataCache(...)")
def get_cache() -> MetadataCache:
    return _global()


@_deprecated("MetadataCache.clear_all")
def clear_cache() -> None:
    _global().clear_all()


@_deprecated("MetadataCache.get_info")
def get_cache_info() -> dict[str, Any]:
    return _global().get_info()


@_deprecated("MetadataCache.shutdown")
def shutdown_cache() -> None:
    global _instance
    with _lock:
        instance, _instance = _instance, None
    if instance is not None:
        instance.shutdown()
