"""Chaos runs as Jepsen splits them: a generator of operations, clients that execute and record, a
nemesis schedule, and checkers over the recorded history (chaos.history, chaos.checkers).

A *world* is one or more live cache instances sharing Redis, the database and cache_dir (each
instance reaches Redis through its own proxy, so a fault can hit one instance or all of them), with
one or more threads per instance. A *fault cycle*: a sentinel entry, inject, operations from every
thread of every instance while the fault holds (a fresh instance's threads start together: its
concurrent first use), healthy-tier probes, heal, re-admission probes on the monotonic clock, a read
sweep of every key, then every checker over the history. Nothing is judged inline: the runner only
records; `check()` turns the checkers' findings into the summary's violations.

Process-level checks stay here because they read the process, not the history: nothing written
outside cache_dir and the database file; no thread or descriptor left after shutdown; every
operation of a fault window completes while the server is still stopped (a failsafe, never timed).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiercheck.backends import FakeClock
from tiercheck.contract import TIER_NAMES, Env, Factory, has_capability

from . import checks
from .checkers import ContractInfo, Linearizable, Readmission, check_all, default_checkers
from .disk_faults import CorruptEntries
from .history import Fault, History, Operation, content_key, finish
from .model import Violation
from .nemesis import Nemesis, World
from .sandbox import Sandbox

FILES = ("a", "b", "c")
TIERS = ("premium", "free", "../../escape")  # a hostile tier string: containment is checked every cycle
FAILSAFE_SECONDS = 180.0  # only a failsafe: a fault window that has not finished by then is a hang
PROBE_PACING = 0.05  # seconds between re-admission probes: pacing, not synchronisation (times are recorded)
OPS = ("put", "get", "invalidate", "clear_all", "cleanup", "restart", "rewrite", "advance", "stats")
OP_WEIGHTS = (30, 36, 10, 2, 4, 3, 8, 4, 3)
THREAD_OPS = ("put", "get", "invalidate", "clear_all", "cleanup")  # what threads run beside each other
THREAD_WEIGHTS = (30, 45, 12, 1, 2)


@dataclass
class Summary:
    seed: int = 0
    operations: int = 0
    injected: Counter = field(default_factory=Counter)
    real: dict[str, bool] = field(default_factory=dict)
    recoveries: Counter = field(default_factory=Counter)
    readmission_seconds: dict[str, list[float]] = field(default_factory=dict)
    responsive: dict[str, list[int]] = field(default_factory=dict)  # kind -> [completed, attempted]
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    crashes: Counter = field(default_factory=Counter)
    effective: Counter = field(default_factory=Counter)  # kind -> cycles where the fault took effect
    not_effective: Counter = field(default_factory=Counter)  # kind -> cycles where the fault did not take effect
    offered: set[str] = field(default_factory=set)  # every registered fault that applied to some world
    left_damaged: Counter = field(default_factory=Counter)  # kind -> cycles whose damage outlived heal
    worlds: Counter = field(default_factory=Counter)  # world name -> rounds
    unconfirmed: int = 0  # successful writes while every durable tier was out (checkers.Linearizable.excused)
    threads: int = 0  # client threads started

    @property
    def late_writes(self) -> int:
        """Redis writes held back by a proxy until later commands had passed them (and then landed)."""
        return self.effective["redis late write"]

    @property
    def mid_op_snapshots(self) -> int:
        """Redis restored from a snapshot taken between two commands of one operation."""
        return self.effective["redis restored from snapshot mid-operation"]

    def merge(self, other: Summary) -> None:
        self.operations += other.operations
        self.injected.update(other.injected)
        self.real.update(other.real)
        self.recoveries.update(other.recoveries)
        for k, v in other.readmission_seconds.items():
            self.readmission_seconds.setdefault(k, []).extend(v)
        for k, (done, tried) in other.responsive.items():
            cur = self.responsive.setdefault(k, [0, 0])
            cur[0] += done
            cur[1] += tried
        self.violations.extend(other.violations)
        self.crashes.update(other.crashes)
        self.not_effective.update(other.not_effective)
        self.left_damaged.update(other.left_damaged)
        self.worlds.update(other.worlds)
        self.effective.update(other.effective)
        self.offered |= other.offered
        self.unconfirmed += other.unconfirmed
        self.threads += other.threads
        for note in other.notes:
            if note not in self.notes:
                self.notes.append(note)


def fault_of(nemesis: Nemesis) -> Fault:
    """What the history keeps of a fault: which tier of which instances it hits, and whether data goes."""
    return Fault(nemesis.kind, nemesis.tier, nemesis.scope, nemesis.instance, nemesis.destroys_data)


def void(history: History, nemesis: Nemesis) -> None:
    """The fault did not take effect: it never happened as far as the checkers are concerned. The
    operations of its window lose it from their active faults (nothing is excused by it), and its
    inject and heal events become one "no_effect" event of a fault that touches no data (nothing is
    blamed on it or excused by it either); the history still says it was tried."""
    fault = fault_of(nemesis)
    inert = Fault(fault.kind, fault.tier, fault.scope, fault.instance, destroys_data=False)
    with history._lock:
        # only this cycle, from its inject on: an earlier cycle of the same fault (equal by value) that took
        # effect keeps excusing what it destroyed
        start = max((ev.index for ev in history.events if ev.fault == fault and ev.event == "inject"), default=-1)
        for op in history.ops:
            if op.index > start and fault in op.faults:
                op.faults = tuple(f for f in op.faults if f != fault)
        kept = []
        for ev in history.events:
            if ev.index >= start and ev.fault == fault and ev.event in ("inject", "heal"):
                if ev.event == "heal":
                    ev.event, ev.fault, ev.detail = "no_effect", inert, "fault did not take effect"
                    kept.append(ev)
                continue
            kept.append(ev)
        history.events[:] = kept
        if fault in history.active:
            history.active.remove(fault)


# --- generator -----------------------------------------------------------------------------------


class Generator:
    """Picks operations: (op, file name, tier). Threads get only operations that keep the files and the
    clock alone (rewrites, clock advances and restarts happen between the threaded phases)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def next(self, threaded: bool = False) -> tuple[str, str, str]:
        ops, weights = (THREAD_OPS, THREAD_WEIGHTS) if threaded else (OPS, OP_WEIGHTS)
        return self.rng.choices(ops, weights)[0], self.rng.choice(FILES), self.rng.choice(TIERS)


# --- clients -------------------------------------------------------------------------------------


class Client:
    """One live instance slot: its cache object, and every call it makes recorded in the history."""

    def __init__(
        self,
        history: History,
        factory: Factory,
        instance: int,
        env: Env,
        after: Callable[[Operation], None] | None = None,
    ) -> None:
        self.history, self.factory, self.instance, self.env, self.after = history, factory, instance, env, after
        self.incarnation = 0
        self.cache: Any = factory(env)

    def call(
        self, op: str, fn: Callable, *args: Any, thread: int = 0, quiescent: bool = False, **fields: Any
    ) -> Operation:
        rec = self.history.begin(
            instance=self.instance,
            incarnation=self.incarnation,
            thread=thread,
            op=op,
            clock_invoked=self.env.clock(),
            quiescent=quiescent,
            **fields,
        )
        result, error = None, None
        try:
            result = fn(*args)
        except Exception as exc:
            error = exc
        finish(rec, result, error, self.env.clock())
        if self.after is not None:
            self.after(rec)
        return rec

    def put(self, path: str, tier: str, value: dict, **kw: Any) -> Operation:
        return self.call(
            "put",
            lambda: self.cache.put(path, dict(value), tier),
            path=path,
            tier=tier,
            value=value,
            content=content_key(_read(path)),
            **kw,
        )

    def get(self, path: str, tier: str, **kw: Any) -> Operation:
        return self.call(
            "get", lambda: self.cache.get(path, tier), path=path, tier=tier, content=content_key(_read(path)), **kw
        )

    def invalidate(self, path: str, tier: str | None, **kw: Any) -> Operation:
        tiers = TIERS if tier is None else (tier,)
        return self.call(
            "invalidate",
            lambda: self.cache.invalidate(path, tier),
            path=path,
            tier=tier,
            tiers=tiers,
            content=content_key(_read(path)),
            **kw,
        )

    def holding(self, path: str, of: Operation, role: str, tier: str = "premium") -> Operation:
        return self.call(
            "holding",
            lambda: self.cache.tiers_holding(path, tier),
            path=path,
            tier=tier,
            content=content_key(_read(path)),
            role=role,
            probe_of=of.index,
            thread=of.thread,
        )

    def restart(self, thread: int = 0) -> Operation:
        self.call("shutdown", self.cache.shutdown, thread=thread)

        def new() -> Any:
            self.cache = self.factory(self.env)

        rec = self.call("restart", new, thread=thread)
        self.incarnation += 1
        return rec


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# --- the schedule --------------------------------------------------------------------------------


class Runner:
    def __init__(
        self,
        factory: Factory,
        sandbox: Sandbox,
        world: World,
        rng: random.Random,
        summary: Summary | None = None,
        check_leaks: bool = True,
        check_each_step: bool = True,
    ) -> None:
        self.world = world
        self.factory, self.sandbox, self.rng = factory, sandbox, rng
        self.env = self.world.envs[0]
        self.summary = summary if summary is not None else Summary()
        self.summary.worlds[self.world.name] += 1
        self.clock = self.env.clock
        self.generator = Generator(rng)
        self.history = History(meta={"ttl": self.env.ttl_seconds, "env_tiers": {}})
        self.check_each_step = check_each_step
        self.files_dir = sandbox.root / "files" / Path(self.env.cache_dir).name
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.paths = {name: str(self.files_dir / name) for name in FILES}
        self.contents: dict[str, bytes] = {}  # every content a file has had: the sweep reads them all
        for name in FILES:
            self._write(name, 0)
        self.step = 0
        self.probes = 0
        self._active: Nemesis | None = None
        self.damaged: dict[str, Nemesis] = {}
        self.reported: set[str] = set()
        self.readmitted: dict[str, list[float]] = {}  # fault kind -> re-admission seconds measured in this run
        self.trace: list[str] | None = [] if os.environ.get("CHAOS_TRACE") else None
        self._trace_logs: _TraceLogs | None = None
        if self.trace is not None:  # the implementation's own log lines, between the operations
            self._trace_logs = _TraceLogs(self)
            self._root_level = logging.getLogger().level
            logging.getLogger().addHandler(self._trace_logs)
            logging.getLogger().setLevel(min(self._root_level or logging.INFO, logging.INFO))
        self.baseline = None
        if check_leaks:  # warm up imports, pools and lazily opened descriptors first
            warm = factory(self.env)
            probe = self._probe_file(0)
            warm.put(probe, {"warm": True})
            warm.get(probe)
            warm.clear_all()
            warm.shutdown()
            self._settle()
            self.baseline = checks.resources()
        self.clients = [Client(self.history, factory, i, env, self._recorded) for i, env in enumerate(self.world.envs)]
        self.contract = ContractInfo.of(self.clients[0].cache, self.env.ttl_seconds)
        self.checkers = default_checkers()
        self.introspect = has_capability(self.clients[0].cache, "tiers_holding")
        for i, env in enumerate(self.world.envs):
            tiers = {"memory", "disk"} | ({"redis"} if env.redis_url else set())
            self.history.meta["env_tiers"][i] = tiers | ({"database"} if env.database_url else set())
        self.outside = self._outside()

    # --- plumbing -------------------------------------------------------------------------------

    @property
    def cache(self) -> Any:
        return self.clients[0].cache

    @property
    def active(self) -> Nemesis | None:
        return self._active

    @active.setter
    def active(self, nemesis: Any) -> None:
        """Recording a fault as active (the Hypothesis machine sets it around its own inject/heal)."""
        if nemesis is None and self._active is not None:
            self.history.event("heal", fault_of(self._active))
        elif nemesis is not None:
            self._active = nemesis
            self.history.event("inject", fault_of(nemesis))
            if getattr(self, "trace", None) is not None:
                self.trace.append(f"{self.step:5d} fault {nemesis.kind} starts")
            return
        self._active = None

    def _write(self, name: str, variant: int) -> None:
        data = f"chaos file {name} version {variant}\n".encode() * (3 + variant)
        with open(self.paths[name], "wb") as f:
            f.write(data)
        self.contents[content_key(data)] = data
        if getattr(self, "trace", None) is not None:
            self.trace.append(f"{self.step:5d} rewrite {name} -> version {variant}")

    def _probe_file(self, instance: int) -> str:
        """A probe file with content never used before: the harness's own key."""
        self.probes += 1
        path = str(self.files_dir / f"probe-{instance}")
        with open(path, "wb") as f:
            f.write(f"probe {self.summary.seed} {self.probes}".encode())
        return path

    def _settle(self) -> None:
        for proxy in self.world.proxies:
            proxy.wait_idle()

    def _recorded(self, op: Operation) -> None:
        self.summary.operations += 1
        if self.trace is not None:
            self.trace.append(str(op))

    def check(self) -> list[Violation]:
        """Run every checker over the history; new findings go into the summary."""
        new = []
        for v in check_all(self.history, self.contract, self.checkers):
            if v.key not in self.reported:
                self.reported.add(v.key)
                new.append(v)
        self.summary.violations.extend(new)
        return new

    def _outside(self) -> dict[str, tuple[int, int]]:
        root = self.sandbox.root
        excluded = [root / "files", root / "disk" / "cache-", root / "disk" / ".chaos-filler", root / "db-"]
        excluded += [p for p in root.glob("tiercheck-redis-*")]
        return checks.tree(root, excluded)

    # --- operations (the main thread: one instance at a time, picked at random) ------------------

    def client(self) -> Client:
        return self.clients[self.rng.randrange(len(self.clients))]

    def random_op(self) -> None:
        op, name, tier = self.generator.next()
        self.step += 1
        getattr(self, f"op_{op}")(name, tier)
        if self.check_each_step:
            self.check()

    def run_ops(self, count: int) -> int:
        for _ in range(count):
            self.random_op()
        return count

    def _value(self, name: str, tier: str, thread: int = 0) -> dict:
        return {
            "f": name,
            "t": tier,
            "seq": f"{self.step}.{thread}.{self.rng.random():.6f}",
            "pad": "x" * self.rng.randrange(0, 300),
        }

    def op_put(self, name: str, tier: str, client: Client | None = None) -> None:
        (client or self.client()).put(self.paths[name], tier, self._value(name, tier), quiescent=True)

    def op_get(self, name: str, tier: str, client: Client | None = None) -> None:
        (client or self.client()).get(self.paths[name], tier, quiescent=True)

    def op_invalidate(self, name: str, tier: str, client: Client | None = None) -> None:
        which = None if self.rng.random() < 0.5 else tier
        (client or self.client()).invalidate(self.paths[name], which, quiescent=True)

    def op_clear_all(self, name: str, tier: str) -> None:
        c = self.client()
        c.call("clear_all", c.cache.clear_all, quiescent=True)

    def op_cleanup(self, name: str, tier: str) -> None:
        c = self.client()
        c.call("cleanup", c.cache.cleanup, quiescent=True)

    def op_restart(self, name: str, tier: str) -> None:
        self.client().restart()

    def op_rewrite(self, name: str, tier: str) -> None:
        self._write(name, self.rng.randrange(2))

    def op_advance(self, name: str, tier: str) -> None:
        self.clock.advance(self.rng.choice((1.0, 5.0, 30.0)))  # type: ignore[attr-defined]

    def op_stats(self, name: str, tier: str) -> None:
        c = self.client()
        c.call("stats", c.cache.get_stats, quiescent=True)

    def run_script(self, script: list[tuple[str, str, str]]) -> None:
        """Scripted operations, e.g. [("put", "a", "premium"), ("invalidate", "a", "premium")];
        invalidate takes exactly this tier name (or every one with tier "*")."""
        for op, name, tier in script:
            self.step += 1
            if op == "invalidate":
                self.client().invalidate(self.paths[name], None if tier == "*" else tier, quiescent=True)
            else:
                getattr(self, f"op_{op}")(name, tier)
        if self.check_each_step:
            self.check()

    def sweep(self) -> None:
        """Read every key the history knows, from every instance, through a scratch file."""
        keys = sorted(
            {
                (op.content, t)
                for op in self.history.completed_ops()
                if op.op in ("put", "get", "invalidate") and not op.role
                for t in (op.tiers or (op.tier,))
                if t is not None
            }
        )
        contents = self.contents
        scratch = str(self.files_dir / "sweep")
        for content, tier in keys:
            data = contents.get(content)
            if data is None:
                continue
            with open(scratch, "wb") as f:
                f.write(data)
            for c in self.clients:
                self.step += 1
                c.get(scratch, tier, role="sweep", quiescent=True)
        self.check()

    # --- threads ---------------------------------------------------------------------------------

    def final_sweep(self) -> None:
        """With several instances: let the declared staleness window pass (real seconds: only time can
        pass it), then every instance reads every key — what another instance removed must be gone."""
        if len(self.clients) > 1:
            time.sleep(self.contract.staleness_seconds + 0.05)
        self.sweep()

    def run_threads(self, count: int, nemesis: Nemesis | None = None) -> tuple[int, int]:
        """Every instance runs `self.world.threads` threads of `count` operations each, all released at
        once (a fresh instance's concurrent first use); (completed, attempted)."""
        workers = [(c, t) for c in self.clients for t in range(self.world.threads)]
        start = threading.Barrier(len(workers))
        completed = [0]
        lock = threading.Lock()
        errors: list[BaseException] = []
        seeds = [self.rng.randrange(2**32) for _ in workers]

        def work(client: Client, thread: int, seed: int) -> None:
            gen = Generator(random.Random(seed))
            try:
                start.wait(FAILSAFE_SECONDS)
                if len(workers) == 1:  # one instance, one thread: every operation, restarts and rewrites too
                    for _ in range(count):
                        self.step += 1
                        op, name, tier = self.generator.next()
                        getattr(self, f"op_{op}")(name, tier)
                        with lock:
                            completed[0] += 1
                    return
                for i in range(count):
                    op, name, tier = gen.next(threaded=True)
                    path = self.paths[name]
                    if op == "put":
                        value = {"f": name, "t": tier, "seq": f"{self.step}.{client.instance}.{thread}.{i}"}
                        client.put(path, tier, value, thread=thread)
                    elif op == "get":
                        client.get(path, tier, thread=thread)
                    elif op == "invalidate":
                        client.invalidate(path, None if gen.rng.random() < 0.5 else tier, thread=thread)
                    elif op == "clear_all":
                        client.call("clear_all", client.cache.clear_all, thread=thread)
                    else:
                        client.call("cleanup", client.cache.cleanup, thread=thread)
                    with lock:
                        completed[0] += 1
            except BaseException as exc:  # a harness error: re-raised below
                errors.append(exc)

        threads = [
            threading.Thread(target=work, args=(c, t, s), name=f"chaos-client-{c.instance}-{t}", daemon=True)
            for (c, t), s in zip(workers, seeds, strict=True)
        ]
        self.summary.threads += len(threads)
        for th in threads:
            th.start()
        deadline = time.monotonic() + FAILSAFE_SECONDS
        for th in threads:
            th.join(max(0.0, deadline - time.monotonic()))
        still_holding = nemesis.still_holding() if nemesis is not None else True
        hung = any(th.is_alive() for th in threads)
        if hung and nemesis is not None:
            self.summary.violations.append(
                Violation(
                    "unresponsive",
                    f"only {completed[0]} of {count * len(workers)} operations completed during {nemesis.describe()}",
                    self.step,
                    nemesis.kind,
                    prop="P5",
                    key=f"hang {self.step}",
                )
            )
            nemesis.heal()
            for th in threads:
                th.join(FAILSAFE_SECONDS)
        elif nemesis is not None and not still_holding:
            self.summary.notes.append(f"{nemesis.kind}: the fault ended before the operations were counted")
        if errors and not isinstance(errors[0], threading.BrokenBarrierError):
            raise errors[0]
        if len(workers) > 1:
            self.step += completed[0]
        return completed[0], count * len(workers)

    # --- fault cycles ---------------------------------------------------------------------------

    def _targets(self, nemesis: Nemesis) -> list[Client]:
        return [c for c in self.clients if fault_of(nemesis).hits(c.instance)]

    def put_sentinel(self, client: Client) -> Operation | None:
        if not self.introspect:
            return None
        path = str(self.files_dir / f"sentinel-{client.instance}")
        with open(path, "wb") as f:
            f.write(f"sentinel {self.summary.seed} {self.step}".encode())
        put = client.put(path, "premium", {"sentinel": self.step}, role="sentinel", quiescent=True)
        client.holding(path, put, "sentinel")
        return put

    def probe_healthy(self, client: Client, sentinel: Operation | None) -> None:
        """Two probe puts (memory may be emptied at any time; the second must land there), then the sentinel."""
        if not self.introspect:
            return
        for _ in range(2):
            path = self._probe_file(client.instance)
            put = client.put(path, "premium", {"probe": self.step}, role="probe", quiescent=True)
            client.holding(path, put, "probe")
            client.invalidate(path, None, role="probe", quiescent=True)
        if sentinel is not None:
            client.holding(sentinel.path, sentinel, "sentinel-check")

    def readmission(self, nemesis: Any) -> None:
        """Probe on the monotonic clock, up to the declared readmission_seconds after heal, until the
        healed tier holds a probe put; Checkers.Readmission judges the recorded times."""
        if not self.introspect or nemesis.tier not in self.contract.tiers:
            note = f"{nemesis.kind}: re-admission not observable (no tiers_holding or tier not declared)"
            if note not in self.summary.notes:
                self.summary.notes.append(note)
            return
        client = self._targets(nemesis)[0]
        deadline = time.monotonic() + self.contract.readmission_seconds
        while True:
            path = self._probe_file(client.instance)
            put = client.put(path, "premium", {"readmit": self.probes}, role="readmit", quiescent=True)
            held = client.holding(path, put, "readmit")
            client.invalidate(path, None, role="readmit", quiescent=True)
            if isinstance(held.result, set | frozenset) and nemesis.tier in held.result:
                break
            if put.invoked > deadline:
                break
            time.sleep(PROBE_PACING)
        self.check()
        self._collect_readmission()

    def _collect_readmission(self) -> None:
        for checker in self.checkers:
            if isinstance(checker, Readmission):
                self.readmitted = {k: list(v) for k, v in checker.measured.items()}

    def _note_damage(self) -> None:
        for tier, earlier in list(self.damaged.items()):
            if not earlier.still_damaged():
                self.history.event("repaired", fault_of(earlier))
                del self.damaged[tier]

    def fault_cycle(self, nemesis: Nemesis, ops: int = 12, script: list[tuple[str, str, str]] | None = None) -> None:
        """One cycle of any registered fault: arm (when the fault arms) and operations until it is ready;
        a sentinel; inject; operations from every thread of every instance; healthy-tier probes; heal;
        then, only if the fault took effect, re-admission probes; a sweep. A fault that did not take effect
        is recorded as such and leaves no trace a checker could read as a fault (see `_void`)."""
        if isinstance(nemesis, CorruptEntries) and not self.env.redis_url:
            return self.corruption_cycle(nemesis)  # read back by fresh instances (with Redis, it would answer)
        kind = nemesis.kind
        self.summary.real[kind] = nemesis.real
        self._note_damage()
        if type(nemesis).arm is not Nemesis.arm:
            nemesis.arm()
            self.invalidate_something()  # an invalidate the snapshot predates: the E1 case
            self.run_ops(3)
            for _ in range(40):  # operations until what arm prepared happened (a snapshot mid-operation)
                if nemesis.ready():
                    break
                self.random_op()
        targets = self._targets(nemesis)
        sentinel = self.put_sentinel(targets[0])
        self.active = nemesis
        healed = False
        try:
            nemesis.inject()
            self.summary.injected[kind] += 1
            if script is not None:
                self.run_script(script)
                done = tried = len(script)
            else:
                done, tried = self.run_threads(ops, nemesis)
            counts = self.summary.responsive.setdefault(kind, [0, 0])
            counts[0] += done
            counts[1] += tried
            for client in targets:
                self.probe_healthy(client, sentinel if client is targets[0] else None)
        finally:
            nemesis.heal()
            healed = True
            self.active = None
        took = self.count_effect(nemesis)
        if took and healed and nemesis.still_damaged():
            self.damaged[nemesis.tier] = nemesis
            self.history.event("damaged", fault_of(nemesis))
            self.summary.left_damaged[kind] += 1
        if took:
            self.readmission(nemesis)
        if sentinel is not None:
            targets[0].invalidate(sentinel.path, None, role="sentinel", quiescent=True)
        self.sweep()
        self.check_containment()

    def count_effect(self, nemesis: Nemesis) -> bool:
        """After heal: count the cycle as effective or not; a fault that did not take effect is voided."""
        if self.trace is not None:
            self.trace.append(f"{self.step:5d} fault {nemesis.kind} healed: {nemesis.evidence():.300}")
        if nemesis.took_effect():
            self.summary.effective[nemesis.kind] += 1
            self.history.event("took_effect", fault_of(nemesis), nemesis.evidence())
            return True
        self.summary.not_effective[nemesis.kind] += 1
        void(self.history, nemesis)
        return False

    def corruption_cycle(self, nemesis: Nemesis) -> None:
        """E2 on the disk tier: entries altered while the cache is down, then read by a fresh instance
        (so memory cannot answer first). Nothing altered may be served (the history checkers); every
        altered entry that was read must be gone; the disk tier keeps storing afterwards."""
        kind = nemesis.kind
        self.summary.real[kind] = True
        client = self.clients[0]
        nemesis.arm()  # the files these puts write are the ones altered
        for name in FILES:
            for tier in TIERS[:2]:
                self.op_put(name, tier, client)
        for c in self.clients:
            c.call("shutdown", c.cache.shutdown)
        self.active = nemesis
        nemesis.inject()
        self.summary.injected[kind] += 1
        for c in self.clients:
            c.call("restart", lambda c=c: setattr(c, "cache", self.factory(c.env)))
            c.incarnation += 1
        first_read = len(self.history.ops)
        self.sweep()
        self.active = None
        if not self.count_effect(nemesis):
            self.check()
            return
        kept = self.misses_still_on_disk(first_read)
        if kept:
            self.summary.violations.append(
                Violation(
                    "corrupt entry kept",
                    f"{len(kept)} key(s) read as a miss after entries were altered are still held by the disk "
                    f"tier (tiers_holding), e.g. {kept[0]} (E2: a corrupt entry is a miss and, once read, "
                    "no longer held)",
                    self.step,
                    kind,
                    prop="E2",
                    key=f"corrupt {self.step}",
                )
            )
        if self.introspect and "disk" in self.contract.tiers:
            path = self._probe_file(0)
            put = client.put(path, "premium", {"probe": self.step}, role="readmit", quiescent=True)
            held = client.holding(path, put, "readmit")
            client.invalidate(path, None, role="readmit", quiescent=True)
            if isinstance(held.result, set | frozenset) and "disk" not in held.result:
                self.summary.violations.append(
                    Violation(
                        "healthy tiers keep storing",
                        f"after reading corrupt entries the disk tier stopped storing "
                        f"(a put landed in {sorted(held.result)})",
                        self.step,
                        kind,
                        prop="E2",
                        key=f"corrupt-store {self.step}",
                    )
                )

        self.check()

    def misses_still_on_disk(self, since: int) -> list[str]:
        """E2 through the contract, never by looking at files (an implementation may keep bookkeeping files
        beside its entries, and an altered file may be one of those): every key the sweep since op `since`
        read as a miss must not be held by the disk tier afterwards. Needs `tiers_holding`."""
        if not self.introspect or "disk" not in self.contract.tiers:
            return []
        kept = []
        scratch = str(self.files_dir / "sweep")
        for op in self.history.completed_ops()[since:]:
            data = self.contents.get(op.content)
            if op.role != "sweep" or op.outcome != "ok" or op.result is not None or data is None:
                continue
            with open(scratch, "wb") as f:
                f.write(data)
            client = self.clients[op.instance]
            held = client.holding(scratch, op, "corrupt-check", tier=op.tier or "premium")
            if isinstance(held.result, set | frozenset) and "disk" in held.result:
                kept.append(op.key)
        return kept

    def invalidate_something(self) -> None:
        """Invalidate (exact tier) a key that some put stored: the case an older snapshot must not undo."""
        puts = [op for op in self.history.completed_ops() if op.op == "put" and not op.role and op.outcome == "ok"]
        if not puts:
            return
        target = self.rng.choice(puts)
        data = self.contents.get(target.content)
        if data is None:
            return
        scratch = str(self.files_dir / "sweep")
        with open(scratch, "wb") as f:
            f.write(data)
        self.client().invalidate(scratch, target.tier, quiescent=True)

    def first_use(self, ops: int) -> None:
        """Restart the last instance, then let every thread of every instance start at once."""
        self.clients[-1].restart()
        self.run_threads(ops)

    def check_containment(self) -> None:
        now = self._outside()
        moved = checks.changed(self.outside, now)
        if moved:
            self.summary.violations.append(
                Violation(
                    "containment",
                    f"files outside cache_dir and the database changed: {moved[:5]}",
                    self.step,
                    prop="E5",
                    key=f"contain {self.step}",
                )
            )
            self.outside = now

    def close(self) -> None:
        """Shut every instance down; then no thread or descriptor of them may remain."""
        for c in self.clients:
            with contextlib.suppress(Exception):
                c.cache.shutdown()
        self._settle()
        self.world.close()
        with contextlib.suppress(Exception):
            self.check()
        self._collect_readmission()
        for kind, seconds in self.readmitted.items():
            self.summary.readmission_seconds.setdefault(kind, []).extend(seconds)
            self.summary.recoveries[kind] += len(seconds)
        excused = [
            op
            for op in self.history.completed_ops()
            if op.op in ("put", "invalidate", "clear_all")
            and op.outcome == "ok"
            and Linearizable.excused(op, self.history, self.contract)
        ]
        self.summary.unconfirmed += len(excused)
        if self._trace_logs is not None:
            logging.getLogger().removeHandler(self._trace_logs)
            logging.getLogger().setLevel(self._root_level)
        if self.baseline is not None:
            for problem in checks.leaked(self.baseline, checks.resources()):
                self.summary.violations.append(
                    Violation("leak after shutdown", problem, self.step, prop="P12", key=f"leak {problem}")
                )


class _TraceLogs(logging.Handler):
    """CHAOS_TRACE: log records of INFO and above go into the trace, so a violation's trace shows
    what the implementation did (repairs, purges, failures) between the operations."""

    def __init__(self, runner: Runner) -> None:
        super().__init__(logging.INFO)
        self.runner = runner

    def emit(self, record: logging.LogRecord) -> None:
        if self.runner.trace is not None:
            msg = record.getMessage().replace("\n", " ")
            self.runner.trace.append(f"{self.runner.step:5d}   log {record.levelname} {record.name}: {msg:.200}")


__all__ = [
    "FILES",
    "TIERS",
    "TIER_NAMES",
    "Client",
    "FakeClock",
    "Runner",
    "Summary",
    "World",
    "fault_of",
    "void",
]
