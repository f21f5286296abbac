"""The ceiling under the benchmark's multi-process memory shares (a self-test of bench/ceiling.py)."""

from __future__ import annotations

import pytest

from bench.ceiling import servable_gets

pytestmark = pytest.mark.selftest


def test_one_process_loses_only_cold_gets_and_gets_after_its_own_invalidate():
    log = [(1, "get", 0), (2, "get", -1), (3, "inv", 0), (4, "get", 0), (5, "put", 0), (6, "get", 0)]
    assert servable_gets([log], [0]) == (2, 4)  # t2 is cold, t4 follows the invalidate; t6 follows own put


def test_another_process_change_costs_the_next_get_only():
    a = [(10, "get", 0), (30, "get", 0), (40, "get", 0)]
    b = [(20, "put", 0)]  # returned between a's gets at 10 and 30
    assert servable_gets([a, b], [0, 0]) == (2, 3)


def test_a_change_before_the_process_first_touched_the_key_counts_from_its_start():
    a = [(30, "get", 1)]
    b = [(20, "inv", 1)]
    assert servable_gets([a, b], [5, 5]) == (0, 1)
    assert servable_gets([a, b], [25, 5]) == (1, 1)  # a began after the change: its warm-up read it


def test_own_put_after_a_foreign_change_refreshes_the_key():
    a = [(30, "put", 2), (40, "get", 2)]
    b = [(20, "put", 2)]
    assert servable_gets([a, b], [0, 0]) == (1, 1)
