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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

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
    path = sqlite_path(database_url)
    if not path or not os.path.exists(path):
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


# --- what a put changed, and rewriting it in place (E2 corruption, E4 planting) ------------------------
#
# The harness does not know how an implementation lays out its entries. It photographs every backend
# it handed out (every file under cache_dir, every key of the namespace whatever its Redis type, every
# row and column of every SQLite table) before and after a put; what differs holds that entry's copies
# (and any bookkeeping the put touched). Every rewrite is read back: one that did not change the stored
# value, or did not stick, is not a fault that took effect.


def sqlite_path(database_url: str | None) -> str | None:
    """The file of a sqlite:/// URL, or None (no database tier, or a server the harness reads otherwise)."""
    if not database_url or not database_url.startswith("sqlite:///"):
        return None
    return os.path.normpath(database_url.removeprefix("sqlite://"))  # sqlite:///abs and sqlite:////abs alike


@dataclass
class BackendState:
    """Everything the harness can read in the backends of one Env, at one moment."""

    files: dict[str, bytes] = field(default_factory=dict)
    keys: dict[bytes, tuple[bytes, Any]] = field(default_factory=dict)  # key -> (TYPE, value)
    rows: dict[tuple[str, Any], tuple] = field(default_factory=dict)  # (table, row identity) -> cells
    columns: dict[str, list[str]] = field(default_factory=dict)  # table -> column names


@dataclass
class Targets:
    """Stored things to rewrite: files, Redis keys, database cells."""

    files: list[str] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    cells: list[tuple[str, Any, str]] = field(default_factory=list)  # (table, row identity, column)

    def __bool__(self) -> bool:
        return bool(self.files or self.keys or self.cells)

    def describe(self) -> str:
        return f"{len(self.files)} files, {len(self.keys)} Redis keys, {len(self.cells)} database cells"


def _redis_value(client: redis.Redis, key: bytes) -> tuple[bytes, Any]:
    kind = client.type(key)
    if kind == b"string":
        return kind, client.get(key)
    if kind == b"hash":
        return kind, dict(client.hgetall(key))
    if kind == b"list":
        return kind, list(client.lrange(key, 0, -1))
    if kind == b"set":
        return kind, frozenset(client.smembers(key))
    if kind == b"zset":
        return kind, tuple(client.zrange(key, 0, -1, withscores=True))
    return kind, None  # a stream or a module type: seen, never rewritten


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(connection: sqlite3.Connection) -> list[str]:
    rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return [row[0] for row in rows if not row[0].startswith("sqlite_")]


def _rows(connection: sqlite3.Connection, table: str) -> tuple[list[str], dict[Any, tuple]]:
    """Column names, and rows by identity: ("rowid", n), or ("row", cells) for a WITHOUT ROWID table."""
    quoted = _quoted(table)
    try:
        cursor = connection.execute(f"SELECT rowid, * FROM {quoted}")  # noqa: S608 - names from sqlite_master
        columns = [d[0] for d in cursor.description][1:]
        return columns, {("rowid", row[0]): tuple(row[1:]) for row in cursor}
    except sqlite3.OperationalError:  # WITHOUT ROWID
        cursor = connection.execute(f"SELECT * FROM {quoted}")  # noqa: S608
        columns = [d[0] for d in cursor.description]
        return columns, {("row", tuple(row)): tuple(row) for row in cursor}


def capture(env) -> BackendState:
    """A photograph of every backend of `env` the harness can read (no Redis, no SQLite file: left out)."""
    state = BackendState()
    for directory, _, names in os.walk(env.cache_dir):
        for name in names:
            path = os.path.join(directory, name)
            try:
                with open(path, "rb") as f:
                    state.files[path] = f.read()
            except OSError:
                continue
    if env.redis_url:
        with redis.Redis.from_url(env.redis_url, socket_timeout=5) as client:
            for key in client.scan_iter(match=f"{env.namespace}*", count=1000):
                state.keys[key] = _redis_value(client, key)
    path = sqlite_path(env.database_url)
    if path and os.path.exists(path):
        connection = sqlite3.connect(path, timeout=5)
        try:
            for table in _tables(connection):
                columns, rows = _rows(connection, table)
                state.columns[table] = columns
                for identity, row in rows.items():
                    state.rows[(table, identity)] = row
        finally:
            connection.close()
    return state


def changed(before: BackendState, after: BackendState) -> Targets:
    """What appeared or changed from `before` to `after`: the copies (and bookkeeping) of what was written."""
    targets = Targets()
    targets.files = sorted(p for p, data in after.files.items() if before.files.get(p) != data)
    targets.keys = sorted(k for k, v in after.keys.items() if before.keys.get(k) != v)
    for (table, identity), row in sorted(after.rows.items(), key=repr):
        old = before.rows.get((table, identity))
        for i, name in enumerate(after.columns[table]):
            if old is None or old[i] != row[i]:
                targets.cells.append((table, identity, name))
    return targets


def everything(state: BackendState) -> Targets:
    """Every file, every key of the namespace and every cell of every table in `state`."""
    return Targets(
        files=sorted(state.files),
        keys=sorted(state.keys),
        cells=[(t, identity, c) for (t, identity) in sorted(state.rows, key=repr) for c in state.columns[t]],
    )


def rewrite_file(path: str, change: Callable[[bytes], bytes]) -> bool:
    """Replace a file's bytes by change(bytes); True when the new bytes differ and read back."""
    try:
        with open(path, "rb") as f:
            old = f.read()
        new = change(old)
        if new == old:
            return False
        with open(path, "wb") as f:
            f.write(new)
        with open(path, "rb") as f:
            return f.read() == new
    except OSError:
        return False


def rewrite_key(client: redis.Redis, key: bytes, change: Callable[[bytes], bytes]) -> bool:
    """Apply change() to every value the key holds, with the write its TYPE takes (string, hash field, list
    element, set member, zset member keeping its score), keeping its expiry; True when the key's value differs
    and reads back as written."""
    kind, old = _redis_value(client, key)
    ttl = client.pttl(key)
    expected: Any
    if kind == b"string":
        expected = change(old)
        client.set(key, expected)
    elif kind == b"hash":
        expected = {f: change(v) for f, v in old.items()}
        client.hset(key, mapping=expected)
    elif kind == b"list":
        expected = [change(v) for v in old]
        for i, value in enumerate(expected):
            client.lset(key, i, value)
    elif kind == b"set":
        expected = frozenset(change(v) for v in old)
        with client.pipeline(transaction=True) as pipe:
            pipe.delete(key).sadd(key, *expected).execute()
    elif kind == b"zset":
        scores = {change(member): score for member, score in old}
        with client.pipeline(transaction=True) as pipe:
            pipe.delete(key).zadd(key, scores).execute()
        expected = tuple(sorted(scores.items(), key=lambda item: (item[1], item[0])))
    else:
        return False
    if ttl is not None and ttl > 0:
        client.pexpire(key, ttl)
    now = _redis_value(client, key)
    return now[1] != old and now == (kind, expected)


def _row_filter(connection: sqlite3.Connection, table: str, identity: Any) -> tuple[str, list]:
    how, ident = identity
    if how == "rowid":
        return "rowid = ?", [ident]
    names = [d[1] for d in connection.execute(f"PRAGMA table_info({_quoted(table)})")]
    return " AND ".join(f"{_quoted(n)} IS ?" for n in names), list(ident)


def rewrite_row(
    connection: sqlite3.Connection, table: str, identity: Any, columns: list[str], change: Callable[[Any], Any]
) -> dict[str, bool]:
    """Set the given cells of one row to change(old value), of any SQL type, in one UPDATE (a row identified
    by its cells must change them together); when that breaks a constraint (NOT NULL, a STRICT type, a key
    clash), one cell at a time. Per column: True when it differs and reads back."""
    quoted = _quoted(table)
    names = [d[1] for d in connection.execute(f"PRAGMA table_info({quoted})")]
    where, params = _row_filter(connection, table, identity)
    row = connection.execute(f"SELECT * FROM {quoted} WHERE {where}", params).fetchone()  # noqa: S608
    if row is None:
        return dict.fromkeys(columns, False)
    old = dict(zip(names, row, strict=True))

    def update(cols: list[str], current: dict[str, Any]) -> dict[str, Any] | None:
        new = {c: change(old[c]) for c in cols}
        where, params = (
            ("rowid = ?", [identity[1]])
            if identity[0] == "rowid"
            else (" AND ".join(f"{_quoted(n)} IS ?" for n in names), [current[n] for n in names])
        )
        sets = ", ".join(f"{_quoted(c)} = ?" for c in cols)
        try:
            connection.execute(f"UPDATE {quoted} SET {sets} WHERE {where}", [*new.values(), *params])  # noqa: S608
        except sqlite3.DatabaseError:
            return None
        return {**current, **new}

    def read_back(current: dict[str, Any]) -> dict[str, bool]:
        where, params = (
            ("rowid = ?", [identity[1]])
            if identity[0] == "rowid"
            else (" AND ".join(f"{_quoted(n)} IS ?" for n in names), [current[n] for n in names])
        )
        back = connection.execute(f"SELECT * FROM {quoted} WHERE {where}", params).fetchone()  # noqa: S608
        now = dict(zip(names, back, strict=True)) if back else {}
        return {
            c: c in now
            and (now[c] != old[c] or type(now[c]) is not type(old[c]))
            and now[c] == current[c]
            and type(now[c]) is type(current[c])
            for c in columns
        }

    current = update(columns, old)
    if current is None:
        current = old
        for column in columns:
            current = update([column], current) or current
    return read_back(current)


@dataclass
class Rewritten:
    """How many targets really changed (read back), out of how many were tried."""

    done: int = 0
    tried: int = 0
    missed: list[str] = field(default_factory=list)

    def add(self, ok: bool, what: str) -> None:
        self.tried += 1
        self.done += ok
        if not ok:
            self.missed.append(what)

    @property
    def complete(self) -> bool:
        return self.tried > 0 and self.done == self.tried

    def describe(self) -> str:
        missed = f"; not rewritten: {', '.join(self.missed[:5])}" if self.missed else ""
        return f"{self.done} of {self.tried} targets rewritten{missed}"


def default_cell_change(change_bytes: Callable[[bytes], bytes]) -> Callable[[Any], Any]:
    """A database cell rewritten like bytes: BLOBs as bytes, TEXT through latin-1 (stays TEXT), other
    types (INTEGER, REAL, NULL) replaced by a BLOB of the changed text of their value."""

    def change(value: Any) -> Any:
        if isinstance(value, bytes):
            return change_bytes(value)
        if isinstance(value, str):
            return change_bytes(value.encode()).decode("latin-1")
        return change_bytes(repr(value).encode())

    return change


def rewrite(
    env, targets: Targets, change_bytes: Callable[[bytes], bytes], change_cell: Callable[[Any], Any] | None = None
) -> Rewritten:
    """Rewrite every target (files and Redis values with change_bytes, database cells with change_cell)."""
    result = Rewritten()
    for path in targets.files:
        result.add(rewrite_file(path, change_bytes), path)
    if targets.keys and env.redis_url:
        with redis.Redis.from_url(env.redis_url, socket_timeout=5) as client:
            for key in targets.keys:
                result.add(rewrite_key(client, key, change_bytes), f"redis {key!r}")
    path = sqlite_path(env.database_url)
    if targets.cells and path:
        cell_change = change_cell or default_cell_change(change_bytes)
        rows: dict[tuple[str, Any], list[str]] = {}
        for table, identity, column in targets.cells:
            rows.setdefault((table, identity), []).append(column)
        connection = sqlite3.connect(path, timeout=5)
        try:
            for (table, identity), columns in rows.items():
                for column, ok in rewrite_row(connection, table, identity, columns, cell_change).items():
                    result.add(ok, f"{table}.{column}")
            connection.commit()
        finally:
            connection.close()
    return result
