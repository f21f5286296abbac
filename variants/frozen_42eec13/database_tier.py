"""The database tier: SQLite by default (WAL, busy timeout, pooled connections), PostgreSQL by URL.

Both dialects share the SQL below (written with `?`; PostgreSQL gets `%s`); every statement is
parametrized and every row carries the namespace. A SQLite file that is corrupt is moved aside
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
import urllib.parse
import uuid
from collections.abc import Collection, Iterator
from typing import Any

from .keys import CacheKey
from .store import REPAIR_MARK_SECONDS, IsDead, Repair, TierError

log = logging.getLogger("reference.database")

_POOL_IDLE = 8

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS tc_entries (
        ns TEXT NOT NULL, content TEXT NOT NULL, variant TEXT NOT NULL,
        expires_at {real} NOT NULL, blob {blob} NOT NULL,
        PRIMARY KEY (ns, content, variant)){suffix}""",
    "CREATE INDEX IF NOT EXISTS tc_entries_expiry ON tc_entries (ns, expires_at)",
    """CREATE TABLE IF NOT EXISTS tc_repairs (
        ns TEXT NOT NULL, tier TEXT NOT NULL, rid TEXT NOT NULL, content TEXT NOT NULL, variant TEXT NOT NULL,
        PRIMARY KEY (ns, tier, rid)){suffix}""",
    """CREATE TABLE IF NOT EXISTS tc_repaired (
        ns TEXT NOT NULL, rid TEXT NOT NULL, applied_at {real} NOT NULL,
        PRIMARY KEY (ns, rid)){suffix}""",
    """CREATE TABLE IF NOT EXISTS tc_meta (
        ns TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (ns, name)){suffix}""",
]

_UPSERT_ENTRY = (
    "INSERT INTO tc_entries (ns, content, variant, expires_at, blob) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (ns, content, variant) DO UPDATE SET expires_at = excluded.expires_at, blob = excluded.blob"
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
        "SELECT ns, tier, rid, content, variant FROM tc_repairs",
        "INSERT INTO tc_repairs (ns, tier, rid, content, variant) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    ),
    ("SELECT ns, rid, applied_at FROM tc_repaired", "INSERT INTO tc_repaired VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
    (
        "SELECT ns, name, value FROM tc_meta",
        "INSERT INTO tc_meta (ns, name, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    ),
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


def _chunks(items: list[str], size: int = 300) -> Iterator[list[str]]:
    """Statements with a bounded number of parameters (SQLite allows 999 in older builds)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


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
            "SELECT blob FROM tc_entries WHERE ns = ? AND content = ? AND variant = ?",
            (self.ns, key.content, key.variant),
            fetch="one",
        )
        return bytes(row[0]) if row else None

    def put(self, key: CacheKey, blob: bytes, expires_at: float, now: float) -> None:
        self._run("put", _UPSERT_ENTRY, (self.ns, key.content, key.variant, expires_at, blob))

    def remove(self, content: str, variant: str | None = None) -> None:
        if variant is None:
            self._run("remove", "DELETE FROM tc_entries WHERE ns = ? AND content = ?", (self.ns, content))
        else:
            self._run(
                "remove",
                "DELETE FROM tc_entries WHERE ns = ? AND content = ? AND variant = ?",
                (self.ns, content, variant),
            )

    def clear(self) -> None:
        self._run("clear", "DELETE FROM tc_entries WHERE ns = ?", (self.ns,))

    def keys(self) -> Iterator[CacheKey]:
        rows = self._run("scan", "SELECT content, variant FROM tc_entries WHERE ns = ?", (self.ns,), fetch="all")
        return iter([CacheKey(c, v) for c, v in rows])

    def purge(self, is_dead: IsDead) -> int:
        rows = self._run("purge", "SELECT content, variant, blob FROM tc_entries WHERE ns = ?", (self.ns,), fetch="all")
        removed = 0
        for content, variant, blob in rows:
            if is_dead(CacheKey(content, variant), bytes(blob)):
                removed += self._run(
                    "purge",
                    "DELETE FROM tc_entries WHERE ns = ? AND content = ? AND variant = ?",
                    (self.ns, content, variant),
                )
        return removed

    def usage(self) -> dict[str, object]:
        row = self._run("usage", "SELECT COUNT(*) FROM tc_entries WHERE ns = ?", (self.ns,), fetch="one")
        return {"entries": row[0], "dialect": self.dialect}

    # --- journal and coordination ---------------------------------------------------------

    def journal_add(self, tier: str, repair: Repair) -> None:
        self._run(
            "journal",
            "INSERT INTO tc_repairs (ns, tier, rid, content, variant) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (self.ns, tier, repair.rid, repair.content, repair.variant),
        )

    def journal_load(self) -> list[tuple[str, Repair]]:
        rows = self._run(
            "journal", "SELECT tier, content, variant, rid FROM tc_repairs WHERE ns = ?", (self.ns,), fetch="all"
        )
        return [(tier, Repair(content, variant, rid)) for tier, content, variant, rid in rows]

    def journal_discard(self, tier: str, repairs: Collection[Repair]) -> None:
        for chunk in _chunks([r.rid for r in repairs]):
            self._run(
                "journal",
                f"DELETE FROM tc_repairs WHERE ns = ? AND tier = ? AND rid IN ({', '.join('?' * len(chunk))})",
                (self.ns, tier, *chunk),
            )

    def repairs_applied(self, rids: Collection[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(rids)):
            rows = self._run(
                "repair marks",
                f"SELECT rid FROM tc_repaired WHERE ns = ? AND rid IN ({', '.join('?' * len(chunk))})",
                (self.ns, *chunk),
                fetch="all",
            )
            found.update(row[0] for row in rows)
        return found

    def mark_repaired(self, rids: Collection[str], now: float) -> None:
        self._run(
            "repair marks",
            "DELETE FROM tc_repaired WHERE ns = ? AND applied_at < ?",
            (self.ns, now - REPAIR_MARK_SECONDS),
        )
        for chunk in _chunks(list(rids)):
            self._run(
                "repair marks",
                f"INSERT INTO tc_repaired (ns, rid, applied_at) VALUES {', '.join(['(?, ?, ?)'] * len(chunk))} "
                "ON CONFLICT DO NOTHING",
                tuple(value for rid in chunk for value in (self.ns, rid, now)),
            )

    def floor_get(self) -> int:
        """The Redis change counter below which a Redis has lost removals made here (0: none)."""
        row = self._run(
            "journal", "SELECT value FROM tc_meta WHERE ns = ? AND name = 'redis_floor'", (self.ns,), fetch="one"
        )
        return int(row[0]) if row and str(row[0]).isdigit() else 0

    def floor_raise(self, value: int) -> None:
        self._run(
            "journal",
            "INSERT INTO tc_meta (ns, name, value) VALUES (?, 'redis_floor', ?) ON CONFLICT (ns, name) DO UPDATE "
            "SET value = CASE WHEN CAST(excluded.value AS BIGINT) > CAST(tc_meta.value AS BIGINT) "
            "THEN excluded.value ELSE tc_meta.value END",
            (self.ns, str(value)),
        )

    def bump_generation(self) -> str:
        rows = self._run(
            "bump_generation",
            "INSERT INTO tc_meta (ns, name, value) VALUES (?, 'generation_counter', '1') "
            "ON CONFLICT (ns, name) DO UPDATE SET value = CAST(CAST(tc_meta.value AS BIGINT) + 1 AS TEXT) "
            "RETURNING value",
            (self.ns,),
            fetch="all",  # read to the end: the statement must be finished before the commit
        )
        return str(rows[0][0])

    def read_generation(self) -> str:
        row = self._run(
            "read_generation",
            "SELECT value FROM tc_meta WHERE ns = ? AND name = 'generation_counter'",
            (self.ns,),
            fetch="one",
        )
        return str(row[0]) if row else ""

    def close(self) -> None:
        self._backend.close()
