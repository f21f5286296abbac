"""The chaos nemeses as Hypothesis rules (P5/E1), and E3 crash consistency with SIGKILLed children."""

from __future__ import annotations

import psutil
import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from .crash import run_crashes
from .machine import ChaosMachine
from .sandbox import Sandbox

CRASH_SEED = 3141


@pytest.mark.prop("P5")
@pytest.mark.real_redis
def test_P5_chaos_machine_on_real_processes(impl_factory):
    with Sandbox() as sandbox:
        bound = type("Chaos", (ChaosMachine,), {"factory": staticmethod(impl_factory), "sandbox": sandbox})
        run_state_machine_as_test(bound, settings=settings(settings.default, max_examples=4, stateful_step_count=15))
    assert sandbox.children_left() == []


@pytest.mark.prop("E3")
def test_E3_sigkill_at_seeded_points_leaves_old_new_or_miss(impl_factory, impl_spec):
    impl = impl_spec
    print(f"E3 crash run: impl={impl} seed={CRASH_SEED} kills=12 mode=self")
    summary = run_crashes(impl, impl_factory, CRASH_SEED, kills=12, mode="self")
    print(dict(summary.crashes))
    assert not summary.violations, "\n".join(str(v) for v in summary.violations[:10])
    assert sum(summary.crashes.values()) == 12
    if summary.crashes["killed between operations"] == 12:  # no kill landed inside a put, invalidate or cleanup
        pytest.skip("fault did not take effect: every SIGKILL landed between operations")
    assert not [c for c in psutil.Process().children(recursive=True) if "crash_child" in " ".join(c.cmdline())]
