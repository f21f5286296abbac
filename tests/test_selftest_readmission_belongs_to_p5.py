"""Re-admission is judged by P5's tests only (a harness self-test).

The E1, E2 and E6 tests of tiercheck/chaos/test_faults_real.py ran every checker and failed on any
violation, so a tier that came back later than its declared `readmission_seconds` turned E1 and E6 into
FAIL although no invalidation was undone (found by a third, independent probe implementation declaring a
slow breaker). The P5 tests still judge it; the others judge only their own checks.
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
UNDONE = Violation("resurrection", "an invalidate that returned True was undone", prop="E1")


def test_a_late_readmission_does_not_fail_the_e1_e2_e6_tests():
    real._check(summary_with(LATE), [], KIND)  # an E1 / E2 test: judge_readmission=False
    real._clean(summary_with(LATE), [])  # the E1 / E6 worlds


def test_p5_still_fails_on_a_late_readmission():
    with pytest.raises(AssertionError, match="re-admission"):
        real._check(summary_with(LATE), [], KIND, judge_readmission=True)


def test_the_e1_tests_still_fail_on_their_own_violations():
    with pytest.raises(AssertionError, match="resurrection"):
        real._check(summary_with(LATE, UNDONE), [], KIND)
    with pytest.raises(AssertionError, match="resurrection"):
        real._clean(summary_with(UNDONE), [])
