"""Look for an entry in the raw backends the harness handed to an implementation.

Some properties are about what a tier *holds*, not what the cache answers ("after cleanup() no
tier holds it"; "a Redis that evicted an entry is refilled by promotion"). The contract's
`tiers_holding` only reports live entries, so the harness looks itself: it owns the Redis
namespace, the cache directory and the database the Env named. An entry is found by a marker
string inside its metadata; with compression off an implementation that stores JSON, msgpack or
any other encoding that keeps strings as bytes shows the marker. If the marker cannot be seen right
after a put, the caller reports the check as not applicable, never as passed.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator

import redis


def _redis_values(client: redis.Redis, key: bytes) -> Iterator[bytes]:
    kind = client.type(key)
    if kind == b"string":
        yield client.get(key) or b""
    elif kind == b"hash":
        yield from client.hgetall(key).values()
    elif kind == b"list":
        yield from client.lrange(key, 0, -1)
    elif kind == b"set":
        yield from client.smembers(key)
    elif kind == b"zset":
        yield from client.zrange(key, 0, -1)


def redis_keys_holding(redis_url: str | None, namespace: str, marker: str) -> list[bytes]:
    """Keys under the namespace whose value contains the marker."""
    if not redis_url:
        return []
    needle = marker.encode()
    with redis.Redis.from_url(redis_url, socket_timeout=5) as client:
        return [
            key
            for key in client.scan_iter(match=f"{namespace}*", count=1000)
            if any(needle in value for value in _redis_values(client, key))
        ]


def files_holding(cache_dir: str, marker: str) -> list[str]:
    """Files under cache_dir whose bytes contain the marker."""
    needle, found = marker.encode(), []
    for directory, _, names in os.walk(cache_dir):
        for name in names:
            path = os.path.join(directory, name)
            try:
                with open(path, "rb") as f:
                    if needle in f.read():
                        found.append(path)
            except OSError:
                continue  # removed meanwhile: not held
    return found


def sqlite_rows_holding(database_url: str | None, marker: str) -> int:
    """Rows, in any table of the SQLite database, with a column containing the marker."""
    if not database_url or not database_url.startswith("sqlite:///"):
        return 0
    path = database_url.removeprefix("sqlite:///")
    if not os.path.exists(path):
        return 0
    needle, count = marker.encode(), 0
    connection = sqlite3.connect(path, timeout=5)  # read only by use: SELECTs
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            for row in connection.execute(f"SELECT * FROM {quoted}"):  # noqa: S608 - names from sqlite_master
                cells = (c.encode() if isinstance(c, str) else c for c in row)
                count += any(isinstance(c, bytes) and needle in c for c in cells)
    finally:
        connection.close()
    return count


def where_held(env, marker: str) -> set[str]:
    """The backends (redis, disk, database) that hold an entry carrying the marker."""
    held = set()
    if redis_keys_holding(env.redis_url, env.namespace, marker):
        held.add("redis")
    if files_holding(env.cache_dir, marker):
        held.add("disk")
    if sqlite_rows_holding(env.database_url, marker):
        held.add("database")
    return held


def evict_from_redis(env, marker: str) -> int:
    """Delete the Redis keys holding the marker, as a Redis at maxmemory would evict them."""
    keys = redis_keys_holding(env.redis_url, env.namespace, marker)
    if keys:
        with redis.Redis.from_url(env.redis_url, socket_timeout=5) as client:
            client.delete(*keys)
    return len(keys)
