"""Redis, disk and database tiers on their own: the StoreTier interface, on fake and real servers."""

from __future__ import annotations

import itertools
import os
import sqlite3

import pytest
import redis

from tiercheck.reference import db_backends
from tiercheck.reference.codec import Codec, Payload
from tiercheck.reference.database_tier import DatabaseTier
from tiercheck.reference.disk_tier import DiskTier
from tiercheck.reference.keys import CacheKey
from tiercheck.reference.redis_tier import RedisTier
from tiercheck.reference.store import ALL, Removal, TierError

K1 = CacheKey("a1" * 32, "b1" * 16)
K2 = CacheKey("a1" * 32, "b2" * 16)
K3 = CacheKey("c3" * 32, "b1" * 16)
V = itertools.count(1_000)  # versions, increasing like a VersionClock's


def exercise(tier) -> None:
    """The behaviour every store tier shares."""
    assert tier.get(K1) is None
    tier.put(K1, b"one", next(V), 100.0, 0.0)
    tier.put(K2, b"two", next(V), 100.0, 0.0)
    tier.put(K3, b"three", next(V), 5.0, 0.0)
    assert (tier.get(K1), tier.get(K2), tier.get(K3)) == (b"one", b"two", b"three")
    tier.put(K1, b"one again", next(V), 100.0, 0.0)
    assert tier.get(K1) == b"one again"
    assert sorted(map(str, tier.keys())) == sorted(map(str, [K1, K2, K3]))
    assert tier.purge(lambda key, blob: blob == b"three") == 1 and tier.get(K3) is None
    tier.remove(K1.content, K1.variant, next(V))
    assert tier.get(K1) is None and tier.get(K2) == b"two"
    tier.put(K1, b"one", next(V), 100.0, 0.0)
    tier.remove(K1.content, None, next(V))
    assert tier.get(K1) is None and tier.get(K2) is None
    tier.put(K3, b"three", next(V), 5.0, 0.0)
    tier.clear(next(V))
    assert list(tier.keys()) == []
    check_fence(tier)


def entry(key: CacheKey, version: int) -> bytes:
    return Codec(0, 1 << 20).encode(str(key), Payload(b'{"v": %d}' % version, 0), 100.0, version)


def check_fence(tier) -> None:
    """A write lands only if newer than the key's entry, its tombstones and the last clear: a write
    that arrives late (a timed-out promotion, a put racing an invalidate) can never bring back what a
    later removal took away, and two instances' concurrent puts leave the same winner everywhere."""
    base = next(V) + 100
    for k in (K1, K2, K3):
        tier.discard(k, None)
    assert tier.put(K1, entry(K1, base + 5), base + 5, 100.0, 0.0)
    assert not tier.put(K1, entry(K1, base + 3), base + 3, 100.0, 0.0)  # older than what it holds
    assert tier.get(K1) == entry(K1, base + 5)
    tier.remove(K1.content, K1.variant, base + 7)
    assert not tier.put(K1, entry(K1, base + 6), base + 6, 100.0, 0.0)  # late: older than the removal
    assert tier.get(K1) is None
    assert tier.put(K1, entry(K1, base + 8), base + 8, 100.0, 0.0)  # a later put wins
    tier.remove(K1.content, None, base + 9)  # every variant of the content
    assert not tier.put(K2, entry(K2, base + 8), base + 8, 100.0, 0.0) and tier.get(K1) is None
    assert tier.put(K3, entry(K3, base + 10), base + 10, 100.0, 0.0)
    tier.remove(K3.content, K3.variant, base + 2)  # an old removal applied again: newer entry kept
    assert tier.get(K3) == entry(K3, base + 10)
    tier.discard(K3, base + 1)  # not the version it holds: kept
    assert tier.get(K3) == entry(K3, base + 10)
    tier.clear(base + 20)
    assert not tier.put(K3, entry(K3, base + 15), base + 15, 100.0, 0.0) and tier.get(K3) is None
    assert tier.put(K3, entry(K3, base + 21), base + 21, 100.0, 0.0)
    tier.discard(K3, base + 21)
    assert tier.get(K3) is None
    while next(V) < base + 30:  # later writes of the calling test are newer than these
        pass


def check_corrupt_discard(tier) -> None:
    """A corrupt entry a reader found goes only while it is still there: a put that replaced it since stays
    (dropped, its slot would take a late older write, e.g. a promotion of what that put replaced)."""
    version = next(V)
    assert tier.put(K2, entry(K2, version), version, 100.0, 0.0)
    tier.discard(K2, None, b"TCE2 the corrupt bytes a reader found before that put")
    assert tier.get(K2) == entry(K2, version)
    tier.discard(K2, None, entry(K2, version))
    assert tier.get(K2) is None


def test_disk_tier(tmp_path):
    tier = DiskTier(str(tmp_path), max_bytes=1 << 20)
    exercise(tier)
    check_corrupt_discard(tier)
    tier.put(K1, b"x", next(V), 9.0, 0.0)
    names = [p.name for p in (tmp_path / "entries").rglob("*")]
    assert all(set(n) <= set("0123456789abcdef") for n in names), names
    assert not [n for n in names if n.startswith(".tmp")]


def test_disk_budget_enforced_after_every_put(tmp_path):
    tier = DiskTier(str(tmp_path), max_bytes=1000)
    keys = [CacheKey(f"{i:064x}", "ab" * 16) for i in range(20)]
    for k in keys:
        tier.put(k, b"z" * 300, next(V), 9.0, 0.0)
        on_disk = sum(p.stat().st_size for p in (tmp_path / "entries").rglob("*") if p.is_file())
        assert on_disk <= 1000
    assert tier.get(keys[-1]) is not None and tier.get(keys[0]) is None  # oldest evicted first
    tier.put(keys[0], b"z" * 2000, next(V), 9.0, 0.0)  # larger than the budget: not stored
    assert tier.get(keys[0]) is None


def test_disk_directory_removed_heals(tmp_path):
    import shutil

    tier = DiskTier(str(tmp_path / "c"), max_bytes=1 << 20)
    tier.put(K1, b"one", next(V), 9.0, 0.0)
    shutil.rmtree(tmp_path / "c")
    assert tier.get(K1) is None
    tier.put(K1, b"again", next(V), 9.0, 0.0)
    assert tier.get(K1) == b"again"


R1 = Removal(K1.content, K1.variant, 10)
R2 = Removal(K2.content, ALL, 11)
R3 = Removal(ALL, ALL, 12)
R4 = Removal(K1.content, K1.variant, 15)  # a later removal of the same key (another instance)


def owed(journal) -> dict:
    """What a journal says each tier owes: the newest version per (tier, content, variant)."""
    view: dict = {}
    for tier, r in journal.journal_load():
        slot = (tier, r.content, r.variant)
        view[slot] = max(view.get(slot, 0), r.version)
    return view


def check_journal(journal) -> None:
    for record in (R1, R2, R4):
        journal.journal_add("redis", record)
    journal.journal_add("redis", R1)  # idempotent
    journal.journal_add("disk", R3)
    assert owed(journal) == {
        ("redis", K1.content, K1.variant): 15,
        ("redis", K2.content, ALL): 11,
        ("disk", ALL, ALL): 12,
    }
    journal.journal_discard("redis", [R1, R2])  # R4 is newer than what was applied: it stays
    journal.journal_discard("disk", [R1])  # another tier's record stays
    assert owed(journal) == {("redis", K1.content, K1.variant): 15, ("disk", ALL, ALL): 12}


def test_disk_journal(tmp_path):
    check_journal(DiskTier(str(tmp_path), max_bytes=1 << 20))
    reopened = DiskTier(str(tmp_path), max_bytes=1 << 20)  # durable: a new instance finds the records left
    assert owed(reopened) == {("redis", K1.content, K1.variant): 15, ("disk", ALL, ALL): 12}


def sqlite_tier(tmp_path, ns="ns") -> DatabaseTier:
    return DatabaseTier(f"sqlite:///{tmp_path}/db.sqlite3", ns, str(tmp_path / "db.sqlite3"), 0.2)


def test_sqlite_tier(tmp_path):
    tier = sqlite_tier(tmp_path)
    exercise(tier)
    check_corrupt_discard(tier)
    tier.close()


@pytest.mark.parametrize("hostile", ["text", 7, 2.5])
def test_sqlite_a_corrupt_value_that_is_not_bytes_is_discarded(tmp_path, hostile):
    """No put writes anything but bytes, so such a value is still the corrupt one the reader found."""
    tier = sqlite_tier(tmp_path)
    version = next(V)
    tier.put(K2, entry(K2, version), version, 100.0, 0.0)
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        conn.execute("UPDATE tc_entries SET blob = ? WHERE variant = ?", (hostile, K2.variant))
    assert tier.get(K2) == b""  # reads as a corrupt entry
    tier.discard(K2, None, b"")
    assert tier.get(K2) is None and tier.keys() is not None and K2 not in list(tier.keys())
    tier.close()


def test_sqlite_namespaces_isolate(tmp_path):
    a, b = sqlite_tier(tmp_path, "a"), sqlite_tier(tmp_path, "b")
    a.put(K1, b"a", next(V), 9.0, 0.0)
    assert b.get(K1) is None
    b.clear(next(V))
    assert a.get(K1) == b"a"


def _delete_sqlite_files(tmp_path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{tmp_path}/db.sqlite3{suffix}"):
            os.unlink(f"{tmp_path}/db.sqlite3{suffix}")


def test_sqlite_file_deleted_is_recreated(tmp_path, monkeypatch):
    """A write never lands in a deleted file; a read notices within db_backends._RECHECK_SECONDS."""
    tier = sqlite_tier(tmp_path)
    tier.put(K1, b"one", next(V), 9.0, 0.0)
    _delete_sqlite_files(tmp_path)
    tier.put(K2, b"two", next(V), 9.0, 0.0)
    assert tier.get(K1) is None and tier.get(K2) == b"two" and os.path.exists(f"{tmp_path}/db.sqlite3")
    monkeypatch.setattr(db_backends, "_RECHECK_SECONDS", 0.0)  # the read window elapsed
    _delete_sqlite_files(tmp_path)
    assert tier.get(K2) is None
    tier.put(K1, b"three", next(V), 9.0, 0.0)
    assert tier.get(K1) == b"three" and os.path.exists(f"{tmp_path}/db.sqlite3")


def test_sqlite_corrupt_file_is_quarantined(tmp_path):
    tier = sqlite_tier(tmp_path)
    tier.put(K1, b"one", next(V), 9.0, 0.0)
    tier.close()
    with open(f"{tmp_path}/db.sqlite3", "r+b") as f:
        f.write(os.urandom(4096))
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{tmp_path}/db.sqlite3{suffix}"):
            os.unlink(f"{tmp_path}/db.sqlite3{suffix}")
    with pytest.raises(TierError):
        tier.get(K1)
    assert tier.get(K1) is None  # a fresh file
    tier.put(K1, b"new", next(V), 9.0, 0.0)
    assert tier.get(K1) == b"new"


def test_sqlite_locked_longer_than_busy_timeout(tmp_path):
    tier = sqlite_tier(tmp_path)
    tier.put(K1, b"one", next(V), 9.0, 0.0)
    blocker = sqlite3.connect(f"{tmp_path}/db.sqlite3", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(TierError):
        tier.put(K2, b"two", next(V), 9.0, 0.0)
    blocker.execute("ROLLBACK")
    blocker.close()
    tier.put(K2, b"two", next(V), 9.0, 0.0)
    assert tier.get(K2) == b"two"


def test_sqlite_sql_injection_in_namespace_is_data(tmp_path):
    tier = sqlite_tier(tmp_path, "x'; DROP TABLE tc_entries; --")
    tier.put(K1, b"one", next(V), 9.0, 0.0)
    assert tier.get(K1) == b"one"


def test_database_journal_and_floor(tmp_path):
    tier = sqlite_tier(tmp_path)
    check_journal(tier)
    assert owed(sqlite_tier(tmp_path)) == {("redis", K1.content, K1.variant): 15, ("disk", ALL, ALL): 12}
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
        check_corrupt_discard(tier)
        check_journal(tier)
        check_floor(tier)
    finally:
        tier.close()


def test_redis_tier(any_redis_url, namespace):
    tier = RedisTier(any_redis_url, namespace, 0.5, 0.5)
    try:
        exercise(tier)
        check_corrupt_discard(tier)
        counter = tier.remove(K3.content, None, next(V))  # every removal moves the counter, atomically
        assert counter >= 1 and tier.remove(K3.content, None, next(V)) == counter + 1
        tier.put(K1, b"one", next(V), 9.0, 0.0)
        tier.floor = counter + 1
        assert tier.check_floor() is False and tier.get(K1) == b"one"  # not behind: kept
        tier.floor = counter + 5
        assert tier.check_floor() is True and tier.get(K1) is None  # behind the floor: purged, lifted
        assert tier.check_floor() is False
    finally:
        tier.close()


def test_redis_namespace_with_glob_characters(any_redis_url):
    a = RedisTier(any_redis_url, "ns*[x]?", 0.5, 0.5)
    b = RedisTier(any_redis_url, "ns-other", 0.5, 0.5)
    try:
        b.put(K1, b"b", next(V), 9.0, 0.0)
        a.put(K1, b"a", next(V), 9.0, 0.0)
        a.clear(next(V))
        assert b.get(K1) == b"b" and a.get(K1) is None
    finally:
        b.clear(next(V))
        a.close()
        b.close()


@pytest.mark.real_redis
def test_redis_restart_with_old_data_is_purged(redis_server, namespace):
    from tiercheck.integration.servers import restore_redis, snapshot_redis

    tier = RedisTier(redis_server.url, namespace, 0.5, 0.5)
    try:
        tier.put(K1, b"old", next(V), 9.0, 0.0)
        snapshot = snapshot_redis(redis_server)
        tier.floor = tier.remove(K1.content, None, next(V))  # what the cache's journals recorded
        restore_redis(redis_server, snapshot)  # the server comes back holding K1 again
        assert redis.Redis.from_url(redis_server.url).hget(f"{namespace}:e:{K1.content}", K1.variant) == b"old"
        with pytest.raises(TierError, match="below the floor"):  # every new connection compares
            tier.get(K1)
        assert tier.floor_unchecked and tier.check_floor() is True
        assert tier.get(K1) is None
        assert redis.Redis.from_url(redis_server.url).exists(f"{namespace}:e:{K1.content}") == 0
        # The purge lifted the counter to the journals' floor: a new instance starting from those
        # journals must not take the clean server for an old one and purge what was stored since.
        tier.put(K2, b"new", next(V), 9.0, 0.0)
        assert tier.check_floor() is False and tier.get(K2) == b"new"
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
    tier.put(K1, b"one", next(V), 9.0, 0.0)
    tier.close()
    path = str(tmp_path / "db.sqlite3")
    with open(path, "r+b") as f:
        f.seek(44)  # the header's schema format number: 1 to 4; anything higher is "unsupported"
        f.write((9).to_bytes(4, "big"))
    tier = sqlite_tier(tmp_path)
    with pytest.raises(TierError, match="unsupported file format"):
        tier.get(K1)
    assert tier.get(K1) is None  # moved aside; a fresh file serves (a miss, never the corrupt data)
    tier.put(K1, b"two", next(V), 9.0, 0.0)
    assert tier.get(K1) == b"two"
    assert any(".corrupt-" in name for name in os.listdir(tmp_path))


@pytest.mark.parametrize("prefix", ["", "/"])  # "/": the path sqlite:////tmp/x gives, //tmp/x
def test_sqlite_quarantine_carries_the_repair_journal_to_the_new_file(tmp_path, prefix):
    """A corrupt file is moved aside and a fresh one started; the removals its journal held for other
    tiers (and the Redis floor) are copied over, else a restart could let those tiers serve old data."""
    path = prefix + str(tmp_path / "db.sqlite3")
    tier = DatabaseTier(f"sqlite:///{path}", "ns", path, 0.2)
    tier.put(K1, b"entry", next(V), 9.0, 0.0)
    tier.journal_add("disk", R1)
    tier.floor_raise(42)
    tier._backend._quarantine()  # what reading a damaged page does (the damage itself: tests above)
    assert tier.get(K1) is None  # entries are not carried over: the fresh file starts empty
    assert tier.journal_load() == [("disk", R1)]  # the journal and the floor are carried over
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


def test_disk_bookkeeping_files_are_empty(tmp_path):
    """Tombstones, the clear mark, journal records and the floor are empty marker files: the only
    non-empty files under cache_dir are entries (a harness that alters files finds only entries)."""
    tier = DiskTier(str(tmp_path), max_bytes=1 << 20)
    tier.put(K1, entry(K1, next(V)), next(V), 100.0, 0.0)
    tier.remove(K2.content, K2.variant, next(V))
    tier.remove(K3.content, None, next(V))
    tier.clear(next(V))
    tier.put(K3, entry(K3, next(V)), next(V), 100.0, 0.0)
    tier.journal_add("redis", R1)
    tier.floor_raise(7)
    non_empty = [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size]
    assert [str(p) for p in non_empty] == [str(tier._path(K3))]


@pytest.mark.parametrize("hostile", [-1, 2**63 - 1, "garbage", 3.25])
@pytest.mark.parametrize("tombstone", ["content", "clear"])
def test_sqlite_a_tombstone_of_unknown_version_never_leaves_a_superseded_entry_served(tmp_path, hostile, tombstone):
    """Chaos seed 3186246040, round 43: a hostile row gave a tombstone a version that orders nothing, so the
    tier refused every newer put (the removal wins) but kept serving the entry the tombstone covered:
    after the newer value left the faster tiers, the database served the superseded one."""
    tier = sqlite_tier(tmp_path)
    if tombstone == "content":
        tier.remove(K1.content, None, next(V))
    else:
        tier.clear(next(V))
    old = next(V)
    assert tier.put(K1, entry(K1, old), old, 100.0, 0.0) and tier.get(K1) == entry(K1, old)
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:  # the hostile row: the tombstone's version
        conn.execute("UPDATE tc_entries SET version = ? WHERE variant = '*'", (hostile,))
    new = next(V)
    assert not tier.put(K1, entry(K1, new), new, 100.0, 0.0)  # refused: the removal wins
    assert tier.get(K1) is None  # never the older entry the newer put replaced elsewhere
    tier.close()
