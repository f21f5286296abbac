"""The harness's own quality: the model machine's examples are long enough to reach deep states.

A state machine whose examples stop after two or three steps never strings together
put -> restart -> promote -> invalidate; this measures the distribution in the CI profile.
"""

from __future__ import annotations

import statistics

from tiercheck.properties.machine import CacheMachine, run_machine
from tiercheck.properties.test_model_properties import ConsistencyMachine
from tiercheck.reference import factory


def test_most_examples_run_at_least_20_steps_and_none_runs_0(capsys) -> None:
    steps: list[int] = []
    machine = type("Instrumented", (ConsistencyMachine,), {"step_log": steps})
    try:
        run_machine(machine, factory)
    finally:
        CacheMachine.step_log = None
    with capsys.disabled():
        print(
            f"\nConsistencyMachine: {len(steps)} examples, steps median {statistics.median(steps)}, "
            f"min {min(steps)}, max {max(steps)}, >=20 steps: {sum(s >= 20 for s in steps) / len(steps):.0%}"
        )
    assert len(steps) >= 100
    assert min(steps) > 0, f"{steps.count(0)} examples ran no step; distribution {sorted(steps)}"
    assert sum(s >= 20 for s in steps) >= len(steps) / 2, f"fewer than half reach 20 steps: {sorted(steps)}"
