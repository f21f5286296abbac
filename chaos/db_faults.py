"""Database faults: SQLite locked by another connection, pages corrupted, file deleted; PostgreSQL
backends terminated (pg_terminate_backend) and the real server SIGKILLed and restarted."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3

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
        self._damaged: tuple[int, int] | None = None  # the file the last inject corrupted

    def inject(self) -> None:
        with contextlib.suppress(OSError):
            self._damaged = _identity(self.path)
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
        """Until the implementation replaces the file, the damage may surface at any time: a read of a
        damaged page, or a checkpoint that copies corrupted WAL frames into the file long after the
        fault (SQLite's quick_check can pass in between, so it is not asked)."""
        try:
            return self._damaged is not None and _identity(self.path) == self._damaged
        except OSError:  # moved aside or deleted: a new file will be started
            return False


def _identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


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
