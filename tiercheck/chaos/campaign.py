"""The long chaos campaign: `python -m tiercheck.chaos.campaign --minutes 10 --seed N [--impl pkg.mod:factory]`.

Focused: `--faults 'redis hostile keys,redis SIGSTOP' --worlds 2x3` picks only those faults and worlds.

Rounds until the time is up; each round picks (seeded) a world: the backends (Redis + SQLite, Redis +
PostgreSQL, or disk + SQLite without Redis) and the live instances sharing them (1 instance; 2
instances; 2 instances with 3 threads each), built in one shared sandbox (real valkey-server behind a
proxy per instance, embedded PostgreSQL, a 1 MiB tmpfs for the disk tier when mountable). A round runs
operations and fault cycles (faults on one instance or all, late writes, restores from snapshots taken
mid-operation, threads running through faults, a fresh instance's concurrent first use), records one
history, and runs every checker of chaos.checkers over it; every few rounds a batch of E3 crash kills
(external SIGKILL mode). Prints a summary table; exits 1 on any violation. The time bound is the only
use of the wall clock for scheduling: no verdict depends on it (re-admission is measured in seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import sys
import tempfile
import time
import traceback
from statistics import median

from rich.console import Console
from rich.table import Table

from tiercheck.contract import DEFAULT_IMPL, capabilities, load_factory

from .crash import run_crashes
from .model import Violation
from .nemesis import REGISTRY, applicable, load_builtin
from .runner import Runner, Summary
from .sandbox import Sandbox

BACKENDS = (("redis+sqlite", "sqlite", True), ("redis+postgres", "postgres", True), ("disk+sqlite", "sqlite", False))
INSTANCES = ((1, 1), (2, 1), (2, 3))  # (live instances, threads per instance)


def pick_world(rng: random.Random, backends=BACKENDS, worlds=INSTANCES) -> tuple[str, str, bool, int, int]:
    name, database, redis = rng.choice(backends)
    instances, threads = rng.choice(worlds) if redis else (1, 1)  # E6 coherence needs the shared Redis
    return name, database, redis, instances, threads


def parse_worlds(text: str) -> tuple[tuple[int, int], ...]:
    """`1,2,2x3` -> ((1, 1), (2, 1), (2, 3)): the worlds of INSTANCES to pick from."""
    names = {(f"{i}x{t}" if t > 1 else str(i)): (i, t) for i, t in INSTANCES}
    picked = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in picked if w not in names]
    if unknown or not picked:
        raise ValueError(f"unknown world(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(names)}")
    return tuple(names[w] for w in picked)


def declared_backends(factory, sandbox: Sandbox) -> tuple[list[tuple[str, str, bool]], list[str]]:
    """The backends of BACKENDS the implementation declares (its capabilities: tiers, database kinds),
    read from one instance over a scratch world; and the names of those left out."""
    scratch = sandbox.world(1, None, redis=False)
    cache = factory(scratch.envs[0])
    try:
        caps = capabilities(cache)
    finally:
        cache.shutdown()
        scratch.close()
    urls = {"sqlite": "sqlite:///x", "postgres": "postgresql://x"}
    kept = [b for b in BACKENDS if caps.accepts_database(urls[b[1]]) and (not b[2] or caps.has_tier("redis"))]
    return kept, [b[0] for b in BACKENDS if b not in kept]


def campaign(
    impl: str, seed: int, minutes: float, console: Console, kinds: list[str] | None = None, worlds=INSTANCES
) -> Summary:
    """`kinds`: only these registered faults; `worlds`: only these of INSTANCES (a focused campaign)."""
    factory = load_factory(impl)
    rng = random.Random(seed)
    summary = Summary(seed=seed)
    deadline = time.monotonic() + minutes * 60
    rounds = 0
    harness_errors = 0
    trace_dir: str | None = None  # one directory per run: traces of two runs never overwrite each other
    with Sandbox(postgres=True) as sandbox:
        summary.notes.append(f"disk tier: {sandbox.tmpfs.reason}")
        allowed, left_out = declared_backends(factory, sandbox)
        if (1, 1) not in worlds:  # worlds of several instances need the shared Redis
            allowed = [b for b in allowed if b[2]]
        if left_out:
            summary.notes.append(f"not applicable (the implementation does not declare them): {', '.join(left_out)}")
        while time.monotonic() < deadline:
            rounds += 1
            backends, database, redis, instances, threads = pick_world(rng, allowed, worlds)
            sandbox.reset_disk()
            world = sandbox.world(instances, database, redis, rng=rng, ttl_seconds=rng.choice((120.0, 600.0)))
            world.threads = threads
            runner = Runner(factory, sandbox, world, rng, summary, check_each_step=False)
            nemeses = applicable(world, kinds)  # every registered fault (of `kinds`) that applies to this world
            summary.offered.update(n.kind for n in nemeses)
            before = len(summary.violations)
            try:
                runner.run_ops(rng.randrange(10, 40))
                if threads > 1:
                    runner.first_use(rng.randrange(5, 15))
                for _ in range(rng.randrange(3, 8) if nemeses else 0):
                    if time.monotonic() >= deadline:
                        break
                    runner.fault_cycle(rng.choice(nemeses), rng.randrange(4, 20))
                    runner.run_ops(rng.randrange(5, 30))
                runner.final_sweep()
                runner.check_containment()
            except Exception:  # a harness error: reported, never counted as the implementation's fault
                harness_errors += 1
                console.print(f"[red]harness error in round {rounds}[/red]:\n{traceback.format_exc()}")
            finally:
                for n in nemeses:
                    with contextlib.suppress(Exception):
                        n.close()
                runner.close()
            if runner.trace is not None and len(summary.violations) > before:
                trace_dir = trace_dir or tempfile.mkdtemp(prefix=f"chaos-traces-{seed}-")
                trace_file = os.path.join(trace_dir, f"round-{rounds}.txt")
                with open(trace_file, "w") as f:
                    f.write("\n".join([*map(str, summary.violations[before:]), "", *runner.trace]))
                console.print(f"trace of round {rounds}: {trace_file}")
            console.print(
                f"round {rounds:3d} {backends:15s} {world.name:24s} ops={summary.operations:7d} "
                f"violations +{len(summary.violations) - before}"
            )
            if rounds % 4 == 0 and time.monotonic() < deadline and kinds is None:  # focused: those faults only
                run_crashes(
                    impl, factory, rng.randrange(2**32), kills=rng.randrange(5, 15), mode="external", summary=summary
                )
    left = sandbox.children_left()
    if left:
        summary.violations.append(Violation("orphan processes", ", ".join(left)))
    summary.notes.append(f"{rounds} rounds, {harness_errors} harness errors")
    return summary


def table(summary: Summary, title: str) -> Table:
    """One row per registered fault (the whole registry: a fault no world offered says so), then E3."""
    load_builtin()
    t = Table(title=title)
    for col in (
        "fault",
        "how",
        "injected",
        "took effect",
        "did not take effect",
        "ops completed during fault",
        "recoveries",
        "re-admission s (median/max)",
    ):
        t.add_column(col, justify="left" if col in ("fault", "how") else "right")
    for kind in sorted(set(REGISTRY) | set(summary.injected)):
        adm = summary.readmission_seconds.get(kind, [])
        done, tried = summary.responsive.get(kind, [0, 0])
        if kind not in summary.injected:
            how = "not drawn" if kind in summary.offered else "applies to no world of this run"
            t.add_row(kind, how, "0", "-", "-", "-", "-", "-")
            continue
        effective = summary.effective.get(kind, 0) if kind in REGISTRY else summary.injected[kind]
        t.add_row(
            kind,
            "real" if summary.real.get(kind) else "injected OSError",
            str(summary.injected[kind]),
            str(effective),
            str(summary.not_effective.get(kind, 0)),
            f"{done}/{tried}" if tried else "-",
            str(summary.recoveries.get(kind, 0)),
            f"{median(adm):.2f}/{max(adm):.2f}" if adm else "-",
        )
    return t


def worlds_table(summary: Summary) -> Table:
    t = Table(title="worlds (rounds)")
    t.add_column("world")
    t.add_column("rounds", justify="right")
    for name, rounds in sorted(summary.worlds.items()):
        t.add_row(name, str(rounds))
    return t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tiercheck.chaos.campaign", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=None, help="default: random, printed")
    p.add_argument("--impl", default=DEFAULT_IMPL)
    p.add_argument("--faults", help="only these registered faults, comma-separated (default: every one)")
    p.add_argument("--worlds", help="only these worlds, from 1,2,2x3 (instances x threads; default: all)")
    args = p.parse_args(argv)
    load_builtin()
    kinds = [k.strip() for k in args.faults.split(",") if k.strip()] if args.faults else None
    unknown = sorted(set(kinds or ()) - set(REGISTRY))
    try:
        worlds = parse_worlds(args.worlds) if args.worlds else INSTANCES
    except ValueError as exc:
        p.error(str(exc))  # exit 2
    if unknown or kinds == []:
        p.error(f"unknown fault(s) {', '.join(unknown) or '(none given)'}; registered: {', '.join(sorted(REGISTRY))}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    console = Console(width=150)
    if os.environ.get("CHAOS_TRACE"):  # the implementation's log lines go into the traces, not the console
        logging.getLogger().addHandler(logging.NullHandler())
    else:
        logging.disable(logging.ERROR)  # tier failures are expected here: the table tells the story
    console.print(f"chaos campaign: impl={args.impl} seed={seed} minutes={args.minutes:g}")
    started = time.monotonic()
    summary = campaign(args.impl, seed, args.minutes, console, kinds, worlds)
    elapsed = time.monotonic() - started
    console.print(table(summary, f"chaos campaign seed={seed} impl={args.impl} ({elapsed / 60:.1f} min)"))
    by_check: dict[str, int] = {}
    for v in summary.violations:
        label = f"{v.prop} {v.check}" if v.prop else v.check
        by_check[label] = by_check.get(label, 0) + 1
    console.print(worlds_table(summary))
    console.print(f"client threads started: {summary.threads}")
    effective = summary.effective
    console.print(
        f"late writes (held, landed after later commands): {summary.late_writes}; "
        f"Redis restored from snapshots taken mid-operation: {summary.mid_op_snapshots}; "
        f"one-instance partitions: {effective['redis partition (one instance)']}; "
        f"tracking connections cut: {effective['redis tracking connection cut']}; "
        f"hostile rows: {effective['database hostile rows']}; hostile keys: {effective['redis hostile keys']} "
        "(cycles where the fault took effect)"
    )
    not_effective = sum(summary.not_effective.values())
    console.print(
        f"fault did not take effect: {not_effective} cycle(s) {dict(summary.not_effective) or ''} "
        "(neither counted as injected-and-recovered nor excusing or blaming anything)"
    )
    console.print(f"operations run: {summary.operations}")
    console.print(
        f"fault cycles of registered faults: {sum(summary.effective.values()) + sum(summary.not_effective.values())}"
        f", of which took effect: {sum(summary.effective.values())}; "
        f"recoveries observed: {sum(summary.recoveries[k] for k in summary.effective)}"
    )
    console.print(f"E3 crash kills: {dict(summary.crashes)}")
    if summary.left_damaged:
        console.print(
            "fault cycles whose damage outlived heal (no re-admission verdict; the tier is not held to "
            f"'healthy' until the damage is gone): {dict(summary.left_damaged)}"
        )
    if summary.unconfirmed:
        console.print(
            "successful puts, invalidates and clear_alls while the disk and the database were both out (old values "
            f"allowed back after them: nothing durable could record what a failed tier owed): {summary.unconfirmed}"
        )
    console.print(f"invariant violations: {len(summary.violations)} {by_check or ''}")
    for v in summary.violations[:40]:  # first lines; CHAOS_TRACE=1 writes each round's history with the witnesses
        console.print(f"  {str(v).splitlines()[0]:.400}", markup=False)
    for note in summary.notes:
        console.print(f"note: {note}", markup=False)
    console.print("same seed, same schedule of rounds and faults; the number of rounds depends on the time bound")
    replay = f"python -m tiercheck.chaos.campaign --minutes {args.minutes:g} --seed {seed} --impl {args.impl}"
    replay += f" --faults '{args.faults}'" if args.faults else ""
    replay += f" --worlds {args.worlds}" if args.worlds else ""
    console.print(f"replay: {replay}")
    return 1 if summary.violations else 0


if __name__ == "__main__":
    sys.exit(main())
