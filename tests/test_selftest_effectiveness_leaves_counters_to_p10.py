"""L2 and L3 judge the memory tier, not the exactness of total_requests or writes (a harness self-test).

The L2 tests read "every put succeeded" from the `writes` counter and asserted total_requests moved by the
number of gets; L3 (and the two-instance measurement tagged E6) asserted total_requests too, and the
`credited_get` probe (L1, L2, the real-expiry P9 test) asserted total_requests, hits and misses per get. All
of that is P10's: a counter off by one failed L1, L2, L3, E6 and P9. The reference is wrapped here so that
total_requests counts every get twice and writes stays 0; the memory tier still works, so L2 and L3 pass.
"""

from __future__ import annotations

import dataclasses

import pytest

from tiercheck.backends import FakeClock, unique_namespace
from tiercheck.contract import Env
from tiercheck.properties import test_effectiveness as eff
from tiercheck.reference import factory as reference

pytestmark = pytest.mark.selftest


class MiscountedRequests:
    """The reference cache with total_requests doubled and writes never counted (P10 bugs only)."""

    def __init__(self, cache) -> None:
        self._cache = cache

    def __getattr__(self, name: str):
        return getattr(self._cache, name)

    def get_stats(self):
        stats = dict(self._cache.get_stats())
        stats["total_requests"] *= 2
        stats["writes"] = 0
        return stats


@pytest.fixture
def open_miscounting(tmp_path):
    caches: list = []
    base = Env(
        cache_dir=str(tmp_path / "cache"), namespace=unique_namespace("eff"), clock=FakeClock(), database_url=None
    )

    def open_cache(**fields):
        caches.append(MiscountedRequests(reference(dataclasses.replace(base, **fields))))
        return caches[-1]

    yield open_cache
    for cache in caches:
        cache.shutdown()


@pytest.mark.parametrize(
    "test",
    [
        eff.test_L2_entries_that_fit_are_all_memory_hits,
        eff.test_L2_memory_holds_exactly_capacity_and_evictions_are_exact,
    ],
)
def test_l2_passes_with_p10_counters_wrong(open_miscounting, tmp_path, test):
    test(open_miscounting, False, None, tmp_path)


def test_l3_passes_with_p10_counters_wrong(open_miscounting, tmp_path):
    measured = []
    eff.test_L3_memory_serves_at_least_90_percent_of_a_mixed_workload(
        open_miscounting, False, None, tmp_path, lambda *args, **kw: measured.append(args)
    )
    assert measured and measured[0][1] >= 0.9
