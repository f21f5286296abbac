"""E3 with every kill landing between operations did not inject its fault (a harness self-test).

test_E3_sigkill_at_seeded_points_leaves_old_new_or_miss asserted that some kill landed inside an operation:
a run in which none did — on a fast machine, or an implementation whose operations are short — was a FAIL
of E3 although nothing showed a crash left a tier unreadable. Now it skips with "fault did not take effect".
"""

from __future__ import annotations

import pytest

from tiercheck.chaos import test_machine_and_crash as crash_tests
from tiercheck.chaos.runner import Summary

pytestmark = pytest.mark.selftest


def test_kills_only_between_operations_skip(monkeypatch):
    def between_only(impl, factory, seed, kills, mode="self"):
        summary = Summary(seed=seed)
        summary.crashes["killed between operations"] = kills
        return summary

    monkeypatch.setattr(crash_tests, "run_crashes", between_only)
    with pytest.raises(pytest.skip.Exception, match="fault did not take effect"):
        crash_tests.test_E3_sigkill_at_seeded_points_leaves_old_new_or_miss(None, "x:factory")


def test_a_kill_inside_an_operation_is_judged(monkeypatch):
    def one_inside(impl, factory, seed, kills, mode="self"):
        summary = Summary(seed=seed)
        summary.crashes["killed between operations"] = kills - 1
        summary.crashes["killed during put"] = 1
        return summary

    monkeypatch.setattr(crash_tests, "run_crashes", one_inside)
    crash_tests.test_E3_sigkill_at_seeded_points_leaves_old_new_or_miss(None, "x:factory")
