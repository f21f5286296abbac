"""The faults themselves, on real processes and without any cache (harness self-tests): each one
really happens when it should (`took_effect()`), and says it did not when it could not.

Clients here are plain redis-py / sqlite3 / psycopg connections standing in for cache instances:
what is checked is the fault's mechanics, not an implementation.
"""

from __future__ import annotations

import os
import random
import sqlite3

import pytest
import redis

from tiercheck.backends import FakeClock, FakeRedisServer, unique_namespace
from tiercheck.chaos.checkers import fault_cycles
from tiercheck.chaos.db_faults import SqliteCorruptPages, SqliteDeleted, SqliteLock
from tiercheck.chaos.disk_faults import CorruptEntries
from tiercheck.chaos.history import History
from tiercheck.chaos.hostile import DatabaseHostileRows, RedisHostileKeys
from tiercheck.chaos.nemesis import REGISTRY, Nemesis, World, applicable, build, load_builtin
from tiercheck.chaos.proxy import TcpProxy
from tiercheck.chaos.redis_faults import (
    ProxyPartition,
    ProxyPartitionOne,
    RedisChannelCut,
    RedisLateWrite,
    RedisPause,
    RedisSnapshotMidOperation,
)
from tiercheck.chaos.runner import Summary, fault_of, void
from tiercheck.chaos.sandbox import Sandbox
from tiercheck.contract import Env
from tiercheck.properties.faults import DiskFault

pytestmark = pytest.mark.selftest

FAILSAFE = 10.0  # a bounded timeout as a failsafe only, never a synchronisation
CLIENT_TIMEOUT = 0.2  # a cache's Redis client timeout; the held command waits until released


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(redis=True, tmpfs=False) as box:
        yield box
    assert box.children_left() == []


@pytest.fixture
def world2(sandbox):
    world = sandbox.world(instances=2, rng=random.Random(5))
    yield world
    world.close()


def _client(world: World, i: int, timeout: float = FAILSAFE) -> redis.Redis:
    client = redis.Redis.from_url(world.envs[i].redis_url, socket_timeout=timeout, retry_on_timeout=False)
    client.ping()  # connect now: the handshake is not part of what a test counts
    return client


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _direct(world: World) -> redis.Redis:
    return redis.Redis.from_url(world.redis_url, socket_timeout=FAILSAFE)


# --- registry and worlds ------------------------------------------------------------------------------


def test_every_registered_fault_follows_the_protocol(sandbox, tmp_path):
    load_builtin()
    world = sandbox.world(instances=2, rng=random.Random(1))
    try:
        built = applicable(world)
        for nemesis in built:
            assert isinstance(nemesis, Nemesis)
            assert nemesis.kind in REGISTRY and nemesis.name == nemesis.kind
            assert nemesis.tier in ("redis", "disk", "database")
            assert nemesis.scope in ("all", "one")
            assert nemesis.scope == "all" or nemesis.instance in range(world.instances)
            assert not nemesis.took_effect(), f"{nemesis.kind} claims an effect before any injection"
        kinds = {n.kind for n in built}
        assert {"redis late write", "redis partition (one instance)", "redis tracking connection cut"} <= kinds
        assert {"redis restored from snapshot mid-operation", "redis hostile keys", "database hostile rows"} <= kinds
        assert not {k for k in kinds if k.startswith("postgres")}  # a SQLite world
        assert "redis refused" not in kinds  # in-process only
    finally:
        world.close()
    single = sandbox.world(instances=1)
    try:
        assert "redis partition (one instance)" not in {n.kind for n in applicable(single)}
    finally:
        single.close()
    no_redis = sandbox.world(redis=False, database=None)
    try:
        assert {n.tier for n in applicable(no_redis)} == {"disk"}
    finally:
        no_redis.close()


def test_a_new_fault_is_one_class_and_one_registry_line(tmp_path):
    from tiercheck.chaos.nemesis import register

    @register("test touch file")
    class TouchFile(Nemesis):
        tier = "disk"
        instant = True

        def __init__(self, cache_dir: str) -> None:
            self.path = os.path.join(cache_dir, "touched")

        @classmethod
        def for_world(cls, world: World) -> Nemesis | None:
            return cls(world.cache_dir) if os.path.isdir(world.cache_dir) else None

        def _inject(self) -> None:
            with open(self.path, "wb"):
                self.effect("touched")

    try:
        env = Env(cache_dir=str(tmp_path), namespace="n")
        world = World.in_process(env, random.Random(0))
        found = [n for n in applicable(world) if n.kind == "test touch file"]
        assert len(found) == 1 and not found[0].took_effect()
        found[0].inject()
        assert found[0].took_effect() and found[0].record()["evidence"] == "touched"
        with pytest.raises(ValueError):
            register("test touch file")(TouchFile)
        with pytest.raises(LookupError):
            build("no such fault", world)
        missing = World.in_process(Env(cache_dir=str(tmp_path / "absent"), namespace="n"), random.Random(0))
        assert build("test touch file", missing) is None  # not applicable to that world
        from tiercheck.chaos.campaign import table

        rows = list(table(Summary(), "registry").columns[0].cells)  # the campaign's table lists the whole registry
        assert "test touch file" in rows and set(REGISTRY) <= set(rows)
    finally:
        REGISTRY.pop("test touch file", None)


def test_a_fault_that_did_not_take_effect_leaves_nothing_to_excuse_or_blame():
    class Nothing(Nemesis):
        kind, tier, destroys_data = "redis nothing", "redis", True

        def _inject(self) -> None:
            pass  # records no effect

    nemesis = Nothing()
    history = History()
    history.event("inject", fault_of(nemesis))
    nemesis.inject()
    op = history.begin(instance=0, incarnation=0, thread=0, op="get", clock_invoked=0.0)
    history.event("heal", fault_of(nemesis))
    assert op.faults == (fault_of(nemesis),) and not nemesis.took_effect()
    void(history, nemesis)
    assert op.faults == ()  # the operation ran under no fault
    assert [(e.event, e.fault.destroys_data) for e in history.events] == [("no_effect", False)]
    assert fault_cycles(history) == []  # no cycle: no re-admission verdict, no recovery counted


def test_voiding_a_later_cycle_keeps_an_earlier_cycle_of_the_same_fault_that_took_effect():
    """Chaos seed 3186246040, round 117: a second 'disk entry swap' cycle had no effect, and voiding it also
    stripped the first cycle (equal by value) from the operations it hit, so the checker blamed the tier
    for an entry the first cycle had destroyed."""

    class Swap(Nemesis):
        kind, tier, destroys_data = "disk swap-like", "disk", True

        def _inject(self) -> None:
            pass

    first, second = Swap(), Swap()
    history = History()
    history.event("inject", fault_of(first))
    hit = history.begin(instance=0, incarnation=0, thread=0, op="get", clock_invoked=0.0)
    history.event("heal", fault_of(first))
    history.event("inject", fault_of(second))
    later = history.begin(instance=0, incarnation=0, thread=0, op="get", clock_invoked=0.0)
    history.event("heal", fault_of(second))
    void(history, second)
    assert hit.faults == (fault_of(first),) and later.faults == ()
    assert [(e.event, e.fault.destroys_data) for e in history.events] == [
        ("inject", True), ("heal", True), ("no_effect", False)
    ]


def test_an_in_process_world_with_proxies_gets_the_proxy_faults(tmp_path):
    with FakeRedisServer() as fake, TcpProxy("127.0.0.1", fake.port) as p0, TcpProxy("127.0.0.1", fake.port) as p1:
        envs = [Env(cache_dir=str(tmp_path), redis_url=p.url(), namespace="n", clock=FakeClock()) for p in (p0, p1)]
        world = World(envs, str(tmp_path), "n", random.Random(1), proxies=[p0, p1], fake_redis=fake)
        kinds = {n.kind for n in applicable(world)}
        assert {"redis partition", "redis partition (one instance)", "redis late write", "redis refused"} <= kinds
        assert not {"redis SIGKILL", "redis SIGSTOP"} & kinds  # a process the run controls: not in-process
        assert world.name == "2 instances"


def test_an_in_process_world_gets_the_in_process_faults(tmp_path):
    with FakeRedisServer() as fake:
        env = Env(
            cache_dir=str(tmp_path / "cache"),
            redis_url=fake.url,
            database_url=f"sqlite:///{tmp_path}/db.sqlite3",
            namespace=unique_namespace("w"),
            clock=FakeClock(),
        )
        world = World.in_process(env, random.Random(2), fake_redis=fake)
        by_kind = {n.kind: n for n in applicable(world)}
        assert {"redis refused", "redis restart empty", "redis hostile keys", "disk EIO", "sqlite locked"} <= set(
            by_kind
        )
        assert not {"redis SIGKILL", "redis late write", "redis partition"} & set(by_kind)  # need real processes
        assert by_kind["disk ENOSPC"].real is False  # the injected fallback
        refused = by_kind["redis refused"]
        refused.inject()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(fake.url, socket_timeout=1).ping()
        assert refused.took_effect()
        refused.heal()
        client = redis.Redis.from_url(fake.url, socket_timeout=FAILSAFE)
        client.set(f"{env.namespace}:k", b"v")
        hostile = by_kind["redis hostile keys"]
        hostile.inject()
        assert hostile.took_effect() and hostile.record()["took_effect"] is True
        assert set(hostile.replaced) == {f"{env.namespace}:k".encode()} and hostile.still_damaged()
        hostile.heal()
        assert client.get(f"{env.namespace}:k") is None  # deleted, never put back: old data would be stale data


def test_a_world_shares_everything_but_the_proxies(sandbox, world2):
    a, b = world2.envs
    assert (a.cache_dir, a.namespace, a.database_url, a.clock) == (b.cache_dir, b.namespace, b.database_url, b.clock)
    assert a.redis_url != b.redis_url and world2.proxies[0] is sandbox.proxy
    key = f"{world2.namespace}:shared"
    _client(world2, 0).set(key, b"1")
    assert _client(world2, 1).get(key) == b"1"
    extra = world2.proxies[1]
    world2.close()
    assert extra._thread is None  # the proxy the world started is stopped


# --- the new faults ---------------------------------------------------------------------------------


@pytest.mark.real_redis
@pytest.mark.parametrize("nth", [1, 2])
def test_late_write_lands_after_a_later_removal_by_another_instance(world2, nth):
    key = f"{world2.namespace}:late"
    a, b, direct = _client(world2, 0, CLIENT_TIMEOUT), _client(world2, 1), _direct(world2)
    nemesis = RedisLateWrite(world2.proxies[0], 0, nth=nth)
    nemesis.inject()
    assert not nemesis.took_effect()
    if nth == 2:
        a.set(f"{key}:first", b"passes")  # the first write of the window is not the one held
    with pytest.raises(redis.TimeoutError):
        a.hset(key, "v", b"put by A")  # A gives up on its write
    assert nemesis.took_effect()
    b.hset(key, "v", b"put by B")
    assert b.delete(key) == 1  # B removes the entry: True
    assert direct.exists(key) == 0
    nemesis.heal()
    assert direct.hget(key, "v") == b"put by A", "the held write did not land after the removal"
    assert nemesis.took_effect() and "landed" in nemesis.evidence()
    assert a.get(key + ":nothing") is None  # A's client works again


@pytest.mark.real_redis
def test_late_write_with_nothing_to_hold_does_not_take_effect(world2):
    nemesis = RedisLateWrite(world2.proxies[0], 0)
    nemesis.inject()
    assert _client(world2, 0).get(f"{world2.namespace}:read-only") is None
    nemesis.heal()
    assert not nemesis.took_effect()


@pytest.mark.real_redis
def test_snapshot_mid_operation_restores_redis_between_two_commands(sandbox, world2):
    a, direct = _client(world2, 0), _direct(world2)
    keys = [f"{world2.namespace}:step{i}" for i in range(1, 6)]
    nemesis = RedisSnapshotMidOperation(sandbox.redis, world2.proxies[0], random.Random(9), within=5)
    nemesis.arm()
    at = nemesis.at
    for i, key in enumerate(keys, 1):  # one "operation" of five commands
        a.set(key, str(i))
    assert all(direct.get(k) for k in keys)
    nemesis.inject()
    assert nemesis.took_effect(), nemesis.evidence()
    assert f"#{at} (SET {keys[at - 1]}" in nemesis.evidence()
    nemesis.heal()
    direct = _direct(world2)
    present = [bool(direct.exists(k)) for k in keys]
    assert present == [i < at for i in range(1, 6)], f"snapshot before command {at}: {present}"
    nemesis.close()


@pytest.mark.real_redis
def test_snapshot_mid_operation_without_enough_commands_does_not_take_effect(sandbox, world2):
    nemesis = RedisSnapshotMidOperation(sandbox.redis, world2.proxies[0], random.Random(9), within=5)
    nemesis.arm()
    nemesis.at = 10**6  # never reached
    nemesis.countdown.remaining = 10**6
    _client(world2, 0).set(f"{world2.namespace}:x", b"1")
    nemesis.inject()
    nemesis.heal()
    assert not nemesis.took_effect() and sandbox.redis.pid is not None  # the server was never stopped


@pytest.mark.real_redis
def test_partition_of_one_instance_leaves_the_other_connected(world2):
    a, b = _client(world2, 0), _client(world2, 1)
    nemesis = ProxyPartitionOne(world2.proxies[1], 1)
    assert nemesis.scope == "one" and nemesis.instance == 1
    nemesis.inject()
    with pytest.raises(redis.ConnectionError):
        b.get(f"{world2.namespace}:x")
    assert a.set(f"{world2.namespace}:x", b"still reached")
    assert nemesis.took_effect(), nemesis.evidence()
    nemesis.heal()
    assert b.get(f"{world2.namespace}:x") == b"still reached"


@pytest.mark.real_redis
def test_a_partition_nobody_ran_into_does_not_take_effect(world2):
    nemesis = ProxyPartition(world2.proxies[1])
    nemesis.inject()
    nemesis.heal()
    assert not nemesis.took_effect()


@pytest.mark.real_redis
def test_tracking_connection_cut_resets_channels_only(world2):
    a = _client(world2, 0)
    pubsub = a.pubsub()
    pubsub.subscribe(f"{world2.namespace}:announce")
    assert pubsub.get_message(timeout=FAILSAFE)["type"] == "subscribe"
    nemesis = RedisChannelCut(world2.proxies[0], 0)
    nemesis.inject()
    assert nemesis.took_effect() and "1 long-lived" in nemesis.evidence()
    assert a.ping()  # the command connection is untouched
    with pytest.raises(redis.ConnectionError):
        pubsub.parse_response(block=True, timeout=FAILSAFE)
    pubsub.close()
    b = _client(world2, 1)  # instance 1: command connections only
    quiet = RedisChannelCut(world2.proxies[1], 1)
    quiet.inject()
    assert not quiet.took_effect() and b.ping()


@pytest.mark.real_redis
def test_hostile_keys_replace_every_namespace_key_whatever_its_type(world2):
    direct, ns = _direct(world2), world2.namespace
    direct.set(f"{ns}:s", b"v")
    direct.hset(f"{ns}:h", mapping={"a": b"1", "b": b"2"})
    direct.rpush(f"{ns}:l", b"x")
    direct.sadd(f"{ns}:set", b"x")
    direct.zadd(f"{ns}:z", {b"x": 1.0})
    direct.set(f"{ns}:ttl", b"v", px=600_000)
    direct.set("elsewhere:key", b"untouched")
    before = {k: direct.dump(k) for k in direct.scan_iter(match=f"{ns}*")}
    nemesis = RedisHostileKeys(world2.redis_url, ns, random.Random(3))
    nemesis.inject()
    assert nemesis.took_effect()
    assert set(nemesis.replaced) == set(before), "some namespace key was not replaced"
    for key, dumped in before.items():
        assert direct.dump(key) != dumped
    assert direct.pttl(f"{ns}:ttl") > 0  # TTLs kept
    assert direct.get("elsewhere:key") == b"untouched"
    assert nemesis.still_damaged()
    direct.set(f"{ns}:s", b"rewritten by the implementation")
    nemesis.heal()  # deletes what is still planted (never the old values back: stale data), not the rewritten key
    assert not nemesis.still_damaged()
    assert direct.get(f"{ns}:s") == b"rewritten by the implementation"
    assert not direct.exists(f"{ns}:h", f"{ns}:l", f"{ns}:set", f"{ns}:z", f"{ns}:ttl")
    direct.delete("elsewhere:key")
    empty = RedisHostileKeys(world2.redis_url, unique_namespace("none"), random.Random(3))
    empty.inject()
    assert not empty.took_effect()


def _sqlite_db(path: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE entries (k TEXT PRIMARY KEY, v BLOB, expires REAL, n INTEGER)")
    conn.execute("CREATE TABLE marks (a TEXT, b TEXT, v BLOB, PRIMARY KEY (a, b)) WITHOUT ROWID")
    conn.execute("CREATE TABLE typed (k INTEGER PRIMARY KEY, v BLOB NOT NULL) STRICT")
    conn.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)", [(f"k{i}", os.urandom(40), 1e9, i) for i in range(8)])
    conn.executemany("INSERT INTO marks VALUES (?, ?, ?)", [(f"a{i}", "b", b"x") for i in range(4)])
    conn.executemany("INSERT INTO typed VALUES (?, ?)", [(i, b"y") for i in range(4)])
    conn.commit()
    conn.close()


def test_hostile_rows_change_the_type_of_values_in_every_table(tmp_path):
    path = str(tmp_path / "db.sqlite3")
    _sqlite_db(path)
    nemesis = DatabaseHostileRows(f"sqlite:///{path}", random.Random(4))
    nemesis.inject()
    assert nemesis.took_effect(), nemesis.evidence()
    by_table: dict[str, set[str]] = {}
    conn = sqlite3.connect(path)
    for table, row, _column, old, new in nemesis.replaced:
        assert old != new
        by_table.setdefault(table, set()).add(row)
    assert len(by_table["entries"]) == 8 and len(by_table["marks"]) == 4  # every row of both tables
    assert {r[0] for r in conn.execute("SELECT k FROM entries")} == {f"k{i}" for i in range(8)}  # keys kept
    types = {r[0] for r in conn.execute("SELECT typeof(v) FROM entries")} | {
        r[0] for r in conn.execute("SELECT typeof(expires) FROM entries")
    }
    assert types - {"blob", "real"}, "no value of another SQL type was planted"
    conn.close()
    assert nemesis.still_damaged()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE entries SET v = ?, expires = 1e9, n = 0 WHERE k = 'k0'", (b"rewritten",))
    conn.close()
    nemesis.heal()  # rows still as planted are deleted (never the old values back: stale data); k0 is its own
    assert not nemesis.still_damaged()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT k, v FROM entries").fetchall() == [("k0", b"rewritten")]
    assert conn.execute("SELECT count(*) FROM marks").fetchone() == (0,)
    conn.close()


def test_hostile_rows_in_an_empty_database_do_not_take_effect(tmp_path):
    path = str(tmp_path / "db.sqlite3")
    sqlite3.connect(path).execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)").connection.close()
    nemesis = DatabaseHostileRows(f"sqlite:///{path}", random.Random(4))
    nemesis.inject()
    assert not nemesis.took_effect()


@pytest.mark.real_postgres
def test_hostile_rows_on_postgres(postgres_server):
    import psycopg

    table = unique_namespace("hostile").replace("-", "_")
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (k text PRIMARY KEY, v bytea, expires double precision, note text)")
        for i in range(5):
            conn.execute(f"INSERT INTO {table} VALUES (%s, %s, %s, %s)", (f"k{i}", b"ok", 1e9, "fine"))
        try:
            nemesis = DatabaseHostileRows(postgres_server.url, random.Random(6))
            nemesis.inject()
            mine = [r for r in nemesis.replaced if r[0] == table]
            assert nemesis.took_effect() and len({r[1] for r in mine}) == 5  # every row
            rows = conn.execute(f"SELECT k, v, expires, note FROM {table}").fetchall()
            assert {r[0] for r in rows} == {f"k{i}" for i in range(5)}
            assert all((r[1], r[2], r[3]) != (b"ok", 1e9, "fine") for r in rows)
            assert nemesis.still_damaged()
            nemesis.heal()
            assert not nemesis.still_damaged()
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)  # deleted, not put back
        finally:
            conn.execute(f"DROP TABLE {table}")


# --- the existing faults: effects, layout-neutral corruption, the harness's own heal ---------------------


def test_corrupt_entries_alter_only_files_written_since_arm(tmp_path):
    cache_dir = tmp_path / "cache"
    (cache_dir / "sub").mkdir(parents=True)
    (cache_dir / "bookkeeping").write_bytes(b"kept as it was")
    nemesis = CorruptEntries(str(cache_dir), "bitflip", random.Random(1), count=5)
    nemesis.arm()
    written = {cache_dir / "sub" / f"e{i}": os.urandom(50) for i in range(3)}
    for path, data in written.items():
        path.write_bytes(data)
    nemesis.inject()
    assert nemesis.took_effect()
    assert set(nemesis.corrupted) == {str(p) for p in written}
    assert nemesis.originals == {str(p): d for p, d in written.items()}
    assert (cache_dir / "bookkeeping").read_bytes() == b"kept as it was"
    unarmed = CorruptEntries(str(cache_dir), "truncate", random.Random(1), count=10)
    unarmed.inject()  # no picture: every non-empty file is a candidate
    assert str(cache_dir / "bookkeeping") in unarmed.corrupted


def test_sqlite_corruption_is_healed_by_the_harness(tmp_path):
    path = str(tmp_path / "db.sqlite3")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, os.urandom(900)) for i in range(200)])
    conn.commit()
    conn.close()
    original = _read(path)
    nemesis = SqliteCorruptPages(path, random.Random(7), pages=8)
    nemesis.inject()
    assert nemesis.took_effect() and nemesis.still_damaged()
    assert _read(path) != original
    nemesis.heal()
    assert not nemesis.still_damaged()
    assert _read(path) == original
    assert nemesis.repaired_by_implementation is False
    nemesis.heal()  # idempotent
    assert _read(path) == original


def test_sqlite_lock_and_deletion_report_their_effect(tmp_path):
    path = str(tmp_path / "db.sqlite3")
    sqlite3.connect(path).execute("CREATE TABLE t (k)").connection.close()
    lock = SqliteLock(path)
    lock.inject()
    assert lock.took_effect()
    lock.heal()
    deleted = SqliteDeleted(path)
    deleted.inject()
    assert deleted.took_effect() and not os.path.exists(path)
    deleted.inject()  # nothing left to delete
    assert not deleted.took_effect()


def test_an_injected_disk_error_takes_effect_only_when_something_ran_into_it(tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    fault = DiskFault(str(cache_dir), 5)  # EIO
    fault.inject()
    assert not fault.took_effect()
    with pytest.raises(OSError):
        (cache_dir / "x").write_bytes(b"")
    assert fault.took_effect()
    fault.heal()
    assert fault.took_effect()  # still true for that injection after heal
    (cache_dir / "x").write_bytes(b"")


@pytest.mark.real_redis
def test_redis_pause_reports_the_stopped_process(sandbox):
    nemesis = build("redis SIGSTOP", sandbox.world())
    assert isinstance(nemesis, RedisPause)
    nemesis.inject()
    try:
        assert nemesis.took_effect() and "stopped" in nemesis.evidence()
    finally:
        nemesis.heal()
    assert _direct(sandbox.world()).ping()


@pytest.mark.real_redis
def test_late_write_holds_a_promotion_of_a_real_cache(sandbox, tmp_path):
    """A get that finds its entry below Redis writes it back up: that write can be held too. The entry
    is stored while instance A is cut off from Redis (so only its other tiers hold it); then a fresh
    instance B reads it, and B's first write, the promotion, is held past B's client timeout."""
    from tiercheck.contract import DEFAULT_IMPL, load_factory

    factory = load_factory(DEFAULT_IMPL)
    world = sandbox.world(instances=2, rng=random.Random(8))
    path = str(tmp_path / "photo.jpg")
    with open(path, "wb") as f:
        f.write(b"content of the photo")
    a = factory(world.envs[0])
    cut = ProxyPartitionOne(world.proxies[0], 0)
    cut.inject()
    try:
        assert a.put(path, {"camera": "x"}) is True
    finally:
        cut.heal()
        a.shutdown()
    b = factory(world.envs[1])
    try:
        late = RedisLateWrite(world.proxies[1], 1)
        late.inject()
        assert b.get(path) == {"camera": "x"}
        assert late.took_effect(), "the get wrote nothing to Redis: no promotion to hold"
        assert late.hold is not None and late.hold.command is not None and late.hold.command.is_write
        late.heal()
        assert "landed" in late.evidence()
    finally:
        b.shutdown()
        world.close()


def test_real_disk_full_and_read_only_on_a_tmpfs(tmp_path):
    from tiercheck.chaos.disk_faults import DiskFull, DiskReadOnly, Tmpfs

    with Tmpfs(tmp_path / "disk", "256k") as tmpfs:
        if not tmpfs.mounted:
            pytest.skip(f"no real disk faults here: {tmpfs.reason}")
        cache_dir = tmpfs.mountpoint / "cache"
        cache_dir.mkdir()
        full = DiskFull(str(cache_dir), tmpfs)
        assert full.real
        full.inject()
        assert full.took_effect(), full.evidence()
        with pytest.raises(OSError):
            (cache_dir / "x").write_bytes(b"y" * 65536)
        full.heal()
        (cache_dir / "x").write_bytes(b"y" * 65536)
        read_only = DiskReadOnly(str(cache_dir), tmpfs)
        read_only.inject()
        try:
            assert read_only.took_effect(), read_only.evidence()
            with pytest.raises(OSError):
                (cache_dir / "z").write_bytes(b"z")
        finally:
            read_only.heal()
        (cache_dir / "z").write_bytes(b"z")


@pytest.mark.real_postgres
def test_a_postgres_world_has_a_database_of_its_own():
    import psycopg

    with Sandbox(redis=False, postgres=True, tmpfs=False) as box:
        first, second = box.world(database="postgres"), box.world(database="postgres")
        assert first.database_url != second.database_url
        with psycopg.connect(first.database_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (k text PRIMARY KEY, v bytea)")
            conn.execute("INSERT INTO t VALUES ('a', 'x')")
        with psycopg.connect(second.database_url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't'").fetchone() == (0,)
            other = conn.execute("SELECT pid FROM pg_stat_activity WHERE pid = pg_backend_pid()").fetchone()
            kinds = {n.kind: n for n in applicable(first)}
            assert {"postgres SIGKILL", "postgres backends terminated", "database hostile rows"} <= set(kinds)
            hostile = kinds["database hostile rows"]
            hostile.inject()
            assert hostile.took_effect() and {r[0] for r in hostile.replaced} == {"t"}
            terminate = kinds["postgres backends terminated"]
            terminate.inject()  # backends of the first world's database only: this one survives
            assert not terminate.took_effect()
            assert conn.execute("SELECT pg_backend_pid()").fetchone() == other
    assert box.children_left() == []


def test_hostile_payloads_are_what_they_claim():
    import pickle
    import zlib

    from tiercheck.chaos.hostile import BOMB_BYTES, Payloads

    planted = Payloads()
    try:
        pickled = [p for p in planted._fixed if p.startswith(b"\x80\x02")]
        assert len(pickled) == 1 and not planted.executed()
        pickle.loads(pickled[0])  # what a cache must never do with a planted value
        assert planted.executed()
        bombs = [p for p in planted._fixed if p[:1] == b"\x78"]  # a zlib stream
        assert len(bombs) == 1 and len(bombs[0]) < BOMB_BYTES // 100
        assert len(zlib.decompressobj().decompress(bombs[0], BOMB_BYTES + 1)) == BOMB_BYTES
    finally:
        planted.close()
    assert not planted.executed()


def _declaring(**declared):
    def factory(env):
        from tiercheck.reference import factory as reference_factory

        cache = reference_factory(env)
        cache.tiercheck_capabilities = declared
        return cache

    return factory


@pytest.mark.selftest
@pytest.mark.parametrize(
    ("declared", "run", "reason"),
    [
        ({"tiers": ["memory", "disk"]}, "restored", "no Redis tier"),
        ({"tiers": ["memory", "database"]}, "faults", "no Redis tier"),
        ({"database_kinds": ["postgresql"]}, "stale", "SQLite database tier"),
    ],
)
def test_two_instance_machines_are_not_applicable_without_the_tiers_they_share(declared, run, reason):
    """Redis faults need a Redis tier; the instances share a SQLite file. Each is "not applicable" before any
    server is touched."""
    from tiercheck.properties import test_multi_instance as two

    tests = {
        "restored": two.test_E1_two_instances_restored_while_every_instance_is_down,
        "faults": two.test_E1_two_instances_under_faults_never_undo_an_invalidate,
        "stale": two.test_E6_two_instances_stale_only_within_the_declared_window,
    }
    with pytest.raises(pytest.skip.Exception, match=f"not applicable: .*{reason}"):
        tests[run](_declaring(**declared), None)


def test_a_focused_campaign_names_registered_faults_and_known_worlds(capsys):
    """`--faults` / `--worlds` narrow a campaign (e.g. to chase one violation); a name that is not registered
    is a usage error (exit 2) listing what is, before any server starts."""
    from tiercheck.chaos.campaign import INSTANCES, main, parse_worlds

    assert parse_worlds("2x3, 1") == ((2, 3), (1, 1)) and parse_worlds("1,2,2x3") == INSTANCES
    with pytest.raises(ValueError, match="choose from 1, 2, 2x3"):
        parse_worlds("3x3")
    for bad in (["--faults", "redis nap"], ["--faults", ","], ["--worlds", "2x9"]):
        with pytest.raises(SystemExit) as exited:
            main(["--minutes", "0", *bad])
        assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "unknown fault(s) redis nap; registered: " in err and "redis hostile keys" in err
    assert "unknown world(s) 2x9" in err
