"""The management and introspection API of MetadataCache, off the hot path: cleanup, stats, glob removal, info,
run-time configuration, warming and `tiers_holding`. A mixin: it works on the cache's own parts."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .codec import CorruptEntry
from .keys import CacheKey, tier_variant

log = logging.getLogger("reference.cache")


class CacheManagement:
    """Mixed into MetadataCache (which provides every attribute used here)."""

    config: Any
    memory: Any
    _codec: Any
    _stats: Any
    _stores: list[Any]
    _health: dict[str, Any]
    staleness_window_seconds: float
    _check_open: Callable[[], None]
    _start: Callable[[], None]
    _attempt: Callable[..., tuple[bool, Any]]
    _key: Callable[[Any, str], CacheKey | None]
    _remove: Callable[[str, str | None], bool]
    _lookup: Callable[[CacheKey], Any]
    _repairs: Any
    _coherence: Any
    _setup_errors: dict[str, str]
    put: Callable[..., bool]

    def remove_matching(self, pattern: str) -> int:
        """Remove every entry whose key `<content>.<variant>` matches the glob; return how many keys."""
        self._check_open()
        self._start()
        keys = set(self.memory.keys())
        for store in self._stores:
            ok, found = self._attempt(store, "scan", lambda s=store: list(s.keys()))
            keys.update(found if ok else ())
        matched = [k for k in keys if fnmatch.fnmatchcase(str(k), pattern)]
        for key in matched:
            self._remove(key.content, key.variant)
        return len(matched)

    def get_info(self) -> dict[str, Any]:
        """Management view: configuration, stats and every tier's usage (may query the backends)."""
        self._start()
        usage: dict[str, Any] = {"memory": self.memory.usage()}
        for store in self._stores:
            ok, value = self._attempt(store, "usage", store.usage)
            usage[store.name] = value if ok else {"error": self._health[store.name].last_error}
        settings = {k: v for k, v in vars(self.config).items() if k != "clock"}
        return {
            "config": settings,
            "stats": self.get_stats(),
            "tiers": usage,
            "staleness_window_seconds": self.staleness_window_seconds,
        }

    def configure(self, **changes: Any) -> None:
        """Change ttl_seconds, max_memory_entries, max_memory_bytes or compression_level at run time."""
        allowed = {"ttl_seconds", "max_memory_entries", "max_memory_bytes", "compression_level"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)} at run time; allowed: {sorted(allowed)}")
        self.config = self.config.with_changes(**changes)
        self._codec.set_level(self.config.compression_level)
        self.memory.resize(self.config.max_memory_entries, self.config.max_memory_bytes)

    def warm_cache(
        self,
        paths: Iterable[str],
        extract: Callable[[str, str], dict[str, Any]],
        tier: str = "premium",
        max_workers: int = 4,
    ) -> dict[str, bool]:
        """Extract and store every file not cached yet, at most max_workers at once; one failure stops nothing."""
        self._check_open()
        tier_variant(tier)
        unique = list(dict.fromkeys(paths))
        with ThreadPoolExecutor(max_workers=max(1, int(max_workers)), thread_name_prefix="tiercheck-warm") as pool:
            keys = dict(zip(unique, pool.map(lambda p: self._key(p, tier), unique), strict=True))
            first: dict[CacheKey, str] = {}  # paths of one content are extracted once
            for path, key in keys.items():
                if key is not None:
                    first.setdefault(key, path)

            def warm(key: CacheKey, path: str) -> bool:
                if self._lookup(key) is not None:
                    return True
                try:
                    metadata = extract(path, tier)
                    return self.put(path, metadata, tier)
                except Exception as exc:
                    log.warning("warm_cache: extracting %r failed: %s", path, exc)
                    return False

            futures = {key: pool.submit(warm, key, path) for key, path in first.items()}
            return {path: key is not None and futures[key].result() for path, key in keys.items()}

    def tiers_holding(self, file_path: str, tier: str = "premium") -> set[str]:
        """Which tiers hold a live, valid entry (introspection: no promotion, no stats)."""
        self._check_open()
        key = self._key(file_path, tier)
        if key is None:
            return set()
        self._start()
        now = self.config.clock()
        held = {"memory"} if self.memory.peek(key, now) else set()
        for store in self._stores:
            ok, blob = self._attempt(store, "inspect", store.get, key)
            if ok and blob is not None:
                try:
                    expires_at, _, _ = self._codec.decode(str(key), blob)
                except CorruptEntry:
                    continue
                if now < expires_at:
                    held.add(store.name)
        return held

    def cleanup(self) -> None:
        """Remove expired and corrupt entries from every tier now, and enforce the disk budget."""
        self._check_open()
        self._start()
        now = self.config.clock()
        self.memory.purge_expired(now)

        def is_dead(key: CacheKey, blob: bytes) -> bool:
            try:
                expires_at, _, _ = self._codec.decode(str(key), blob)
            except CorruptEntry:
                return True
            return now >= expires_at

        for store in self._stores:
            self._attempt(store, "cleanup", store.purge, is_dead)

    def get_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._stats.snapshot()
        stats["evictions"] = self.memory.evictions
        stats["memory"] = self.memory.usage()
        disk = next((s for s in self._stores if s.name == "disk"), None)
        if disk is not None:
            stats["disk"] = disk.usage()
        stats["tier_health"] = {name: h.snapshot() for name, h in self._health.items()}
        stats["pending_repairs"] = self._repairs.pending_counts()
        stats["coherence"] = self._coherence.snapshot()
        if self._setup_errors:
            stats["tier_setup_errors"] = dict(self._setup_errors)
        return stats
