"""The disk tier: one file per entry, written atomically (temp file, fsync, os.replace).

Layout under cache_dir: `entries/<content[:2]>/<content>/<variant>`, names made only of hex digests, so no
path or tier string can reach outside cache_dir; the least recently used files go past the size budget.
`tombs/<content[:2]>/<content>/<variant|ALL>.<version>` and `cleared/clear.<version>` are removal versions
(tombstones), empty marker files like the journal's; writes and removals of one content hold
`locks/<content[:2]>` (flock, shared by every process on this directory), so a put lands only if newer
than the entry, its tombstones and the last clear.
`journal/<tier>/<content|ALL>.<variant|ALL>.<version>` are removals other tiers owe, `journal/floor.<n>`
the Redis floor (repairs.py). A marker is raised by renaming it: one atomic step, one name per mark.

Durability: entries are fsync'd (`fsync=True`), markers are not: a removal must outlive the process
(SIGKILL leaves the page cache to the kernel: E1, E3); a power loss may take the last seconds of
removals, as SQLite's `synchronous=NORMAL` does.
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
from .versions import NODE_BITS

_HEX = frozenset("0123456789abcdef")
_STALE_TEMP_SECONDS = 60.0  # a temp file this old belongs to a put that crashed
_CHUNK = 1 << 16


def _is_hex(name: str) -> bool:
    return bool(name) and set(name) <= _HEX


def _read(path: str, limit: int = -1) -> bytes:
    """The file's bytes (at most `limit`), through os.open: the built-in open() costs ~7 us more per read.
    A read shorter than asked ends a regular file (POSIX), so an entry is one read; were one ever cut
    short otherwise, the entry fails its checksum: a miss, never wrong data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, _CHUNK if limit < 0 else limit)
        if limit < 0 and len(data) == _CHUNK:  # a large entry: on to the end
            data = b"".join([data, *iter(lambda: os.read(fd, _CHUNK), b"")])
        return data
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _create(path: str, flags: int = 0) -> int:
    """os.open with O_CREAT; the directory is made only when missing (mkdir costs a syscall)."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o666)


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
        self._floor_mark = 0  # the version in the name of the floor marker, as this tier last named it

    def _path(self, key: CacheKey) -> str:
        content = key.content  # a str, not a Path: building a Path costs about as much as the read
        return f"{self._root}/{content[:2]}/{content}/{key.variant}"

    def _ensure_scanned(self) -> None:
        if self._scanned:
            return
        sizes: list[tuple[float, CacheKey, int]] = []
        for key, path in self._walk():
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                st = path.stat()
                sizes.append((st.st_mtime, key, st.st_size))
        with self._lock:
            self._sizes = OrderedDict((key, size) for _, key, size in sorted(sizes, key=lambda item: item[0]))
            self._total = sum(self._sizes.values())
            self._scanned = True

    def _content_dirs(self) -> Iterator[os.DirEntry[str]]:
        """Directories `entries/<shard>/<name>` (symlinks are not followed: nothing outside cache_dir)."""
        try:
            shards = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        for shard in shards:
            if shard.is_dir(follow_symlinks=False):
                yield from (d for d in os.scandir(shard.path) if d.is_dir(follow_symlinks=False))

    def _walk(self) -> Iterator[tuple[CacheKey, Path]]:
        for content_dir in self._content_dirs():
            for entry in os.scandir(content_dir.path) if _is_hex(content_dir.name) else ():
                if _is_hex(entry.name) and entry.is_file(follow_symlinks=False):
                    yield CacheKey(content_dir.name, entry.name), Path(entry.path)

    def get(self, key: CacheKey) -> bytes | None:
        content, variant = key  # unpacked: a NamedTuple's field by name is a slow attribute look-up
        try:  # the path as _path() spells it, inlined: every disk hit passes here
            data = _read(f"{self._root}/{content[:2]}/{content}/{variant}")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TierError(f"disk get: {exc}") from exc
        try:  # noqa: SIM105 (one atomic OrderedDict call, no lock; contextlib.suppress costs ~1 us)
            self._sizes.move_to_end(key)
        except KeyError:  # not known (yet) or evicted meanwhile: nothing to reorder
            pass
        return data

    @contextlib.contextmanager
    def _locked(self, content: str) -> Iterator[None]:
        """Hold the lock of a content's shard (ALL: every shard, in order), across processes."""
        shards = [f"{i:02x}" for i in range(256)] if content == ALL else [content[:2]]
        fds: list[int] = []
        try:
            for shard in shards:
                fds.append(_create(f"{self.locks_root}/{shard}", os.O_APPEND))
                fcntl.flock(fds[-1], fcntl.LOCK_EX)
            yield
        finally:
            for fd in fds:  # closing releases the lock
                os.close(fd)

    def _entry_version(self, path: str) -> int:
        with contextlib.suppress(FileNotFoundError):
            return blob_version(_read(path, HEADER_LEN)) or 0
        return 0

    def _tomb_dir(self, content: str) -> str:
        return f"{self.tombs_root}/{content[:2]}/{content}"

    @staticmethod
    def _marks(directory: str) -> dict[str, list[int]]:
        """Marker files `<name>.<version>` in a directory: every version per name, highest first."""
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return {}
        found: dict[str, list[int]] = {}
        for file_name in names:
            name, _, version = file_name.rpartition(".")
            if version.isdigit():
                found.setdefault(name, []).append(int(version))
        for versions in found.values():
            versions.sort(reverse=True)
        return found

    def _mark(self, directory: str, name: str, version: int) -> None:
        """Raise the marker `name` to `version`, never lower it: the highest one is renamed (one atomic
        step; a rival that moved it first makes us look again), lower ones listed before go."""
        while (older := self._marks(directory).get(name, [0]))[0] < version:
            try:
                if older[0]:
                    os.rename(f"{directory}/{name}.{older[0]}", f"{directory}/{name}.{version}")
                else:
                    os.close(_create(f"{directory}/{name}.{version}"))  # empty, not fsync'd (module note)
            except FileNotFoundError:
                if older[0]:
                    continue
                raise
            for old in older[1:]:
                _unlink(f"{directory}/{name}.{old}")
            return

    def put(self, key: CacheKey, blob: bytes, version: int, expires_at: float, now: float) -> bool:
        if len(blob) > self.max_bytes:  # larger than the whole budget: not kept here, and no older copy either
            self.discard(key, None)
            return False
        try:
            self._ensure_scanned()
            path = self._path(key)
            with self._locked(key.content):
                tombs = self._marks(self._tomb_dir(key.content))
                cleared = self._marks(str(self.cleared_root)).get("clear", [0])[0]
                fence = max(cleared, tombs.get("ALL", [0])[0], tombs.get(key.variant, [0])[0])
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
            fd = _create(temp, os.O_TRUNC)
            try:
                view = memoryview(blob)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except BaseException:
            _unlink(temp)
            raise

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
                self._mark(self._tomb_dir(content), variant or "ALL", version)
                if variant is None:
                    try:
                        names = os.listdir(f"{self._root}/{content[:2]}/{content}")
                    except FileNotFoundError:
                        names = []
                    victims = [CacheKey(content, name) for name in names if _is_hex(name)]  # not .tmp- files
                else:
                    victims = [CacheKey(content, variant)]
                for key in victims:
                    if self._entry_version(self._path(key)) < version:
                        self._unlink(key)
        except OSError as exc:
            raise TierError(f"disk remove: {exc}") from exc

    def discard(self, key: CacheKey, version: int | None, held: bytes | None = None) -> None:
        try:
            with self._locked(key.content):
                path = self._path(key)
                with contextlib.suppress(FileNotFoundError):  # gone meanwhile: nothing to drop
                    if _read(path) == held if held is not None else version in (None, self._entry_version(path)):
                        self._unlink(key)
        except OSError as exc:
            raise TierError(f"disk discard: {exc}") from exc

    def _unlink(self, key: CacheKey) -> None:
        _unlink(self._path(key))
        with self._lock:
            self._total -= self._sizes.pop(key, 0)

    def clear(self, version: int) -> None:
        """Like a removal of every content: only entries older than the clear go, so a clear applied late
        (from a repair journal) never takes an entry put after it."""
        try:
            with self._locked(ALL):
                self._mark(str(self.cleared_root), "clear", version)
                for key, path in list(self._walk()):
                    if self._entry_version(str(path)) < version:
                        self._unlink(key)
        except OSError as exc:
            raise TierError(f"disk clear: {exc}") from exc

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
        for content_dir in list(self._content_dirs()):
            for entry in os.scandir(content_dir.path):
                if entry.name.startswith(".tmp-") and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            with contextlib.suppress(OSError):
                os.rmdir(content_dir.path)  # only succeeds when empty

    def _remove_old_tombstones(self) -> None:
        """A tombstone's age is its version's (wall microseconds << NODE_BITS): a rename keeps the old mtime."""
        cutoff = int((time.time() - TOMBSTONE_SECONDS) * 1e6) << NODE_BITS
        for tomb in self.tombs_root.glob("*/*/*") if self.tombs_root.exists() else ():
            version = tomb.name.rpartition(".")[2]
            if version.isdigit() and int(version) < cutoff:
                _unlink(str(tomb))

    def usage(self) -> dict[str, object]:
        with self._lock:
            total, count = self._total, len(self._sizes)
        percent = round(100.0 * total / self.max_bytes, 2)
        return {"entries": count, "bytes": total, "max_bytes": self.max_bytes, "usage_percent": percent}

    # --- the journal of other tiers' pending repairs -------------------------------------

    def _journal_path(self, tier: str, removal: Removal) -> Path:
        content = "ALL" if removal.content == ALL else removal.content
        variant = "ALL" if removal.variant == ALL else removal.variant
        return self.journal_root / tier / f"{content}.{variant}.{removal.version}"

    def journal_add(self, tier: str, removal: Removal) -> None:
        try:
            os.close(_create(str(self._journal_path(tier, removal))))
        except OSError as exc:
            raise TierError(f"disk journal: {exc}") from exc

    def journal_load(self) -> list[tuple[str, Removal]]:
        records = []
        try:
            for record in self.journal_root.glob("*/*") if self.journal_root.exists() else ():
                content, variant, version = (record.name.split(".") + ["", ""])[:3]
                if all(part == "ALL" or _is_hex(part) for part in (content, variant)) and version.isdigit():
                    whole = {"ALL": ALL}
                    removal = Removal(whole.get(content, content), whole.get(variant, variant), int(version))
                    records.append((record.parent.name, removal))
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
            return self._marks(str(self.journal_root)).get("floor", [0])[0]
        except OSError as exc:
            raise TierError(f"disk journal: {exc}") from exc

    def floor_raise(self, value: int) -> None:
        """The marker `floor.<value>`, raised like a tombstone (no lock: a rival's rename is retried): the name
        this tier gave it last is renamed at once; when a rival moved it, the directory is listed (`_mark`)."""
        journal, last = str(self.journal_root), self._floor_mark
        try:
            try:
                if not 0 < last < value:
                    raise FileNotFoundError
                os.rename(f"{journal}/floor.{last}", f"{journal}/floor.{value}")
            except FileNotFoundError:
                self._mark(journal, "floor", value)
            self._floor_mark = value
        except OSError as exc:
            raise TierError(f"disk journal: {exc}") from exc

    def close(self) -> None:
        """Nothing stays open between operations."""
