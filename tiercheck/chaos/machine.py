"""The chaos nemeses as rules of a Hypothesis stateful machine, over the real-process sandbox.

The faults are those of the registry that apply to the machine's world (`chaos.nemesis.applicable`),
less `EXCLUDED` (each with its reason). `arm(kind)`, `inject(kind)` and `heal()` are rules; operations
are rules; the checks are those of chaos.runner.Runner (the machine drives a Runner), and any
violation fails the step it appeared in, so Hypothesis shrinks to a short sequence of operations and
faults. A fault that did not take effect is counted in `not_effective`, never held against anything.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from tiercheck.contract import Factory

from .nemesis import REGISTRY, Nemesis, applicable, load_builtin
from .runner import FILES, TIERS, Runner
from .sandbox import Sandbox

load_builtin()
EXCLUDED = {
    # altered while the cache is down, then read by a fresh instance: Runner.corruption_cycle's job
    "disk entry truncate": "needs a shutdown around it (Runner.corruption_cycle)",
    "disk entry bitflip": "needs a shutdown around it (Runner.corruption_cycle)",
    "disk entry swap": "needs a shutdown around it (Runner.corruption_cycle)",
    "redis latency 2000ms": "every operation waits seconds: too slow for many short examples",
}
KINDS = sorted(kind for kind in REGISTRY if kind not in EXCLUDED)


class ChaosMachine(RuleBasedStateMachine):
    factory: Factory
    sandbox: Sandbox

    def __init__(self) -> None:
        super().__init__()
        self.world = self.sandbox.world(instances=1, rng=random.Random(0), ttl_seconds=600.0)
        self.runner = Runner(self.factory, self.sandbox, self.world, random.Random(0), check_leaks=False)
        self.nemeses = {n.kind: n for n in applicable(self.world, KINDS)}
        self.active: Nemesis | None = None
        self.not_effective: list[str] = []

    def _checked(self) -> None:
        if self.runner.summary.violations:
            raise AssertionError("\n".join(str(v) for v in self.runner.summary.violations[:5]))

    @rule(name=st.sampled_from(FILES), tier=st.sampled_from(TIERS))
    def put(self, name: str, tier: str) -> None:
        self.runner.op_put(name, tier)
        self._checked()

    @rule(name=st.sampled_from(FILES), tier=st.sampled_from(TIERS))
    def get(self, name: str, tier: str) -> None:
        self.runner.op_get(name, tier)
        self._checked()

    @rule(name=st.sampled_from(FILES), tier=st.sampled_from([*TIERS, "*"]))
    def invalidate(self, name: str, tier: str) -> None:
        self.runner.run_script([("invalidate", name, tier)])
        self._checked()

    @rule(name=st.sampled_from(FILES), variant=st.integers(0, 1))
    def rewrite(self, name: str, variant: int) -> None:
        self.runner._write(name, variant)

    @rule()
    def restart(self) -> None:
        self.runner.op_restart("a", "premium")
        self._checked()

    @precondition(lambda self: self.active is None)
    @rule(kind=st.sampled_from(KINDS))
    def arm(self, kind: str) -> None:
        nemesis = self.nemeses.get(kind)
        if nemesis is not None:
            nemesis.arm()  # a snapshot now, or a hook on a command to come

    @precondition(lambda self: self.active is None)
    @rule(kind=st.sampled_from(KINDS))
    def inject(self, kind: str) -> None:
        nemesis = self.nemeses.get(kind)
        if nemesis is None:
            return
        self.active = self.runner.active = nemesis
        nemesis.inject()

    @precondition(lambda self: self.active is not None)
    @rule()
    def heal(self) -> None:
        nemesis, self.active = self.active, None
        self.runner.active = None
        assert nemesis is not None
        nemesis.heal()
        if self.runner.count_effect(nemesis):  # else voided: nothing excused or blamed by it
            self.runner.readmission(nemesis)
        else:
            self.not_effective.append(nemesis.kind)
        self.runner.sweep()
        self._checked()

    def teardown(self) -> None:
        try:
            if self.active is not None:
                self.active.heal()
            for nemesis in self.nemeses.values():
                nemesis.close()
            self.runner.sweep()
            self.runner.close()
        finally:
            self.world.close()
            self.sandbox.reset_disk()
        self._checked()
