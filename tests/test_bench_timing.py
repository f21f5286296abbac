"""bench.timing.interleaved: each op runs once per index, and no op always runs first in a round."""

from __future__ import annotations

import pytest

pytest.importorskip("numpy", reason="bench extras not installed (pip install -e '.[bench]'; nox -s bench runs this)")

from bench import timing  # noqa: E402 (numpy first: bench.timing needs it)

pytestmark = pytest.mark.selftest


def test_interleaved_rotates_which_op_runs_first_in_a_round() -> None:
    calls: list[tuple[str, int]] = []
    ops = {name: (lambda i, name=name: calls.append((name, i)), None) for name in "abc"}
    out = timing.interleaved(ops, n=12, chunk=2, warmup=0)
    assert {name: len(samples) for name, samples in out.items()} == {"a": 12, "b": 12, "c": 12}
    assert sorted(calls) == sorted((name, i) for name in "abc" for i in range(12))
    firsts = [calls[k][0] for k in range(0, len(calls), 6)]  # a round: 2 ops of each of the 3
    assert firsts == ["a", "b", "c", "a", "b", "c"]
    # op i of every entry still runs in the round of i (per-op sums across entries stay neighbours)
    assert all({i // 2 for name, i in calls[k : k + 6]} == {k // 6} for k in range(0, len(calls), 6))
