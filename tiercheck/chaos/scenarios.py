"""Short, deterministic chaos scenarios (fixed seeds): the default test run and the variant checks use
these; `tiercheck.chaos.campaign` runs the same machinery for minutes with random seeds."""

from __future__ import annotations

import random
from collections.abc import Callable

from tiercheck.contract import Factory

from .disk_faults import CorruptEntries
from .nemesis import Nemesis, build
from .runner import Runner, Summary
from .sandbox import Sandbox

Script = list[tuple[str, str, str]]

# scripted fault windows: the operations that make a fault matter
E1_SCRIPT: Script = [("invalidate", "a", "premium"), ("get", "a", "premium"), ("invalidate", "b", "*")]
HOSTILE_SCRIPT: Script = [("put", "a", "../../escape"), ("get", "a", "../../escape")]
WARM_SCRIPT: Script = [("put", name, tier) for name in ("a", "b", "c") for tier in ("premium", "free")]


def world(kind: str) -> dict:
    """Sandbox and Env settings for the tier a fault kind hits."""
    if kind.startswith("postgres"):
        return {"sandbox": {"postgres": True}, "env": {"database": "postgres"}}
    if kind.startswith("disk entry"):
        return {"sandbox": {"redis": False}, "env": {"database": "sqlite", "redis": False}}
    if kind == "redis partition (one instance)":
        return {"sandbox": {}, "env": {"database": "sqlite", "instances": 2}}
    return {"sandbox": {}, "env": {"database": "sqlite"}}


def run_fault(
    factory: Factory,
    kind: str,
    seed: int,
    *,
    cycles: int = 2,
    ops: int = 10,
    script: Script | None = None,
    log: Callable[[str], None] = print,
) -> tuple[Summary, list[str]]:
    """Warm up, then `cycles` fault cycles of the nemesis named `kind`; (summary, orphans left)."""
    log(f"chaos scenario {kind!r}: seed={seed}")
    settings = world(kind)
    rng = random.Random(seed)
    summary = Summary(seed=seed)
    with Sandbox(**settings["sandbox"]) as sandbox:
        where = sandbox.world(rng=rng, ttl_seconds=600.0, **settings["env"])
        summary.notes.append(f"disk: {sandbox.tmpfs.reason}")
        runner = Runner(factory, sandbox, where, rng, summary)
        nemesis: Nemesis | None = None
        try:
            nemesis = _pick(where, kind)
            runner.run_script(WARM_SCRIPT)
            runner.run_ops(ops)
            for _ in range(cycles):
                if isinstance(nemesis, CorruptEntries):
                    runner.corruption_cycle(nemesis)
                else:
                    runner.fault_cycle(nemesis, ops, script)
                runner.run_ops(ops)
            runner.sweep()
            runner.check_containment()
        finally:
            if nemesis is not None:
                nemesis.close()
            runner.close()
            where.close()
    return summary, sandbox.children_left()


def _pick(where, kind: str) -> Nemesis:
    nemesis = build(kind, where)
    if nemesis is None:
        raise LookupError(f"the fault {kind!r} does not apply to this world ({len(where.envs)} instance(s))")
    return nemesis
