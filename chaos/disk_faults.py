"""Disk faults on the cache directory: a real full filesystem and a real read-only remount on a small
tmpfs when this process may mount one (root in a container), else injected OSErrors; I/O errors
(always injected: a real EIO needs a device-mapper or FUSE device); the directory removed; entry
files truncated, bit-flipped or swapped with another entry's file.

Permissions cannot fake a read-only disk here: root ignores them, so no chmod-based fault is used.
Which variant ran is in each nemesis's `real` flag and `describe()`, and in the campaign summary.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import subprocess
from pathlib import Path

from properties.faults import DiskFault

from .nemesis import Nemesis


class Tmpfs:
    """A tmpfs of `size` mounted at `mountpoint` if possible; otherwise a plain directory."""

    def __init__(self, mountpoint: str | os.PathLike, size: str = "1m") -> None:
        self.mountpoint = Path(mountpoint)
        self.size = size
        self.mounted = False
        self.reason = ""

    def mount(self) -> bool:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        try:
            result = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs", str(self.mountpoint)],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.reason = f"mount not possible: {exc}"
            return False
        self.mounted = result.returncode == 0
        self.reason = "tmpfs mounted" if self.mounted else f"mount failed: {result.stderr.strip() or result.returncode}"
        return self.mounted

    def remount(self, mode: str) -> bool:
        if not self.mounted:
            return False
        result = subprocess.run(
            ["mount", "-o", f"remount,{mode}", str(self.mountpoint)], capture_output=True, text=True, timeout=30
        )
        return result.returncode == 0

    def umount(self) -> None:
        if self.mounted:
            self.remount("rw")
            subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True, timeout=30)
            self.mounted = False

    def __enter__(self) -> Tmpfs:
        self.mount()
        return self

    def __exit__(self, *exc: object) -> None:
        self.umount()


class DiskFull(Nemesis):
    """ENOSPC. Real: a filler file takes every free byte of the tmpfs. Fallback: injected ENOSPC."""

    kind = "disk ENOSPC"
    tier = "disk"

    def __init__(self, cache_dir: str, tmpfs: Tmpfs | None) -> None:
        self.real = bool(tmpfs and tmpfs.mounted)
        self.filler = tmpfs.mountpoint / ".chaos-filler" if self.real and tmpfs else None
        self.fallback = None if self.real else DiskFault(cache_dir, errno.ENOSPC)

    def inject(self) -> None:
        if self.fallback is not None:
            self.fallback.inject()
            return
        assert self.filler is not None
        try:
            fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                return  # already full
            raise
        try:
            for chunk in (1 << 16, 1 << 12, 1 << 9, 1):
                try:
                    while os.write(fd, b"\0" * chunk):
                        pass
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)

    def heal(self) -> None:
        if self.fallback is not None:
            self.fallback.heal()
        elif self.filler is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.filler)


class DiskReadOnly(Nemesis):
    """EROFS. Real: the tmpfs remounted read-only. Fallback: injected EROFS."""

    kind = "disk read-only"
    tier = "disk"

    def __init__(self, cache_dir: str, tmpfs: Tmpfs | None) -> None:
        self.tmpfs = tmpfs
        self.real = bool(tmpfs and tmpfs.mounted)
        self.fallback = None if self.real else DiskFault(cache_dir, errno.EROFS)
        self.active = False

    def inject(self) -> None:
        if self.fallback is not None:
            self.fallback.inject()
        else:
            assert self.tmpfs is not None
            if not self.tmpfs.remount("ro"):
                raise RuntimeError(f"remount read-only of {self.tmpfs.mountpoint} failed")
        self.active = True

    def heal(self) -> None:
        if not self.active:
            return
        if self.fallback is not None:
            self.fallback.heal()
        else:
            assert self.tmpfs is not None
            self.tmpfs.remount("rw")
        self.active = False


class DiskIOError(Nemesis):
    """EIO on every file operation under cache_dir (injected at the Python I/O layer)."""

    kind = "disk EIO"
    tier = "disk"
    real = False

    def __init__(self, cache_dir: str) -> None:
        self.fallback = DiskFault(cache_dir, errno.EIO)

    def inject(self) -> None:
        self.fallback.inject()

    def heal(self) -> None:
        self.fallback.heal()


class DirRemoved(Nemesis):
    """The whole cache directory disappears (an operator's rm -rf, a tmp cleaner)."""

    kind = "disk dir removed"
    tier = "disk"
    instant = True
    destroys_data = True

    def __init__(self, cache_dir: str) -> None:
        self.cache_dir = cache_dir

    def inject(self) -> None:
        shutil.rmtree(self.cache_dir, ignore_errors=True)


def entry_files(cache_dir: str) -> list[str]:
    """Every non-empty regular file under cache_dir, sorted (the harness does not know the layout)."""
    found = []
    for d, _, files in os.walk(cache_dir):
        for name in files:
            path = os.path.join(d, name)
            with contextlib.suppress(OSError):
                if os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) > 0:
                    found.append(path)
    return sorted(found)


class CorruptEntries(Nemesis):
    """Alter up to `count` entry files: truncate, flip one bit, or swap with another entry's file.

    `corrupted` maps each altered path to the bytes written there, for the E2 removal check.
    """

    tier = "disk"
    instant = True
    destroys_data = True

    def __init__(self, cache_dir: str, how: str, rng: random.Random, count: int = 3) -> None:
        if how not in ("truncate", "bitflip", "swap"):
            raise ValueError(how)
        self.cache_dir, self.how, self.rng, self.count = cache_dir, how, rng, count
        self.kind = f"disk entry {how}"
        self.corrupted: dict[str, bytes] = {}

    def inject(self) -> None:
        self.corrupted = {}
        files = entry_files(self.cache_dir)
        if not files:
            return
        chosen = self.rng.sample(files, min(self.count, len(files)))
        contents = {}
        for path in files if self.how == "swap" else chosen:
            with contextlib.suppress(OSError), open(path, "rb") as f:
                contents[path] = f.read()
        for path in chosen:
            data = contents.get(path)
            if data is None:
                continue
            if self.how == "truncate":
                new = data[: self.rng.randrange(len(data))]
            elif self.how == "bitflip":
                bit = self.rng.randrange(len(data) * 8)
                flipped = bytearray(data)
                flipped[bit // 8] ^= 1 << (bit % 8)
                new = bytes(flipped)
            else:
                others = [p for p, d in contents.items() if p != path and d != data]
                if not others:
                    continue
                new = contents[self.rng.choice(others)]
            with open(path, "wb") as f:
                f.write(new)
            self.corrupted[path] = new

    def still_corrupt(self) -> list[str]:
        """Altered files that still hold exactly the altered bytes."""
        left = []
        for path, data in self.corrupted.items():
            try:
                with open(path, "rb") as f:
                    if f.read() == data:
                        left.append(path)
            except OSError:
                continue
        return left
