"""Hostile data in the shared backends, whatever the implementation's layout: every key of the
namespace in Redis, whatever its type, and every row and column of every table in the database are
replaced by values of another type (or garbage of the same type). The harness never assumes which
keys are entries or which column holds the value: it plants everywhere, reads back, and records
exactly what was replaced. A plant counts only once read back (`took_effect()`).

Values include E4's payloads (`Payloads`): a pickle whose execution is observable
(`payload_executed()`), zlib and zstd decompression bombs, deeply nested JSON.

Both faults are instant: they happen while the world's instances may be running; the tier then
holds garbage, and what an implementation must do with it (a miss, never a wrong value or an
exception) is for the checks. `heal()` is the harness cleaning up after itself: every planted value
still in place gets its original back (an implementation that replaced it is left alone), so that
re-admission is judged on a healthy tier; `still_damaged()` is True while a plant is still in place.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import sqlite3
import tempfile
import uuid
import zlib
from typing import Any

import psycopg
import redis as redis_client
from psycopg import sql
from psycopg.types.json import Jsonb

from .nemesis import Nemesis, World, register

REDIS_TYPES = ("string", "hash", "list", "set", "zset")


class Payloads:
    """Hostile byte strings (E4): garbage, a pickle whose execution creates `marker` (so executing it is
    observable: `executed()`), decompression bombs (zlib and zstd, 64 MiB of zeros each), deeply nested
    JSON, truncated and empty values."""

    def __init__(self) -> None:
        self.marker = os.path.join(tempfile.gettempdir(), f"tiercheck-pickle-ran-{uuid.uuid4().hex}")
        self._fixed = [
            b"",
            b"\x00",
            b"\xff\xfe garbage",
            b"{not json",
            b"9" * 30,
            pickle.dumps(_Executed(self.marker), protocol=2),
            zlib.compress(b"\0" * BOMB_BYTES, 1),
            b"[" * 100_000 + b"]" * 100_000,
        ]
        with contextlib.suppress(ImportError):
            import zstandard

            self._fixed.append(zstandard.ZstdCompressor(level=3).compress(b"\0" * BOMB_BYTES))

    def pick(self, rng: random.Random) -> bytes:
        if rng.random() < 0.25:
            return rng.randbytes(rng.randrange(1, 300))
        return rng.choice(self._fixed)

    def executed(self) -> bool:
        """Whether anything ever unpickled a planted payload."""
        return os.path.exists(self.marker)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.rmdir(self.marker)


class _Executed:
    """Unpickling this calls os.mkdir(marker): the observable proof that a payload was executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


BOMB_BYTES = 64 * 1024 * 1024
_PAYLOADS: Payloads | None = None


def payloads() -> Payloads:
    """One set per process (the bombs take a moment to compress)."""
    global _PAYLOADS
    if _PAYLOADS is None:
        _PAYLOADS = Payloads()
    return _PAYLOADS


def _garbage(rng: random.Random) -> bytes:
    return payloads().pick(rng)


class RedisHostileKeys(Nemesis):
    """Every key whose name contains the namespace is replaced by a key of the same name holding a
    value of another Redis type (or, for strings and hashes, garbage of the same type: a hash keeps
    its field names with garbage values). TTLs are kept. `replaced` maps each key to (old type, new type)."""

    kind = "redis hostile keys"
    tier = "redis"
    instant = True
    destroys_data = True

    def __init__(self, url: str, namespace: str, rng: random.Random) -> None:
        self.url, self.namespace, self.rng = url, namespace, rng
        self.replaced: dict[bytes, tuple[str, str]] = {}
        self._undo: dict[bytes, tuple[bytes, int, bytes]] = {}  # key -> (original dump, pttl, planted dump)

    def payload_executed(self) -> bool:
        """Whether anything unpickled a planted payload (E4: never)."""
        return payloads().executed()

    def _connect(self) -> redis_client.Redis:
        return redis_client.Redis.from_url(self.url, socket_timeout=10, socket_connect_timeout=10)

    def _planted(self, client: redis_client.Redis) -> list[bytes]:
        return [key for key, (_, _, planted) in self._undo.items() if client.dump(key) == planted]

    def still_damaged(self) -> bool:
        if not self._undo:
            return False
        try:
            client = self._connect()
            try:
                return bool(self._planted(client))
            finally:
                client.close()
        except redis_client.RedisError:
            return True  # cannot tell: keep treating the tier as damaged

    def heal(self) -> None:
        if not self._undo:
            return
        client = self._connect()
        try:
            # deleted, never restored: the old values would bring Redis back with data older than what the
            # implementation wrote since elsewhere (see DatabaseHostileRows._remove_planted)
            planted = self._planted(client)
            if planted:
                client.delete(*planted)
            left = len(self._undo) - len(planted)
            self._undo = {}
            self.effect(f"healed by the harness: {len(planted)} key(s) still planted deleted, {left} already replaced")
        except redis_client.RedisError as exc:
            self.effect(f"heal failed: {exc}")
        finally:
            client.close()

    def _inject(self) -> None:
        self.replaced, self._undo = {}, {}
        client = self._connect()
        try:
            keys = sorted(set(client.scan_iter(match=f"*{_glob_escape(self.namespace)}*", count=500)))
            for key in keys:
                self._replace(client, key)
        finally:
            client.close()
        if self.replaced:
            kinds = sorted({f"{old}->{new}" for old, new in self.replaced.values()})
            self.effect(f"{len(self.replaced)} key(s) replaced ({', '.join(kinds)})")

    def _replace(self, client: redis_client.Redis, key: bytes) -> None:
        old_type = client.type(key).decode()
        if old_type == "none":
            return
        before = client.dump(key)
        fields = [f for f in client.hkeys(key)] if old_type == "hash" else []
        ttl = client.pttl(key)
        new_type = self.rng.choice(REDIS_TYPES)
        rng = self.rng
        pipe = client.pipeline(transaction=True)
        pipe.delete(key)
        if new_type == "string":
            pipe.set(key, _garbage(rng))
        elif new_type == "hash":
            names = fields or [_garbage(rng) or b"f", b"v", b"value"]
            pipe.hset(key, mapping={name: _garbage(rng) for name in names})
        elif new_type == "list":
            pipe.rpush(key, _garbage(rng), _garbage(rng))
        elif new_type == "set":
            pipe.sadd(key, b"a" + _garbage(rng), b"b" + _garbage(rng))
        else:
            pipe.zadd(key, {b"a" + _garbage(rng): rng.uniform(-1e9, 1e9), b"b": float("inf")})
        if ttl and ttl > 0:
            pipe.pexpire(key, ttl)
        pipe.execute()
        after = client.dump(key)
        if client.type(key).decode() == new_type and after != before:
            self.replaced[key] = (old_type, new_type)
            self._undo[key] = (before, ttl if ttl and ttl > 0 else 0, after)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


# --- the database ---------------------------------------------------------------------------------

_SQLITE_VALUES: dict[str, Any] = {
    "text": lambda rng: rng.choice(["", "garbage", "\ufffd\x00", "9" * 40, "{not json", "[" * 10_000]),
    "integer": lambda rng: rng.choice([-1, 0, 1, 2**63 - 1, -(2**63)]),
    "real": lambda rng: rng.choice([-0.5, 1e308, -1e308, 3.25]),
    "null": lambda rng: None,
    "blob": lambda rng: _garbage(rng) or b"\x00",
}


class DatabaseHostileRows(Nemesis):
    """Every row of every table gets values of another SQL type in its non-key columns (each column
    with probability 1/2, at least one per row): TEXT, INTEGER, REAL, NULL or garbage BLOB where the
    row held something else. PostgreSQL columns are typed, so there each gets hostile values of its
    own type (garbage bytes, empty or junk text, extreme numbers, NaN) or NULL where allowed. Key
    columns are kept: a row whose key changed is simply another row. `replaced` lists
    (table, row, column, old type, new type) for every value read back as planted."""

    kind = "database hostile rows"
    tier = "database"
    instant = True
    destroys_data = True

    def __init__(self, database_url: str, rng: random.Random) -> None:
        self.url, self.rng = database_url, rng
        self.replaced: list[tuple[str, str, str, str, str]] = []
        # table, column, where clause, row key, original value, planted value
        self._undo: list[tuple[str, str, Any, tuple, Any, Any]] = []
        self._rows_after: dict[tuple[str, tuple], tuple] = {}  # SQLite: each planted row as the fault left it
        self._where: dict[str, str] = {}

    def payload_executed(self) -> bool:
        """Whether anything unpickled a planted payload (E4: never)."""
        return payloads().executed()

    def still_damaged(self) -> bool:
        if not self._undo:
            return False
        try:
            return self._remove_planted(dry_run=True) > 0
        except (sqlite3.Error, psycopg.Error):
            return True  # cannot tell: keep treating the tier as damaged

    def heal(self) -> None:
        if not self._undo:
            return
        try:
            removed = self._remove_planted(dry_run=False)
        except (sqlite3.Error, psycopg.Error) as exc:
            self.effect(f"heal failed: {exc}")
            return
        self.effect(f"healed by the harness: {removed} row(s) still as planted deleted")
        self._undo, self._rows_after = [], {}

    def _remove_planted(self, dry_run: bool) -> int:
        """Delete (or, dry, count) the rows still exactly as the fault left them.

        Deleted, never restored: putting the old values back would bring the tier back with data older
        than what the implementation wrote since, elsewhere, while it rightly refused to trust or touch a
        row it could not read (the tier's data is lost, as `destroys_data` says; a row the
        implementation rewrote since is its own and stays)."""
        rows = {(table, key) for table, _, _, key, _, _ in self._undo}
        if self.url.startswith("sqlite:///"):
            conn = sqlite3.connect(self.url.removeprefix("sqlite://"), timeout=10, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                count = 0
                for (table, key), after in self._rows_after.items():
                    where = self._where[table]
                    if conn.execute(f"SELECT * FROM {_quote(table)} WHERE {where}", key).fetchone() != after:
                        continue
                    count += 1
                    if not dry_run:
                        conn.execute(f"DELETE FROM {_quote(table)} WHERE {where}", key)
                conn.execute("ROLLBACK" if dry_run else "COMMIT")
            finally:
                conn.close()
            return count
        with psycopg.connect(self.url, connect_timeout=10) as conn:
            count = 0
            for table, (ctid,) in sorted(rows, key=str):  # an UPDATE since moved the row: a new ctid, its own
                planted = [(column, new) for t, column, _, (c,), _, new in self._undo if (t, c) == (table, ctid)]
                checks = sql.SQL(" AND ").join(
                    sql.SQL("{c} IS NOT DISTINCT FROM %s").format(c=sql.Identifier(column)) for column, _ in planted
                )
                verb = sql.SQL("SELECT ctid FROM {t}") if dry_run else sql.SQL("DELETE FROM {t}")
                query = sql.SQL("{verb} WHERE ctid = %s AND {checks}").format(
                    verb=verb.format(t=sql.Identifier(table)), checks=checks
                )
                cursor = conn.execute(query, (ctid, *(new for _, new in planted)))
                count += len(cursor.fetchall()) if dry_run else cursor.rowcount
            conn.rollback() if dry_run else conn.commit()
        return count

    def _inject(self) -> None:
        self.replaced, self._undo, self._rows_after = [], [], {}
        if self.url.startswith("sqlite:///"):
            self._sqlite(self.url.removeprefix("sqlite://"))
        else:
            self._postgres()
        if self.replaced:
            tables = sorted({r[0] for r in self.replaced})
            self.effect(f"{len(self.replaced)} value(s) replaced in {len(tables)} table(s): {', '.join(tables)}")

    def _columns_to_hit(self, columns: list[str]) -> list[str]:
        if not columns:
            return []
        hit = [c for c in columns if self.rng.random() < 0.5]
        return hit or [self.rng.choice(columns)]

    def _sqlite(self, path: str) -> None:
        conn = sqlite3.connect(path, timeout=10, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            for table in tables:
                self._sqlite_table(conn, table)
            conn.execute("COMMIT")
        except sqlite3.DatabaseError:  # locked or not a database (an earlier fault): nothing planted
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self.replaced, self._undo, self._rows_after = [], [], {}
        finally:
            conn.close()

    def _sqlite_table(self, conn: sqlite3.Connection, table: str) -> None:
        q = _quote(table)
        info = conn.execute(f"PRAGMA table_info({q})").fetchall()  # cid, name, type, notnull, default, pk
        keys = [r[1] for r in info if r[5]]
        values = [r[1] for r in info if not r[5]]
        if not values:
            return
        try:
            ids = [r[0] for r in conn.execute(f"SELECT rowid FROM {q}").fetchall()]
            where, key_of = "rowid = ?", lambda row_id: (row_id,)
        except sqlite3.OperationalError:  # WITHOUT ROWID: address rows by their primary key
            if not keys:
                return
            cols = ", ".join(_quote(k) for k in keys)
            ids = conn.execute(f"SELECT {cols} FROM {q}").fetchall()
            where = " AND ".join(f"{_quote(k)} = ?" for k in keys)
            key_of = tuple
        self._where[table] = where
        for row_id in ids:
            planted = len(self._undo)
            for column in self._columns_to_hit(values):
                c = _quote(column)
                old = conn.execute(f"SELECT typeof({c}) FROM {q} WHERE {where}", key_of(row_id)).fetchone()
                if old is None:
                    continue
                new_type = self.rng.choice([t for t in _SQLITE_VALUES if t != old[0]])
                value = _SQLITE_VALUES[new_type](self.rng)
                original = conn.execute(f"SELECT {c} FROM {q} WHERE {where}", key_of(row_id)).fetchone()[0]
                try:
                    conn.execute("SAVEPOINT plant")
                    conn.execute(f"UPDATE {q} SET {c} = ? WHERE {where}", (value, *key_of(row_id)))
                    conn.execute("RELEASE plant")
                except sqlite3.DatabaseError:  # a constraint (NOT NULL, CHECK, STRICT, UNIQUE) refused it
                    conn.execute("ROLLBACK TO plant")
                    conn.execute("RELEASE plant")
                    continue
                got = conn.execute(f"SELECT typeof({c}) FROM {q} WHERE {where}", key_of(row_id)).fetchone()
                if got is not None and got[0] != old[0]:
                    self.replaced.append((table, str(row_id), column, old[0], got[0]))
                    self._undo.append((table, column, where, key_of(row_id), original, value))
            if len(self._undo) > planted:
                self._rows_after[(table, key_of(row_id))] = conn.execute(
                    f"SELECT * FROM {q} WHERE {where}", key_of(row_id)
                ).fetchone()

    def _postgres(self) -> None:
        with psycopg.connect(self.url, connect_timeout=10) as conn:
            cols = conn.execute(
                "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable = 'YES' "
                "FROM information_schema.columns c JOIN information_schema.tables t "
                "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
                "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
                "ORDER BY c.table_name, c.ordinal_position"
            ).fetchall()
            keys = {
                (r[0], r[1])
                for r in conn.execute(
                    "SELECT k.table_name, k.column_name FROM information_schema.table_constraints tc "
                    "JOIN information_schema.key_column_usage k ON k.constraint_name = tc.constraint_name "
                    "AND k.table_schema = tc.table_schema "
                    "WHERE tc.table_schema = current_schema() AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
                ).fetchall()
            }
            tables: dict[str, list[tuple[str, str, bool]]] = {}
            for table, column, data_type, nullable in cols:
                if (table, column) not in keys:
                    tables.setdefault(table, []).append((column, data_type, nullable))
            for table, columns in tables.items():
                rows = conn.execute(sql.SQL("SELECT ctid FROM {}").format(sql.Identifier(table))).fetchall()
                for (first_ctid,) in rows:
                    ctid = first_ctid  # an UPDATE moves the row: follow it
                    planted: list[tuple[str, Any, Any]] = []
                    for column in self._columns_to_hit([c[0] for c in columns]):
                        data_type, nullable = next((t, n) for c, t, n in columns if c == column)
                        value = self._pg_value(data_type, nullable)
                        if value is _SKIP:
                            continue
                        try:
                            with conn.transaction():
                                cur = conn.execute(
                                    sql.SQL(
                                        "UPDATE {t} SET {c} = %s WHERE ctid = %s RETURNING ctid, "
                                        "(SELECT {c} FROM {t} WHERE ctid = %s)"
                                    ).format(t=sql.Identifier(table), c=sql.Identifier(column)),
                                    (value, ctid, ctid),
                                )
                                moved = cur.fetchone()
                        except psycopg.Error:  # a constraint refused it
                            continue
                        if moved is not None:
                            ctid = moved[0]
                            planted.append((column, moved[1], value))
                            shown = "NULL" if value is None else data_type
                            self.replaced.append((table, str(first_ctid), column, data_type, f"hostile {shown}"))
                    self._undo += [(table, c, None, (ctid,), old, new) for c, old, new in planted]
            conn.commit()

    def _pg_value(self, data_type: str, nullable: bool) -> Any:
        if nullable and self.rng.random() < 0.25:
            return None
        rng = self.rng
        if data_type == "bytea":
            return _garbage(rng) or b"\x00"
        if data_type in ("text", "character varying", "character", "json", "jsonb"):
            text = rng.choice(["", "garbage", "\ufffd", "9" * 40, "{not json"])
            return Jsonb(text) if data_type in ("json", "jsonb") else text
        if data_type in ("integer", "bigint", "smallint"):
            return rng.choice([-1, 0, {"smallint": 32767, "integer": 2**31 - 1}.get(data_type, 2**63 - 1)])
        if data_type in ("double precision", "real", "numeric"):
            return rng.choice([float("nan"), float("inf"), -0.0, -1e300 if data_type != "real" else -1e30])
        if data_type == "boolean":
            return rng.choice([True, False])
        return None if nullable else _SKIP


_SKIP = object()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- the registry ---------------------------------------------------------------------------------


@register("redis hostile keys")
def _hostile_keys(world: World) -> Nemesis | None:
    url = world.redis_url
    return RedisHostileKeys(url, world.namespace, world.rng) if url and world.uses_redis else None


@register("database hostile rows")
def _hostile_rows(world: World) -> Nemesis | None:
    url = world.database_url or ""
    if url.startswith("sqlite:///") or (url.startswith(("postgresql://", "postgres://")) and world.postgres):
        return DatabaseHostileRows(url, world.rng)
    return None
