"""One chaos run over one Env: random operations, fault cycles, and every check after each step.

Checks (each a `Violation` in the summary, never an exception that stops the run):
- no exception escapes a contract method, and return types are the contract's;
- no wrong value: every get is checked against `chaos.model.Model` (latest put or a miss; never an
  invalidated, cleared, expired or other key's value);
- no resurrection after invalidate or clear_all (the model's `removed` values), including after
  Redis restarts from an RDB snapshot taken before the invalidation — except removals made while
  the disk and the database were both out, which nothing durable could record (`confirmed`; the
  same for the old values a put replaced);
- healthy tiers keep their data and keep storing while another tier fails (through
  `tiers_holding`, when the implementation has it); a tier still carrying an earlier fault's
  damage (a corrupted SQLite file the implementation has not replaced yet) is not a healthy tier;
- the failed tier is used again within READMISSION_OPS operations after it heals;
- the cache stays responsive while a server hangs: every operation of the fault window completes
  while the server is still stopped (counted, never timed);
- nothing is written outside cache_dir and the database file;
- no thread or descriptor is left after shutdown.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiercheck.contract import TIER_NAMES, Env, Factory, has_capability

from . import checks
from .db_faults import PgKill, PgTerminateBackends, SqliteCorruptPages, SqliteDeleted, SqliteLock
from .disk_faults import CorruptEntries, DirRemoved, DiskFull, DiskIOError, DiskReadOnly
from .model import Key, Model, Violation
from .nemesis import Nemesis
from .redis_faults import (
    ProxyLatency,
    ProxyPartition,
    ProxyReset,
    RedisKill,
    RedisOldSnapshot,
    RedisPause,
    RedisRestartEmpty,
)
from .sandbox import Sandbox

FILES = ("a", "b", "c")
TIERS = ("premium", "free", "../../escape")  # a hostile tier string: containment is checked every cycle
READMISSION_OPS = 64  # a healed tier must hold a new put within this many put+inspect operations
FAILSAFE_SECONDS = 180.0  # only a failsafe: a fault window that has not finished by then is a hang
OPS = ("put", "get", "invalidate", "clear_all", "cleanup", "restart", "rewrite", "advance", "stats")
OP_WEIGHTS = (30, 36, 10, 2, 4, 3, 8, 4, 3)

# Schedules that trigger known reference bugs, skipped by avoid_known_bugs. Empty: the one found here
# ("E1 restart before reconnect": a new instance trusted a Redis restored from an RDB taken before a
# successful invalidate) is fixed by the journals' Redis floor; chaos/test_reference_bugs.py guards it.
KNOWN_REFERENCE_BUGS: dict[str, str] = {}


@dataclass
class Summary:
    seed: int = 0
    operations: int = 0
    injected: Counter = field(default_factory=Counter)
    real: dict[str, bool] = field(default_factory=dict)
    recoveries: Counter = field(default_factory=Counter)
    readmission_ops: dict[str, list[int]] = field(default_factory=dict)
    responsive: dict[str, list[int]] = field(default_factory=dict)  # kind -> [completed, attempted]
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    crashes: Counter = field(default_factory=Counter)
    latent_damage_skips: Counter = field(default_factory=Counter)  # "kind (tier)" -> checks that skipped it
    unconfirmed: int = 0  # successful writes while every durable tier was out (Runner.confirmed)

    def merge(self, other: Summary) -> None:
        self.operations += other.operations
        self.injected.update(other.injected)
        self.real.update(other.real)
        self.recoveries.update(other.recoveries)
        for k, v in other.readmission_ops.items():
            self.readmission_ops.setdefault(k, []).extend(v)
        for k, (done, tried) in other.responsive.items():
            cur = self.responsive.setdefault(k, [0, 0])
            cur[0] += done
            cur[1] += tried
        self.violations.extend(other.violations)
        self.crashes.update(other.crashes)
        self.latent_damage_skips.update(other.latent_damage_skips)
        self.unconfirmed += other.unconfirmed
        for note in other.notes:
            if note not in self.notes:
                self.notes.append(note)


def build_nemeses(sandbox: Sandbox, env: Env, rng: random.Random) -> list[Nemesis]:
    """Every fault that applies to this Env's tiers."""
    found: list[Nemesis] = []
    if env.redis_url and sandbox.redis is not None and sandbox.proxy is not None:
        found += [
            RedisKill(sandbox.redis),
            RedisPause(sandbox.redis),
            RedisRestartEmpty(sandbox.redis),
            RedisOldSnapshot(sandbox.redis),
            ProxyReset(sandbox.proxy),
            ProxyPartition(sandbox.proxy),
            ProxyLatency(sandbox.proxy, 2.0),  # far above any sane client timeout
            ProxyLatency(sandbox.proxy, 0.01),  # below it: everything must still work
        ]
    tmpfs = sandbox.tmpfs if sandbox.tmpfs.mounted else None
    found += [
        DiskFull(env.cache_dir, tmpfs),
        DiskReadOnly(env.cache_dir, tmpfs),
        DiskIOError(env.cache_dir),
        DirRemoved(env.cache_dir),
        CorruptEntries(env.cache_dir, "truncate", rng),
        CorruptEntries(env.cache_dir, "bitflip", rng),
        CorruptEntries(env.cache_dir, "swap", rng),
    ]
    if env.database_url and env.database_url.startswith("sqlite:///"):
        path = env.database_url.removeprefix("sqlite://")
        found += [SqliteLock(path), SqliteCorruptPages(path, rng), SqliteDeleted(path)]
    elif env.database_url and sandbox.postgres is not None:
        found += [PgTerminateBackends(sandbox.postgres.url), PgKill(sandbox.postgres)]
    return found


class Runner:
    def __init__(
        self,
        factory: Factory,
        sandbox: Sandbox,
        env: Env,
        rng: random.Random,
        summary: Summary | None = None,
        check_leaks: bool = True,
        avoid_known_bugs: bool = False,
    ) -> None:
        self.factory, self.sandbox, self.env, self.rng = factory, sandbox, env, rng
        self.summary = summary if summary is not None else Summary()
        self.clock = env.clock
        self.model = Model(env.ttl_seconds)
        self.files_dir = sandbox.root / "files" / Path(env.cache_dir).name
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.paths = {name: str(self.files_dir / name) for name in FILES}
        self.content: dict[str, bytes] = {}
        for name in FILES:
            self._write(name, 0)
        self.step = 0
        self.active: Nemesis | None = None
        self.probes = 0
        self.restarted = False
        self.cleared = False
        self.check_leaks = check_leaks
        self.avoid_known = avoid_known_bugs and bool(KNOWN_REFERENCE_BUGS)
        self.sentinel_expires = 0.0
        # tier -> the fault whose damage was still in its backend when this fault cycle's sentinel was stored
        self.damaged: dict[str, Nemesis] = {}
        self.armed = False
        self.trace: list[str] | None = [] if os.environ.get("CHAOS_TRACE") else None
        self._trace_logs: _TraceLogs | None = None
        if self.trace is not None:  # the implementation's own log lines, between the operations
            self._trace_logs = _TraceLogs(self)
            self._root_level = logging.getLogger().level
            logging.getLogger().addHandler(self._trace_logs)
            logging.getLogger().setLevel(min(self._root_level or logging.INFO, logging.INFO))
        self.baseline = None
        if check_leaks:  # warm up imports, pools and lazily opened descriptors first
            warm = self.factory(env)
            self._write_probe()
            warm.put(self.probe_path, {"warm": True})
            warm.get(self.probe_path)
            warm.clear_all()
            warm.shutdown()
            self._settle()
            self.baseline = checks.resources()
        self.cache = self.factory(env)
        self.introspect = has_capability(self.cache, "tiers_holding")
        self.enabled = self._enabled_tiers()
        self.outside = self._outside()

    # --- plumbing -------------------------------------------------------------------------------

    def _write(self, name: str, variant: int) -> None:
        data = f"chaos file {name} version {variant}\n".encode() * (3 + variant)
        with open(self.paths[name], "wb") as f:
            f.write(data)
        self.content[name] = data
        if getattr(self, "trace", None) is not None:
            self.trace.append(f"{self.step:5d} rewrite {name} -> version {variant}")

    @property
    def probe_path(self) -> str:
        return str(self.files_dir / "probe")

    def _write_probe(self) -> bytes:
        self.probes += 1
        data = f"probe {self.summary.seed} {self.probes}".encode()
        with open(self.probe_path, "wb") as f:
            f.write(data)
        return data

    def _settle(self) -> None:
        if self.sandbox.proxy is not None:
            self.sandbox.proxy.wait_idle()

    def fault(self) -> str:
        return self.active.describe() if self.active else "none"

    def violation(self, check: str, detail: str) -> None:
        self.summary.violations.append(Violation(check, detail, self.step, self.fault()))

    def call(self, what: str, fn, *args: Any) -> Any:
        try:
            result = fn(*args)
        except Exception as exc:
            self.violation("exception escaped", f"{what} raised {type(exc).__name__}: {str(exc)[:200]}")
            result = _RAISED
        if self.trace is not None:
            shown = [a if not isinstance(a, str) or len(a) < 60 else "…" + a[-20:] for a in args]
            self.trace.append(f"{self.step:5d} [{self.fault()}] {what}{tuple(shown)!r:.160} -> {result!r:.100}")
        return result

    def _enabled_tiers(self) -> set[str]:
        if not self.introspect:
            return set()
        self._write_probe()
        self.call("put", self.cache.put, self.probe_path, {"probe": "enabled"})
        held = self.call("tiers_holding", self.cache.tiers_holding, self.probe_path)
        self.call("invalidate", self.cache.invalidate, self.probe_path)
        held = set(held) if isinstance(held, set | frozenset) else set()
        expected = {"memory", "disk"} | ({"redis"} if self.env.redis_url else set())
        expected |= {"database"} if self.env.database_url else set()
        if held != expected:
            self.summary.notes.append(f"healthy put landed in {sorted(held)}; the Env enables {sorted(expected)}")
        return held & set(TIER_NAMES)

    def _outside(self) -> dict[str, tuple[int, int]]:
        root = self.sandbox.root
        excluded = [root / "files", root / "disk" / "cache-", root / "disk" / ".chaos-filler", root / "db-"]
        excluded += [p for p in root.glob("tiercheck-redis-*")]
        return checks.tree(root, excluded)

    # --- operations -----------------------------------------------------------------------------

    def random_op(self) -> None:
        op = self.rng.choices(OPS, OP_WEIGHTS)[0]
        if op == "restart" and self.avoid_known and (self.armed or getattr(self.active, "stale_data", False)):
            op = "get"  # see KNOWN_REFERENCE_BUGS: restarting the cache here resurrects entries
        name = self.rng.choice(FILES)
        tier = self.rng.choice(TIERS)
        self.step += 1
        self.summary.operations += 1
        getattr(self, f"op_{op}")(name, tier)

    def op_put(self, name: str, tier: str) -> None:
        value = {"f": name, "t": tier, "seq": self.step, "pad": "x" * self.rng.randrange(0, 300)}
        ok = self.call("put", self.cache.put, self.paths[name], dict(value), tier)
        if ok is _RAISED:
            self.model.put((self.content[name], tier), value, False, self.clock())
            return
        if not isinstance(ok, bool):
            self.violation("contract", f"put returned {ok!r}, not a bool")
        self.model.put((self.content[name], tier), value, self.confirmed(ok), self.clock())

    def op_get(self, name: str, tier: str) -> None:
        self.check_get((self.content[name], tier), self.paths[name])

    def check_get(self, key: Key, path: str) -> None:
        got = self.call("get", self.cache.get, path, key[1])
        if got is _RAISED:
            return
        if got is not None and not isinstance(got, dict):
            self.violation("contract", f"get returned {type(got).__name__}, not a dict or None")
            return
        problem = self.model.check_get(key, got, self.clock())
        if problem is not None:
            self.violation(*problem)

    def op_invalidate(self, name: str, tier: str) -> None:
        which = None if self.rng.random() < 0.5 else tier
        ok = self.call("invalidate", self.cache.invalidate, self.paths[name], which)
        if ok is not _RAISED and not isinstance(ok, bool):
            self.violation("contract", f"invalidate returned {ok!r}, not a bool")
        self.model.invalidate(self.content[name], list(TIERS) if which is None else [which], self.confirmed(ok))

    def op_clear_all(self, name: str, tier: str) -> None:
        self.call("clear_all", self.cache.clear_all)
        if self.confirmed(True):
            self.model.clear_all()  # clear_all promises removal from every tier, outage or not
        self.cleared = True

    def confirmed(self, reported: Any) -> bool:
        """Whether a write that reported success (clear_all always does) is held to it: the old values
        never come back. Not while the disk and the database are both out: then no implementation has
        anywhere to record that a tier still owes the old value's removal so that it outlives a restart
        (a journal written into a damaged SQLite file is lost with the file), so the write counts like
        one that returned False: the old values stay possible."""
        if reported is not True:
            return False
        if self.durable_tiers_out():
            self.summary.unconfirmed += 1
            return False
        return True

    def durable_tiers_out(self) -> bool:
        """Whether every enabled durable tier (disk, database) is failing now: the active fault, or the
        damage an earlier fault left that the implementation has not found yet."""
        durable = self.enabled & {"disk", "database"}
        out = {self.active.tier} if self.active is not None else set()
        out |= {tier for tier, nemesis in self.damaged.items() if nemesis.still_damaged()}
        return bool(durable) and durable <= out

    def op_cleanup(self, name: str, tier: str) -> None:
        self.call("cleanup", self.cache.cleanup)

    def op_restart(self, name: str, tier: str) -> None:
        self.call("shutdown", self.cache.shutdown)
        cache = self.call("factory", self.factory, self.env)
        if cache is not _RAISED:
            self.cache = cache
        self.restarted = True

    def op_rewrite(self, name: str, tier: str) -> None:
        self._write(name, self.rng.randrange(2))

    def op_advance(self, name: str, tier: str) -> None:
        self.clock.advance(self.rng.choice((1.0, 5.0, 30.0)))  # type: ignore[attr-defined]

    def op_stats(self, name: str, tier: str) -> None:
        stats = self.call("get_stats", self.cache.get_stats)
        if stats is not _RAISED and (
            not hasattr(stats, "get") or stats.get("hits", 0) + stats.get("misses", 0) != stats.get("total_requests")
        ):
            self.violation("contract", "get_stats: hits + misses != total_requests")

    def sweep(self) -> None:
        """Read every key the model knows (live, uncertain or removed) through a scratch file."""
        keys = sorted(set(self.model.allowed) | set(self.model.removed))
        scratch = str(self.files_dir / "sweep")
        for content, tier in keys:
            with open(scratch, "wb") as f:
                f.write(content)
            self.step += 1
            self.summary.operations += 1
            self.check_get((content, tier), scratch)

    # --- fault cycles ---------------------------------------------------------------------------

    def run_ops(self, count: int) -> int:
        for _ in range(count):
            self.random_op()
        return count

    def run_ops_guarded(self, count: int, nemesis: Nemesis) -> int:
        """Run `count` operations in a worker while the fault holds; return how many completed."""
        done = threading.Event()
        completed = [0]
        error: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(count):
                    self.random_op()
                    completed[0] += 1
            except BaseException as exc:  # a harness error: re-raised below
                error.append(exc)
            finally:
                done.set()

        worker = threading.Thread(target=work, name="chaos-ops", daemon=True)
        worker.start()
        finished = done.wait(FAILSAFE_SECONDS)
        still_stopped = getattr(nemesis, "is_stopped", lambda: True)()
        got = completed[0]
        if not finished:
            self.violation("unresponsive", f"only {got} of {count} operations completed during {nemesis.describe()}")
            nemesis.heal()
            worker.join(FAILSAFE_SECONDS)
        elif not still_stopped:
            self.violation("harness", f"{nemesis.kind}: the server was resumed before the operations were counted")
        if error:
            raise error[0]
        return got

    def put_sentinel(self) -> tuple[str, set[str]] | None:
        if not self.introspect:
            return None
        path = str(self.files_dir / "sentinel")
        with open(path, "wb") as f:
            f.write(f"sentinel {self.summary.seed} {self.step}".encode())
        self.call("put", self.cache.put, path, {"sentinel": self.step})
        held = self.call("tiers_holding", self.cache.tiers_holding, path)
        self.restarted = self.cleared = False
        self.sentinel_expires = self.clock() + self.env.ttl_seconds
        return path, set(held) if isinstance(held, set | frozenset) else set()

    def check_healthy_tiers(self, nemesis: Nemesis, sentinel: tuple[str, set[str]] | None) -> None:
        if not self.introspect:
            return
        expected = self.enabled - {nemesis.tier}
        self._write_probe()
        ok = self.call("put", self.cache.put, self.probe_path, {"probe": self.step})
        if ok is True:
            held = self.call("tiers_holding", self.cache.tiers_holding, self.probe_path)
            if isinstance(held, set | frozenset) and expected - held == {"memory"}:
                # An implementation may empty its memory tier when it learns another instance changed
                # something (the reference does when the shared change counter jumps, e.g. after the
                # database holding it was deleted): memory keeps storing if the next put lands there.
                self.call("put", self.cache.put, self.probe_path, {"probe": self.step, "again": True})
                held = self.call("tiers_holding", self.cache.tiers_holding, self.probe_path)
            if isinstance(held, set | frozenset) and not expected <= held:
                self.violation(
                    "healthy tiers keep storing",
                    f"during {nemesis.kind} a put landed in {sorted(held)}; healthy: {sorted(expected)}",
                )
        elif ok is False and expected:
            self.violation("healthy tiers keep storing", f"during {nemesis.kind} put returned False")
        self.call("invalidate", self.cache.invalidate, self.probe_path)
        if sentinel is None or self.cleared or self.clock() >= self.sentinel_expires:
            return
        path, before = sentinel
        keep = (before & expected) - {"memory"}  # memory may be dropped any time (restart, coherence)
        # A tier damaged when the sentinel was stored may lose everything to that damage at any read
        # (the restart that finds it may already have replaced the file): not a healthy tier.
        for tier, earlier in self.damaged.items():
            if tier in keep:
                keep.discard(tier)
                self.summary.latent_damage_skips[f"{earlier.kind} ({tier})"] += 1
        held = self.call("tiers_holding", self.cache.tiers_holding, path)
        if isinstance(held, set | frozenset) and not keep <= held:
            self.violation(
                "healthy tiers keep their data",
                f"during {nemesis.kind} an entry held by {sorted(before)} is now only in {sorted(held)}",
            )

    def readmission(self, nemesis: Nemesis) -> None:
        kind = nemesis.kind
        if not self.introspect or nemesis.tier not in self.enabled:
            self.summary.notes.append(f"{kind}: re-admission not observable (no tiers_holding or tier not enabled)")
            return
        for i in range(1, READMISSION_OPS + 1):
            self._write_probe()
            self.call("put", self.cache.put, self.probe_path, {"probe": i})
            held = self.call("tiers_holding", self.cache.tiers_holding, self.probe_path)
            self.call("invalidate", self.cache.invalidate, self.probe_path)
            self.summary.operations += 3
            if isinstance(held, set | frozenset) and nemesis.tier in held:
                self.summary.recoveries[kind] += 1
                self.summary.readmission_ops.setdefault(kind, []).append(i)
                return
        self.violation(
            "re-admission",
            f"the {nemesis.tier} tier was not used again within {READMISSION_OPS} "
            f"operations after {nemesis.kind} healed",
        )

    def run_script(self, script: list[tuple[str, str, str]]) -> None:
        """Scripted operations, e.g. [("put", "a", "premium"), ("invalidate", "a", "premium")]."""
        for op, name, tier in script:
            self.step += 1
            self.summary.operations += 1
            if op == "invalidate":  # scripted: exactly this tier name (or every one with tier "*")
                which = None if tier == "*" else tier
                ok = self.call("invalidate", self.cache.invalidate, self.paths[name], which)
                self.model.invalidate(self.content[name], list(TIERS) if which is None else [which], self.confirmed(ok))
            else:
                getattr(self, f"op_{op}")(name, tier)

    def corruption_cycle(self, nemesis: CorruptEntries) -> None:
        """E2 on the disk tier: entries altered while the cache is down, then read by a fresh instance
        (so memory cannot answer first). Nothing altered may be served; every altered entry that was
        read must be removed; a tier holding a corrupt entry is not a failed tier: it keeps storing."""
        kind = nemesis.kind
        self.summary.real[kind] = True
        for name in FILES:
            for tier in TIERS[:2]:
                self.op_put(name, tier)
        self.call("shutdown", self.cache.shutdown)
        self.active = nemesis
        nemesis.inject()
        self.summary.injected[kind] += 1
        cache = self.call("factory", self.factory, self.env)
        if cache is not _RAISED:
            self.cache = cache
        self.sweep()
        self.active = None
        left = nemesis.still_corrupt()
        if left:
            self.violation(
                "corrupt entry kept",
                f"{len(left)} altered entr{'y' if len(left) == 1 else 'ies'} still "
                f"on disk after being read (E2: a corrupt entry is a miss and is removed)",
            )
        if self.introspect and "disk" in self.enabled:
            self._write_probe()
            self.call("put", self.cache.put, self.probe_path, {"probe": self.step})
            held = self.call("tiers_holding", self.cache.tiers_holding, self.probe_path)
            self.call("invalidate", self.cache.invalidate, self.probe_path)
            if isinstance(held, set | frozenset) and "disk" not in held:
                self.violation(
                    "healthy tiers keep storing",
                    f"after reading corrupt entries the disk tier stopped storing (a put landed in {sorted(held)})",
                )
            else:
                self.summary.recoveries[kind] += 1
                self.summary.readmission_ops.setdefault(kind, []).append(0)

    def fault_cycle(self, nemesis: Nemesis, ops: int = 12, script: list[tuple[str, str, str]] | None = None) -> None:
        kind = nemesis.kind
        self.summary.real[kind] = nemesis.real
        if type(nemesis).arm is not Nemesis.arm:
            nemesis.arm()
            self.armed = True
            self.invalidate_something()  # an invalidate the snapshot predates: the E1 case
            self.run_ops(3)
        self.damaged = {tier: n for tier, n in self.damaged.items() if n.still_damaged()}  # fixed for this cycle
        sentinel = self.put_sentinel()
        self.active = nemesis
        try:
            nemesis.inject()
            self.summary.injected[kind] += 1
            if script is not None:
                self.run_script(script)
                ops = done = len(script)
            else:
                done = self.run_ops_guarded(ops, nemesis)
            counts = self.summary.responsive.setdefault(kind, [0, 0])
            counts[0] += done
            counts[1] += ops
            self.check_healthy_tiers(nemesis, sentinel)
        finally:
            self.active = None
            nemesis.heal()
            self.armed = False
        if nemesis.still_damaged():
            self.damaged[nemesis.tier] = nemesis
        self.readmission(nemesis)
        if sentinel is not None:  # every entry left on disk must belong to a key the sweep reads
            self.call("invalidate", self.cache.invalidate, sentinel[0])
        self.sweep()
        self.check_containment()

    def invalidate_something(self) -> None:
        live = [k for k in self.model.allowed if self.model.live(k, self.clock())]
        if not live:
            return
        content, tier = self.rng.choice(sorted(live))
        scratch = str(self.files_dir / "sweep")
        with open(scratch, "wb") as f:
            f.write(content)
        ok = self.call("invalidate", self.cache.invalidate, scratch, tier)
        self.model.invalidate(content, [tier], self.confirmed(ok))

    def check_containment(self) -> None:
        now = self._outside()
        moved = checks.changed(self.outside, now)
        if moved:
            self.violation("containment", f"files outside cache_dir and the database changed: {moved[:5]}")
            self.outside = now

    def close(self) -> None:
        """Shut the cache down; then no thread or descriptor of it may remain."""
        with contextlib.suppress(Exception):
            self.cache.shutdown()
        self._settle()
        if self._trace_logs is not None:
            logging.getLogger().removeHandler(self._trace_logs)
            logging.getLogger().setLevel(self._root_level)
        if self.baseline is not None:
            for problem in checks.leaked(self.baseline, checks.resources()):
                self.violation("leak after shutdown", problem)


_RAISED = object()


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
