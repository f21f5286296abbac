"""Database faults: SQLite locked by another connection, pages corrupted, file deleted; PostgreSQL
backends terminated (pg_terminate_backend) and the real server SIGKILLed and restarted."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import urllib.parse

import psycopg

from .nemesis import Nemesis, ServerKill

PAGE = 4096


class SqliteLock(Nemesis):
    """BEGIN EXCLUSIVE on another connection, held until heal (far beyond any busy timeout).

    A file that is not a database at the moment (corrupted by an earlier fault and not yet moved
    aside by the cache) cannot be locked: the injection is then skipped and counted in `skipped`.
    """

    kind = "sqlite locked"
    tier = "database"

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self.skipped = 0

    def inject(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        try:
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.DatabaseError:
            conn.close()
            self.skipped += 1
            return
        self.conn = conn

    def heal(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            conn.close()


class SqliteCorruptPages(Nemesis):
    """Random bytes over a few pages of the database file (and of its WAL, if any)."""

    kind = "sqlite pages corrupted"
    tier = "database"
    instant = True
    destroys_data = True

    def __init__(self, path: str, rng: random.Random, pages: int = 3) -> None:
        self.path, self.rng, self.pages = path, rng, pages

    def inject(self) -> None:
        for path in (self.path, self.path + "-wal"):
            try:
                size = os.path.getsize(path)
            except OSError:
                continue
            if size == 0:
                continue
            count = max(1, (size + PAGE - 1) // PAGE)
            with open(path, "r+b") as f:
                for page in self.rng.sample(range(count), min(self.pages, count)):
                    offset = page * PAGE + self.rng.randrange(0, 64)  # keep some of each page's start
                    f.seek(min(offset, max(0, size - 1)))
                    f.write(self.rng.randbytes(min(512, max(1, size - f.tell()))))

    def still_damaged(self) -> bool:
        """SQLite's own quick_check, read-only: the corruption stays until the implementation reads a
        damaged page and replaces the file (the reference moves it aside and starts afresh)."""
        if not os.path.exists(self.path):
            return False
        try:
            absolute = "/" + os.path.abspath(self.path).lstrip("/")  # "//tmp/x" would read as host "tmp"
            connection = sqlite3.connect(f"file:{urllib.parse.quote(absolute)}?mode=ro", uri=True, timeout=2)
            try:
                return connection.execute("PRAGMA quick_check").fetchall() != [("ok",)]
            finally:
                connection.close()
        except sqlite3.Error:  # "file is not a database", "malformed": damaged
            return True


class SqliteDeleted(Nemesis):
    """The database file (with its -wal and -shm) is deleted."""

    kind = "sqlite deleted"
    tier = "database"
    instant = True
    destroys_data = True

    def __init__(self, path: str) -> None:
        self.path = path

    def inject(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path + suffix)


class PgTerminateBackends(Nemesis):
    """pg_terminate_backend on every other connection to the test database (the pool must reconnect)."""

    kind = "postgres backends terminated"
    tier = "database"
    instant = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.terminated = 0

    def inject(self) -> None:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        self.terminated += sum(1 for (ok,) in rows if ok)


class PgKill(ServerKill):
    """SIGKILL the PostgreSQL server (its whole process group); heal restarts it (crash recovery)."""

    kind = "postgres SIGKILL"
    tier = "database"
