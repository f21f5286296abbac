"""P5 error recovery, E1 no resurrection, E2 corruption detection — in-process faults.

The machine's model is permissive exactly where the contract allows: a put that returned False,
or an invalidate that returned False, leaves that key uncertain (old value, new value or miss);
a put that returned True makes the new value the only one that may ever be served, and an
invalidate that returned True means nothing may ever be served again — through faults, heals,
restarts of the cache, and Redis coming back with or without its data.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from tiercheck.backends import FakeClock, FakeRedisServer, unique_namespace
from tiercheck.contract import Env, Factory

from .faults import DiskFault, Nemesis, RedisOutage, SqliteLocked
from .machine import canonical

FILES = ["a", "b", "c"]
TIERS = ["premium", "free"]
READMISSION_OPS = 64  # the bound within which a healed tier must be used again


class FaultMachine(RuleBasedStateMachine):
    factory: Factory
    server: FakeRedisServer

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
        self.cache = self.factory(self.env)
        # key -> set of canonical values that may be served (None: a miss is the only answer)
        self.allowed: dict[tuple[str, str], set[str]] = {}
        self.nemeses: dict[str, Nemesis] = {
            "redis refused": RedisOutage(self.server),
            "redis restarted empty": RedisOutage(self.server, empty_on_heal=True),
            "disk EIO": DiskFault(self.env.cache_dir, errno.EIO),
            "disk ENOSPC": DiskFault(self.env.cache_dir, errno.ENOSPC),
            "disk EROFS": DiskFault(self.env.cache_dir, errno.EROFS),
            "sqlite locked": SqliteLocked(os.path.join(self.root, "db.sqlite3")),
        }
        self.active: Nemesis | None = None
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
    @rule(
        kind=st.sampled_from(
            ["redis refused", "redis restarted empty", "disk EIO", "disk ENOSPC", "disk EROFS", "sqlite locked"]
        )
    )
    def inject(self, kind: str) -> None:
        self.active = self.nemeses[kind]
        self.active.inject()

    @precondition(lambda self: self.active is not None)
    @rule()
    def heal(self) -> None:
        nemesis, self.active = self.active, None
        nemesis.heal()
        if not hasattr(self.cache, "tiers_holding"):
            return
        probe = os.path.join(self.root, "probe")
        for i in range(READMISSION_OPS):
            with open(probe, "wb") as f:
                f.write(b"probe %d %d" % (self.seq, i))
            self.call("put", self.cache.put, probe, {"probe": i})
            if nemesis.tier in self.cache.tiers_holding(probe):
                return
        raise AssertionError(
            f"after '{nemesis.describe()}' healed, the {nemesis.tier} tier was not used again "
            f"within {READMISSION_OPS} operations"
        )

    @invariant()
    def healthy_tiers_keep_storing(self) -> None:
        if self.active is None or not hasattr(self.cache, "tiers_holding"):
            return
        probe = os.path.join(self.root, "probe-live")
        with open(probe, "wb") as f:
            f.write(b"live %d" % self.seq)
        if self.call("put", self.cache.put, probe, {"live": self.seq}):
            held = self.cache.tiers_holding(probe)
            expected = {"memory", "redis", "disk", "database"} - {self.active.tier}
            assert expected <= held, f"during '{self.active.describe()}' a put landed only in {sorted(held)}"


@pytest.fixture
def private_redis():
    server = FakeRedisServer()  # this test stops and restarts it: not the shared one
    yield server
    server.stop()


@pytest.mark.prop("P5")
def test_P5_faults_never_raise_never_lie_and_tiers_come_back(impl_factory, private_redis):
    bound = type("Faults", (FaultMachine,), {"factory": staticmethod(impl_factory), "server": private_redis})
    run_state_machine_as_test(bound, settings=settings(settings.default, stateful_step_count=30))


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
    cache = impl_factory(env)
    assert cache.put(str(src), {"v": "old"})
    client = redis.Redis.from_url(private_redis.url)
    snapshot = {k: client.dump(k) for k in client.scan_iter(f"{env.namespace}*")}
    client.close()
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


@pytest.mark.prop("E1")
def test_E1_clear_all_survives_restart_with_old_data(impl_factory, private_redis, tmp_path):
    env = Env(
        cache_dir=str(tmp_path / "cache"),
        redis_url=private_redis.url,
        database_url=f"sqlite:///{tmp_path}/db.sqlite3",
        namespace=unique_namespace("e1"),
        clock=FakeClock(),
    )
    src = tmp_path / "f"
    src.write_bytes(b"content")
    cache = impl_factory(env)
    assert cache.put(str(src), {"v": "old"})
    client = redis.Redis.from_url(private_redis.url)
    snapshot = {k: client.dump(k) for k in client.scan_iter(f"{env.namespace}*")}
    cache.clear_all()
    private_redis.stop()
    private_redis.start(empty=True)
    client = redis.Redis.from_url(private_redis.url)
    for k, v in snapshot.items():
        client.restore(k, 0, v, replace=True)
    client.close()
    try:
        assert cache.get(str(src)) is None
        cache.shutdown()
        cache = impl_factory(env)
        assert cache.get(str(src)) is None
    finally:
        cache.shutdown()


# --- E2: corrupt everything the harness can reach ---------------------------------------------------


def corrupt(data: bytes, how: str, rng: random.Random, other: bytes) -> bytes:
    if how == "bitflip" and data:
        i = rng.randrange(len(data) * 8)
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        return bytes(flipped)
    if how == "truncate":
        return data[: rng.randrange(len(data))] if data else b""
    return other  # another entry's bytes


@pytest.mark.prop("E2")
@settings(max_examples=100)
@given(how=st.sampled_from(["bitflip", "truncate", "swap"]), seed=st.integers(0, 2**32 - 1))
def test_E2_corrupted_entries_are_misses_never_data(impl_factory, fake_redis_url, how, seed):
    rng = random.Random(seed)
    root = tempfile.mkdtemp(prefix="tiercheck-e2-")
    env = Env(
        cache_dir=os.path.join(root, "cache"),
        redis_url=fake_redis_url,
        database_url=f"sqlite:///{root}/db.sqlite3",
        namespace=unique_namespace("e2"),
        clock=FakeClock(),
    )
    cache = impl_factory(env)
    try:
        values = {}
        for name in FILES:
            path = os.path.join(root, name)
            with open(path, "wb") as f:
                f.write(name.encode() * 100)
            values[path] = {"name": name, "payload": "x" * rng.randrange(1, 3000)}
            assert cache.put(path, dict(values[path]))
        cache.shutdown()
        corrupted = corrupt_everything(env, how, rng)
        assert corrupted, "the harness found nothing to corrupt: does the implementation store anything?"
        cache = impl_factory(env)
        for path, value in values.items():
            got = cache.get(path)
            assert got is None or canonical(got) == canonical(value), f"{how}: corrupted entry served as {got!r}"
    finally:
        cache.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def corrupt_everything(env: Env, how: str, rng: random.Random) -> int:
    """Corrupt every stored value found: files under cache_dir, Redis values, database blobs."""
    count = 0
    files = [os.path.join(d, f) for d, _, fs in os.walk(env.cache_dir) for f in fs]
    contents = {f: Path(f).read_bytes() for f in files}
    for f in files:
        other = contents[rng.choice(files)] if len(files) > 1 else b""
        with open(f, "wb") as out:
            out.write(corrupt(contents[f], how, rng, other))
        count += 1
    client = redis.Redis.from_url(env.redis_url)
    hashes = [k for k in client.scan_iter(f"{env.namespace}*") if client.type(k) == b"hash"]
    fields = [(k, f, v) for k in hashes for f, v in client.hgetall(k).items()]
    for k, f, v in fields:
        client.hset(k, f, corrupt(v, how, rng, rng.choice(fields)[2]))
        count += 1
    for k in client.scan_iter(f"{env.namespace}*"):
        if client.type(k) == b"string" and not k.endswith((b"generation", b"changes")):  # bookkeeping, not entries
            client.set(k, corrupt(client.get(k), how, rng, b"garbage"))
            count += 1
    client.close()
    db = sqlite3.connect(env.database_url.removeprefix("sqlite://"))
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        columns = [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]
        for rowid_row in db.execute(f'SELECT * FROM "{table}"').fetchall():
            for i, cell in enumerate(rowid_row):
                if isinstance(cell, bytes):
                    where = " AND ".join(f'"{c}" IS ?' for j, c in enumerate(columns) if j != i)
                    params = [v for j, v in enumerate(rowid_row) if j != i]
                    db.execute(
                        f'UPDATE "{table}" SET "{columns[i]}" = ? WHERE {where}',
                        [corrupt(cell, how, rng, b"garbage"), *params],
                    )
                    count += 1
    db.commit()
    db.close()
    return count
