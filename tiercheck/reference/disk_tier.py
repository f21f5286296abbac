"""The disk tier: one file per entry, written atomically (temp file, fsync, os.replace).

Layout under cache_dir: `entries/<content[:2]>/<content>/<variant>`, names made only of hex
digests, so no path or tier string can reach outside cache_dir. A size budget is kept by
evicting the least recently used files after every put and in cleanup. Beside the entries:
`tombs/<content[:2]>/<content>/<variant|ALL>.<version>` and `cleared/clear.<version>` are removal
versions (tombstones), as empty marker files like the journal's (every bookkeeping file is empty);
writes and removals of one content hold `locks/<content[:2]>` (flock, shared by every process on
this directory), so a put lands only if newer than the entry, its tombstones and the last clear.
`journal/<tier>/<content|ALL>.<variant|ALL>.<version>` are removals other tiers owe.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from .codec import HEADER_LEN, blob_version
from .keys import CacheKey
from .store import ALL, TOMBSTONE_SECONDS, IsDead, Removal, TierError

_HEX = frozenset("0123456789abcdef")
_STALE_TEMP_SECONDS = 60.0  # a temp file this old belongs to a put that crashed


def _is_hex(name: str) -> bool:
    return bool(name) and set(name) <= _HEX


def _read(path: str, limit: int = -1) -> bytes:
    """The file's bytes (at most `limit`), through os.open: the built-in open() costs ~7 us more per read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if limit >= 0:
            return os.read(fd, limit)
        chunks = []
        while chunk := os.read(fd, 1 << 16):  # until an empty read: a short read is not proof of the end
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class DiskTier:
    name = "disk"

    def __init__(self, cache_dir: str, max_bytes: int, fsync: bool = True) -> None:
        self.root = Path(cache_dir) / "entries"
        self._root = str(self.root)
        self.journal_root = Path(cache_dir) / "journal"
        self.tombs_root = Path(cache_dir) / "tombs"
        self.locks_root = Path(cache_dir) / "locks"
        self.cleared_root = Path(cache_dir) / "cleared"
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._sizes: OrderedDict[CacheKey, int] = OrderedDict()  # LRU order of what we know is on disk
        self._total = 0
        self._scanned = False

    def _path(self, key: CacheKey) -> str:
        content = key.content  # a str, not a Path: building a Path costs about as much as the read
        return f"{self._root}/{content[:2]}/{content}/{key.variant}"

    def _ensure_scanned(self) -> None:
        if self._scanned:
            return
        sizes: list[tuple[float, CacheKey, int]] = []
        for key, path in self._walk():
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            sizes.append((st.st_mtime, key, st.st_size))
        with self._lock:
            self._sizes.clear()
            for _, key, size in sorted(sizes, key=lambda item: item[0]):
                self._sizes[key] = size
            self._total = sum(self._sizes.values())
            self._scanned = True

    def _walk(self) -> Iterator[tuple[CacheKey, Path]]:
        try:
            shards = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False):
                continue
            for content_dir in os.scandir(shard.path):
                if not (content_dir.is_dir(follow_symlinks=False) and _is_hex(content_dir.name)):
                    continue
                for entry in os.scandir(content_dir.path):
                    if _is_hex(entry.name) and entry.is_file(follow_symlinks=False):
                        yield CacheKey(content_dir.name, entry.name), Path(entry.path)

    def get(self, key: CacheKey) -> bytes | None:
        try:
            data = _read(self._path(key))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TierError(f"disk get: {exc}") from exc
        with self._lock:
            if key in self._sizes:
                self._sizes.move_to_end(key)
        return data

    @contextlib.contextmanager
    def _locked(self, content: str) -> Iterator[None]:
        """Hold the lock of a content's shard (ALL: every shard, in order), across processes."""
        shards = [f"{i:02x}" for i in range(256)] if content == ALL else [content[:2]]
        fds: list[int] = []
        try:
            for shard in shards:
                path = f"{self.locks_root}/{shard}"
                try:
                    fds.append(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666))
                except FileNotFoundError:  # the first lock here (or the directory was removed): one mkdir
                    self.locks_root.mkdir(parents=True, exist_ok=True)
                    fds.append(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666))
                fcntl.flock(fds[-1], fcntl.LOCK_EX)
            yield
        finally:
            for fd in fds:  # closing releases the lock
                os.close(fd)

    def _entry_version(self, path: str) -> int:
        try:
            return blob_version(_read(path, HEADER_LEN)) or 0
        except FileNotFoundError:
            return 0

    def _tomb_dir(self, content: str) -> Path:
        return self.tombs_root / content[:2] / content

    def _tomb_name(self, variant: str) -> str:
        return "ALL" if variant == ALL else variant

    @staticmethod
    def _marks(directory: Path) -> dict[str, int]:
        """Marker files `<name>.<version>` in a directory: the highest version per name."""
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return {}
        found: dict[str, int] = {}
        for file_name in names:
            name, _, version = file_name.rpartition(".")
            if version.isdigit():
                found[name] = max(found.get(name, 0), int(version))
        return found

    def _mark(self, directory: Path, name: str, version: int) -> None:
        """Raise the marker `name` to `version` (never lower it); older markers of that name go."""
        if self._marks(directory).get(name, 0) >= version:
            return
        self._touch(directory / f"{name}.{version}")
        for file_name in os.listdir(directory):
            if file_name.rpartition(".")[0] == name and file_name != f"{name}.{version}":
                (directory / file_name).unlink(missing_ok=True)

    def put(self, key: CacheKey, blob: bytes, version: int, expires_at: float, now: float) -> bool:
        if len(blob) > self.max_bytes:  # larger than the whole budget: not kept here, and no older copy either
            self.discard(key, None)
            return False
        try:
            self._ensure_scanned()
            path = self._path(key)
            with self._locked(key.content):
                tombs = self._marks(self._tomb_dir(key.content))
                fence = max(
                    self._marks(self.cleared_root).get("clear", 0),
                    tombs.get(self._tomb_name(ALL), 0),
                    tombs.get(self._tomb_name(key.variant), 0),
                )
                if version <= fence or version < self._entry_version(path):
                    return False
                self._write_atomically(path, blob)
        except OSError as exc:
            raise TierError(f"disk put: {exc}") from exc
        with self._lock:
            self._total += len(blob) - self._sizes.pop(key, 0)
            self._sizes[key] = len(blob)
        self._enforce_budget()
        return True

    def _write_atomically(self, path: str, blob: bytes) -> None:
        temp = f"{os.path.dirname(path)}/.tmp-{uuid.uuid4().hex}"
        try:
            try:
                self._write_file(temp, blob)
            except FileNotFoundError:  # a new content's directory: mkdir only then (it costs a syscall)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                self._write_file(temp, blob)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def _write_file(self, path: str, blob: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # os.open: open() costs ~7 us more
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def _enforce_budget(self) -> int:
        evicted = 0
        while True:
            with self._lock:
                if self._total <= self.max_bytes or not self._sizes:
                    return evicted
                key, size = self._sizes.popitem(last=False)
                self._total -= size
            try:
                _unlink(self._path(key))
                evicted += 1
            except OSError as exc:
                raise TierError(f"disk evict: {exc}") from exc

    def remove(self, content: str, variant: str | None, version: int) -> None:
        try:
            with self._locked(content):
                self._mark(self._tomb_dir(content), self._tomb_name(variant or ALL), version)
                if variant is None:
                    directory = self.root / content[:2] / content
                    names = [p.name for p in directory.iterdir()] if directory.exists() else []
                    victims = [CacheKey(content, name) for name in names if _is_hex(name)]  # not .tmp- files
                else:
                    victims = [CacheKey(content, variant)]
                for key in victims:
                    if self._entry_version(self._path(key)) < version:
                        self._unlink(key)
        except OSError as exc:
            raise TierError(f"disk remove: {exc}") from exc

    def discard(self, key: CacheKey, version: int | None) -> None:
        try:
            with self._locked(key.content):
                if version is None or self._entry_version(self._path(key)) == version:
                    self._unlink(key)
        except OSError as exc:
            raise TierError(f"disk discard: {exc}") from exc

    def _unlink(self, key: CacheKey) -> None:
        _unlink(self._path(key))
        with self._lock:
            self._total -= self._sizes.pop(key, 0)

    def clear(self, version: int) -> None:
        trash = self.root.with_name(f"entries.trash-{uuid.uuid4().hex}")
        try:
            with self._locked(ALL):
                self._mark(self.cleared_root, "clear", version)
                os.rename(self.root, trash)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TierError(f"disk clear: {exc}") from exc
        else:
            shutil.rmtree(trash, ignore_errors=True)
        with self._lock:
            self._sizes.clear()
            self._total = 0
            self._scanned = True

    def keys(self) -> Iterator[CacheKey]:
        try:
            return iter([key for key, _ in self._walk()])
        except OSError as exc:
            raise TierError(f"disk scan: {exc}") from exc

    def purge(self, is_dead: IsDead) -> int:
        """Drop dead entries, stale temp files and left-over trash; rescan sizes; enforce the budget."""
        removed = 0
        try:
            for key, path in list(self._walk()):
                try:
                    blob = path.read_bytes()
                except FileNotFoundError:
                    continue
                if is_dead(key, blob):
                    path.unlink(missing_ok=True)
                    removed += 1
            self._remove_debris()
            self._remove_old_tombstones()
            self._scanned = False
            self._ensure_scanned()
            self._enforce_budget()
        except OSError as exc:
            raise TierError(f"disk cleanup: {exc}") from exc
        return removed

    def _remove_debris(self) -> None:
        cutoff = time.time() - _STALE_TEMP_SECONDS
        for trash in self.root.parent.glob("entries.trash-*"):
            shutil.rmtree(trash, ignore_errors=True)
        if not self.root.exists():
            return
        for shard in os.scandir(self.root):
            if not shard.is_dir(follow_symlinks=False):
                continue
            for content_dir in os.scandir(shard.path):
                if not content_dir.is_dir(follow_symlinks=False):
                    continue
                for entry in os.scandir(content_dir.path):
                    if entry.name.startswith(".tmp-") and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                with contextlib.suppress(OSError):
                    os.rmdir(content_dir.path)  # only succeeds when empty

    def _remove_old_tombstones(self) -> None:
        cutoff = time.time() - TOMBSTONE_SECONDS
        for tomb in self.tombs_root.glob("*/*/*") if self.tombs_root.exists() else ():
            with contextlib.suppress(OSError):
                if tomb.stat().st_mtime < cutoff:
                    tomb.unlink()

    def usage(self) -> dict[str, object]:
        with self._lock:
            total, count = self._total, len(self._sizes)
        return {
            "entries": count,
            "bytes": total,
            "max_bytes": self.max_bytes,
            "usage_percent": round(100.0 * total / self.max_bytes, 2),
        }

    # --- the journal of other tiers' pending repairs -------------------------------------

    def _journal_path(self, tier: str, removal: Removal) -> Path:
        content = "ALL" if removal.content == ALL else removal.content
        variant = "ALL" if removal.variant == ALL else removal.variant
        return self.journal_root / tier / f"{content}.{variant}.{removal.version}"

    def _touch(self, path: Path) -> None:
        """An empty marker file (tombstone, journal record, floor), durable when fsync is on. Its
        directory is created only when missing: mkdir on an existing one costs a syscall per removal."""
        try:
            self._create_empty(path)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._create_empty(path)

    def _create_empty(self, path: Path) -> None:
        with open(path, "wb") as f:
            if self.fsync:
                os.fsync(f.fileno())

    def journal_add(self, tier: str, removal: Removal) -> None:
        path = self._journal_path(tier, removal)
        try:
            self._touch(path)
        except OSError as exc:
            raise TierError(f"disk journal: {exc}") from exc

    def journal_load(self) -> list[tuple[str, Removal]]:
        records = []
        try:
            tiers = [p for p in self.journal_root.iterdir() if p.is_dir()] if self.journal_root.exists() else []
            for tier_dir in tiers:
                for record in tier_dir.iterdir():
                    content, variant, version = (record.name.split(".") + ["", ""])[:3]
                    if all(part == "ALL" or _is_hex(part) for part in (content, variant)) and version.isdigit():
                        removal = Removal(
                            ALL if content == "ALL" else content, ALL if variant == "ALL" else variant, int(version)
                        )
                        records.append((tier_dir.name, removal))
        except OSError as exc:
            raise TierError(f"disk journal: {exc}") from exc
        return records

    def journal_discard(self, tier: str, removals: list[Removal]) -> None:
        done = {(r.content, r.variant): r.version for r in removals}
        try:
            for held_tier, record in self.journal_load():
                if held_tier == tier and record.version <= done.get((record.content, record.variant), -1):
                    self._journal_path(tier, record).unlink(missing_ok=True)
        except OSError as exc:
            raise TierError(f"disk journal: {exc}") from exc

    def floor_get(self) -> int:
        """The Redis change counter below which a Redis has lost removals made here (0: none)."""
        try:
            names = os.listdir(self.journal_root) if self.journal_root.exists() else []
        except OSError as exc:
            raise TierError(f"disk journal: {exc}") from exc
        return max((int(n[6:]) for n in names if n.startswith("floor-") and n[6:].isdigit()), default=0)

    def floor_raise(self, value: int) -> None:
        """One file per value, created atomically: concurrent raises never lose the higher one."""
        try:
            if value <= self.floor_get():
                return
            self._touch(self.journal_root / f"floor-{value}")
            for name in os.listdir(self.journal_root):
                if name.startswith("floor-") and name[6:].isdigit() and int(name[6:]) < value:
                    (self.journal_root / name).unlink(missing_ok=True)
        except OSError as exc:
            raise TierError(f"disk journal: {exc}") from exc

    def close(self) -> None:
        """Nothing stays open between operations."""
