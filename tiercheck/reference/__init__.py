"""tiercheck's reference multi-tier metadata cache (memory → Redis → disk → database).

Importing this package connects to nothing and starts no thread: tiers are opened on first use.
"""

from __future__ import annotations

from typing import Any

from . import legacy
from .cache import CacheClosedError, MetadataCache
from .codec import InvalidMetadata
from .config import CacheConfig


def factory(env: Any) -> MetadataCache:
    """The contract's factory: a cache over the harness's `tiercheck.contract.Env`."""
    cache = MetadataCache(CacheConfig.from_contract_env(env))
    cache.legacy_module = legacy  # capability: the legacy module API (SPEC E9)
    return cache


__all__ = ["CacheClosedError", "CacheConfig", "InvalidMetadata", "MetadataCache", "factory", "legacy"]
