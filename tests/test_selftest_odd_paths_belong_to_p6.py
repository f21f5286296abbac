"""Paths with any characters working is P6's; E5 judges containment (a harness self-test).

test_E5_odd_paths_work asserted only that odd paths work (put True, get served) — SPEC P6's "paths with any
characters work" — and never looked outside cache_dir, so a cache that refused such paths failed E5 while
E5's own subject went unchecked. Now test_P6_odd_paths_work judges the first, and
test_E5_odd_paths_stay_inside_cache_dir the second.
"""

from __future__ import annotations

import pytest

from tiercheck.backends import FakeClock, unique_namespace
from tiercheck.contract import Env
from tiercheck.properties import test_hostile_and_api as hostile
from tiercheck.reference import factory as reference

pytestmark = pytest.mark.selftest
NAME = "a\nb"


class RefusesNewlines:
    """The reference, refusing (put returns False, stores nothing) any path with a newline: safe, not P6."""

    def __init__(self, cache) -> None:
        self._cache = cache

    def __getattr__(self, name: str):
        return getattr(self._cache, name)

    def put(self, path, metadata, tier="premium", extraction_time_ms=0):
        return False if "\n" in str(path) else self._cache.put(path, metadata, tier, extraction_time_ms)


@pytest.fixture
def opened(tmp_path):
    caches: list = []

    def make_env(**fields):
        defaults = dict(cache_dir=str(tmp_path / "cache"), database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
        return Env(namespace=unique_namespace("odd"), clock=FakeClock(), **{**defaults, **fields})

    def open_cache(env=None):
        caches.append(RefusesNewlines(reference(env or make_env())))
        return caches[-1]

    yield open_cache, make_env
    for cache in caches:
        cache.shutdown()


def test_refusing_odd_paths_fails_p6_not_e5(opened, tmp_path):
    open_cache, make_env = opened
    hostile.test_E5_odd_paths_stay_inside_cache_dir(open_cache, make_env, tmp_path, NAME)
    with pytest.raises(AssertionError):
        hostile.test_P6_odd_paths_work(open_cache, tmp_path, NAME)
