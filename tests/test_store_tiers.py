"""Redis, disk and database tiers on their own: the StoreTier interface, on fake and real servers."""

from __future__ import annotations

import os
import sqlite3

import pytest
import redis

from tiercheck.reference.database_tier import DatabaseTier
from tiercheck.reference.disk_tier import DiskTier
from tiercheck.reference.keys import CacheKey
from tiercheck.reference.redis_tier import RedisTier
from tiercheck.reference.store import ALL, REPAIR_MARK_SECONDS, Repair, TierError

K1 = CacheKey("a1" * 32, "b1" * 16)
K2 = CacheKey("a1" * 32, "b2" * 16)
K3 = CacheKey("c3" * 32, "b1" * 16)


def exercise(tier) -> None:
    """The behaviour every store tier shares."""
    assert tier.get(K1) is None
    tier.put(K1, b"one", 100.0, 0.0)
    tier.put(K2, b"two", 100.0, 0.0)
    tier.put(K3, b"three", 5.0, 0.0)
    assert (tier.get(K1), tier.get(K2), tier.get(K3)) == (b"one", b"two", b"three")
    tier.put(K1, b"one again", 100.0, 0.0)
    assert tier.get(K1) == b"one again"
    assert sorted(map(str, tier.keys())) == sorted(map(str, [K1, K2, K3]))
    assert tier.purge(lambda key, blob: blob == b"three") == 1 and tier.get(K3) is None
    tier.remove(K1.content, K1.variant)
    assert tier.get(K1) is None and tier.get(K2) == b"two"
    tier.put(K1, b"one", 100.0, 0.0)
    tier.remove(K1.content)
    assert tier.get(K1) is None and tier.get(K2) is None
    tier.put(K3, b"three", 5.0, 0.0)
    tier.clear()
    assert list(tier.keys()) == []


def test_disk_tier(tmp_path):
    tier = DiskTier(str(tmp_path), max_bytes=1 << 20)
    exercise(tier)
    tier.put(K1, b"x", 9.0, 0.0)
    names = [p.name for p in (tmp_path / "entries").rglob("*")]
    assert all(set(n) <= set("0123456789abcdef") for n in names), names
    assert not [n for n in names if n.startswith(".tmp")]


def test_disk_budget_enforced_after_every_put(tmp_path):
    tier = DiskTier(str(tmp_path), max_bytes=1000)
    keys = [CacheKey(f"{i:064x}", "ab" * 16) for i in range(20)]
    for k in keys:
        tier.put(k, b"z" * 300, 9.0, 0.0)
        on_disk = sum(p.stat().st_size for p in (tmp_path / "entries").rglob("*") if p.is_file())
        assert on_disk <= 1000
    assert tier.get(keys[-1]) is not None and tier.get(keys[0]) is None  # oldest evicted first
    tier.put(keys[0], b"z" * 2000, 9.0, 0.0)  # larger than the budget: not stored
    assert tier.get(keys[0]) is None


def test_disk_directory_removed_heals(tmp_path):
    import shutil

    tier = DiskTier(str(tmp_path / "c"), max_bytes=1 << 20)
    tier.put(K1, b"one", 9.0, 0.0)
    shutil.rmtree(tmp_path / "c")
    assert tier.get(K1) is None
    tier.put(K1, b"again", 9.0, 0.0)
    assert tier.get(K1) == b"again"


R1 = Repair(K1.content, K1.variant, "0a" * 16)
R2 = Repair(K2.content, ALL, "0b" * 16)
R3 = Repair(ALL, ALL, "0c" * 16)
R4 = Repair(K1.content, K1.variant, "0d" * 16)  # the same removal, recorded by another instance


def check_journal(journal) -> None:
    """Records are kept per rid, survive a new instance, and are discarded one by one."""
    for record in (R1, R2, R4):
        journal.journal_add("redis", record)
    journal.journal_add("redis", R1)  # idempotent
    journal.journal_add("disk", R3)
    assert sorted(journal.journal_load()) == sorted([("redis", R1), ("redis", R2), ("redis", R4), ("disk", R3)])
    journal.journal_discard("redis", [R1, R2])
    journal.journal_discard("disk", [R1])  # another tier's record of the same rid stays
    assert sorted(journal.journal_load()) == sorted([("redis", R4), ("disk", R3)])


def check_repair_marks(tier) -> None:
    """A tier remembers which journal records it applied, for REPAIR_MARK_SECONDS."""
    rids = {R1.rid, R2.rid, R3.rid}
    assert tier.repairs_applied(rids) == set()
    tier.mark_repaired([R1.rid, R2.rid], 1000.0)
    assert tier.repairs_applied(rids) == {R1.rid, R2.rid}
    tier.clear()  # the marks are not entries: clear_all keeps them
    tier.mark_repaired([R3.rid], 1000.0 + REPAIR_MARK_SECONDS - 1)
    assert tier.repairs_applied(rids) == rids
    tier.mark_repaired([], 1001.0 + REPAIR_MARK_SECONDS)  # marks older than the retention go
    assert tier.repairs_applied(rids) == {R3.rid}
    assert tier.repairs_applied([]) == set()


def test_disk_journal(tmp_path):
    check_journal(DiskTier(str(tmp_path), max_bytes=1 << 20))
    check_repair_marks(DiskTier(str(tmp_path), max_bytes=1 << 20))
    reopened = DiskTier(str(tmp_path), max_bytes=1 << 20)  # durable: a new instance finds the records left
    assert sorted(reopened.journal_load()) == sorted([("redis", R4), ("disk", R3)])


def sqlite_tier(tmp_path, ns="ns") -> DatabaseTier:
    return DatabaseTier(f"sqlite:///{tmp_path}/db.sqlite3", ns, str(tmp_path / "db.sqlite3"), 0.2)


def test_sqlite_tier(tmp_path):
    tier = sqlite_tier(tmp_path)
    exercise(tier)
    tier.close()


def test_sqlite_namespaces_isolate(tmp_path):
    a, b = sqlite_tier(tmp_path, "a"), sqlite_tier(tmp_path, "b")
    a.put(K1, b"a", 9.0, 0.0)
    assert b.get(K1) is None
    b.clear()
    assert a.get(K1) == b"a"


def test_sqlite_file_deleted_is_recreated(tmp_path):
    tier = sqlite_tier(tmp_path)
    tier.put(K1, b"one", 9.0, 0.0)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{tmp_path}/db.sqlite3{suffix}"):
            os.unlink(f"{tmp_path}/db.sqlite3{suffix}")
    assert tier.get(K1) is None
    tier.put(K1, b"two", 9.0, 0.0)
    assert tier.get(K1) == b"two" and os.path.exists(f"{tmp_path}/db.sqlite3")


def test_sqlite_corrupt_file_is_quarantined(tmp_path):
    tier = sqlite_tier(tmp_path)
    tier.put(K1, b"one", 9.0, 0.0)
    tier.close()
    with open(f"{tmp_path}/db.sqlite3", "r+b") as f:
        f.write(os.urandom(4096))
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{tmp_path}/db.sqlite3{suffix}"):
            os.unlink(f"{tmp_path}/db.sqlite3{suffix}")
    with pytest.raises(TierError):
        tier.get(K1)
    assert tier.get(K1) is None  # a fresh file
    tier.put(K1, b"new", 9.0, 0.0)
    assert tier.get(K1) == b"new"


def test_sqlite_locked_longer_than_busy_timeout(tmp_path):
    tier = sqlite_tier(tmp_path)
    tier.put(K1, b"one", 9.0, 0.0)
    blocker = sqlite3.connect(f"{tmp_path}/db.sqlite3", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(TierError):
        tier.put(K2, b"two", 9.0, 0.0)
    blocker.execute("ROLLBACK")
    blocker.close()
    tier.put(K2, b"two", 9.0, 0.0)
    assert tier.get(K2) == b"two"


def test_sqlite_sql_injection_in_namespace_is_data(tmp_path):
    tier = sqlite_tier(tmp_path, "x'; DROP TABLE tc_entries; --")
    tier.put(K1, b"one", 9.0, 0.0)
    assert tier.get(K1) == b"one"


def test_database_journal_and_generation(tmp_path):
    tier = sqlite_tier(tmp_path)
    check_journal(tier)
    check_repair_marks(tier)
    assert sorted(sqlite_tier(tmp_path).journal_load()) == sorted([("redis", R4), ("disk", R3)])  # durable
    assert tier.read_generation() == ""
    token = tier.bump_generation()
    assert tier.read_generation() == token != tier.bump_generation()
    assert [tier.bump_generation() for _ in range(2)] == ["3", "4"]  # a counter: gaps show others' changes
    check_floor(tier)


def check_floor(journal):
    assert journal.floor_get() == 0
    journal.floor_raise(7)
    journal.floor_raise(5)  # never lowered
    assert journal.floor_get() == 7
    journal.floor_raise(9)
    assert journal.floor_get() == 9


def test_disk_floor(tmp_path):
    check_floor(DiskTier(str(tmp_path / "cache"), 1 << 20))


@pytest.mark.real_postgres
def test_postgres_tier(postgres_server, namespace):
    tier = DatabaseTier(postgres_server.url, namespace, None, 1.0)
    try:
        exercise(tier)
        check_journal(tier)
        check_repair_marks(tier)
        assert tier.read_generation() != tier.bump_generation()
        check_floor(tier)
    finally:
        tier.close()


def test_redis_tier(any_redis_url, namespace):
    tier = RedisTier(any_redis_url, namespace, 0.5, 0.5)
    try:
        exercise(tier)
        assert tier.read_generation() == ""
        token = tier.bump_generation()
        assert tier.read_generation() == token
        tier.put(K1, b"one", 9.0, 0.0)
        assert tier.catch_up(1) is False and tier.get(K1) == b"one"  # not behind: kept
        assert tier.catch_up(5) is True and tier.get(K1) is None  # behind the floor: purged, lifted
        assert tier.read_generation() == "5" and tier.catch_up(5) is False
        check_repair_marks(tier)
    finally:
        tier.close()


def test_redis_namespace_with_glob_characters(any_redis_url):
    a = RedisTier(any_redis_url, "ns*[x]?", 0.5, 0.5)
    b = RedisTier(any_redis_url, "ns-other", 0.5, 0.5)
    try:
        b.put(K1, b"b", 9.0, 0.0)
        a.put(K1, b"a", 9.0, 0.0)
        a.clear()
        assert b.get(K1) == b"b" and a.get(K1) is None
    finally:
        b.clear()
        a.close()
        b.close()


@pytest.mark.real_redis
def test_redis_restart_with_old_data_is_purged(redis_server, namespace):
    from tiercheck.integration.servers import restore_redis, snapshot_redis

    tier = RedisTier(redis_server.url, namespace, 0.5, 0.5)
    try:
        tier.put(K1, b"old", 9.0, 0.0)
        snapshot = snapshot_redis(redis_server)
        tier.remove(K1.content)
        tier.floor = int(tier.bump_generation()) + 40  # what the cache's journals recorded
        restore_redis(redis_server, snapshot)  # the server comes back holding K1 again
        assert redis.Redis.from_url(redis_server.url).hget(f"{namespace}:e:{K1.content}", K1.variant) == b"old"
        with pytest.raises(TierError, match="restarted"):
            tier.get(K1)
        assert tier.get(K1) is None
        assert redis.Redis.from_url(redis_server.url).exists(f"{namespace}:e:{K1.content}") == 0
        # The purge lifted the counter to the journals' floor: a new instance starting from those
        # journals must not take the clean server for an old one and purge what was stored since.
        tier.put(K2, b"new", 9.0, 0.0)
        assert int(tier.read_generation()) >= tier.floor
        assert tier.catch_up(tier.floor) is False and tier.get(K2) == b"new"
    finally:
        tier.close()


def test_redis_down_raises_tier_error(fake_redis_server, namespace):
    tier = RedisTier(fake_redis_server.url, namespace, 0.2, 0.2)
    try:
        fake_redis_server.stop()
        with pytest.raises(TierError):
            tier.get(K1)
    finally:
        fake_redis_server.start()
        tier.close()


def test_sqlite_with_an_unsupported_file_format_is_quarantined(tmp_path):
    """Found by the chaos campaign: a corrupted header byte reads as OperationalError("unsupported file
    format"), which was not recognised as corruption, so the database tier never came back."""
    tier = sqlite_tier(tmp_path)
    tier.put(K1, b"one", 9.0, 0.0)
    tier.close()
    path = str(tmp_path / "db.sqlite3")
    with open(path, "r+b") as f:
        f.seek(44)  # the header's schema format number: 1 to 4; anything higher is "unsupported"
        f.write((9).to_bytes(4, "big"))
    tier = sqlite_tier(tmp_path)
    with pytest.raises(TierError, match="unsupported file format"):
        tier.get(K1)
    assert tier.get(K1) is None  # moved aside; a fresh file serves (a miss, never the corrupt data)
    tier.put(K1, b"two", 9.0, 0.0)
    assert tier.get(K1) == b"two"
    assert any(".corrupt-" in name for name in os.listdir(tmp_path))


@pytest.mark.parametrize("prefix", ["", "/"])  # "/": the path sqlite:////tmp/x gives, //tmp/x
def test_sqlite_quarantine_carries_the_repair_journal_to_the_new_file(tmp_path, prefix):
    """A corrupt file is moved aside and a fresh one started; the removals its journal held for other
    tiers (and the Redis floor) are copied over, else a restart could let those tiers serve old data."""
    path = prefix + str(tmp_path / "db.sqlite3")
    tier = DatabaseTier(f"sqlite:///{path}", "ns", path, 0.2)
    tier.put(K1, b"entry", 9.0, 0.0)
    tier.journal_add("disk", R1)
    tier.mark_repaired([R2.rid], 1000.0)
    tier.floor_raise(42)
    tier._backend._quarantine()  # what reading a damaged page does (the damage itself: tests above)
    assert tier.get(K1) is None  # entries are not carried over: the fresh file starts empty
    assert tier.journal_load() == [("disk", R1)]
    assert tier.repairs_applied([R1.rid, R2.rid]) == {R2.rid}
    assert tier.floor_get() == 42
    moved = [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len({name.split("-wal")[0].split("-shm")[0] for name in moved}) == 1  # one name, WAL beside it


def test_sqlite_quarantine_of_an_unreadable_file_starts_empty(tmp_path):
    tier = sqlite_tier(tmp_path)
    tier.journal_add("disk", R1)
    tier.close()
    with open(tmp_path / "db.sqlite3", "r+b") as f:
        f.write(b"\0" * 100)  # the header: nothing can be read
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"db.sqlite3{suffix}").unlink(missing_ok=True)
    again = sqlite_tier(tmp_path)
    with pytest.raises(TierError):
        again.journal_load()
    assert again.journal_load() == []  # quarantined, logged as lost, and a fresh file serves
