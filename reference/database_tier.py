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

import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Collection, Iterator
from typing import Any

from .keys import CacheKey
from .store import ALL, TOMBSTONE_SECONDS, IsDead, Removal, TierError

log = logging.getLogger("reference.database")

_POOL_IDLE = 8

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS tc_entries (
        ns TEXT NOT NULL, content TEXT NOT NULL, variant TEXT NOT NULL, version BIGINT NOT NULL,
        expires_at {real} NOT NULL, blob {blob},
        PRIMARY KEY (ns, content, variant)){suffix}""",
    "CREATE INDEX IF NOT EXISTS tc_entries_expiry ON tc_entries (ns, expires_at)",
    """CREATE TABLE IF NOT EXISTS tc_journal (
        ns TEXT NOT NULL, tier TEXT NOT NULL, content TEXT NOT NULL, variant TEXT NOT NULL, version BIGINT NOT NULL,
        PRIMARY KEY (ns, tier, content, variant)){suffix}""",
    """CREATE TABLE IF NOT EXISTS tc_counters (
        ns TEXT NOT NULL, name TEXT NOT NULL, value BIGINT NOT NULL,
        PRIMARY KEY (ns, name)){suffix}""",
]

_PUT = (
    "INSERT INTO tc_entries (ns, content, variant, version, expires_at, blob) "
    "SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS {real}), CAST(? AS {blob}) "
    "WHERE NOT EXISTS (SELECT 1 FROM tc_entries WHERE ns = ? AND variant = '*' AND content IN (?, '*') "
    "AND CAST(version AS BIGINT) >= ?) "
    "ON CONFLICT (ns, content, variant) DO UPDATE SET version = excluded.version, "
    "expires_at = excluded.expires_at, blob = excluded.blob "
    "WHERE excluded.version > CAST(tc_entries.version AS BIGINT)"
)
_TOMBSTONE = (
    "INSERT INTO tc_entries (ns, content, variant, version, expires_at, blob) VALUES (?, ?, ?, ?, ?, NULL) "
    "ON CONFLICT (ns, content, variant) DO UPDATE SET version = excluded.version, "
    "expires_at = excluded.expires_at, blob = NULL WHERE excluded.version > CAST(tc_entries.version AS BIGINT)"
)

class _SqliteBackend:
    """A small pool of SQLite connections: a connection is used by one thread at a time."""

    placeholder = "?"
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, path: str, busy_timeout: float) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._idle: queue.LifoQueue[tuple[sqlite3.Connection, int]] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._generation = 0  # bumped when the file is replaced: older connections are dropped
        self._inode: int | None = None
        self._schema_ready = False
        self._salvaged: list[tuple[str, list[tuple]]] = []  # from a quarantined file, for the next one

    def _open(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            if not self._schema_ready:
                columns = [row[1] for row in conn.execute("PRAGMA table_info(tc_entries)")]
                if columns and "version" not in columns:  # a file of the unversioned layout: it is a cache
                    conn.execute("DROP TABLE tc_entries")
                for statement in _SCHEMA:
                    conn.execute(statement.format(real="REAL", blob="BLOB", suffix=" WITHOUT ROWID"))
                salvaged, self._salvaged = self._salvaged, []
                for statement, rows in salvaged:
                    conn.executemany(statement, rows)
                self._schema_ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _current_inode(self) -> int | None:
        try:
            return os.stat(self.path).st_ino
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        inode = self._current_inode()
        if inode != self._inode:  # deleted or replaced under us: start over on the new file
            with self._lock:
                if inode != self._inode:
                    self._drop_all()
                    self._inode = inode
        conn = None
        ok = False
        try:
            try:
                conn, generation = self._idle.get_nowait()
            except queue.Empty:
                conn, generation = self._open(), self._generation
                if self._inode is None:
                    self._inode = self._current_inode()
            yield conn
            ok = True
        except sqlite3.DatabaseError as exc:
            if _looks_corrupt(exc):  # some corruption arrives as OperationalError ("unsupported file format")
                self._quarantine()
            raise
        except UnicodeDecodeError as exc:  # a corrupt file can hand sqlite3 text that is not UTF-8
            self._quarantine()
            raise sqlite3.DatabaseError(f"database disk image is malformed (undecodable text: {exc})") from exc
        finally:
            if conn is not None:
                if ok and generation == self._generation and self._idle.qsize() < _POOL_IDLE:
                    self._idle.put((conn, generation))
                else:
                    conn.close()

    def _drop_all(self) -> None:
        self._generation += 1
        self._schema_ready = False
        while True:
            try:
                conn, _ = self._idle.get_nowait()
            except queue.Empty:
                return
            conn.close()

    def _quarantine(self) -> None:
        """Move a corrupt file aside so the next operation starts a fresh one, which gets what can still
        be read of the old one's repair journal and counters (a lost removal could bring old data back)."""
        with self._lock:
            self._drop_all()
            moved = f"{self.path}.corrupt-{uuid.uuid4().hex[:8]}"
            for suffix in ("", "-wal", "-shm"):  # one name for all three: the WAL stays with its file
                with contextlib.suppress(OSError):
                    os.replace(self.path + suffix, moved + suffix)
            self._inode = None
            self._salvaged = _salvage(moved)

    def close(self) -> None:
        with self._lock:
            self._drop_all()


_SALVAGE = (
    (
        "SELECT ns, tier, content, variant, version FROM tc_journal",
        "INSERT INTO tc_journal VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    ),
    ("SELECT ns, name, value FROM tc_counters", "INSERT INTO tc_counters VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
)


def _read_only_uri(path: str) -> str:
    """`file:` URI of a path, read-only. One leading slash: "//tmp/x" (sqlite:////tmp/x) would make
    "tmp" the URI's authority, which SQLite refuses."""
    absolute = "/" + os.path.abspath(path).lstrip("/")
    return f"file:{urllib.parse.quote(absolute)}?mode=ro"


def _salvage(path: str) -> list[tuple[str, list[tuple]]]:
    """The rows of the journal tables a corrupt file still gives, for its replacement (entries are not
    worth the risk: they are a cache)."""
    salvaged: list[tuple[str, list[tuple]]] = []
    try:
        connection = sqlite3.connect(_read_only_uri(path), uri=True, timeout=1)
    except sqlite3.Error as exc:
        log.error("database %s is corrupt; its repair journal is lost: %s", path, exc)
        return salvaged
    try:
        for select, insert in _SALVAGE:
            rows: list[tuple] = []
            try:
                for row in connection.execute(select):
                    rows.append(tuple(row))
            except (sqlite3.Error, UnicodeDecodeError) as exc:  # keep what was read before the damage
                log.error("database %s is corrupt; %r salvaged %d rows, then: %s", path, select, len(rows), exc)
            salvaged.append((insert, rows))
    finally:
        connection.close()
    return salvaged


def _looks_corrupt(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(sign in text for sign in ("malformed", "not a database", "corrupt", "unsupported file format"))


class _PostgresBackend:
    placeholder = "%s"

    def __init__(self, url: str, timeout: float) -> None:
        import psycopg
        import psycopg_pool

        self.errors = (psycopg.Error, psycopg_pool.PoolTimeout)
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=8,
            timeout=max(timeout * 4, 1.0),
            kwargs={
                "autocommit": True,
                "connect_timeout": max(1, int(round(timeout * 2))),
                "options": f"-c statement_timeout={int(timeout * 4000)}",
            },
            open=False,
            name="tiercheck-reference",
        )
        self._pool.open(wait=False)
        self._schema_ready = False

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        with self._pool.connection() as conn:
            if not self._schema_ready:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(7461726)")  # concurrent CREATEs race in PG
                    columns = conn.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = 'tc_entries' "
                        "AND table_schema = current_schema()"
                    ).fetchall()
                    if columns and ("version",) not in columns:  # the unversioned layout: it is a cache
                        conn.execute("DROP TABLE tc_entries")
                    for statement in _SCHEMA:
                        conn.execute(statement.format(real="DOUBLE PRECISION", blob="BYTEA", suffix=""))
                self._schema_ready = True
            yield conn

    def close(self) -> None:
        self._pool.close(timeout=2.0)


class DatabaseTier:
    name = "database"

    def __init__(self, url: str, namespace: str, sqlite_path: str | None, timeout: float) -> None:
        if sqlite_path is not None:
            self._backend: Any = _SqliteBackend(sqlite_path, timeout)
        else:
            self._backend = _PostgresBackend(url, timeout)
        self.dialect = "sqlite" if sqlite_path is not None else "postgresql"
        types = {"real": "REAL", "blob": "BLOB"} if sqlite_path is not None else {"real": "DOUBLE PRECISION", "blob": "BYTEA"}
        self._put_sql = _PUT.format(**types)
        self.ns = namespace

    def _run(self, operation: str, sql: str, params: tuple = (), fetch: str | None = None) -> Any:
        if self._backend.placeholder != "?":
            sql = sql.replace("?", self._backend.placeholder)
        try:
            with self._backend.connection() as conn:
                cursor = conn.execute(sql, params)
                if fetch == "one":
                    return cursor.fetchone()
                if fetch == "all":
                    return cursor.fetchall()
                return cursor.rowcount
        except self._backend.errors as exc:
            raise TierError(f"database {operation}: {type(exc).__name__}: {exc}") from exc

    def get(self, key: CacheKey) -> bytes | None:
        row = self._run(
            "get",
            "SELECT blob FROM tc_entries WHERE ns = ? AND content = ? AND variant = ? AND blob IS NOT NULL",
            (self.ns, key.content, key.variant),
            fetch="one",
        )
        return None if row is None else _as_bytes(row[0])

    def version_of(self, key: CacheKey) -> int | None:
        row = self._run(
            "version",
            "SELECT version FROM tc_entries WHERE ns = ? AND content = ? AND variant = ? AND blob IS NOT NULL",
            (self.ns, key.content, key.variant),
            fetch="one",
        )
        return None if row is None or not isinstance(row[0], int) else row[0]

    def put(self, key: CacheKey, blob: bytes, version: int, expires_at: float, now: float) -> bool:
        params = (self.ns, key.content, key.variant, version, expires_at, blob, self.ns, key.content, version)
        return self._run("put", self._put_sql, params) > 0

    def remove(self, content: str, variant: str | None, version: int) -> None:
        until = time.time() + TOMBSTONE_SECONDS  # tombstones are kept by wall time: they are not entries
        self._run("remove", _TOMBSTONE, (self.ns, content, variant or ALL, version, until))
        if variant is None:  # the content's tombstone refuses older puts from now on; drop what it covers
            self._run(
                "remove",
                "DELETE FROM tc_entries WHERE ns = ? AND content = ? AND variant <> '*' AND version < ?",
                (self.ns, content, version),
            )

    def discard(self, key: CacheKey, version: int | None) -> None:
        sql = "DELETE FROM tc_entries WHERE ns = ? AND content = ? AND variant = ? AND blob IS NOT NULL"
        params: tuple = (self.ns, key.content, key.variant)
        if version is not None:
            sql, params = sql + " AND version = ?", (*params, version)
        self._run("discard", sql, params)

    def clear(self, version: int) -> None:
        self._run("clear", _TOMBSTONE, (self.ns, ALL, ALL, version, time.time() + TOMBSTONE_SECONDS))
        self._run(
            "clear",
            "DELETE FROM tc_entries WHERE ns = ? AND version < ? AND NOT (content = '*' AND variant = '*')",
            (self.ns, version),
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
            "WHERE excluded.version > tc_journal.version",
            (self.ns, tier, removal.content, removal.variant, removal.version),
        )

    def journal_load(self) -> list[tuple[str, Removal]]:
        rows = self._run(
            "journal", "SELECT tier, content, variant, version FROM tc_journal WHERE ns = ?", (self.ns,), fetch="all"
        )
        return [  # a row of other SQL types (an altered file) is no record, never an exception
            (tier, Removal(content, variant, version))
            for tier, content, variant, version in rows
            if isinstance(version, int) and all(isinstance(x, str) for x in (tier, content, variant))
        ]

    def journal_discard(self, tier: str, removals: list[Removal]) -> None:
        for removal in removals:
            self._run(
                "journal",
                "DELETE FROM tc_journal WHERE ns = ? AND tier = ? AND content = ? AND variant = ? AND version <= ?",
                (self.ns, tier, removal.content, removal.variant, removal.version),
            )

    def floor_get(self) -> int:
        row = self._run(
            "journal", "SELECT value FROM tc_counters WHERE ns = ? AND name = 'redis_floor'", (self.ns,), fetch="one"
        )
        return int(row[0]) if row and isinstance(row[0], int) else 0

    def floor_raise(self, value: int) -> None:
        self._run(
            "journal",
            "INSERT INTO tc_counters (ns, name, value) VALUES (?, 'redis_floor', ?) ON CONFLICT (ns, name) "
            "DO UPDATE SET value = excluded.value WHERE excluded.value > tc_counters.value",
            (self.ns, value),
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
