"""Self-tests of the harness's layout-neutral backend probe (properties/backend_probe.py).

They exercise no implementation: they check that planting and corruption (E2, E4) reach every Redis
type, every file and every row and column, and that a rewrite counts only when it really changed the
stored value. Harness self-tests: marked `selftest`.
"""

from __future__ import annotations

import sqlite3

import pytest
import redis

from tiercheck.contract import Env
from tiercheck.properties.backend_probe import capture, changed, everything, rewrite

pytestmark = pytest.mark.selftest


def env_for(tmp_path, redis_url: str | None, namespace: str) -> Env:
    (tmp_path / "cache" / "sub").mkdir(parents=True)
    return Env(
        cache_dir=str(tmp_path / "cache"),
        redis_url=redis_url,
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        namespace=namespace,
    )


def test_every_redis_type_is_rewritten_and_read_back(tmp_path, fake_redis_url, namespace):
    env = env_for(tmp_path, fake_redis_url, namespace)
    client = redis.Redis.from_url(fake_redis_url)
    client.set(f"{namespace}:s", b"string")
    client.hset(f"{namespace}:h", mapping={"a": b"1", "b": b"2"})
    client.rpush(f"{namespace}:l", b"x", b"y")
    client.sadd(f"{namespace}:set", b"m1", b"m2")
    client.zadd(f"{namespace}:z", {b"z1": 1.0, b"z2": 2.0})
    client.set("another-namespace:s", b"untouched")
    client.pexpire(f"{namespace}:s", 60_000)
    targets = everything(capture(env))
    assert len(targets.keys) == 5
    result = rewrite(env, targets, lambda b: b"planted:" + b)
    assert result.complete, result.describe()
    assert client.get(f"{namespace}:s") == b"planted:string"
    assert client.pttl(f"{namespace}:s") > 0, "a rewrite keeps the key's expiry"
    assert client.hgetall(f"{namespace}:h") == {b"a": b"planted:1", b"b": b"planted:2"}
    assert client.lrange(f"{namespace}:l", 0, -1) == [b"planted:x", b"planted:y"]
    assert client.smembers(f"{namespace}:set") == {b"planted:m1", b"planted:m2"}
    assert client.zrange(f"{namespace}:z", 0, -1, withscores=True) == [(b"planted:z1", 1.0), (b"planted:z2", 2.0)]
    assert client.get("another-namespace:s") == b"untouched"
    client.close()


def test_a_rewrite_that_changes_nothing_does_not_count(tmp_path, fake_redis_url, namespace):
    env = env_for(tmp_path, fake_redis_url, namespace)
    (tmp_path / "cache" / "sub" / "f").write_bytes(b"same")
    result = rewrite(env, everything(capture(env)), lambda b: b)
    assert result.done == 0 and not result.complete


def test_changed_finds_files_keys_and_cells_a_write_touched(tmp_path, fake_redis_url, namespace):
    env = env_for(tmp_path, fake_redis_url, namespace)
    db = sqlite3.connect(tmp_path / "db.sqlite3")
    db.execute("CREATE TABLE entries (k TEXT PRIMARY KEY, v BLOB NOT NULL, n INTEGER) WITHOUT ROWID")
    db.execute("CREATE TABLE other (k TEXT, v BLOB)")
    db.execute("INSERT INTO entries VALUES ('old', x'00', 1)")
    db.commit()
    (tmp_path / "cache" / "keep").write_bytes(b"kept")
    before = capture(env)
    db.execute("INSERT INTO entries VALUES ('new', x'01', 2)")
    db.execute("INSERT INTO other VALUES ('new', x'02')")
    db.commit()
    (tmp_path / "cache" / "sub" / "entry").write_bytes(b"entry bytes")
    with redis.Redis.from_url(fake_redis_url) as client:
        client.set(f"{namespace}:entry", b"redis bytes")
    put = changed(before, capture(env))
    assert put.files == [str(tmp_path / "cache" / "sub" / "entry")]
    assert put.keys == [f"{namespace}:entry".encode()]
    assert sorted((t, c) for t, _, c in put.cells) == [
        ("entries", "k"),
        ("entries", "n"),
        ("entries", "v"),
        ("other", "k"),
        ("other", "v"),
    ]
    # Cells of any SQL type; a NOT NULL column refuses NULL: that cell did not take, the others did.
    result = rewrite(env, put, lambda b: b"x", lambda value: None)
    assert not result.complete
    assert "entries.v" in result.missed and "other.v" not in result.missed
    assert db.execute("SELECT v, n FROM entries WHERE k = 'new'").fetchone() == (b"\x01", None)
    assert db.execute("SELECT k, v FROM other").fetchone() == (None, None)
    assert db.execute("SELECT k, v, n FROM entries WHERE k = 'old'").fetchone() == ("old", b"\x00", 1)
    db.close()
