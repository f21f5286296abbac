"""A frozen copy of reference/ at commit 42eec13: a realistic buggy implementation for the harness's
self-tests (tests/test_frozen_reference.py). Never fixed, never edited: it must keep its bugs.

At 42eec13 the reference passed every property test, yet had 17 confirmed bugs (issue 14;
../shared/repro/ reproduces 13 of them): invalidations undone for another live instance after an
outage, stale memory tiers after Redis restarts and late writes, a healthy cache that stops caching.
The harness must find them through its generic machines and campaign, not through tests written
after one reproduction. Copied file by file with `git show 42eec13:reference/<file>`; its imports are
relative, so it runs beside the current reference (its loggers keep the names "reference.*").

tiercheck's reference multi-tier metadata cache (memory → Redis → disk → database).

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
