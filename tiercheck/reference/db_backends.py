"""Connections for the database tier: a small pool of SQLite connections (WAL, busy timeout; a corrupt
file is moved aside and its journal carried over), or of psycopg connections for PostgreSQL."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import urllib.parse
import uuid
from typing import Any

log = logging.getLogger("reference.database")

_POOL_IDLE = 8
_PAGE_SIZE = 8192
_RECHECK_SECONDS = 0.05  # longest a read goes without checking that the SQLite file is still ours


class SqliteBackend:
    """A small pool of SQLite connections: a connection is used by one thread at a time."""

    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, schema: list[str], path: str, busy_timeout: float) -> None:
        self.schema = schema
        self.path = path
        self.busy_timeout = busy_timeout
        self._idle: list[tuple[sqlite3.Connection, int]] = []  # list.pop/append are atomic: no queue locks per op
        self._lock = threading.Lock()
        self._generation = 0  # bumped when the file is replaced: older connections are dropped
        self._inode: int | None = None
        self._checked_at = -_RECHECK_SECONDS  # monotonic time of the last inode check
        self._schema_ready = False
        self._salvaged: list[tuple[str, list[tuple]]] = []  # from a quarantined file, for the next one

    def _open(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            # A new file gets 8 KiB pages (an existing one keeps its own): an entry (~1.4 KB of metadata)
            # then fits in its b-tree leaf, where 4 KiB pages put its tail on an overflow page of its own:
            # one page read per hit instead of two, and a file a third the size.
            conn.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            if not self._schema_ready:
                columns = [row[1] for row in conn.execute("PRAGMA table_info(tc_entries)")]
                if columns and "version" not in columns:  # a file of the unversioned layout: it is a cache
                    conn.execute("DROP TABLE tc_entries")
                for statement in self.schema:
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

    def _follow_file(self) -> None:
        """Start over on a new file when ours was deleted or replaced under us."""
        inode = self._current_inode()
        if inode != self._inode:
            with self._lock:
                if inode != self._inode:
                    self._drop_all()
                    self._inode = inode

    def execute(self, sql: str, params: tuple, fetch: str | None, read: bool) -> Any:
        """One statement: its rows (`fetch` "one"/"all") or row count. The inode is checked before every write,
        before a read at most every _RECHECK_SECONDS and after an error: only a read may see a deleted file."""
        clock = time.monotonic()
        if not read or clock - self._checked_at >= _RECHECK_SECONDS:
            self._follow_file()
            self._checked_at = clock
        try:
            conn, generation = self._idle.pop()
        except IndexError:
            conn, generation = None, self._generation
        try:
            if conn is None:
                conn = self._open()
                if self._inode is None:
                    self._inode = self._current_inode()
            cursor = conn.execute(sql, params)
            result = cursor.fetchone() if fetch == "one" else cursor.fetchall() if fetch == "all" else cursor.rowcount
        except BaseException as exc:
            self._checked_at = -_RECHECK_SECONDS  # the file may be gone: look again before the next statement
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.DatabaseError) and _looks_corrupt(exc):  # some arrive as OperationalError
                self._quarantine()
            elif isinstance(exc, UnicodeDecodeError):  # a corrupt file can hand sqlite3 text that is not UTF-8
                self._quarantine()
                raise sqlite3.DatabaseError(f"database disk image is malformed (undecodable text: {exc})") from exc
            raise
        if generation == self._generation and len(self._idle) < _POOL_IDLE:
            self._idle.append((conn, generation))
        else:
            conn.close()
        return result

    def _drop_all(self) -> None:
        self._generation += 1
        self._schema_ready = False
        while True:
            try:
                conn, _ = self._idle.pop()
            except IndexError:
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


class PostgresBackend:
    """A small pool of PostgreSQL connections, like SqliteBackend's: after a failure every pooled
    connection is closed and the next operation connects afresh. No background reconnection with a
    growing back-off (a pool library's kept a restarted server unused past P5's re-admission bound)."""

    def __init__(self, schema: list[str], url: str, timeout: float) -> None:
        import psycopg

        self.schema = schema
        self.errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        self._connect = lambda: psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(1, int(round(timeout * 2))),
            options=f"-c statement_timeout={int(timeout * 4000)}",
        )
        self._idle: list[Any] = []  # list.pop/append are atomic
        self._schema_ready = False

    def execute(self, sql: str, params: tuple, fetch: str | None, read: bool) -> Any:
        """One statement (written with `?`): its rows (`fetch` "one"/"all") or its row count."""
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = self._connect()
        ok = False
        try:
            if not self._schema_ready:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(7461726)")  # concurrent CREATEs race in PG
                    columns = conn.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = 'tc_entries' "
                        "AND table_schema = current_schema()"
                    ).fetchall()
                    if columns and ("version",) not in columns:  # the unversioned layout: it is a cache
                        conn.execute("DROP TABLE tc_entries")
                    for statement in self.schema:
                        conn.execute(statement.format(real="DOUBLE PRECISION", blob="BYTEA", suffix=""))
                self._schema_ready = True
            cursor = conn.execute(sql.replace("?", "%s"), params)
            result = cursor.fetchone() if fetch == "one" else cursor.fetchall() if fetch == "all" else cursor.rowcount
            ok = True
            return result
        finally:
            if ok and not conn.closed and len(self._idle) < _POOL_IDLE:
                self._idle.append(conn)
            else:
                conn.close()
                if not ok:  # the server may have restarted: the idle ones are broken too, never tried one by one
                    self.close()

    def close(self) -> None:
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return
            conn.close()
