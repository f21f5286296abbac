"""P5 error recovery, E1 no resurrection, E2 corruption detection — in-process faults.

The machine's model is permissive exactly where the contract allows: a put that returned False,
or an invalidate that returned False, leaves that key uncertain (old value, new value or miss);
a put that returned True makes the new value the only one that may ever be served, and an
invalidate that returned True means nothing may ever be served again — through faults, heals,
restarts of the cache, and Redis coming back with or without its data.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import tempfile
import time

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from tiercheck.backends import FakeClock, FakeRedisServer, unique_namespace
from tiercheck.chaos.db_faults import SqliteCorruptPages
from tiercheck.chaos.nemesis import Nemesis, World, applicable
from tiercheck.contract import TIER_NAMES, Env, Factory, capabilities, has_capability
from tiercheck.integration import servers
from tiercheck.pytest_plugin import require

from .backend_probe import BackendState, Rewritten, Targets, capture, changed, rewrite
from .machine import canonical, declared_tiers, skip_unless_accepted

FILES = ["a", "b", "c"]
TIERS = ["premium", "free"]
FAULT_KINDS = [  # from the one registry (chaos.nemesis), as it builds them for an in-process world
    "redis refused",
    "redis restart empty",
    "disk EIO",
    "disk ENOSPC",
    "disk read-only",
    "sqlite locked",
    "sqlite pages corrupted",
]
CORRUPTION_SEED = 20261128  # the garbage written over SQLite pages: fixed, so a failing example replays
READMISSION_GRACE_SECONDS = 1.0
"""Added to the declared `readmission_seconds`: the harness's own probe operations (a put, a look, an
invalidate) and scheduling on a loaded machine take time too. A fixed allowance, so that a bound is never
judged on how slow the harness was; the seconds measured are reported without it."""

PROBE_PACING_SECONDS = 0.02
"""Pause between two re-admission probes: bounds the harness's own probe traffic while it polls (not a
synchronisation: the verdict is on the monotonic clock, whatever the pacing)."""


class TierObserver:
    """Whether an entry reached one tier, through the contract only: `tiers_holding` when the implementation
    declares it, else a new instance over the same backends minus those faster than that tier (for the disk
    tier: no Redis; for the database: no Redis and its own empty cache_dir). Its memory tier starts empty and
    every probe is new content, so the tier its get is credited to (P2: the fastest tier holding the entry)
    holds the probe."""

    def __init__(self, factory: Factory, cache, env: Env, tier: str, root: str) -> None:
        self.cache, self.tier = cache, tier
        self.observer = None
        if has_capability(cache, "tiers_holding"):
            return
        faster_removed = {
            "redis": {},
            "disk": {"redis_url": None},
            "database": {"redis_url": None, "cache_dir": tempfile.mkdtemp(prefix="observer-", dir=root)},
        }[tier]
        self.observer = factory(dataclasses.replace(env, **faster_removed))

    def holds(self, path: str) -> bool:
        if self.observer is None:
            return self.tier in self.cache.tiers_holding(path)
        before = self.observer.get_stats()[f"{self.tier}_hits"]
        return self.observer.get(path) is not None and self.observer.get_stats()[f"{self.tier}_hits"] > before

    def close(self) -> None:
        if self.observer is not None:
            self.observer.shutdown()


def readmission_seconds(cache, observer: TierObserver, env: Env, probe: str, bound: float) -> float | None:
    """Seconds on the monotonic clock until a put of new content reaches the observed tier, or None when it
    did not within `bound`. Each probe is a new content of one file, invalidated when it missed, so the
    probes leave nothing behind; the Env clock moves with real time (a breaker may read it)."""
    start = last = time.monotonic()
    n = 0
    while True:
        n += 1
        with open(probe, "wb") as f:
            f.write(b"readmission probe %d %f" % (n, start))
        if cache.put(probe, {"probe": n}) and observer.holds(probe):
            return time.monotonic() - start
        cache.invalidate(probe)
        now = time.monotonic()
        if hasattr(env.clock, "advance"):
            env.clock.advance(now - last)
        last = now
        if now - start > bound:
            return None
        time.sleep(PROBE_PACING_SECONDS)


class FaultMachine(RuleBasedStateMachine):
    factory: Factory
    server: FakeRedisServer
    readmission: dict[str, list[float]]
    """fault name -> re-admission seconds measured (shared by the examples of one test, for the report)"""
    self_repairs: list[bool]
    """per healed SQLite corruption: had the implementation repaired the file itself (a finding, not judged)"""

    def __init__(self) -> None:
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="tiercheck-faults-")
        self.server.start()
        self.env = Env(
            cache_dir=os.path.join(self.root, "cache"),
            redis_url=self.server.url,
            database_url=f"sqlite:///{self.root}/db.sqlite3",
            namespace=unique_namespace("f"),
            clock=FakeClock(),
        )
        self.paths = {}
        for name in FILES:
            self.paths[name] = os.path.join(self.root, name)
            with open(self.paths[name], "wb") as f:
                f.write(name.encode() * 10)
        skip_unless_accepted(self.factory, self.env)
        self.tiers = declared_tiers(self.factory, self.env)
        self.cache = self.factory(self.env)
        # key -> set of canonical values that may be served (None: a miss is the only answer)
        self.allowed: dict[tuple[str, str], set[str]] = {}
        world = World.in_process(self.env, random.Random(CORRUPTION_SEED), fake_redis=self.server)
        self.nemeses: dict[str, Nemesis] = {n.kind: n for n in applicable(world, FAULT_KINDS)}
        assert sorted(self.nemeses) == sorted(FAULT_KINDS), f"the registry built only {sorted(self.nemeses)}"
        self.active: Nemesis | None = None
        self.not_effective: list[str] = []
        self.seq = 0

    def teardown(self) -> None:
        if self.active is not None:
            self.active.heal()
        try:
            self.cache.shutdown()
        finally:
            self.server.start()
            shutil.rmtree(self.root, ignore_errors=True)

    def call(self, what: str, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:  # the finding: nothing may escape because a tier failed
            fault = self.active.describe() if self.active else "no fault"
            raise AssertionError(f"{what} raised {type(exc).__name__}: {exc} (during: {fault})") from exc

    @rule(name=st.sampled_from(FILES), tier=st.sampled_from(TIERS))
    def put(self, name: str, tier: str) -> None:
        self.seq += 1
        value = {"name": name, "tier": tier, "seq": self.seq}
        ok = self.call("put", self.cache.put, self.paths[name], dict(value), tier)
        assert ok in (True, False)
        key = (name, tier)
        if ok:
            self.allowed[key] = {canonical(value)}
        else:
            self.allowed[key] = self.allowed.get(key, set()) | {canonical(value)}

    @rule(name=st.sampled_from(FILES), tier=st.sampled_from(TIERS))
    def get(self, name: str, tier: str) -> None:
        got = self.call("get", self.cache.get, self.paths[name], tier)
        if got is not None:
            allowed = self.allowed.get((name, tier), set())
            assert canonical(got) in allowed, (
                f"get returned {got!r}; only a miss or {sorted(allowed)} may be served "
                f"(fault: {self.active.describe() if self.active else 'none'})"
            )

    @rule(name=st.sampled_from(FILES), tier=st.none() | st.sampled_from(TIERS))
    def invalidate(self, name: str, tier: str | None) -> None:
        ok = self.call("invalidate", self.cache.invalidate, self.paths[name], tier)
        assert ok in (True, False)
        for t in TIERS if tier is None else [tier]:
            if ok:
                self.allowed[(name, t)] = set()
            # False: the old values stay possible, a miss too — nothing to change

    @rule()
    def clear_all(self) -> None:
        self.call("clear_all", self.cache.clear_all)
        # clear_all returns nothing: only when no fault is active can the harness count on it
        if self.active is None:
            self.allowed = {}

    @rule()
    def restart(self) -> None:
        self.call("shutdown", self.cache.shutdown)
        self.cache = self.call("factory", self.factory, self.env)

    @precondition(lambda self: self.active is None)
    @rule(kind=st.sampled_from(FAULT_KINDS))
    def inject(self, kind: str) -> None:
        if self.nemeses[kind].tier not in self.tiers:  # a tier the implementation does not declare
            return
        self.active = self.nemeses[kind]
        self.active.inject()

    @precondition(lambda self: self.active is not None)
    @rule()
    def heal(self) -> None:
        """Heal, then require the tier to hold a new put again within the declared readmission_seconds
        (plus READMISSION_GRACE_SECONDS), measured on the monotonic clock."""
        nemesis, self.active = self.active, None
        nemesis.heal()
        if isinstance(nemesis, SqliteCorruptPages) and nemesis.repaired_by_implementation is not None:
            self.self_repairs.append(nemesis.repaired_by_implementation)  # a finding, never judged
        if not nemesis.took_effect():  # "fault did not take effect": nothing to come back from
            self.not_effective.append(nemesis.kind)
            return
        caps = capabilities(self.cache)
        bound = caps.readmission_seconds + READMISSION_GRACE_SECONDS
        observer = TierObserver(self.factory, self.cache, self.env, nemesis.tier, self.root)
        try:
            seconds = readmission_seconds(self.cache, observer, self.env, os.path.join(self.root, "probe"), bound)
        finally:
            observer.close()
        if seconds is None:
            raise AssertionError(
                f"after '{nemesis.describe()}' healed, the {nemesis.tier} tier held no new put within {bound:.1f}s "
                f"(declared readmission_seconds {caps.readmission_seconds}s + {READMISSION_GRACE_SECONDS}s grace)"
            )
        self.readmission.setdefault(nemesis.describe(), []).append(seconds)

    @invariant()
    def healthy_tiers_keep_storing(self) -> None:
        if self.active is None or not has_capability(self.cache, "tiers_holding"):
            return
        probe = os.path.join(self.root, "probe-live")
        with open(probe, "wb") as f:
            f.write(b"live %d" % self.seq)
        if self.call("put", self.cache.put, probe, {"live": self.seq}):
            held = self.cache.tiers_holding(probe)
            expected = set(self.tiers) - {self.active.tier}
            assert expected <= held, f"during '{self.active.describe()}' a put landed only in {sorted(held)}"


@pytest.fixture
def private_redis():
    server = FakeRedisServer()  # this test stops and restarts it: not the shared one
    yield server
    server.close()


@pytest.mark.prop("P5")
def test_P5_faults_never_raise_never_lie_and_tiers_come_back(impl_factory, private_redis, measure):
    measured: dict[str, list[float]] = {}
    repairs: list[bool] = []
    bound = type(
        "Faults",
        (FaultMachine,),
        {
            "factory": staticmethod(impl_factory),
            "server": private_redis,
            "readmission": measured,
            "self_repairs": repairs,
        },
    )
    try:
        run_state_machine_as_test(bound, settings=settings(settings.default, stateful_step_count=30))
    finally:
        for name, seconds in sorted(measured.items()):
            measure(f"readmission_seconds[{name}]", round(max(seconds), 3), "s")
        if repairs:
            measure("self_repairs_corrupt_sqlite", int(all(repairs)))
        print({name: f"max {max(v):.3f}s over {len(v)} heals" for name, v in measured.items()})
        print(
            f"SQLite corruption repaired by the implementation itself before the harness healed it: "
            f"{sum(repairs)} of {len(repairs)}"
        )


NOTHING_IN_REDIS = (
    "fault did not take effect: the put left no key of the namespace in Redis, so Redis cannot come back "
    "with the entry's old data"
)


@pytest.mark.prop("E1")
def test_E1_invalidation_survives_outage_restart_and_old_data(impl_factory, private_redis, tmp_path):
    env = Env(
        cache_dir=str(tmp_path / "cache"),
        redis_url=private_redis.url,
        database_url=f"sqlite:///{tmp_path}/db.sqlite3",
        namespace=unique_namespace("e1"),
        clock=FakeClock(),
    )
    src = tmp_path / "f"
    src.write_bytes(b"content")
    skip_unless_accepted(impl_factory, env)
    cache = impl_factory(env)
    require(cache, "redis")
    assert cache.put(str(src), {"v": "old"})
    client = redis.Redis.from_url(private_redis.url)
    snapshot = {k: client.dump(k) for k in client.scan_iter(f"{env.namespace}*")}
    client.close()
    if not snapshot:
        cache.shutdown()
        pytest.skip(NOTHING_IN_REDIS)
    private_redis.stop()
    invalidated = cache.invalidate(str(src))
    cache.shutdown()
    cache = impl_factory(env)  # restarted while Redis is still away
    private_redis.start(empty=True)  # Redis returns ...
    client = redis.Redis.from_url(private_redis.url)
    for k, v in snapshot.items():  # ... holding the data it had before the invalidate
        client.restore(k, 0, v, replace=True)
    client.close()
    try:
        if invalidated:
            for _ in range(3):
                assert cache.get(str(src)) is None, "an invalidation that reported success was undone"
        else:
            assert cache.get(str(src)) in (None, {"v": "old"})
    finally:
        cache.shutdown()


def restart_redis_with(handle: servers.ServerHandle, dumps: dict) -> None:
    """Restart the server empty and RESTORE `dumps` into it: Redis back with data a removal had removed."""
    handle.restart(empty=True)
    client = redis.Redis.from_url(handle.url)
    try:
        for k, v in dumps.items():
            client.restore(k, 0, v, replace=True)
    finally:
        client.close()


@pytest.mark.prop("E1")
@pytest.mark.real_redis
def test_E1_clear_all_survives_restart_with_old_data(impl_factory, own_redis_server, tmp_path):
    """clear_all succeeds on every tier; Redis then restarts and comes back with the data it had before.

    On a real server: the clear_all reached Redis, so only the restart itself can tell an implementation that
    Redis holds removed data again, and a real restart shows a new run_id (INFO server). The in-process
    fakeredis has no INFO, so there a restart is invisible to an implementation that watches run_id — a
    correct design the contract allows (test_multi_instance runs its restores on a real server likewise).
    """
    handle = own_redis_server
    env = Env(
        cache_dir=str(tmp_path / "cache"),
        redis_url=handle.url,
        database_url=f"sqlite:///{tmp_path}/db.sqlite3",
        namespace=unique_namespace("e1"),
        clock=FakeClock(),
    )
    src = tmp_path / "f"
    src.write_bytes(b"content")
    skip_unless_accepted(impl_factory, env)
    cache = impl_factory(env)
    require(cache, "redis")
    assert cache.put(str(src), {"v": "old"})
    client = redis.Redis.from_url(handle.url)
    snapshot = {k: client.dump(k) for k in client.scan_iter(f"{env.namespace}*")}
    client.close()
    if not snapshot:
        cache.shutdown()
        pytest.skip(NOTHING_IN_REDIS)
    cache.clear_all()
    restart_redis_with(handle, snapshot)
    try:
        assert cache.get(str(src)) is None
        cache.shutdown()
        cache = impl_factory(env)
        assert cache.get(str(src)) is None
    finally:
        cache.shutdown()


# --- E2: corrupt what each put wrote, whatever the layout --------------------------------------------


def corrupt(data: bytes, how: str, rng: random.Random, other: bytes) -> bytes:
    if how == "bitflip" and data:
        i = rng.randrange(len(data) * 8)
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        return bytes(flipped)
    if how == "truncate":
        return data[: rng.randrange(len(data))] if data else b""
    return other  # another entry's bytes


def swap_pools(state: BackendState, targets: Targets) -> tuple[list[bytes], dict[tuple[str, str], list]]:
    """Bytes and cells of other entries, for the "swap" corruption: every file and Redis value of `targets`,
    and their database cells by (table, column)."""
    pool: list[bytes] = [state.files[f] for f in targets.files if f in state.files]
    for key in targets.keys:
        kind, value = state.keys.get(key, (b"", None))
        if kind == b"string":
            pool.append(value)
        elif kind == b"hash":
            pool.extend(value.values())
        elif kind in (b"list", b"set"):
            pool.extend(value)
        elif kind == b"zset":
            pool.extend(member for member, _ in value)
    cells: dict[tuple[str, str], list] = {}
    for table, identity, column in targets.cells:
        row = state.rows.get((table, identity))
        if row is not None:
            cells.setdefault((table, column), []).append(row[state.columns[table].index(column)])
    return pool, cells


def corrupt_entry(env: Env, targets: Targets, how: str, rng: random.Random, others: tuple) -> Rewritten:
    """Corrupt every copy one put wrote (its files, Redis values, database cells); read back, so only what
    really changed counts."""
    pool, cells = others

    def change_bytes(data: bytes) -> bytes:
        return corrupt(data, how, rng, rng.choice(pool) if pool else b"")

    if how != "swap":
        return rewrite(env, targets, change_bytes)
    by_cell = {cell: rng.choice(cells.get((cell[0], cell[2]), [None])) for cell in targets.cells}
    result = rewrite(env, Targets(targets.files, targets.keys, []), change_bytes)
    for cell, value in by_cell.items():  # each cell takes the same column of another entry's row
        part = rewrite(env, Targets(cells=[cell]), change_bytes, lambda _, v=value: v)
        result.done, result.tried = result.done + part.done, result.tried + part.tried
        result.missed += part.missed
    return result


def one_of(targets: Targets, rng: random.Random) -> Targets:
    """One of the stored things in `targets` (a file, a Redis key or a database cell), picked by `rng`."""
    things = [("files", t) for t in targets.files] + [("keys", t) for t in targets.keys]
    things += [("cells", t) for t in targets.cells]
    if not things:
        return Targets()
    where, thing = rng.choice(things)
    return Targets(**{where: [thing]})


@pytest.mark.prop("E2")
def test_E2_corrupted_entries_are_misses_never_data(impl_factory, fake_redis_url):
    """Entries altered in every tier, or in one stored thing alone (a bit flipped, truncated, another entry's
    bytes) are never served;
    read, they are no longer held (tiers_holding, when declared) and a new instance misses them too; a new
    put of the same file works. What is corrupted is found, not assumed: everything a put changed in the
    backends (files, Redis keys of any type, database rows and columns). An example whose corruption
    changed nothing did not take effect: it is counted apart, and if none took effect the test is skipped."""
    took_effect: list[str] = []
    tried: list[str] = []

    @settings(settings.default, max_examples=100)
    @given(
        how=st.sampled_from(["bitflip", "truncate", "swap"]),
        scope=st.sampled_from(["every copy", "one copy"]),
        seed=st.integers(0, 2**32 - 1),
    )
    def example(how: str, scope: str, seed: int) -> None:
        rng = random.Random(seed)
        root = tempfile.mkdtemp(prefix="tiercheck-e2-")
        env = Env(
            cache_dir=os.path.join(root, "cache"),
            redis_url=fake_redis_url,
            database_url=f"sqlite:///{root}/db.sqlite3",
            namespace=unique_namespace("e2"),
            clock=FakeClock(),
        )
        skip_unless_accepted(impl_factory, env)
        cache = impl_factory(env)
        try:
            values, wrote = {}, {}
            state = capture(env)
            for name in FILES:
                path = os.path.join(root, name)
                with open(path, "wb") as f:
                    f.write(name.encode() * 100)
                values[path] = {"name": name, "payload": "x" * rng.randrange(1, 3000)}
                assert cache.put(path, dict(values[path]))
                now = capture(env)
                wrote[path], state = changed(state, now), now
            cache.shutdown()
            final = capture(env)
            late = changed(state, final)  # written at shutdown (a write-behind): shared by every entry
            results = []
            for path, targets in wrote.items():
                mine = Targets(targets.files + late.files, targets.keys + late.keys, targets.cells + late.cells)
                if scope == "one copy":  # one stored thing alone: the copy a reader meets first may be that one
                    mine = one_of(mine, rng)
                others = Targets(
                    [f for p, t in wrote.items() if p != path for f in t.files],
                    [k for p, t in wrote.items() if p != path for k in t.keys],
                    [c for p, t in wrote.items() if p != path for c in t.cells],
                )
                results.append(corrupt_entry(env, mine, how, rng, swap_pools(final, others)))
            tried.append(how)
            if any(r.done for r in results):
                took_effect.append(how)
            cache = impl_factory(env)
            introspect = has_capability(cache, "tiers_holding")
            for path, value in values.items():
                for _ in range(len(TIER_NAMES) + 1):  # each read may drop one tier's corrupt copy
                    got = cache.get(path)
                    assert got is None or canonical(got) == canonical(value), (
                        f"{how}: corrupted entry served as {got!r:.300}"
                    )
                if got is None and introspect:
                    held = cache.tiers_holding(path)
                    assert not held, f"{how}: after reads that missed, {sorted(held)} still hold the corrupt entry"
            cache.shutdown()
            cache = impl_factory(env)  # a new instance over the same backends
            for path, value in values.items():
                got = cache.get(path)
                assert got is None or canonical(got) == canonical(value), (
                    f"{how}: a new instance served the corrupted entry as {got!r:.300}"
                )
                assert cache.put(path, {"again": path}), f"{how}: a put after corruption returned False"
                assert cache.get(path) == {"again": path}, f"{how}: a put after corruption is not served"
        finally:
            cache.shutdown()
            shutil.rmtree(root, ignore_errors=True)

    example()
    print(f"E2: corruption took effect in {len(took_effect)} of {len(tried)} examples")
    if not took_effect:
        pytest.skip(f"fault did not take effect: no corruption changed a stored byte in {len(tried)} examples")
