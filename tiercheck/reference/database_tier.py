"""The database tier: SQLite by default (WAL, busy timeout, pooled connections), PostgreSQL by URL.

Both dialects share the SQL below (written with `?`; PostgreSQL gets `%s`); every statement is
parametrized and every row carries the namespace. A removal leaves a tombstone row (blob NULL)
with its version; `content = '*'` / `variant = '*'` rows stand for a whole content or namespace.
A put is one conditional statement: it lands only if newer than the row and those tombstones.
Any value in the blob column that is not bytes (SQLite stores any type) reads as a corrupt entry.
A SQLite file that is corrupt is moved aside
and started afresh (it is a cache), and one deleted under us is noticed and re-created, so the
tier can be re-admitted once the fault is over.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from .db_backends import PostgresBackend, SqliteBackend
from .keys import CacheKey
from .store import ALL, TOMBSTONE_SECONDS, IsDead, Removal, TierError
from .versions import ceiling, known, now

_FLOOR_LIMIT = 1 << 62  # a Redis removal counter beyond this was altered: it raises no floor (an INCR would overflow)

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS tc_entries (
        ns TEXT NOT NULL, content TEXT NOT NULL, variant TEXT NOT NULL, version BIGINT NOT NULL,
        expires_at {real} NOT NULL, blob {blob},
        PRIMARY KEY (ns, content, variant)){suffix}""",
    # no index on expires_at: keeping it current cost every put and removal ~40 % of its statement, and
    # only the cleanup of old tombstones reads by it (a scan of the namespace, as the rest of cleanup)
    "DROP INDEX IF EXISTS tc_entries_expiry",
    """CREATE TABLE IF NOT EXISTS tc_journal (
        ns TEXT NOT NULL, tier TEXT NOT NULL, content TEXT NOT NULL, variant TEXT NOT NULL, version BIGINT NOT NULL,
        PRIMARY KEY (ns, tier, content, variant)){suffix}""",
    """CREATE TABLE IF NOT EXISTS tc_counters (
        ns TEXT NOT NULL, name TEXT NOT NULL, value BIGINT NOT NULL,
        PRIMARY KEY (ns, name)){suffix}""",
]

# A stored version orders writes only if it is one a clock handed out: an integer in (0, ceiling).
# Any other value (a hostile row: another SQL type, an extreme number) orders nothing, and the removal
# wins: a tombstone refuses every put, a removal overwrites or deletes the row. Each `?` in _SANE: the ceiling.
_SANE = "({col} > 0 AND {col} < ? AND {col} = CAST({col} AS BIGINT))"
_PUT = (
    "INSERT INTO tc_entries (ns, content, variant, version, expires_at, blob) "
    "SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS {real}), CAST(? AS {blob}) "
    "WHERE NOT EXISTS (SELECT 1 FROM tc_entries WHERE ns = ? AND variant = '*' AND content IN (?, '*') "
    "AND NOT (version < ? AND " + _SANE.format(col="version") + ")) "
    "ON CONFLICT (ns, content, variant) DO UPDATE SET version = excluded.version, "
    "expires_at = excluded.expires_at, blob = excluded.blob WHERE CASE WHEN tc_entries.blob IS NULL "
    "THEN tc_entries.version < excluded.version AND " + _SANE.format(col="tc_entries.version") + " "
    "ELSE NOT (tc_entries.version >= excluded.version AND " + _SANE.format(col="tc_entries.version") + ") END"
)
_TOMBSTONE = (
    "INSERT INTO tc_entries (ns, content, variant, version, expires_at, blob) VALUES (?, ?, ?, ?, ?, NULL) "
    "ON CONFLICT (ns, content, variant) DO UPDATE SET version = excluded.version, expires_at = excluded.expires_at, "
    "blob = NULL WHERE NOT (tc_entries.version >= excluded.version AND " + _SANE.format(col="tc_entries.version") + ")"
)
_GET = "SELECT blob FROM tc_entries WHERE ns = ? AND content = ? AND variant = ? AND blob IS NOT NULL"
_READS = frozenset({"get", "version", "scan", "usage"})  # the backend may skip its file check
_OLDER = "NOT (version >= ? AND " + _SANE.format(col="version") + ")"  # older than a removal, or unknown
_UNDER_UNKNOWN = (
    "DELETE FROM tc_entries WHERE ns = ? AND content = ? AND variant = ? AND blob IS NOT NULL AND EXISTS "
    "(SELECT 1 FROM tc_entries t WHERE t.ns = ? AND t.variant = '*' AND t.content IN (?, '*') AND NOT "
    + _SANE.format(col="t.version") + ")"
)


class DatabaseTier:
    name = "database"

    def __init__(self, url: str, namespace: str, sqlite_path: str | None, timeout: float) -> None:
        if sqlite_path is not None:
            self._backend: Any = SqliteBackend(_SCHEMA, sqlite_path, timeout)
        else:
            self._backend = PostgresBackend(_SCHEMA, url, timeout)
        self.dialect = "sqlite" if sqlite_path is not None else "postgresql"
        types = (
            {"real": "REAL", "blob": "BLOB"}
            if sqlite_path is not None
            else {"real": "DOUBLE PRECISION", "blob": "BYTEA"}
        )
        self._put_sql = _PUT.format(**types)
        self.ns = namespace

    def _run(self, operation: str, sql: str, params: tuple = (), fetch: str | None = None) -> Any:
        try:
            return self._backend.execute(sql, params, fetch, operation in _READS)
        except self._backend.errors as exc:
            raise TierError(f"database {operation}: {type(exc).__name__}: {exc}") from exc

    def get(self, key: CacheKey) -> bytes | None:
        try:  # _run, inlined: every hit below memory and above the database passes here
            row = self._backend.execute(_GET, (self.ns, key[0], key[1]), "one", True)  # content, variant
        except self._backend.errors as exc:
            raise TierError(f"database get: {type(exc).__name__}: {exc}") from exc
        if row is None:
            return None
        return row[0] if type(row[0]) is bytes else _as_bytes(row[0])

    def version_of(self, key: CacheKey) -> int | None:
        row = self._run(
            "version",
            "SELECT version FROM tc_entries WHERE ns = ? AND content = ? AND variant = ? AND blob IS NOT NULL",
            (self.ns, key.content, key.variant),
            fetch="one",
        )
        return None if row is None or not isinstance(row[0], int) else row[0]

    def put(self, key: CacheKey, blob: bytes, version: int, expires_at: float, now: float) -> bool:
        c = ceiling()
        params = (self.ns, key.content, key.variant, version, expires_at, blob, self.ns, key.content, version, c, c, c)
        if self._run("put", self._put_sql, params) > 0:
            return True
        # refused: under a tombstone whose version is unknown (a hostile row), that removal applies as of
        # now, so the entry it covers goes too (else this tier would keep serving what later puts replaced)
        self._run("put", _UNDER_UNKNOWN, (self.ns, key.content, key.variant, self.ns, key.content, c))
        return False

    def remove(self, content: str, variant: str | None, version: int) -> None:
        until = time.time() + TOMBSTONE_SECONDS  # tombstones are kept by wall time: they are not entries
        self._run("remove", _TOMBSTONE, (self.ns, content, variant or ALL, version, until, ceiling()))
        if variant is None:  # the content's tombstone refuses older puts from now on; drop what it covers
            self._run(
                "remove",
                "DELETE FROM tc_entries WHERE ns = ? AND content = ? AND variant <> '*' AND " + _OLDER,
                (self.ns, content, version, ceiling()),
            )

    def discard(self, key: CacheKey, version: int | None, held: bytes | None = None) -> None:
        """Only while the row holds what the reader found (`held`; in SQLite also any value that is not bytes,
        which no put writes) or `version`: a put that replaced it stays (deleted, its slot would take a late
        older put)."""
        sql = "DELETE FROM tc_entries WHERE ns = ? AND content = ? AND variant = ? AND blob IS NOT NULL"
        params: tuple = (self.ns, key.content, key.variant)
        if held is not None:
            sql += " AND (blob = ? OR typeof(blob) <> 'blob')" if self.dialect == "sqlite" else " AND blob = ?"
            params = (*params, held)
        elif version is not None:
            sql, params = sql + " AND version = ?", (*params, version)
        self._run("discard", sql, params)

    def clear(self, version: int) -> None:
        self._run("clear", _TOMBSTONE, (self.ns, ALL, ALL, version, time.time() + TOMBSTONE_SECONDS, ceiling()))
        self._run(
            "clear",
            "DELETE FROM tc_entries WHERE ns = ? AND " + _OLDER + " AND NOT (content = '*' AND variant = '*')",
            (self.ns, version, ceiling()),
        )

    def keys(self) -> Iterator[CacheKey]:
        rows = self._run(
            "scan", "SELECT content, variant FROM tc_entries WHERE ns = ? AND blob IS NOT NULL", (self.ns,), fetch="all"
        )
        return iter([CacheKey(c, v) for c, v in rows])

    def purge(self, is_dead: IsDead) -> int:
        """Expired, corrupt or non-bytes entries go, each only if unchanged since read; old tombstones too."""
        rows = self._run(
            "purge",
            "SELECT content, variant, version, blob FROM tc_entries WHERE ns = ? AND blob IS NOT NULL",
            (self.ns,),
            fetch="all",
        )
        removed = 0
        for content, variant, version, blob in rows:
            if is_dead(CacheKey(content, variant), _as_bytes(blob)):
                removed += self._run(
                    "purge",
                    "DELETE FROM tc_entries WHERE ns = ? AND content = ? AND variant = ? AND version = ?",
                    (self.ns, content, variant, version),
                )
        self._run(
            "purge", "DELETE FROM tc_entries WHERE ns = ? AND blob IS NULL AND expires_at < ?", (self.ns, time.time())
        )
        return removed

    def usage(self) -> dict[str, object]:
        row = self._run(
            "usage", "SELECT COUNT(*) FROM tc_entries WHERE ns = ? AND blob IS NOT NULL", (self.ns,), fetch="one"
        )
        return {"entries": row[0], "dialect": self.dialect}

    # --- the journal of other tiers' removals, and the Redis floor --------------------------

    def journal_add(self, tier: str, removal: Removal) -> None:
        self._run(
            "journal",
            "INSERT INTO tc_journal (ns, tier, content, variant, version) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (ns, tier, content, variant) DO UPDATE SET version = excluded.version "
            "WHERE NOT (tc_journal.version >= excluded.version AND " + _SANE.format(col="tc_journal.version") + ")",
            (self.ns, tier, removal.content, removal.variant, removal.version, ceiling()),
        )

    def journal_load(self) -> list[tuple[str, Removal]]:
        rows = self._run(
            "journal", "SELECT tier, content, variant, version FROM tc_journal WHERE ns = ?", (self.ns,), fetch="all"
        )
        return [  # a version altered to anything else (a hostile row) is unknown: the removal applies as of now
            (tier, Removal(content, variant, known(version) or now()))
            for tier, content, variant, version in rows
            if all(isinstance(x, str) for x in (tier, content, variant))
        ]

    def journal_discard(self, tier: str, removals: list[Removal]) -> None:
        for removal in removals:
            self._run(
                "journal",
                "DELETE FROM tc_journal WHERE ns = ? AND tier = ? AND content = ? AND variant = ? AND NOT "
                "(version > ? AND " + _SANE.format(col="version") + ")",
                (self.ns, tier, removal.content, removal.variant, removal.version, ceiling()),
            )

    def floor_get(self) -> int:
        row = self._run(
            "journal", "SELECT value FROM tc_counters WHERE ns = ? AND name = 'redis_floor'", (self.ns,), fetch="one"
        )
        return row[0] if row and type(row[0]) is int and 0 < row[0] < _FLOOR_LIMIT else 0

    def floor_raise(self, value: int) -> None:
        self._run(
            "journal",
            "INSERT INTO tc_counters (ns, name, value) VALUES (?, 'redis_floor', ?) ON CONFLICT (ns, name) "
            "DO UPDATE SET value = excluded.value WHERE NOT (tc_counters.value >= excluded.value AND "
            + _SANE.format(col="tc_counters.value")
            + ")",
            (self.ns, value, _FLOOR_LIMIT),
        )

    def close(self) -> None:
        self._backend.close()


def _as_bytes(value: Any) -> bytes:
    """The blob column as bytes; any other SQL type (TEXT, INTEGER, REAL) is a corrupt entry, never
    converted (bytes(n) would allocate n bytes)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return b""
