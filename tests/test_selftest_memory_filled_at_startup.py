"""A cache that fills its memory tier at start-up is correct; the P2 restart tests must not fail it (a harness
self-test).

test_P2_restart_credits_redis_not_disk required a Redis hit after a restart and
test_P2_an_entry_redis_lost_is_served_by_disk_and_promoted_back required that only the lower tiers hold the
entry: both assumed a new instance starts with an empty memory tier, as our reference does. P2 says the
fastest tier holding a live entry serves it; for a cache that preloads memory that is memory. Here the
reference is wrapped to preload, at start-up, what earlier instances over the same backends put.
"""

from __future__ import annotations

import dataclasses

import pytest

from tiercheck.backends import FakeClock, shared_fake_redis, unique_namespace
from tiercheck.contract import Env
from tiercheck.properties import test_model_properties as model
from tiercheck.properties import test_tier_contents as contents
from tiercheck.reference import factory as reference

pytestmark = pytest.mark.selftest
COUNTERS = ("total_requests", "hits", "misses", "memory_hits", "redis_hits", "disk_hits", "database_hits")


class Preloading:
    """The reference, reading at start-up every entry put through earlier instances over the same cache_dir
    (which promotes them into memory); the reads it made for that are not the caller's, so not counted."""

    put_before: dict[str, list[tuple[str, str]]] = {}

    def __init__(self, env: Env) -> None:
        self._cache, self._dir = reference(env), env.cache_dir
        for path, tier in self.put_before.get(env.cache_dir, []):
            self._cache.get(path, tier)
        self._base = dict(self._cache.get_stats())

    def __getattr__(self, name: str):
        return getattr(self._cache, name)

    def put(self, path, metadata, tier="premium", extraction_time_ms=0):
        ok = self._cache.put(path, metadata, tier, extraction_time_ms)
        if ok:
            self.put_before.setdefault(self._dir, []).append((path, tier))
        return ok

    def get_stats(self):
        stats = dict(self._cache.get_stats())
        return {**stats, **{name: stats[name] - self._base[name] for name in COUNTERS}}


@pytest.fixture
def preloading(tmp_path):
    caches: list = []
    base = Env(
        cache_dir=str(tmp_path / "cache"),
        database_url=f"sqlite:///{tmp_path / 'cache.sqlite3'}",
        namespace=unique_namespace("preload"),
        clock=FakeClock(),
    )

    def make_env(**fields):
        return dataclasses.replace(base, **fields)

    def open_cache(env=None, **fields):
        caches.append(Preloading(env or make_env(**fields)))
        return caches[-1]

    yield open_cache, make_env
    for cache in caches:
        cache.shutdown()


def test_p2_restart_credits_the_fastest_holder(preloading, tmp_path):
    open_cache, make_env = preloading
    model.test_P2_restart_credits_redis_not_disk(open_cache, make_env, tmp_path, shared_fake_redis().url)


def test_p2_redis_lost_is_not_applicable_when_memory_was_filled(preloading, tmp_path):
    open_cache, make_env = preloading
    with pytest.raises(pytest.skip.Exception, match="filled its memory tier at start-up"):
        contents.test_P2_an_entry_redis_lost_is_served_by_disk_and_promoted_back(
            open_cache, Preloading, make_env, shared_fake_redis().url, tmp_path
        )
