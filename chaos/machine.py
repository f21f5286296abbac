"""The chaos nemeses as rules of a Hypothesis stateful machine, over the real-process sandbox.

`inject(kind)` and `heal()` are rules; operations are rules; the checks are those of
chaos.runner.Runner (the machine drives a Runner), and any violation fails the step it appeared in,
so Hypothesis shrinks to a short sequence of operations and faults.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from tiercheck.contract import Factory

from .disk_faults import CorruptEntries
from .nemesis import Nemesis
from .runner import FILES, TIERS, Runner, build_nemeses
from .sandbox import Sandbox

KINDS = [
    "redis SIGKILL",
    "redis SIGSTOP",
    "redis restart empty",
    "redis reset mid-reply",
    "redis partition",
    "disk ENOSPC",
    "disk read-only",
    "disk dir removed",
    "sqlite locked",
    "sqlite deleted",
]


class ChaosMachine(RuleBasedStateMachine):
    factory: Factory
    sandbox: Sandbox

    def __init__(self) -> None:
        super().__init__()
        env = self.sandbox.new_env(ttl_seconds=600.0)
        self.runner = Runner(self.factory, self.sandbox, env, random.Random(0), check_leaks=False)
        self.nemeses = {n.kind: n for n in build_nemeses(self.sandbox, env, random.Random(0))}
        self.active: Nemesis | None = None

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
    def inject(self, kind: str) -> None:
        nemesis = self.nemeses.get(kind)
        if nemesis is None or isinstance(nemesis, CorruptEntries):
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
        self.runner.readmission(nemesis)
        self.runner.sweep()
        self._checked()

    def teardown(self) -> None:
        if self.active is not None:
            self.active.heal()
        self.runner.sweep()
        self.runner.close()
        self.sandbox.reset_disk()
        self._checked()
