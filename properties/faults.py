"""In-process fault injectors ("nemeses": inject, heal, describe) that need no knowledge of the
implementation: they act on the Redis server, the cache directory and the database file the
harness itself handed out. The chaos suites add faults on real server processes."""

from __future__ import annotations

import builtins
import errno
import io
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from tiercheck.backends import FakeRedisServer


class Nemesis:
    name = "nemesis"
    tier = ""

    def inject(self) -> None: ...

    def heal(self) -> None: ...

    def describe(self) -> str:
        return self.name


class RedisOutage(Nemesis):
    """Connections refused; the server comes back with its data (a network outage)."""

    tier = "redis"

    def __init__(self, server: FakeRedisServer, empty_on_heal: bool = False) -> None:
        self.server, self.empty = server, empty_on_heal
        self.name = "redis restarted empty" if empty_on_heal else "redis refused"

    def inject(self) -> None:
        self.server.stop()

    def heal(self) -> None:
        self.server.start(empty=self.empty)


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
    Python I/O layer — root ignores permissions, so chmod cannot make a read-only disk."""

    tier = "disk"

    def __init__(self, cache_dir: str, code: int) -> None:
        self.prefix = os.path.abspath(cache_dir)
        self.code = code
        self.name = f"disk {errno.errorcode[code]}"

    def inject(self) -> None:
        with _lock:
            _install()
            _failing[self.prefix] = self.code

    def heal(self) -> None:
        with _lock:
            _failing.pop(self.prefix, None)
            if not _failing:
                _uninstall()


class SqliteLocked(Nemesis):
    """Another connection holds an exclusive lock on the database file for as long as it lasts."""

    tier = "database"
    name = "sqlite locked"

    def __init__(self, database_path: str) -> None:
        self.path = database_path
        self.conn: sqlite3.Connection | None = None

    def inject(self) -> None:
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        self.conn.execute("BEGIN EXCLUSIVE")

    def heal(self) -> None:
        if self.conn is not None:
            self.conn.execute("ROLLBACK")
            self.conn.close()
            self.conn = None
