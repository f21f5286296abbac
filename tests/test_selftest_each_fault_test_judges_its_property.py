"""Each real-fault test judges its own property (a harness self-test).

The E1, E2 and E6 tests of tiercheck/chaos/test_faults_real.py ran every checker and failed on any
violation, so a tier that came back later than its declared `readmission_seconds` turned E1 and E6 into
FAIL although no invalidation was undone (found by a third, independent probe implementation declaring a
slow breaker), and so would a put that skipped a healthy tier (P5's "healthy tiers keep storing") or a
stats counter off by one (P10). P5's tests judge every finding; an E test judges its own property's
findings and wrong data, whatever name the checker gave it; E2 also an exception.
"""

from __future__ import annotations

import pytest

from tiercheck.chaos import test_faults_real as real
from tiercheck.chaos.model import Violation
from tiercheck.chaos.runner import Summary

pytestmark = pytest.mark.selftest

KIND = "redis SIGKILL"


def summary_with(*violations: Violation) -> Summary:
    summary = Summary(seed=1, operations=10)
    summary.injected[KIND] = 1
    summary.violations.extend(violations)
    return summary


LATE = Violation("re-admission", "the redis tier was not used again within 8 s", prop="P5")
SKIPPED = Violation("healthy tiers keep storing", "a put landed in ['redis']; healthy: ['disk', 'redis']", prop="P5")
STATS = Violation("stats", "hits + misses != total_requests", prop="P10")
UNDONE = Violation("resurrection", "an invalidate that returned True was undone", prop="E1")
WRONG = Violation("wrong value", "key 3: a value no put wrote", prop="P1")
KEPT = Violation("corrupt entry kept", "read as a miss, still held by the disk tier", prop="E2")
RAISED = Violation("exception escaped", "get raised OSError", prop="P5")


@pytest.mark.parametrize("other", [LATE, SKIPPED, STATS], ids=["re-admission", "storing", "stats"])
def test_another_property_finding_does_not_fail_an_e_test(other, capsys):
    real._check(summary_with(other), [], KIND, "E1")
    real._check(summary_with(other), [], KIND, "E2", also=frozenset({"exception escaped"}))
    real._clean(summary_with(other), [], "E1")
    real._clean(summary_with(other), [], "E6")
    assert "not judged here" in capsys.readouterr().out  # reported, not hidden


@pytest.mark.parametrize("other", [LATE, SKIPPED, STATS, RAISED], ids=["re-admission", "storing", "stats", "raised"])
def test_p5_judges_every_finding(other):
    with pytest.raises(AssertionError, match=other.check):
        real._check(summary_with(other), [], KIND)


def test_an_e_test_fails_on_its_own_findings_and_on_wrong_data_by_any_name():
    for own, finding in [("E1", UNDONE), ("E1", WRONG), ("E6", WRONG), ("E6", UNDONE), ("E2", KEPT), ("E2", WRONG)]:
        with pytest.raises(AssertionError, match=finding.check):
            real._clean(summary_with(LATE, finding), [], own)
    with pytest.raises(AssertionError, match="exception escaped"):
        real._check(summary_with(RAISED), [], KIND, "E2", also=frozenset({"exception escaped"}))
    with pytest.raises(AssertionError, match="corrupt entry kept"):
        real._check(summary_with(KEPT), [], KIND, "E2", also=frozenset({"exception escaped"}))
