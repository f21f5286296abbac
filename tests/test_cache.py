"""MetadataCache through the contract's factory: tiers, promotion, stats, bad input, outages."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading

import psutil
import pytest

from tiercheck import reference
from tiercheck.reference import CacheConfig, InvalidMetadata, MetadataCache


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"jpeg" * 4096)
    return str(path)


@pytest.fixture
def cache(make_env, fake_redis_url):
    c = reference.factory(make_env(redis_url=fake_redis_url))
    yield c
    c.shutdown()


@pytest.mark.parametrize("only", ["redis", "disk", "database"])
def test_served_by_the_only_tier_holding_it_and_promoted_above(cache, src, only):
    assert cache.put(src, {"iso": 200})
    assert cache.tiers_holding(src) == {"memory", "redis", "disk", "database"}
    key = store_key(cache, src)
    cache.memory.clear()
    for store in cache._stores:
        if store.name != only:
            store.discard(key, None)
    assert cache.get(src) == {"iso": 200}
    stats = cache.get_stats()
    assert stats[f"{only}_hits"] == 1 and stats["hits"] == 1
    order = ["memory", "redis", "disk", "database"]
    assert set(order[: order.index(only) + 1]) <= cache.tiers_holding(src)


def store_key(cache, src):
    return cache._key(src, "premium")


def test_promotion_never_extends_expiry(cache, src, clock):
    cache.put(src, {"a": 1})
    clock.advance(3000)
    cache.memory.clear()
    assert cache.get(src) == {"a": 1}  # promoted from redis at t+3000
    clock.advance(600)
    assert cache.get(src) is None
    assert cache.tiers_holding(src) == set()


def test_stats_exact(cache, src, tmp_path):
    other = tmp_path / "other"
    other.write_bytes(b"other")
    cache.put(src, {"a": 1})
    cache.get(src)
    cache.get(str(other))
    cache.get(str(tmp_path / "missing"))
    cache.invalidate(src)
    s = cache.get_stats()
    assert (s["total_requests"], s["hits"], s["misses"], s["memory_hits"], s["writes"], s["invalidations"]) == (
        3,
        1,
        2,
        1,
        1,
        1,
    )
    assert s["hit_rate"] == pytest.approx(1 / 3, abs=1e-6)


def test_invalidate_all_tier_names_or_one(cache, src):
    for tier in ("free", "premium", "Premium"):
        cache.put(src, {"tier": tier}, tier)
    assert cache.invalidate(src, "free")
    assert cache.get(src, "free") is None and cache.get(src, "premium") == {"tier": "premium"}
    assert cache.invalidate(src)
    assert cache.get(src, "premium") is None and cache.get(src, "Premium") is None
    assert cache.tiers_holding(src, "Premium") == set()


def test_clear_all_and_cleanup(cache, src, clock, tmp_path):
    cache.put(src, {"a": 1})
    cache.clear_all()
    assert cache.get(src) is None and cache.tiers_holding(src) == set()
    cache.put(src, {"a": 1})
    clock.advance(3600)
    cache.cleanup()
    assert cache.tiers_holding(src) == set()
    assert not list((tmp_path / "cache" / "entries").rglob("*/*/*"))


def test_caller_mutation_never_leaks(cache, src):
    metadata = {"list": [1, 2], "nested": {"k": "v"}}
    cache.put(src, metadata)
    metadata["list"].append(3)
    got = cache.get(src)
    got["nested"]["k"] = "changed"
    assert cache.get(src) == {"list": [1, 2], "nested": {"k": "v"}}


def test_bad_input(cache, src, tmp_path):
    with pytest.raises(InvalidMetadata):
        cache.put(src, {"nan": float("nan")})
    assert cache.get(src) is None and cache.get_stats()["writes"] == 0
    assert cache.put(str(tmp_path / "missing"), {"a": 1}) is False
    assert cache.get(str(tmp_path / "missing")) is None
    assert cache.invalidate(str(tmp_path / "missing")) is False
    with pytest.raises(TypeError):
        cache.get(src, tier=123)  # type: ignore[arg-type]


def test_config_validation_messages(tmp_path):
    for bad, match in [
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"max_disk_bytes": -1}, "max_disk_bytes"),
        ({"compression_level": 23}, "compression_level"),
        ({"redis_url": "http://x"}, "redis_url"),
        ({"namespace": ""}, "namespace"),
    ]:
        with pytest.raises(ValueError, match=match):
            CacheConfig(cache_dir=str(tmp_path), **bad).validate()


def test_config_from_env(tmp_path):
    cfg = CacheConfig.from_env(
        {
            "TIERCHECK_CACHE_DIR": str(tmp_path),
            "TIERCHECK_TTL_SECONDS": "60",
            "TIERCHECK_DATABASE_URL": "none",
            "TIERCHECK_DISK_FSYNC": "false",
            "TIERCHECK_MAX_MEMORY_BYTES": "none",
        }
    )
    assert (cfg.cache_dir, cfg.ttl_seconds, cfg.database_url, cfg.disk_fsync, cfg.max_memory_bytes) == (
        str(tmp_path),
        60.0,
        None,
        False,
        None,
    )
    with pytest.raises(ValueError, match="TTL_SECONDS|ttl_seconds"):
        CacheConfig.from_env({"TIERCHECK_TTL_SECONDS": "soon"})


def test_configure_at_run_time(cache, src, tmp_path, clock):
    for i in range(5):
        f = tmp_path / f"f{i}"
        f.write_bytes(bytes([i]))
        cache.put(str(f), {"i": i})
    cache.configure(max_memory_entries=2, ttl_seconds=10, compression_level=0)
    assert cache.memory.usage()["entries"] == 2 and cache.get_stats()["evictions"] == 3
    cache.put(src, {"short": True})
    clock.advance(10)
    assert cache.get(src) is None
    with pytest.raises(ValueError, match="cannot change"):
        cache.configure(cache_dir="/elsewhere")


def test_warm_cache_bounded_skips_cached_reports_failures(cache, tmp_path):
    paths = []
    for i in range(12):
        f = tmp_path / f"w{i}"
        f.write_bytes(b"w%d" % i)
        paths.append(str(f))
    cache.put(paths[0], {"pre": True})
    lock, active, peak, calls = threading.Lock(), [0], [0], []
    gate = threading.Barrier(3, timeout=10)

    def extract(path, tier):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            calls.append(path)
        try:
            if len(calls) <= 3:
                gate.wait()  # the first three run together: concurrency really happens
            if path.endswith("w5"):
                raise RuntimeError("corrupt file")
            return {"path": os.path.basename(path)}
        finally:
            with lock:
                active[0] -= 1

    before = cache.get_stats()["total_requests"]
    result = cache.warm_cache(paths + [paths[3]], extract, max_workers=3)
    assert peak[0] == 3
    assert paths[0] not in calls and len(calls) == 11
    assert result == {p: not p.endswith("w5") for p in paths}
    assert cache.get_stats()["total_requests"] == before
    assert cache.get(paths[4]) == {"path": "w4"}


def _own_threads() -> set[threading.Thread]:
    """Threads of this process, without the in-process fakeredis server's per-connection handlers."""
    return {t for t in threading.enumerate() if "process_request" not in t.name}


def _own_fds(proc: psutil.Process, server_port: int) -> int:
    """Descriptors of this process, without the in-process fakeredis server's side of each connection
    (its handler threads close them on their own time)."""
    served = [c for c in proc.net_connections("tcp") if c.laddr and c.laddr.port == server_port]
    return proc.num_fds() - len(served)


def test_shutdown_leaves_no_thread_or_descriptor(make_env, fake_redis_url, src):
    proc = psutil.Process()
    port = int(fake_redis_url.rsplit(":", 1)[1].split("/")[0])
    threads, fds = _own_threads(), _own_fds(proc, port)
    c = reference.factory(make_env(redis_url=fake_redis_url))
    c.put(src, {"a": 1})
    c.get(src)
    c.warm_cache([src], lambda p, t: {"x": 1})
    c.shutdown()
    assert _own_threads() <= threads
    assert _own_fds(proc, port) <= fds


def test_redis_outage_never_raises_and_invalidation_survives_it(make_env, fake_redis_server, src, tmp_path):
    env = make_env(redis_url=fake_redis_server.url)
    c = reference.factory(env)
    c.put(src, {"v": 1})
    fake_redis_server.stop()
    try:
        assert c.get(src) == {"v": 1}
        assert c.invalidate(src) is True  # durable: recorded in the disk/database journal
        assert c.put(str(tmp_path / "missing"), {"a": 1}) is False
        c.shutdown()
        c = reference.factory(env)  # a restart while Redis is still down
        assert c.get(src) is None
    finally:
        fake_redis_server.start()
    # Redis is back. The fakeredis restart is empty, so plant the old entry back as if the
    # outage had been a network partition: the journal must still win.
    assert c.get(src) is None
    c.shutdown()


def test_repair_journal_applied_before_redis_serves_again(make_env, fake_redis_url, src, monkeypatch):
    c = reference.factory(make_env(redis_url=fake_redis_url))
    c.put(src, {"v": 1})
    redis_tier = next(s for s in c._stores if s.name == "redis")
    real_remove = redis_tier.remove
    monkeypatch.setattr(redis_tier, "remove", lambda *a: (_ for _ in ()).throw(reference.store.TierError("partition")))
    assert c.invalidate(src) is True
    monkeypatch.setattr(redis_tier, "remove", real_remove)
    assert redis_tier.get(c._key(src, "premium")) is not None  # Redis still holds the old entry
    for _ in range(40):  # within retry_max_ops the tier is tried again, repaired first
        assert c.get(src) is None
    assert redis_tier.get(c._key(src, "premium")) is None
    assert c.get_stats()["pending_repairs"]["redis"] == 0
    c.shutdown()


def test_disk_failure_other_tiers_serve_and_disk_readmitted(make_env, src, tmp_path, monkeypatch):
    c = reference.factory(make_env())
    disk = next(s for s in c._stores if s.name == "disk") if c._stores else None
    c.put(src, {"v": 1})
    disk = next(s for s in c._stores if s.name == "disk")
    real_put = disk.put
    monkeypatch.setattr(disk, "put", lambda *a: (_ for _ in ()).throw(reference.store.TierError("EIO")))
    f2 = tmp_path / "second"
    f2.write_bytes(b"2")
    assert c.put(str(f2), {"v": 2}) is True
    assert "disk" not in c.tiers_holding(str(f2)) and "database" in c.tiers_holding(str(f2))
    monkeypatch.setattr(disk, "put", real_put)
    for i in range(40):
        f = tmp_path / f"n{i}"
        f.write_bytes(b"n%d" % i)
        c.put(str(f), {"i": i})
    assert "disk" in c.tiers_holding(str(f)) and c.get_stats()["tier_health"]["disk"]["healthy"]
    c.shutdown()


def test_import_opens_no_socket_in_a_clean_environment():
    probe = (
        "import sys; ev=[]; sys.addaudithook(lambda e,a: ev.append(e) if e=='socket.connect' else None);"
        "import reference; c=reference.MetadataCache(); c.shutdown(); print(len(ev))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": "/nonexistent", "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "0", out.stderr


def test_use_after_shutdown_is_a_clear_error(make_env, src):
    c = reference.factory(make_env())
    c.shutdown()
    with pytest.raises(reference.CacheClosedError):
        c.get(src)
    c.shutdown()  # idempotent


def test_metadata_cache_defaults_construct_without_io(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    c = MetadataCache()
    assert not (tmp_path / "xdg").exists()
    c.shutdown()


def _store(cache, name):
    cache._start()
    return next(s for s in cache._stores if s.name == name)


def _two_instances(make_env, fake_redis_url, src):
    """A and B share Redis, the cache directory and the database; the entry is on disk and in the
    database only (Redis evicted it), so a get on B goes to disk and promotes into Redis."""
    env = make_env(redis_url=fake_redis_url)
    a, b = reference.factory(env), reference.factory(env)
    assert a.put(src, {"v": 1})
    _store(a, "redis").discard(store_key(a, src), None)
    return env, a, b


@pytest.mark.parametrize("moment", ["B promotes while A removes disk", "A invalidates while B promotes"])
def test_promotion_racing_another_instances_invalidate_never_resurrects(make_env, fake_redis_url, src, moment):
    """Found by the integration suite: B read disk, A's invalidate removed Redis, B's promotion put the
    entry back into the shared Redis, and after A's successful invalidate everyone was served it."""
    env, a, b = _two_instances(make_env, fake_redis_url, src)
    seen = []
    if moment == "B promotes while A removes disk":
        disk = _store(a, "disk")
        real_remove = disk.remove

        def remove_after_b_reads(*args):
            seen.append(b.get(src))
            return real_remove(*args)

        disk.remove = remove_after_b_reads
    else:
        redis_b = _store(b, "redis")
        real_put = redis_b.put

        def put_after_a_invalidates(*args):
            seen.append(a.invalidate(src))
            return real_put(*args)

        redis_b.put = put_after_a_invalidates
        seen.append(b.get(src))
    try:
        if moment == "B promotes while A removes disk":
            assert a.invalidate(src) is True
        assert seen[0] in (True, {"v": 1})  # overlapping the invalidate: the old value or a miss
        fresh = reference.factory(env)
        assert fresh.get(src) is None, f"resurrected in {fresh.tiers_holding(src)}"
        assert fresh.tiers_holding(src) == set()
        fresh.shutdown()
    finally:
        a.shutdown()
        b.shutdown()


def test_a_put_on_one_instance_reaches_the_others_memory(make_env, fake_redis_url, src):
    env = make_env(redis_url=fake_redis_url)
    a, b = reference.factory(env), reference.factory(env)
    b.config = b.config.with_changes(staleness_seconds=0.0)  # check the shared counter on every get
    try:
        assert a.put(src, {"v": 1}) and b.get(src) == {"v": 1}
        assert a.put(src, {"v": 2})
        assert b.get(src) == {"v": 2}
        assert b.put(src, {"v": 3}) and a.put(src, {"v": 4})  # b's own put must not hide a's
        assert b.get(src) == {"v": 4}
    finally:
        a.shutdown()
        b.shutdown()


@pytest.mark.parametrize("seed", range(6, 12))
def test_a_corrupted_sqlite_file_is_quarantined_and_the_database_tier_comes_back(make_env, tmp_path, seed):
    """Found by the chaos campaign: corrupt pages can make sqlite3 raise UnicodeDecodeError (seed 8 here),
    which escaped put() from the journal load at start and kept the database tier out for good."""
    import random

    from tiercheck.chaos.db_faults import SqliteCorruptPages

    env = make_env()
    db_path = env.database_url.removeprefix("sqlite:///")
    rng = random.Random(seed)
    cache = reference.factory(env)
    paths = []
    for i in range(rng.choice([5, 50, 300])):
        path = tmp_path / f"g{i}"
        path.write_bytes(b"g%d" % i)
        paths.append(str(path))
        cache.put(str(path), {"pad": "z" * rng.choice([50, 500, 3000])})
    SqliteCorruptPages(db_path, random.Random(seed)).inject()
    try:
        for path in paths[:20]:
            cache.get(path)
            cache.put(path, {"v": 1})
    finally:
        cache.shutdown()
    cache = reference.factory(env)
    try:
        probe = tmp_path / "probe"
        probe.write_bytes(b"probe")
        for _ in range(70):  # well past the breaker's longest backoff in operations (32)
            cache.put(str(probe), {"v": 3})
            cache.get(str(probe))
        assert "database" in cache.tiers_holding(str(probe))
    finally:
        cache.shutdown()


def test_invalidating_one_entry_keeps_the_others_in_memory(cache, src, tmp_path):
    """An instance's own bumps (one before a removal, one after) are not another instance's change."""
    other = tmp_path / "other.jpg"
    other.write_bytes(b"other")
    assert cache.put(src, {"keep": True}) and cache.put(str(other), {"drop": True})
    assert cache.invalidate(str(other)) and cache.invalidate(str(other), "free")
    assert cache.get(src) == {"keep": True}
    assert cache.get_stats()["memory_hits"] == 1


def _fail(*_args, **_kwargs):
    raise reference.store.TierError("injected")


@pytest.mark.parametrize("removal", ["invalidate", "clear_all"])
def test_a_journal_that_cannot_forget_a_repair_never_replays_it_over_newer_data(
    make_env, src, tmp_path, monkeypatch, removal
):
    """Found by the chaos campaign: the database missed a removal (journaled on disk), was repaired,
    but the read-only disk could not discard the record; after a restart the record was applied
    again and removed what had been stored since (a clear_all record: the whole namespace)."""
    from tiercheck.reference.database_tier import DatabaseTier
    from tiercheck.reference.disk_tier import DiskTier

    env = make_env()
    c = reference.factory(env)
    assert c.put(src, {"v": 1})
    monkeypatch.setattr(DatabaseTier, "remove", _fail)
    monkeypatch.setattr(DatabaseTier, "clear", _fail)
    if removal == "invalidate":
        assert c.invalidate(src) is True  # durable: the database owes the removal, recorded on disk
    else:
        c.clear_all()
    assert c.get_stats()["pending_repairs"]["database"] == 1
    monkeypatch.undo()  # the database is back ...
    monkeypatch.setattr(DiskTier, "journal_discard", _fail)  # ... and the disk turns read-only
    newer = tmp_path / "newer"
    newer.write_bytes(b"stored after the repair")
    for _ in range(40):  # the database is tried again within retry_max_ops, repaired first
        c.get(src)
    assert c.get_stats()["pending_repairs"]["database"] == 0
    assert c.put(str(newer), {"v": 2}) and "database" in c.tiers_holding(str(newer))
    c.shutdown()

    again = reference.factory(env)  # a restart: the stale record is still in the disk journal
    assert again.get(src) is None  # the removal itself holds
    assert again.get(str(newer)) == {"v": 2}
    assert "database" in again.tiers_holding(str(newer))
    again.shutdown()
    monkeypatch.undo()  # the disk is writable again: the next start forgets the record for good
    third = reference.factory(env)
    assert third.get(str(newer)) == {"v": 2}
    assert "database" in third.tiers_holding(str(newer))  # the database, used again, applied what it owed
    disk = next(s for s in third._stores if s.name == "disk")
    assert [t for t, _ in disk.journal_load() if t == "database"] == []
    third.shutdown()


def test_a_journal_unreadable_at_start_keeps_the_other_tiers_from_serving_until_it_is_read(
    make_env, src, tmp_path, monkeypatch
):
    """The disk failed an invalidation, recorded in the database's journal; a restart while the
    database cannot be read must not let the disk serve the invalidated entry (it did: E1)."""
    from tiercheck.reference.database_tier import DatabaseTier
    from tiercheck.reference.disk_tier import DiskTier

    env = make_env()
    c = reference.factory(env)
    other = tmp_path / "other"
    other.write_bytes(b"another file")
    assert c.put(src, {"v": 1}) and c.put(str(other), {"v": "other"})
    monkeypatch.setattr(DiskTier, "remove", _fail)
    assert c.invalidate(src) is True  # durable: the removal the disk owes is in the database journal
    c.shutdown()
    monkeypatch.undo()

    monkeypatch.setattr(DatabaseTier, "journal_load", _fail)  # the database is down at the restart
    monkeypatch.setattr(DatabaseTier, "get", _fail)
    again = reference.factory(env)
    assert again.get(src) is None  # the disk still holds v1, but may not serve it yet
    assert again.get(str(other)) is None  # nor anything else: it cannot know which removals it owes
    assert again.put(str(other), {"v": "newer"}) and "disk" in again.tiers_holding(str(other))  # writes go on
    monkeypatch.undo()  # the database is back: its journal is read, the removal applied, the disk serves
    for _ in range(40):  # within retry_max_ops the database is tried again
        assert again.get(src) is None
    assert "disk" not in again.tiers_holding(src)
    again.memory.clear()
    assert again.get(str(other)) == {"v": "newer"}
    assert again.get_stats()["disk_hits"] == 1
    again.shutdown()


def test_a_sqlite_file_found_corrupt_at_start_takes_the_next_put(make_env, src, tmp_path):
    """The read of the journal at start finds the corruption and replaces the file; that failure must
    not back the database tier off, or the fresh file misses the next writes (seen in a campaign)."""
    env = make_env()
    cache = reference.factory(env)
    assert cache.put(src, {"v": 1})
    cache.shutdown()
    db_path = env.database_url.removeprefix("sqlite:///")
    with open(db_path, "r+b") as f:
        f.write(b"\xff" * 100)  # the header: "file is not a database"
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(db_path + suffix)
    again = reference.factory(env)
    try:
        other = tmp_path / "other"
        other.write_bytes(b"stored after the restart")
        assert again.put(str(other), {"v": 2})
        assert "database" in again.tiers_holding(str(other))
    finally:
        again.shutdown()


def test_a_read_overlapping_a_put_never_leaves_the_replaced_value_in_memory(make_env, src):
    """Found by the chaos campaign (seed 3246577917, round 7): a coherence message dropped the put's own
    memory entry while the put was still writing the lower tiers; a get in the same instance read the
    value being replaced from a tier not yet written and promoted it into memory, where every later get of
    that instance found it — after the put had returned."""
    cache = reference.factory(make_env())
    try:
        assert cache.put(src, {"v": 1})
        disk = _store(cache, "disk")
        real_put, seen = disk.put, []

        def put_after_a_message_and_a_read(*args):
            if not seen:
                key = store_key(cache, src)
                cache.memory.remove(key.content)  # what a message about this content does (coherence.py)
                seen.append(cache.get(src))  # overlaps the put: the old value is allowed here
            return real_put(*args)

        disk.put = put_after_a_message_and_a_read
        assert cache.put(src, {"v": 2})
        assert seen == [{"v": 1}]
        assert cache.get(src) == {"v": 2}
    finally:
        cache.shutdown()


def test_a_put_a_tier_refuses_is_never_served_not_even_while_it_runs(make_env, src):
    """Found by P4's thread history on the reference without a disk tier (a neutrality probe of this stop): the put
    wrote memory first and learned from the store tiers only afterwards that a newer write had won there; a get in
    between served the losing value, and gets after the put the winner again (no linearization)."""
    cache = reference.factory(make_env())
    try:
        assert cache.put(src, {"v": 1})
        disk, database = _store(cache, "disk"), _store(cache, "database")
        real_put, seen = database.put, []

        def put_after_a_read(*args):
            seen.append(cache.get(src))
            return real_put(*args)

        disk.put = lambda *args: False  # refused: this tier holds a newer write
        database.put = put_after_a_read
        cache.put(src, {"v": 2})
        assert seen and seen[0] != {"v": 2}
        assert cache.get(src) != {"v": 2}
    finally:
        cache.shutdown()
