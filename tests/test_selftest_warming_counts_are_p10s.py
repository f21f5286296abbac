"""Whether warm_cache's look-ups count as caller requests is P10's, not E8's (a harness self-test).

SPEC puts it in get_stats' contract ("look-ups made inside warm_cache do not count"); E8 is about warming
itself (bounded workers, no re-extraction, failures reported). The E8 tests asserted total_requests too, so a
stats bug failed E8. variants.warm_counts_requests now passes E8 and fails P10's own test.
"""

from __future__ import annotations

import pytest

from tiercheck.backends import FakeClock, unique_namespace
from tiercheck.contract import Env, load_factory
from tiercheck.properties import test_hostile_and_api, test_model_properties

pytestmark = pytest.mark.selftest


def opener(tmp_path, caches: list):
    factory = load_factory("variants.warm_counts_requests:factory")

    def open_cache():
        env = Env(
            cache_dir=str(tmp_path / "cache"),
            database_url=f"sqlite:///{tmp_path}/db.sqlite3",
            namespace=unique_namespace("warm"),
            clock=FakeClock(),
        )
        caches.append(factory(env))
        return caches[-1]

    return open_cache


@pytest.mark.parametrize("judged, fails", [("E8", False), ("P10", True)])
def test_a_warming_stats_bug_fails_p10_not_e8(tmp_path, judged, fails):
    caches: list = []
    test = {
        "E8": test_hostile_and_api.test_E8_warming_bounded_no_reextraction_failures_reported,
        "P10": test_model_properties.test_P10_warming_lookups_are_not_caller_requests,
    }[judged]
    try:
        if fails:
            with pytest.raises(AssertionError, match="warming 6 files moved the counters"):
                test(opener(tmp_path, caches), tmp_path)
        else:
            test(opener(tmp_path, caches), tmp_path)
    finally:
        for cache in caches:
            cache.shutdown()
