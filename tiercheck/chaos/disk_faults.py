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
import stat
import subprocess
from pathlib import Path

from tiercheck.properties.faults import DiskFault

from .nemesis import Nemesis, World, register


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

    def _inject(self) -> None:
        if self.fallback is not None:
            self.fallback.inject()
            return
        assert self.filler is not None
        try:
            self._fill()
        finally:
            st = os.statvfs(self.filler.parent)
            if st.f_bavail == 0:
                self.effect(f"{self.filler.parent} full (0 blocks free)")

    def took_effect(self) -> bool:
        if self.fallback is not None:
            return self.fallback.took_effect()
        return super().took_effect()

    def _fill(self) -> None:
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

    def _inject(self) -> None:
        if self.fallback is not None:
            self.fallback.inject()
        else:
            assert self.tmpfs is not None
            if not self.tmpfs.remount("ro"):
                raise RuntimeError(f"remount read-only of {self.tmpfs.mountpoint} failed")
            if os.statvfs(self.tmpfs.mountpoint).f_flag & os.ST_RDONLY:
                self.effect(f"{self.tmpfs.mountpoint} mounted read-only")
        self.active = True

    def took_effect(self) -> bool:
        if self.fallback is not None:
            return self.fallback.took_effect()
        return super().took_effect()

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

    def _inject(self) -> None:
        self.fallback.inject()

    def took_effect(self) -> bool:
        return self.fallback.took_effect()

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

    def _inject(self) -> None:
        existed = os.path.isdir(self.cache_dir)
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        if existed and not os.path.exists(self.cache_dir):
            self.effect(f"{self.cache_dir} removed")


def entry_files(cache_dir: str) -> list[str]:
    """Every non-empty regular file under cache_dir, sorted (the harness does not know the layout)."""
    return sorted(p for p, (size, _) in _files(cache_dir).items() if size > 0)


def _files(cache_dir: str) -> dict[str, tuple[int, int]]:
    """Every regular file under cache_dir (symlinks excluded) -> (size, mtime_ns)."""
    found = {}
    for d, _, names in os.walk(cache_dir):
        for name in names:
            path = os.path.join(d, name)
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode):
                    found[path] = (st.st_size, st.st_mtime_ns)
    return found


class CorruptEntries(Nemesis):
    """Alter up to `count` files of cache_dir: truncate, flip one bit, or swap with another file.

    Layout-neutral: the harness does not know which files are entries. When `arm()` took a picture of
    cache_dir, the candidates are the files created or changed since (what the operations in between
    wrote); otherwise, or when none changed, every non-empty regular file. `corrupted` maps each
    altered path to the bytes written there, `originals` to the bytes it held before: exactly what
    changed, for the checks.
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
        self.originals: dict[str, bytes] = {}
        self.picture: dict[str, tuple[int, int]] | None = None

    def arm(self) -> None:
        self.picture = _files(self.cache_dir)

    def candidates(self) -> list[str]:
        now = {p: v for p, v in _files(self.cache_dir).items() if v[0] > 0}
        if self.picture is not None:
            changed = sorted(p for p, v in now.items() if self.picture.get(p) != v)
            if changed:
                return changed
        return sorted(now)

    def _inject(self) -> None:
        self.corrupted, self.originals = {}, {}
        files = self.candidates()
        self.picture = None
        if not files:
            return
        chosen = self.rng.sample(files, min(self.count, len(files)))
        contents = {}
        pool = entry_files(self.cache_dir) if self.how == "swap" else chosen
        for path in pool:
            with contextlib.suppress(OSError), open(path, "rb") as f:
                contents[path] = f.read()
        for path in chosen:
            data = contents.get(path)
            if not data:
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
            with contextlib.suppress(OSError), open(path, "rb") as f:
                if f.read() == new:
                    self.corrupted[path] = new
                    self.originals[path] = data
                    self.effect(
                        f"{os.path.relpath(path, self.cache_dir)}: {len(data)} -> {len(new)} bytes ({self.how})"
                    )

    def still_damaged(self) -> bool:
        """While an altered file still holds exactly the altered bytes, the disk tier carries the harness's
        damage (the implementation has not read and dropped it yet). `heal` does not restore them: what
        the implementation does with them is what E2 checks."""
        return bool(self.still_corrupt())

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


# --- the registry ---------------------------------------------------------------------------------


@register("disk ENOSPC")
def _full(world: World) -> Nemesis:
    return DiskFull(world.cache_dir, world.tmpfs)


@register("disk read-only")
def _read_only(world: World) -> Nemesis:
    return DiskReadOnly(world.cache_dir, world.tmpfs)


@register("disk EIO")
def _eio(world: World) -> Nemesis:
    return DiskIOError(world.cache_dir)


@register("disk dir removed")
def _dir_removed(world: World) -> Nemesis:
    return DirRemoved(world.cache_dir)


@register("disk entry truncate")
def _truncate(world: World) -> Nemesis:
    return CorruptEntries(world.cache_dir, "truncate", world.rng)


@register("disk entry bitflip")
def _bitflip(world: World) -> Nemesis:
    return CorruptEntries(world.cache_dir, "bitflip", world.rng)


@register("disk entry swap")
def _swap(world: World) -> Nemesis:
    return CorruptEntries(world.cache_dir, "swap", world.rng)
