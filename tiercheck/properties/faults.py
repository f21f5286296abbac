"""In-process fault injectors that need no knowledge of the implementation: they act on the
in-process Redis server (`FakeRedisServer`), the cache directory and the database file the harness
itself handed out. They follow the one nemesis protocol (`chaos.nemesis.Nemesis`: kind, tier,
inject, heal, took_effect, ...) and are built through its registry for in-process worlds
(`chaos.nemesis.World.in_process`); the chaos suites add faults on real server processes."""

from __future__ import annotations

import builtins
import errno
import io
import os
import socket
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from tiercheck.backends import FakeRedisServer
from tiercheck.chaos.nemesis import Nemesis, World, register

__all__ = ["DiskFault", "Nemesis", "RedisOutage", "SqliteLocked"]


class RedisOutage(Nemesis):
    """Connections refused; the server comes back with its data (a network outage), or without it
    (`empty_on_heal`: a restart that lost its data)."""

    tier = "redis"
    real = False

    def __init__(self, server: FakeRedisServer, empty_on_heal: bool = False) -> None:
        self.server, self.empty = server, empty_on_heal
        self.kind = "redis restart empty" if empty_on_heal else "redis refused"
        self.destroys_data = empty_on_heal

    def _inject(self) -> None:
        self.server.stop()
        try:
            socket.create_connection(("127.0.0.1", self.server.port), timeout=2).close()
        except OSError:
            self.effect("in-process server stopped: connections refused")

    def heal(self) -> None:
        self.server.start(empty=self.empty)

    def describe(self) -> str:
        return f"{self.kind} (in-process server)"


_PATCHED: list[tuple[Any, str]] = [
    (builtins, "open"),
    (io, "open"),
    (os, "open"),
    (os, "replace"),
    (os, "rename"),
    (os, "unlink"),
    (os, "mkdir"),
    (os, "rmdir"),
    (os, "scandir"),
    (os, "listdir"),
    (os, "stat"),
]
_lock = threading.Lock()
_failing: dict[str, int] = {}  # path prefix -> errno
_hits: dict[str, int] = {}  # path prefix -> operations failed since it was injected
_originals: dict[tuple[int, str], Callable] = {}


def _guard(original: Callable) -> Callable:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if _failing and args:
            target = args[0]
            if isinstance(target, int):  # a descriptor (os.stat(fd), os.scandir(fd)): not a path
                return original(*args, **kwargs)
            path = os.fsdecode(target) if isinstance(target, str | bytes | os.PathLike) else ""
            for prefix, code in list(_failing.items()):
                if path.startswith(prefix):
                    _hits[prefix] = _hits.get(prefix, 0) + 1
                    raise OSError(code, os.strerror(code), path)
        return original(*args, **kwargs)

    return guarded


def _install() -> None:
    if _originals:
        return
    for module, name in _PATCHED:
        original = getattr(module, name)
        _originals[(id(module), name)] = original
        setattr(module, name, _guard(original))


def _uninstall() -> None:
    for module, name in _PATCHED:
        original = _originals.pop((id(module), name), None)
        if original is not None:
            setattr(module, name, original)


class DiskFault(Nemesis):
    """Every file operation under cache_dir fails with one errno (EIO, ENOSPC, EROFS), at the
    Python I/O layer — root ignores permissions, so chmod cannot make a read-only disk.

    It takes effect only when the implementation really touched cache_dir and got the error
    (`failed` counts those operations since the injection)."""

    tier = "disk"
    real = False

    def __init__(self, cache_dir: str, code: int) -> None:
        self.prefix = os.path.abspath(cache_dir)
        self.code = code
        self.kind = f"disk {errno.errorcode[code]}"
        self.failed = 0

    def _inject(self) -> None:
        self.failed = 0
        with _lock:
            _install()
            _failing[self.prefix] = self.code
            _hits[self.prefix] = 0

    def heal(self) -> None:
        with _lock:
            if self.prefix in _failing:
                self.failed = _hits.pop(self.prefix, 0)
            _failing.pop(self.prefix, None)
            if not _failing:
                _uninstall()

    def took_effect(self) -> bool:
        failed = _hits.get(self.prefix, 0) if self.prefix in _failing else self.failed
        return failed > 0

    def evidence(self) -> str:
        failed = _hits.get(self.prefix, 0) if self.prefix in _failing else self.failed
        return f"{failed} file operation(s) under {self.prefix} failed with {errno.errorcode[self.code]}"


class SqliteLocked(Nemesis):
    """Another connection holds an exclusive lock on the database file for as long as it lasts."""

    tier = "database"
    kind = "sqlite locked"

    def __init__(self, database_path: str) -> None:
        self.path = database_path
        self.conn: sqlite3.Connection | None = None

    def _inject(self) -> None:
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        self.conn.execute("BEGIN EXCLUSIVE")
        if sqlite_locked(self.path):
            self.effect(f"{self.path} exclusively locked")

    def heal(self) -> None:
        if self.conn is not None:
            self.conn.execute("ROLLBACK")
            self.conn.close()
            self.conn = None


def sqlite_locked(path: str) -> bool:
    """Whether another connection cannot even start a write transaction on the file right now."""
    probe = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc) or "busy" in str(exc)
    finally:
        probe.close()


@register("redis refused")
def _refused(world: World) -> Nemesis | None:
    """In-process worlds only: a real server's outage is "redis partition" or "redis SIGKILL"."""
    if world.fake_redis is None or not world.uses_redis:
        return None
    return RedisOutage(world.fake_redis)
