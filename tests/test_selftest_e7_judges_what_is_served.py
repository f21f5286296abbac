"""E7 judges what a new instance serves, not which tier the stats credit (a harness self-test).

test_E7_restart_persistence asserted `memory_hits == 0 and hits == 1` after a restart: a P10 or P2 finding
(a miscounted hit) failed E7, and so did a correct implementation that fills its memory tier at start-up
(its first get is then rightly a memory hit, P2: the fastest tier holding the entry serves it). Here the
reference is wrapped so that its counters credit every hit to memory, as such a start-up fill would.
"""

from __future__ import annotations

import dataclasses

import pytest

from tiercheck.backends import FakeClock, shared_fake_redis, unique_namespace
from tiercheck.contract import TIER_NAMES, Env
from tiercheck.properties import test_model_properties
from tiercheck.reference import factory as reference

pytestmark = pytest.mark.selftest


class MemoryCreditedStats:
    """The reference cache with every hit credited to memory (what a cache filled at start-up reports)."""

    def __init__(self, cache) -> None:
        self._cache = cache

    def __getattr__(self, name: str):
        return getattr(self._cache, name)

    def get_stats(self):
        stats = dict(self._cache.get_stats())
        for tier in TIER_NAMES:
            stats[f"{tier}_hits"] = stats["hits"] if tier == "memory" else 0
        return stats


def test_e7_passes_whatever_tier_the_stats_credit(tmp_path):
    base = Env(cache_dir=str(tmp_path / "cache"), namespace=unique_namespace("e7"), clock=FakeClock())
    caches = []

    def open_cache(env):
        caches.append(MemoryCreditedStats(reference(env)))
        return caches[-1]

    def make_env(**fields):
        return dataclasses.replace(base, database_url=f"sqlite:///{tmp_path}/db.sqlite3", **fields)

    try:
        test_model_properties.test_E7_restart_persistence(open_cache, make_env, tmp_path, shared_fake_redis().url)
    finally:
        for cache in caches:
            cache.shutdown()
