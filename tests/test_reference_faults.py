"""Regression tests of the reference under faults and races: one per bug class of ../shared/repro.

Each failed on the reference at 42eec13 (global change counter, repair record ids, seqlock) and
passes with per-key versions, tombstones, versioned repairs and per-key coherence. Instances are
built with `staleness_seconds=0` and `retry_max_ops=1` where the test needs "after the staleness
window" or "after re-admission", so nothing waits on the wall clock.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import sqlite3
import threading
import tracemalloc

import pytest
import redis

from tiercheck import reference
from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.config import CacheConfig
from tiercheck.reference.store import Removal, TierError


class Partition:
    """A TCP proxy in front of Redis: `cut()` drops every connection and refuses new ones (nothing in
    flight is delivered later, unlike a paused server); `heal()` lets clients in again."""

    def __init__(self, upstream_url: str) -> None:
        self.upstream = redis.connection.parse_url(upstream_url)
        self.port, self._socks, self._server = 0, [], None
        self.heal()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def heal(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self.port, self._server = server.getsockname()[1], server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection((self.upstream["host"], self.upstream["port"]))
            self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                for s in select.select([a, b], [], [], 0.5)[0]:
                    data = s.recv(65536)
                    if not data:
                        raise OSError
                    (b if s is a else a).sendall(data)
        except (OSError, ValueError):
            a.close()
            b.close()

    def cut(self) -> None:
        self._server.close()
        socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def instance(env, **changes) -> MetadataCache:
    cache = MetadataCache(CacheConfig.from_contract_env(env).with_changes(**changes))
    cache.legacy_module = reference.legacy
    return cache


def stores(cache) -> dict:
    cache._start()
    return {s.name: s for s in cache._stores}


@contextlib.contextmanager
def put_held_at_redis(cache, path, value):
    """`cache.put(path, value)` in a thread, held just before its Redis write for the body of the `with`
    (Redis still holds the old value); afterwards it must return True."""
    redis_tier = stores(cache)["redis"]
    key = cache._key(path, "premium")
    at_redis, go = threading.Event(), threading.Event()
    real_put = redis_tier.put

    def held_put(k, *args):
        if k == key:
            at_redis.set()
            assert go.wait(10)
        return real_put(k, *args)

    redis_tier.put = held_put
    put: list[bool] = []
    writer = threading.Thread(target=lambda: put.append(cache.put(path, value)))
    writer.start()
    try:
        assert at_redis.wait(10)
        yield
    finally:
        go.set()
        writer.join(10)
    assert put == [True]


def settle(cache, path, tries=200):
    """Operate until every tier is re-admitted (retry_max_ops=1: each get is a trial)."""
    for _ in range(tries):
        got = cache.get(path)
        if all(h["healthy"] for h in cache.get_stats()["tier_health"].values()):
            return got
    raise AssertionError(f"tiers not re-admitted: {cache.get_stats()['tier_health']}")


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"jpeg" * 4096)
    return str(path)


@pytest.fixture
def other(tmp_path):
    path = tmp_path / "other.bin"
    path.write_bytes(b"another file")
    return str(path)


QUICK = {"staleness_seconds": 0.0, "retry_max_ops": 1}


@pytest.mark.real_redis
def test_an_outage_invalidate_by_one_instance_is_not_undone_for_a_running_one(make_env, redis_server, src, other):
    """repro 01: A read the journals only at start; B's removal owed by Redis never reached A."""
    partition = Partition(redis_server.url)
    env = make_env(redis_url=partition.url)
    a = instance(env, **QUICK)
    a.put(other, {"n": 0})
    b = instance(env, **QUICK)
    assert b.put(src, {"camera": "old"})
    a.get(other)  # A is up to date with every change so far
    partition.cut()  # unreachable for everyone; the server keeps its data
    try:
        assert b.invalidate(src) is True
    finally:
        b.shutdown()
        partition.heal()
    settle(a, other)
    assert a.get(src) is None and "redis" not in a.tiers_holding(src)
    a.shutdown()


@pytest.mark.real_redis
def test_an_outage_invalidate_reaches_a_running_instances_memory(make_env, redis_server, src, other):
    """repro 02: the change announcement was dropped during the outage; A's memory kept the value."""
    partition = Partition(redis_server.url)
    env = make_env(redis_url=partition.url)
    a, b = instance(env, **QUICK), instance(env, **QUICK)
    a.put(other, {"n": 0})
    b.put(other, {"n": 1})
    a.get(other)
    partition.cut()
    try:
        assert a.put(src, {"camera": "old"}) and a.get(src) == {"camera": "old"}
        assert b.invalidate(src) is True
    finally:
        b.shutdown()
        partition.heal()
    settle(a, other)
    got = [a.get(src) for _ in range(3)]
    assert got == [None] * 3, (a.get_stats()["coherence"], a.get_stats()["memory_hits"], a.get_stats()["tier_health"])
    a.shutdown()


def test_a_redis_restart_never_leaves_a_running_instance_serving_an_overwritten_value(make_env, fake_redis_server, src):
    """repro 03: after a restart the change counter climbed back to the value A had seen (ABA)."""
    env = make_env(redis_url=fake_redis_server.url)
    a = instance(env, **QUICK)
    assert a.put(src, {"camera": "old"}) and a.get(src) == {"camera": "old"}
    fake_redis_server.stop()
    fake_redis_server.start(empty=True)
    b = instance(env, **QUICK)
    assert b.put(src, {"camera": "NEW"})
    b.shutdown()
    assert settle(a, src) == {"camera": "NEW"}
    assert a.get(src) == {"camera": "NEW"}
    a.shutdown()


@pytest.mark.real_redis
def test_a_removal_deferred_after_another_instance_applied_the_same_key_is_not_lost(make_env, redis_server, src):
    """repro 04: C's deferred removal reused a record id B had marked applied, and was skipped."""
    partition = Partition(redis_server.url)
    env = make_env(redis_url=partition.url)
    b = instance(env, **QUICK)
    assert b.put(src, {"camera": "v1"})
    partition.cut()
    try:
        assert b.invalidate(src)
        c = instance(env, retry_max_ops=32, retry_max_seconds=30.0)  # C keeps skipping Redis for a while
        for _ in range(5):
            assert c.get(src) is None
    finally:
        partition.heal()
    assert b.put(src, {"camera": "v2"})  # B applies what Redis owed, then stores v2 everywhere
    assert c.invalidate(src) is True  # C's Redis removal is deferred: its breaker still skips Redis
    for _ in range(200):  # C re-admits Redis (within retry_max_ops), applying what it owes first
        assert c.get(src) is None
    assert c.tiers_holding(src) == set()
    b.shutdown()
    c.shutdown()


@pytest.mark.real_redis
def test_a_snapshot_taken_inside_an_invalidate_never_resurrects_the_entry(make_env, redis_server, src):
    """repro 05: the counter was bumped before the removal; a snapshot in between passed the floor check."""
    from tiercheck.integration.servers import restore_redis, snapshot_redis

    env = make_env(redis_url=redis_server.url)
    a = instance(env)
    assert a.put(src, {"camera": "old"})
    database = stores(a)["database"]
    real_remove, taken = database.remove, []

    def remove_after_snapshot(*args, **kwargs):
        taken.append(snapshot_redis(redis_server))
        return real_remove(*args, **kwargs)

    database.remove = remove_after_snapshot
    assert a.invalidate(src) is True
    a.shutdown()
    restore_redis(redis_server, taken[0])
    c = instance(env)
    assert c.get(src) is None and c.tiers_holding(src) == set()
    assert c.get_stats()["tier_health"]["redis"]["healthy"]
    assert c.put(src, {"camera": "new"}) and "redis" in c.tiers_holding(src)  # Redis is in use again
    c.shutdown()


def test_database_rows_of_another_sql_type_are_corrupt_entries(make_env, tmp_path, src, other, clock):
    """repro 07: bytes(row[0]) on TEXT raised (tier marked failed, cleanup aborted); on INTEGER n it
    allocated n bytes."""
    db_path = tmp_path / "cache.sqlite3"
    env = make_env(database_url=f"sqlite:///{db_path}", ttl_seconds=100)
    writer = reference.factory(env)
    assert writer.put(src, {"name": "altered"}) and writer.put(other, {"name": "bomb"})
    text_key, int_key = writer._key(src, "premium"), writer._key(other, "premium")
    writer.shutdown()
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("UPDATE tc_entries SET blob = 'not bytes' WHERE content = ?", (text_key.content,))
    db.execute("UPDATE tc_entries SET blob = 200000000 WHERE content = ?", (int_key.content,))
    cache = reference.factory(make_env(database_url=f"sqlite:///{db_path}", cache_dir=str(tmp_path / "fresh")))
    tracemalloc.start()
    assert cache.get(src) is None and cache.get(other) is None
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 << 20
    assert cache.get_stats()["tier_health"]["database"]["healthy"]
    assert (
        db.execute(
            "SELECT COUNT(*) FROM tc_entries WHERE content IN (?, ?) AND blob IS NOT NULL",
            (text_key.content, int_key.content),
        ).fetchone()[0]
        == 0
    )
    cache.shutdown()
    db.execute("UPDATE tc_entries SET blob = 'again' WHERE 0")  # keep the connection busy-free
    writer = reference.factory(env)
    assert writer.put(src, {"name": "expiring"})
    db.execute(
        "INSERT INTO tc_entries SELECT ns, 'ab' || content, variant, version, expires_at, 'text' "
        "FROM tc_entries WHERE content = ?",
        (text_key.content,),
    )
    clock.advance(200)
    writer.cleanup()  # the altered row does not stop the sweep
    assert db.execute("SELECT COUNT(*) FROM tc_entries WHERE blob IS NOT NULL").fetchone()[0] == 0
    writer.shutdown()
    db.close()


@pytest.mark.real_redis
def test_threads_of_a_new_instance_never_read_a_restored_redis_before_the_purge(make_env, redis_server, src, tmp_path):
    """repro 08: the flag was cleared before the purge, so other threads read the restored Redis."""
    from tiercheck.integration.servers import restore_redis, snapshot_redis

    for attempt in range(5):
        env = make_env(
            redis_url=redis_server.url,
            cache_dir=str(tmp_path / f"c{attempt}"),
            database_url=f"sqlite:///{tmp_path}/db{attempt}.sqlite3",
            namespace=f"r08-{attempt}-{id(tmp_path)}",
        )
        a = instance(env)
        assert a.put(src, {"camera": "old"})
        snapshot = snapshot_redis(redis_server)
        assert a.invalidate(src) is True
        a.shutdown()
        restore_redis(redis_server, snapshot)
        c = instance(env)
        barrier, results = threading.Barrier(8), []

        def first_get(barrier=barrier, results=results, c=c) -> None:
            barrier.wait()
            results.append(c.get(src))

        threads = [threading.Thread(target=first_get) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [None] * 8 and c.get(src) is None
        c.shutdown()


@pytest.mark.real_redis
def test_a_reconnect_after_another_instances_put_purges_nothing(make_env, redis_server, tmp_path):
    """repro 10: a new connection saw a counter moved by another instance and took it for a restart."""
    env = make_env(redis_url=redis_server.url)
    files = []
    for i in range(6):
        files.append(tmp_path / f"f{i}")
        files[-1].write_bytes(b"file %d" % i)
    a, b = instance(env, staleness_seconds=0.0), instance(env)
    for path in files[:3]:
        assert a.put(str(path), {"by": "a"})
    for path in files[3:]:
        assert b.put(str(path), {"by": "b"})
    admin = redis.Redis.from_url(redis_server.url)
    before = sum(1 for _ in admin.scan_iter(match=f"{env.namespace}:e:*"))
    admin.client_kill_filter(_type="normal", skipme=True)
    for path in files:
        a.tiers_holding(str(path))  # Redis commands over new connections
    after = sum(1 for _ in admin.scan_iter(match=f"{env.namespace}:e:*"))
    admin.close()
    assert after == before == 6
    assert a.get_stats()["tier_health"]["redis"]["total_failures"] == 0
    a.shutdown()
    b.shutdown()


def test_a_promotion_that_timed_out_and_lands_after_an_invalidate_is_refused(make_env, fake_redis_url, src):
    """repro 11: a promotion the client gave up on was neither undone nor recorded; the server applied
    it after another instance's invalidate, and the entry was served again."""
    env = make_env(redis_url=fake_redis_url)
    a, b = instance(env), instance(env)
    assert b.put(src, {"camera": "old"})
    redis_a = stores(a)["redis"]
    key = a._key(src, "premium")
    redis_a.discard(key, None)  # Redis lost its copy; disk and database hold it
    real_put, late = redis_a.put, []

    def times_out(*args):
        late.append(args)  # the command is on the wire ...
        raise TierError("redis put: Timeout reading from socket")  # ... but the client gives up

    redis_a.put = times_out
    assert a.get(src) == {"camera": "old"}
    redis_a.put = real_put
    assert b.invalidate(src) is True
    for args in late:  # the server applies the delayed command now
        with contextlib.suppress(TierError):
            real_put(*args)
    fresh = instance(env)
    assert fresh.get(src) is None and b.get(src) is None
    for c in (a, b, fresh):
        c.shutdown()


@pytest.mark.real_redis
def test_another_instances_unrelated_put_keeps_the_memory_tier(make_env, redis_server, tmp_path):
    """repro 13: one namespace-wide counter: any put anywhere emptied every other memory tier."""
    env = make_env(redis_url=redis_server.url)
    files = []
    for i in range(21):
        files.append(str(tmp_path / f"f{i}"))
        (tmp_path / f"f{i}").write_bytes(b"file %d" % i)
    a, b = instance(env, staleness_seconds=0.0), instance(env)
    for path in files[:20]:
        assert a.put(path, {"i": path})
    assert b.put(files[20], {"new": True})
    before = a.get_stats()
    assert [a.get(path) for path in files[:20]] == [{"i": path} for path in files[:20]]
    after = a.get_stats()
    assert after["memory_hits"] - before["memory_hits"] == 20
    a.shutdown()
    b.shutdown()


def test_concurrent_puts_of_two_instances_leave_every_tier_with_the_same_value(make_env, fake_redis_url, src):
    """repro 15: B's put ran between A's database and disk writes: the tiers disagreed, reads flipped."""
    env = make_env(redis_url=fake_redis_url)
    a, b = instance(env), instance(env)
    disk = stores(a)["disk"]
    real_put, at_disk, b_done = disk.put, threading.Event(), threading.Event()

    def paused_put(*args):
        at_disk.set()
        b_done.wait(5)
        return real_put(*args)

    disk.put = paused_put
    writer = threading.Thread(target=a.put, args=(src, {"by": "A"}))
    writer.start()
    assert at_disk.wait(5)
    assert b.put(src, {"by": "B"})
    b_done.set()
    writer.join()
    disk.put = real_put
    key = a._key(src, "premium")
    held = {name: store.get(key) for name, store in stores(b).items()}
    assert None not in held.values() and len(set(held.values())) == 1, held
    a.shutdown()
    b.shutdown()


@pytest.mark.real_redis
def test_concurrent_first_use_is_not_taken_for_a_redis_restart(make_env, redis_server, tmp_path, caplog):
    """repro 16: the first connections of 8 threads compared counters and declared a restart."""
    paths = []
    for i in range(32):
        paths.append(str(tmp_path / f"f{i}"))
        (tmp_path / f"f{i}").write_text(f"content {i}")
    for attempt in range(3):
        cache = instance(
            make_env(
                redis_url=redis_server.url,
                namespace=f"r16-{attempt}-{id(tmp_path)}",
                cache_dir=str(tmp_path / f"c{attempt}"),
            )
        )
        barrier = threading.Barrier(8)

        def worker(t: int, barrier=barrier, cache=cache) -> None:
            barrier.wait()
            for p in paths[t::8]:
                cache.put(p, {"p": p})

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert cache.get_stats()["tier_health"]["redis"]["total_failures"] == 0
        assert not [r for r in caplog.records if "restarted" in r.getMessage() or "purged" in r.getMessage()]
        cache.shutdown()


def test_threads_of_one_instance_never_flush_its_memory_tier(make_env, fake_redis_url, tmp_path):
    """repro 17: each thread took another thread's bump of the shared counter for another instance."""
    paths = []
    for i in range(160):
        paths.append(str(tmp_path / f"e{i}"))
        (tmp_path / f"e{i}").write_text(f"evict {i}")
    cache = instance(make_env(redis_url=fake_redis_url, max_memory_entries=16))
    cache.put(paths[0], {"warm": True})
    cache.invalidate(paths[0])
    before = cache.get_stats()["evictions"]
    barrier = threading.Barrier(8)

    def worker(t: int) -> None:
        barrier.wait()
        for p in paths[t::8]:
            cache.put(p, {"p": p})

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = cache.get_stats()
    assert stats["memory"]["entries"] == 16 and stats["evictions"] - before == 144
    cache.shutdown()


@pytest.mark.real_redis
def test_a_removal_another_instance_could_only_journal_reaches_this_instances_memory(make_env, redis_server, src):
    """Same class as repro 02, the partition on one side only: B cannot reach Redis, A can (its
    tracking connection is alive, and no message comes, since Redis never saw the removal). A learns
    the removal from the shared journal within its staleness window."""
    partition = Partition(redis_server.url)
    env_a, env_b = make_env(redis_url=redis_server.url), make_env(redis_url=partition.url)
    a, b = instance(env_a, staleness_seconds=60.0), instance(env_b, **QUICK)
    assert a.put(src, {"camera": "old"}) and a.get(src) == {"camera": "old"}
    partition.cut()
    try:
        assert b.invalidate(src) is True  # Redis's removal is journaled
        a._repairs.poll_due = float("-inf")  # A's staleness window has passed: it reads the journals again
        assert [a.get(src) for _ in range(3)] == [None] * 3
        assert a.tiers_holding(src) == set()  # A applied what Redis owed before using it
    finally:
        partition.heal()
        a.shutdown()
        b.shutdown()


@pytest.mark.real_redis
def test_a_redis_restored_from_before_a_put_never_serves_the_overwritten_value(make_env, redis_server, src):
    """Same class as repro 05 for puts: the counter moved only with removals, so a snapshot taken
    before an overwrite passed the floor check and served the older value."""
    from tiercheck.integration.servers import restore_redis, snapshot_redis

    env = make_env(redis_url=redis_server.url)
    a = instance(env)
    assert a.put(src, {"camera": "v1"})
    snapshot = snapshot_redis(redis_server)
    assert a.put(src, {"camera": "v2"})
    a.shutdown()
    restore_redis(redis_server, snapshot)  # the server comes back holding v1
    c = instance(env)
    assert c.get(src) in (None, {"camera": "v2"})
    assert c.get(src) == {"camera": "v2"}
    c.shutdown()


def test_journal_and_version_columns_of_another_sql_type_are_no_records(make_env, tmp_path, src):
    """Same class as repro 07, in the other columns: a TEXT version or a BLOB tier in the journal, a
    TEXT version on an entry, never raise and never keep the database tier out."""
    db_path = tmp_path / "cache.sqlite3"
    env = make_env(database_url=f"sqlite:///{db_path}")
    cache = reference.factory(env)
    assert cache.put(src, {"v": 1})
    key = cache._key(src, "premium")
    cache.shutdown()
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute(
        "INSERT INTO tc_journal VALUES (?, 'redis', ?, ?, 'not a version')", (env.namespace, key.content, key.variant)
    )
    db.execute("INSERT INTO tc_journal VALUES (?, x'00', ?, ?, 5)", (env.namespace, key.content, key.variant))
    db.execute("UPDATE tc_entries SET version = 'garbage' WHERE content = ?", (key.content,))
    cache = reference.factory(make_env(database_url=f"sqlite:///{db_path}", cache_dir=str(tmp_path / "fresh")))
    cache.get(src)  # whatever the damaged row reads as, no exception
    assert cache.put(src, {"v": 2}) and cache.get(src) == {"v": 2}
    database = stores(cache)["database"]
    assert database.journal_load() is not None  # the damaged journal rows are skipped, not raised
    blob = database.get(key)  # the entry's damaged version did not fence the put out
    assert blob is not None and reference.codec.Codec(3, 1 << 20).decode(str(key), blob)[2].load() == {"v": 2}
    assert cache.get_stats()["tier_health"]["database"]["total_failures"] == 0
    cache.shutdown()
    db.close()


@pytest.mark.parametrize("tier", [None, "premium"])
@pytest.mark.parametrize("seed", range(12))
def test_hostile_rows_never_undo_an_invalidate(make_env, tmp_path, src, seed, tier):
    """Campaign seed 2 (database hostile rows): an entry's version altered to a huge number or TEXT
    outranked every removal, so invalidate returned True and the database served the entry again; a
    journal record whose version was altered was dropped, so the tier that owed it never applied it.
    And the harness's heal "restored" the entry's bytes into a tombstone whose blob was NULL, as planted."""
    import random

    from tiercheck.chaos.hostile import DatabaseHostileRows

    db_url = f"sqlite:///{tmp_path / 'cache.sqlite3'}"
    cache = instance(make_env(database_url=db_url), **QUICK)
    assert cache.put(src, {"v": "old"})
    disk = stores(cache)["disk"]
    real_remove = disk.remove

    def refused(*args):
        raise TierError("disk refused")

    disk.remove = refused  # the disk misses the removal: the database journal records what it owes
    fault = DatabaseHostileRows(db_url, random.Random(seed))
    fault.inject()
    if not fault.took_effect():  # e.g. the only value it picked was NULL for a NOT NULL column
        pytest.skip("fault did not take effect")
    assert cache.invalidate(src, tier)
    disk.remove = real_remove
    assert cache.get(src) is None
    fault.heal()  # the harness puts the original values back: the entry's old version, the journal's
    assert cache.get(src) is None
    cache.shutdown()
    fresh = instance(make_env(database_url=db_url), **QUICK)  # same cache_dir: the disk still holds it
    assert settle(fresh, src) is None and fresh.get(src) is None
    fresh.shutdown()


@pytest.mark.real_postgres
def test_a_restarted_postgres_takes_the_first_put_after_the_heal(src):
    """Campaign seed 335271362: after PostgreSQL was killed for a few seconds and restarted, an instance
    whose pooled connections were all broken kept failing for seconds more: psycopg_pool reconnects in
    the background with a doubling back-off (1, 2, 4, 8 s ...), past the declared re-admission bound."""
    from tiercheck.chaos.nemesis import applicable
    from tiercheck.chaos.sandbox import Sandbox

    with Sandbox(redis=False, postgres=True, tmpfs=False) as box:
        world = box.world(database="postgres", redis=False)
        kill = next(n for n in applicable(world) if n.kind == "postgres SIGKILL")
        cache = instance(world.envs[0], **QUICK)
        assert cache.put(src, {"v": 0}) and "database" in cache.tiers_holding(src)
        kill.inject()
        assert kill.took_effect(), kill.evidence()
        for i in range(1, 12):  # each a trial of the database (retry_max_ops=1); on a pool, each waits its timeout
            assert cache.put(src, {"v": i}) and "database" not in cache.tiers_holding(src)
        kill.heal()
        assert cache.put(src, {"v": 12}) and "database" in cache.tiers_holding(src)
        cache.shutdown()
        kill.close()


@pytest.mark.real_redis
def test_a_clear_all_reaches_a_memory_entry_whose_redis_key_is_gone(make_env, redis_server, src, other):
    """Campaign seed 7: Redis lost a content's key (restored from a snapshot, then purged), the other
    instance promoted the entry from disk into memory while its Redis was failing, and a clear_all
    (which deletes only the keys Redis holds) sent no message about it: the entry was served on."""
    import time

    window = 2.0
    env = make_env(redis_url=redis_server.url)
    a = instance(env, staleness_seconds=window, retry_max_ops=1)
    b = instance(env, staleness_seconds=window, retry_max_ops=1)
    assert a.put(src, {"camera": "old"}) and b.get(src) == {"camera": "old"}
    for _ in range(200):  # B's tracking connection is up (a failsafe bound, not a synchronisation)
        if b.get_stats()["coherence"]["tracking_live"]:
            break
        b.get(other)
    redis.Redis.from_url(redis_server.url).delete(stores(a)["redis"].prefix + a._key(src, "premium").content)
    settle(b, other)
    redis_tier = stores(b)["redis"]
    real_put = redis_tier.put

    def failing(*args):
        raise TierError("redis put timed out")

    redis_tier.put = failing  # the promotion into Redis fails: Redis keeps no key for this content
    assert b.get(src) == {"camera": "old"} and b.get(src) == {"camera": "old"}  # the second from memory
    redis_tier.put = real_put
    a.clear_all()
    deadline = time.monotonic() + window  # the declared staleness window (E6)
    while b.get(src) is not None and time.monotonic() < deadline:
        pass
    coherence = b.get_stats()["coherence"]
    assert b.get(src) is None and coherence["flushes"] == 1, coherence  # told, not found out by a late check
    a.shutdown()
    b.shutdown()


def test_a_clear_applied_late_from_the_journal_keeps_entries_put_after_it(make_env, fake_redis_url, src, other):
    """Campaign seed 2 (disk dir removed): a clear_all that Redis owed (recorded in the repair journal)
    was applied after later puts and deleted the whole namespace, the entries put after it too."""
    cache = instance(make_env(redis_url=fake_redis_url), **QUICK)
    assert cache.put(src, {"v": 1})
    cleared = cache._versions.next()  # the version a clear_all took before Redis failed it
    assert cache.put(src, {"v": 2}) and cache.put(other, {"v": 2})
    cache._repairs.defer("redis", reference.store.Removal("*", "*", cleared))  # as learned from a journal
    assert cache.get(other) == {"v": 2}  # Redis applies what it owes before it answers
    assert cache.get_stats()["pending_repairs"]["redis"] == 0
    assert "redis" in cache.tiers_holding(src) and "redis" in cache.tiers_holding(other)
    cache.shutdown()


def test_another_instances_older_clear_keeps_newer_memory_entries(make_env, fake_redis_url, src, other):
    """Campaign seed 2 (disk read-only): another instance's clear_all, that the disk missed, was learned
    from the repair journal after this instance's newer put, and emptied its whole memory tier."""
    cache = instance(make_env(redis_url=fake_redis_url), **QUICK)
    assert cache.put(other, {"v": 1})
    cleared = cache._versions.next()  # another instance's clear_all, before the put below
    assert cache.put(src, {"v": 2})
    stores(cache)["database"].journal_add("disk", reference.store.Removal("*", "*", cleared))
    cache._repairs.load()  # what a poll of the journals does
    assert "memory" in cache.tiers_holding(src) and "memory" not in cache.tiers_holding(other)
    cache.shutdown()


def test_a_disk_clear_applied_late_from_the_journal_keeps_entries_put_after_it(make_env, src, other):
    """As for Redis above: the disk tier renamed its whole entry directory whatever the clear's version,
    so a clear it owed and applied late took the entries put after it (safe, but healthy data lost)."""
    cache = instance(make_env(redis_url=None), **QUICK)
    assert cache.put(src, {"v": 1})
    cleared = cache._versions.next()
    assert cache.put(src, {"v": 2}) and cache.put(other, {"v": 2})
    cache._repairs.defer("disk", reference.store.Removal("*", "*", cleared))
    never_put = os.path.join(os.path.dirname(src), "never-put")
    with open(never_put, "wb") as f:
        f.write(b"never put")
    assert cache.get(never_put) is None  # a memory miss reads the disk tier, which applies what it owes first
    assert cache.get_stats()["pending_repairs"]["disk"] == 0
    assert "disk" in cache.tiers_holding(src) and "disk" in cache.tiers_holding(other)
    cache.shutdown()


def test_a_tracking_message_handled_during_a_put_never_loses_the_put_from_memory(make_env, fake_redis_url, src):
    """chaos seed 2, round 16 (no fault): the tracking thread read which variants of a content memory
    held (another variant only), a put of this instance wrote its entry to memory, then the thread
    dropped every variant it had not read, the put's included; a get promoted the older value from
    Redis before the put reached it, and the instance served it after its own put had completed."""
    env = make_env(redis_url=fake_redis_url)
    a, b = instance(env), instance(env)
    assert b.put(src, {"v": "old"}) and b.put(src, {"other": "variant"}, tier="free")
    redis_a = stores(a)["redis"]
    a._coherence.stop()  # the test delivers the message itself, at the moment it chooses
    assert a.get(src, "free") == {"other": "variant"}  # memory holds another variant of the content
    key = a._key(src, "premium")
    in_fences, fences_go = threading.Event(), threading.Event()
    real_fences = redis_a.fences

    def paused_fences(*args):
        in_fences.set()
        assert fences_go.wait(10)
        return real_fences(*args)

    redis_a.fences = paused_fences
    message = [b"invalidate", [(redis_a.prefix + key.content).encode()]]  # e.g. b's put of another variant
    handler = threading.Thread(target=a._coherence._handle, args=(message,))
    handler.start()
    assert in_fences.wait(10)  # the thread has read the versions memory holds
    with put_held_at_redis(a, src, {"v": "new"}):
        fences_go.set()
        handler.join(10)
        assert a.get(src) in ({"v": "old"}, {"v": "new"})  # concurrent with the put: either
    assert a.get(src) == {"v": "new"}  # the put completed before this get began
    for c in (a, b):
        c.shutdown()


def test_a_removal_learned_during_a_put_never_loses_the_newer_put_from_memory(make_env, fake_redis_url, src):
    """The same race through the journals: a removal another instance recorded for an older version
    (its put failed on a tier) was learned while this instance's put had written memory only; memory
    dropped the newer entry, a get promoted the older value from Redis, and it was served after the put."""
    env = make_env(redis_url=fake_redis_url)
    a, b = instance(env), instance(env)
    assert b.put(src, {"v": "old"})
    redis_a = stores(a)["redis"]
    a._coherence.stop()  # no tracking message may refresh memory behind the test's back
    key = a._key(src, "premium")
    older = redis_a.version_of(key) + 1  # what b defers when its put fails on a tier
    with put_held_at_redis(a, src, {"v": "new"}):
        a._learned(Removal(key.content, "*", older))  # read from a journal by a's next poll
        assert a.get(src) in ({"v": "old"}, {"v": "new"})  # concurrent with the put: either
    assert a.get(src) == {"v": "new"}  # the put completed before this get began
    for c in (a, b):
        c.shutdown()


def test_a_put_slower_than_the_staleness_window_is_not_lost_from_memory(make_env, fake_redis_url, src):
    """The same race through the per-key check: a put took longer than the staleness window, so a get
    checked its memory entry against Redis, which still held the older version; memory dropped the
    newer entry, the get promoted the older value, and it was served after the put completed."""
    env = make_env(redis_url=fake_redis_url)
    a, b = instance(env), instance(env)
    assert b.put(src, {"v": "old"})
    stores(a)  # started, so that its coherence can be stopped
    a._coherence.stop()  # checked per key, as without tracking
    key = a._key(src, "premium")
    assert a.get(src) == {"v": "old"}  # now in a's memory
    with put_held_at_redis(a, src, {"v": "new"}):
        entry = a.memory.get(key, a.config.clock())  # the old entry (memory takes the new one last)
        assert entry is not None
        old_stamp = entry.stamp - 2 * a.config.staleness_seconds
        a.memory.put(key, entry.expires_at, entry.payload, entry.version, stamp=old_stamp)
        assert a.get(src) in ({"v": "old"}, {"v": "new"})  # concurrent with the put: either
    assert a.get(src) == {"v": "new"}  # the put completed before this get began
    for c in (a, b):
        c.shutdown()


@pytest.mark.real_redis
def test_a_copy_read_from_a_slower_tier_after_the_removal_message_is_not_kept_in_memory(make_env, redis_server, src):
    """Another instance's invalidate had removed the entry from Redis (its message already handled
    here) but not yet from disk: a get read the disk copy and admitted it to memory, where tracking
    trusted it for as long as the connection stayed up. Redis refuses the same copy (its tombstone is
    newer): memory must not keep it either."""
    env = make_env(redis_url=redis_server.url)
    a, b = instance(env), instance(env)
    assert b.put(src, {"v": "old"})
    stores(a)
    for _ in range(1000):  # a condition, not a duration: tracking is established
        if a._coherence._live:
            break
        threading.Event().wait(0.01)
    assert a._coherence._live
    key = a._key(src, "premium")
    name = a._coherence._prefix + key.content
    handled, real_handle = threading.Event(), a._coherence._handle

    def recording_handle(message):
        real_handle(message)
        if isinstance(message, list) and len(message) == 2 and any(
            (n.decode() if isinstance(n, bytes) else n) == name for n in message[1] or ()
        ):
            handled.set()

    a._coherence._handle = recording_handle
    disk_b = stores(b)["disk"]
    at_disk, disk_go = threading.Event(), threading.Event()
    real_remove = disk_b.remove

    def paused_remove(*args):
        at_disk.set()
        assert disk_go.wait(10)
        return real_remove(*args)

    disk_b.remove = paused_remove
    removed: list[bool] = []
    remover = threading.Thread(target=lambda: removed.append(b.invalidate(src)))
    remover.start()
    assert at_disk.wait(10) and handled.wait(10)  # gone from Redis, a has heard of it; disk still holds it
    assert a.get(src) in ({"v": "old"}, None)  # concurrent with the invalidate: either
    disk_go.set()
    remover.join(10)
    assert removed == [True]
    assert "memory" not in a.tiers_holding(src) and a.get(src) is None
    for c in (a, b):
        c.shutdown()


def test_a_put_refused_by_another_instances_clear_never_serves_what_the_clear_removes(make_env, any_redis_url, src):
    """chaos seed 3568401878, round 131 (redis latency 10 ms): instance 1's put drew its version, then
    waited (for its own clear_all's stripes); instance 0's clear_all took a newer version and recorded it
    in Redis, so Redis refused the put (disk took it: True), then removed the older entries content by
    content; before it reached this content, instance 1's get read Redis and served the value older
    than its own completed put (put before the clear; it may serve the put's value or a miss)."""
    env = make_env(redis_url=any_redis_url)
    a, b = instance(env, **QUICK), instance(env, **QUICK)
    assert a.put(src, {"v": "old"})
    drawn, draw_go, at_scan, scan_go = (threading.Event() for _ in range(4))
    real_next, redis_a = b._versions.next, stores(a)["redis"]
    real_scan = redis_a._scan

    def paused_next():
        version = real_next()
        drawn.set()
        assert draw_go.wait(10)
        return version

    def paused_scan():
        at_scan.set()
        assert scan_go.wait(10)
        return real_scan()

    b._versions.next, redis_a._scan = paused_next, paused_scan
    put: list[bool] = []
    writer = threading.Thread(target=lambda: put.append(b.put(src, {"v": "new"})))
    writer.start()
    assert drawn.wait(10)  # b's put has its version, older than the clear's below
    b._versions.next = real_next
    clearer = threading.Thread(target=a.clear_all)
    clearer.start()
    try:
        assert at_scan.wait(10)  # Redis recorded the clear; no entry removed yet
        draw_go.set()
        writer.join(10)
        assert put == [True]
        assert b.get(src) in (None, {"v": "new"})  # after the put completed, concurrent with the clear
    finally:
        draw_go.set()
        scan_go.set()
    clearer.join(10)
    assert b.get(src) is None and a.get(src) is None  # the clear came after the put
    for c in (a, b):
        c.shutdown()
