"""A cache shaped like MetaExtract's legacy `AdvancedMetadataCache`: memory LRU -> disk files -> SQLite.

Written for the adapter example, from the legacy class's interface: the constructor's settings and the
methods `put`, `get`, `invalidate_file`, `clear_all` and `get_stats`. It is a simple, honest cache with the
legacy design's limits kept on purpose, so that `tiercheck verify` has something real to judge:

- time comes from `time.time()` (no injectable clock), so TTL decisions cannot follow a test's clock;
- no Redis client (`enable_redis=True` only logs that Redis is not supported here);
- entries carry no checksum: bytes altered on disk that still decode are served;
- no per-tier invalidation: `invalidate_file` removes every extraction tier of the file's current content;
- no introspection, no `cleanup`: expired entries are dropped when they are read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
import zlib
from collections import OrderedDict
from contextlib import closing
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class AdvancedMetadataCache:
    def __init__(
        self,
        cache_dir: str = "./metadata_cache",
        max_memory_entries: int = 1000,
        max_disk_size_mb: float = 500,
        enable_compression: bool = True,
        enable_database: bool = True,
        enable_redis: bool = False,
        cache_ttl_hours: float = 24 * 7,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.max_memory_entries = max_memory_entries
        self.max_disk_bytes = int(max_disk_size_mb * 1024 * 1024)
        self.enable_compression = enable_compression
        self.enable_database = enable_database
        self.ttl_seconds = cache_ttl_hours * 3600
        if enable_redis:
            log.warning("AdvancedMetadataCache: Redis is not supported in this example; the tier is off")
        self._memory: OrderedDict[str, tuple[float, str]] = OrderedDict()  # key -> (created, JSON text)
        self._lock = threading.RLock()
        self._stats = dict.fromkeys(
            ("total_requests", "cache_hits", "cache_misses", "memory_hits", "disk_hits", "db_hits", "evictions"), 0
        )
        self._db_path = self.cache_dir / "metadata_cache.db"
        self._db_ready = False

    # --- keys -------------------------------------------------------------------------------------------

    @staticmethod
    def _file_hash(file_path: str) -> str | None:
        try:
            digest = hashlib.sha256()
            with open(file_path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()
        except OSError:
            return None

    @staticmethod
    def _key(file_hash: str, tier: str) -> str:
        return f"{file_hash}-{hashlib.sha256(tier.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"

    # --- the public API -------------------------------------------------------------------------------------

    def get(self, file_path: str, tier: str = "premium") -> dict[str, Any] | None:
        with self._lock:
            self._stats["total_requests"] += 1
            file_hash = self._file_hash(file_path)
            found = self._lookup(self._key(file_hash, tier)) if file_hash else None
            if found is None:
                self._stats["cache_misses"] += 1
                return None
            where, metadata = found
            self._stats["cache_hits"] += 1
            self._stats[f"{where}_hits"] += 1
            return metadata

    def put(self, file_path: str, metadata: dict[str, Any], tier: str = "premium") -> bool:
        file_hash = self._file_hash(file_path)
        if file_hash is None:
            return False
        key, created = self._key(file_hash, tier), time.time()
        text = json.dumps(metadata)
        with self._lock:
            self._remember(key, created, text)
            stored = True
            for write in (self._disk_write, self._db_write):
                try:
                    write(key, file_hash, created, text)
                except Exception:  # a failing tier is skipped
                    log.exception("AdvancedMetadataCache: %s failed", write.__name__)
            return stored

    def invalidate_file(self, file_path: str) -> int:
        """Remove every tier's entries for the file's current content; the number removed."""
        file_hash = self._file_hash(file_path)
        if file_hash is None:
            return 0
        removed = 0
        with self._lock:
            for key in [k for k in self._memory if k.startswith(file_hash + "-")]:
                del self._memory[key]
                removed += 1
            try:
                for path in self.cache_dir.glob(f"{file_hash}-*.json*"):
                    path.unlink(missing_ok=True)
                    removed += 1
            except OSError:
                log.exception("AdvancedMetadataCache: disk invalidation failed")
            if self._db_enabled():
                try:
                    with closing(self._connect()) as db, db:
                        removed += db.execute("DELETE FROM metadata_cache WHERE file_hash = ?", (file_hash,)).rowcount
                except sqlite3.Error:
                    log.exception("AdvancedMetadataCache: database invalidation failed")
        return removed

    def clear_all(self) -> None:
        with self._lock:
            self._memory.clear()
            for path in self.cache_dir.glob("*.json*") if self.cache_dir.is_dir() else []:
                path.unlink(missing_ok=True)
            if self._db_enabled():
                with closing(self._connect()) as db, db:
                    db.execute("DELETE FROM metadata_cache")

    def get_stats(self) -> dict[str, Any]:
        with self._lock:
            stats: dict[str, Any] = dict(self._stats)
            total = stats["total_requests"]
            stats["hit_rate"] = stats["cache_hits"] / total if total else 0.0
            stats["memory_entries"] = len(self._memory)
            stats["disk_size_mb"] = self._disk_bytes() / (1024 * 1024)
            return stats

    # --- tiers ----------------------------------------------------------------------------------------------

    def _lookup(self, key: str) -> tuple[str, dict[str, Any]] | None:
        now = time.time()
        item = self._memory.get(key)
        if item is not None and now < item[0] + self.ttl_seconds:
            self._memory.move_to_end(key)
            return "memory", json.loads(item[1])
        self._memory.pop(key, None)
        for where, read in (("disk", self._disk_read), ("db", self._db_read)):
            try:
                row = read(key)
            except Exception:  # unreadable or corrupt: a miss in this tier
                log.exception("AdvancedMetadataCache: %s read failed", where)
                self._forget(key)
                continue
            if row is None:
                continue
            created, text = row
            if now >= created + self.ttl_seconds:
                self._forget(key)
                return None
            self._remember(key, created, text)  # promote
            if where == "db":
                try:
                    self._disk_write(key, key.split("-", 1)[0], created, text)
                except OSError:
                    log.exception("AdvancedMetadataCache: promotion to disk failed")
            return where, json.loads(text)
        return None

    def _remember(self, key: str, created: float, text: str) -> None:
        self._memory[key] = (created, text)
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_memory_entries:
            self._memory.popitem(last=False)
            self._stats["evictions"] += 1

    def _forget(self, key: str) -> None:
        self._memory.pop(key, None)
        for suffix in (".json", ".json.z"):
            (self.cache_dir / f"{key}{suffix}").unlink(missing_ok=True)
        if self._db_enabled():
            try:
                with closing(self._connect()) as db, db:
                    db.execute("DELETE FROM metadata_cache WHERE key = ?", (key,))
            except sqlite3.Error:
                log.exception("AdvancedMetadataCache: database delete failed")

    def _disk_write(self, key: str, file_hash: str, created: float, text: str) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"created": created, "metadata": text}).encode()
        suffix = ".json"
        if self.enable_compression:
            body, suffix = zlib.compress(body), ".json.z"
        temporary = self.cache_dir / f".{key}.tmp"
        temporary.write_bytes(body)
        temporary.replace(self.cache_dir / f"{key}{suffix}")
        self._enforce_disk_budget()

    def _disk_read(self, key: str) -> tuple[float, str] | None:
        for suffix, decode in ((".json.z", zlib.decompress), (".json", bytes)):
            path = self.cache_dir / f"{key}{suffix}"
            if path.exists():
                entry = json.loads(decode(path.read_bytes()))
                return float(entry["created"]), str(entry["metadata"])
        return None

    def _disk_bytes(self) -> int:
        if not self.cache_dir.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.cache_dir.glob("*.json*"))

    def _enforce_disk_budget(self) -> None:
        files = sorted(self.cache_dir.glob("*.json*"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        while files and total > self.max_disk_bytes:
            oldest = files.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)

    def _db_enabled(self) -> bool:
        return self.enable_database

    def _connect(self) -> sqlite3.Connection:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._db_path, timeout=5)
        if not self._db_ready:
            db.execute(
                "CREATE TABLE IF NOT EXISTS metadata_cache"
                " (key TEXT PRIMARY KEY, file_hash TEXT, created REAL, metadata TEXT)"
            )
            self._db_ready = True
        return db

    def _db_write(self, key: str, file_hash: str, created: float, text: str) -> None:
        if not self._db_enabled():
            return
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT OR REPLACE INTO metadata_cache (key, file_hash, created, metadata) VALUES (?, ?, ?, ?)",
                (key, file_hash, created, text),
            )

    def _db_read(self, key: str) -> tuple[float, str] | None:
        if not self._db_enabled():
            return None
        with closing(self._connect()) as db:
            row = db.execute("SELECT created, metadata FROM metadata_cache WHERE key = ?", (key,)).fetchone()
        return (float(row[0]), str(row[1])) if row else None
