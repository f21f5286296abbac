"""The disk tier: one file per entry, written atomically (temp file, fsync, os.replace).

Layout under cache_dir: `entries/<content[:2]>/<content>/<variant>`, names made only of hex
digests, so no path or tier string can reach outside cache_dir. A size budget is kept by
evicting the least recently used files after every put and in cleanup. Beside the entries:
`journal/<tier>/<content>.<variant>.<rid>`, removals other tiers owe, and `repaired/<rid>.<time>`,
the journal records this tier has applied.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Collection, Iterator
from pathlib import Path

from .keys import CacheKey
from .store import ALL, REPAIR_MARK_SECONDS, IsDead, Repair, TierError

_HEX = frozenset("0123456789abcdef")
_STALE_TEMP_SECONDS = 60.0  # a temp file this old belongs to a put that crashed


def _is_hex(name: str) -> bool:
    return bool(name) and set(name) <= _HEX


class DiskTier:
    name = "disk"

    def __init__(self, cache_dir: str, max_bytes: int, fsync: bool = True) -> None:
        self.root = Path(cache_dir) / "entries"
        self.journal_root = Path(cache_dir) / "journal"
        self.marks_root = Path(cache_dir) / "repaired"
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._sizes: OrderedDict[CacheKey, int] = OrderedDict()  # LRU order of what we know is on disk
        self._total = 0
        self._scanned = False

    def _path(self, key: CacheKey) -> Path:
        return self.root / key.content[:2] / key.content / key.variant

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
            with open(self._path(key), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TierError(f"disk get: {exc}") from exc
        with self._lock:
            if key in self._sizes:
                self._sizes.move_to_end(key)
        return data

    def put(self, key: CacheKey, blob: bytes, expires_at: float, now: float) -> None:
        if len(blob) > self.max_bytes:  # larger than the whole budget: not kept here, and no older copy either
            self.remove(key.content, key.variant)
            return
        try:
            self._ensure_scanned()
            path = self._path(key)
            for attempt in range(3):
                try:
                    self._write_atomically(path, blob)
                    break
                except FileNotFoundError:  # a concurrent remove() took the empty directory: make it again
                    if attempt == 2:
                        raise
        except OSError as exc:
            raise TierError(f"disk put: {exc}") from exc
        with self._lock:
            self._total += len(blob) - self._sizes.pop(key, 0)
            self._sizes[key] = len(blob)
        self._enforce_budget()

    def _write_atomically(self, path: Path, blob: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.parent / f".tmp-{uuid.uuid4().hex}"
        try:
            with open(temp, "wb") as f:
                f.write(blob)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
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
                self._path(key).unlink(missing_ok=True)
                evicted += 1
            except OSError as exc:
                raise TierError(f"disk evict: {exc}") from exc

    def remove(self, content: str, variant: str | None = None) -> None:
        try:
            if variant is None:
                directory = self.root / content[:2] / content
                # Entries only: a .tmp- file belongs to a put in progress, which will rename it.
                names = [p.name for p in directory.iterdir()] if directory.exists() else []
                victims = [CacheKey(content, name) for name in names if _is_hex(name)]
                for key in victims:
                    self._unlink(key)
                with contextlib.suppress(OSError):  # gone already, or a concurrent put refilled it
                    directory.rmdir()
            else:
                self._unlink(CacheKey(content, variant))
        except OSError as exc:
            raise TierError(f"disk remove: {exc}") from exc

    def _unlink(self, key: CacheKey) -> None:
        self._path(key).unlink(missing_ok=True)
        with self._lock:
            self._total -= self._sizes.pop(key, 0)

    def clear(self) -> None:
        trash = self.root.with_name(f"entries.trash-{uuid.uuid4().hex}")
        try:
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

    def _journal_path(self, tier: str, repair: Repair) -> Path:
        content = "ALL" if repair.content == ALL else repair.content
        variant = "ALL" if repair.variant == ALL else repair.variant
        return self.journal_root / tier / f"{content}.{variant}.{repair.rid}"

    def _touch(self, path: Path) -> None:
        """An empty marker file (journal record, repair mark, floor), durable when fsync is on."""
        with open(path, "wb") as f:
            if self.fsync:
                os.fsync(f.fileno())

    def journal_add(self, tier: str, repair: Repair) -> None:
        path = self._journal_path(tier, repair)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._touch(path)
        except OSError as exc:
            raise TierError(f"disk journal: {exc}") from exc

    def journal_load(self) -> list[tuple[str, Repair]]:
        records = []
        try:
            tiers = [p for p in self.journal_root.iterdir() if p.is_dir()] if self.journal_root.exists() else []
            for tier_dir in tiers:
                for record in tier_dir.iterdir():
                    content, variant, rid = (record.name.split(".") + ["", ""])[:3]
                    if all(part == "ALL" or _is_hex(part) for part in (content, variant)) and _is_hex(rid):
                        repair = Repair(ALL if content == "ALL" else content, ALL if variant == "ALL" else variant, rid)
                        records.append((tier_dir.name, repair))
        except OSError as exc:
            raise TierError(f"disk journal: {exc}") from exc
        return records

    def journal_discard(self, tier: str, repairs: Collection[Repair]) -> None:
        try:
            for repair in repairs:
                self._journal_path(tier, repair).unlink(missing_ok=True)
        except OSError as exc:
            raise TierError(f"disk journal: {exc}") from exc

    # --- repairs this tier has applied (files `repaired/<rid>.<unix time>`) ----------------

    def _marks(self) -> dict[str, int]:
        try:
            names = os.listdir(self.marks_root)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise TierError(f"disk repair marks: {exc}") from exc
        marks = {}
        for name in names:
            rid, _, stamp = name.partition(".")
            if _is_hex(rid) and stamp.isdigit():
                marks[rid] = int(stamp)
        return marks

    def repairs_applied(self, rids: Collection[str]) -> set[str]:
        return set(rids) & self._marks().keys()

    def mark_repaired(self, rids: Collection[str], now: float) -> None:
        try:
            self.marks_root.mkdir(parents=True, exist_ok=True)
            for rid, stamp in self._marks().items():
                if stamp < now - REPAIR_MARK_SECONDS:
                    (self.marks_root / f"{rid}.{stamp}").unlink(missing_ok=True)
            for rid in rids:
                self._touch(self.marks_root / f"{rid}.{int(now)}")
        except OSError as exc:
            raise TierError(f"disk repair marks: {exc}") from exc

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
            self.journal_root.mkdir(parents=True, exist_ok=True)
            self._touch(self.journal_root / f"floor-{value}")
            for name in os.listdir(self.journal_root):
                if name.startswith("floor-") and name[6:].isdigit() and int(name[6:]) < value:
                    (self.journal_root / name).unlink(missing_ok=True)
        except OSError as exc:
            raise TierError(f"disk journal: {exc}") from exc

    def close(self) -> None:
        """Nothing stays open between operations."""
