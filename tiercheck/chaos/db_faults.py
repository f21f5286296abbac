"""Database faults: SQLite locked by another connection, pages corrupted, file deleted; PostgreSQL
backends terminated (pg_terminate_backend) and the real server SIGKILLed and restarted. Hostile rows
are in chaos.hostile."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
from pathlib import Path

import psycopg

from tiercheck.properties.faults import sqlite_locked

from .nemesis import Nemesis, ServerKill, World, register

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

    def _inject(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        try:
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.DatabaseError:
            conn.close()
            self.skipped += 1
            return
        self.conn = conn
        if sqlite_locked(self.path):
            self.effect(f"{os.path.basename(self.path)} exclusively locked by another connection")

    def heal(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            conn.close()


class SqliteCorruptPages(Nemesis):
    """Random bytes over a few pages of the database file (and of its WAL, if any).

    Every write is recorded (file, offset, the bytes before, the bytes written). `heal()` is the
    harness repairing the damage: each range that still holds exactly the bytes written gets its
    original bytes back, in place (an open connection sees the repaired file), so the tier can be
    checked for re-admission; ranges the implementation rewrote meanwhile are left alone. Whether the
    implementation repairs the file on its own (before the heal) is a separate finding:
    `repaired_by_implementation` says whether it had replaced the file or rewritten every range.
    """

    kind = "sqlite pages corrupted"
    tier = "database"
    instant = True
    destroys_data = True

    def __init__(self, path: str, rng: random.Random, pages: int = 3) -> None:
        self.path, self.rng, self.pages = path, rng, pages
        self._damaged: tuple[int, int] | None = None  # the file the last inject corrupted
        self.writes: list[tuple[str, tuple[int, int], int, bytes, bytes]] = []  # path, identity, offset, old, new
        self.healed = False
        self.repaired_by_implementation: bool | None = None

    def _inject(self) -> None:
        self.writes, self.healed, self.repaired_by_implementation = [], False, None
        with contextlib.suppress(OSError):
            self._damaged = _identity(self.path)
        for path in (self.path, self.path + "-wal"):
            try:
                size = os.path.getsize(path)
                identity = _identity(path)
            except OSError:
                continue
            if size == 0:
                continue
            count = max(1, (size + PAGE - 1) // PAGE)
            with open(path, "r+b") as f:
                for page in self.rng.sample(range(count), min(self.pages, count)):
                    offset = page * PAGE + self.rng.randrange(0, 64)  # keep some of each page's start
                    offset = min(offset, max(0, size - 1))
                    f.seek(offset)
                    old = f.read(min(512, max(1, size - offset)))
                    new = self.rng.randbytes(len(old))
                    if new == old:
                        continue
                    f.seek(offset)
                    f.write(new)
                    self.writes.append((path, identity, offset, old, new))
            with open(path, "rb") as f:
                changed = 0
                for p, _, offset, _, new in self.writes:
                    if p == path:
                        f.seek(offset)
                        changed += f.read(len(new)) == new
            if changed:
                self.effect(f"{os.path.basename(path)}: {changed} range(s) overwritten")

    def heal(self) -> None:
        """Put the original bytes back where the damage is still in place (idempotent)."""
        if self.healed or not self.writes:
            return
        self.healed = True
        restored = untouched = 0
        for path, identity, offset, old, new in reversed(self.writes):
            try:
                if _identity(path) != identity:
                    untouched += 1
                    continue
                with open(path, "r+b") as f:
                    f.seek(offset)
                    if f.read(len(new)) != new:
                        untouched += 1
                        continue
                    f.seek(offset)
                    f.write(old)
                    restored += 1
            except OSError:
                untouched += 1
        self.repaired_by_implementation = restored == 0
        removed = "" if _intact(self.path) else self._remove()
        self.effect(f"healed by the harness: {restored} range(s) restored, {untouched} already replaced{removed}")

    def _remove(self) -> str:
        """The damage spread where an in-place restore cannot reach (a checkpoint copied corrupted WAL frames
        into the file): the harness removes the database instead, which SPEC P5 allows ("it restores or
        removes it"), so re-admission is judged on a healed backend, never on one still malformed."""
        for path in (self.path, self.path + "-wal", self.path + "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(path)
        return "; still malformed, so the harness removed the file"

    def still_damaged(self) -> bool:
        """Until healed (or the file replaced by the implementation), the damage may surface at any time:
        a read of a damaged page, or a checkpoint that copies corrupted WAL frames into the file long
        after the fault (SQLite's quick_check can pass in between, so it is not asked)."""
        if self.healed:
            return False
        try:
            return self._damaged is not None and _identity(self.path) == self._damaged
        except OSError:  # moved aside or deleted: a new file will be started
            return False


def _intact(path: str) -> bool:
    """Whether SQLite finds the file sound (a missing file counts as sound: a new one will be started)."""
    if not os.path.exists(path):
        return True
    try:
        connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=2)
        try:
            return connection.execute("PRAGMA quick_check").fetchone() == ("ok",)
        finally:
            connection.close()
    except sqlite3.DatabaseError:
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

    def _inject(self) -> None:
        existed = os.path.exists(self.path)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path + suffix)
        if existed and not os.path.exists(self.path):
            self.effect(f"{os.path.basename(self.path)} deleted")


class PgTerminateBackends(Nemesis):
    """pg_terminate_backend on every other connection to the database of `url` (the pool must reconnect)."""

    kind = "postgres backends terminated"
    tier = "database"
    instant = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.terminated = 0

    def _inject(self) -> None:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        now = sum(1 for (ok,) in rows if ok)
        self.terminated += now
        if now:
            self.effect(f"{now} backend(s) terminated")


class PgKill(ServerKill):
    """SIGKILL the PostgreSQL server and every backend (servers.kill_tree); heal restarts it (crash recovery)."""

    kind = "postgres SIGKILL"
    tier = "database"


# --- the registry ---------------------------------------------------------------------------------


def _sqlite(world: World) -> str | None:
    return world.sqlite_path if world.database_url and world.sqlite_path else None


def _postgres(world: World) -> bool:
    url = world.database_url or ""
    return url.startswith(("postgresql://", "postgres://")) and world.postgres is not None


@register("sqlite locked")
def _lock(world: World) -> Nemesis | None:
    path = _sqlite(world)
    return SqliteLock(path) if path else None


@register("sqlite pages corrupted")
def _pages(world: World) -> Nemesis | None:
    path = _sqlite(world)
    return SqliteCorruptPages(path, world.rng) if path else None


@register("sqlite deleted")
def _deleted(world: World) -> Nemesis | None:
    path = _sqlite(world)
    return SqliteDeleted(path) if path else None


@register("postgres backends terminated")
def _terminate(world: World) -> Nemesis | None:
    return PgTerminateBackends(world.database_url) if _postgres(world) else None  # type: ignore[arg-type]


@register("postgres SIGKILL")
def _pg_kill(world: World) -> Nemesis | None:
    if not _postgres(world) or not world.postgres.controllable:  # type: ignore[union-attr]
        return None
    return PgKill(world.postgres)
