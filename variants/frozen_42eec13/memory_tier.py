"""The memory tier: a true LRU (by get and by put), bounded by entries and optionally bytes.

It keeps serialized payloads, not dicts: every hit decodes a fresh object, so nothing a
caller does to what it got back (or passed in) can change what later gets return.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .codec import Payload
from .keys import CacheKey


class MemoryTier:
    name = "memory"

    def __init__(self, max_entries: int, max_bytes: int | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, tuple[float, Payload]] = OrderedDict()
        self._by_content: dict[str, set[str]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: CacheKey, now: float) -> tuple[float, Payload] | None:
        with self._lock:
            item = self._entries.get(key)
            if item is None:
                return None
            if now >= item[0]:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return item

    def peek(self, key: CacheKey, now: float) -> bool:
        """Holds a live entry? Does not touch the LRU order."""
        item = self._entries.get(key)
        return item is not None and now < item[0]

    def put(self, key: CacheKey, expires_at: float, payload: Payload) -> int:
        """Store; return how many entries were evicted to make room."""
        size = len(payload.data)
        with self._lock:
            if key in self._entries:
                self._drop(key)
            if self.max_bytes is not None and size > self.max_bytes:
                return 0  # larger than the whole tier: the lower tiers hold it
            self._entries[key] = (expires_at, payload)
            self._by_content.setdefault(key.content, set()).add(key.variant)
            self._bytes += size
            return self._evict()

    def _evict(self) -> int:
        evicted = 0
        while len(self._entries) > self.max_entries or (self.max_bytes is not None and self._bytes > self.max_bytes):
            oldest = next(iter(self._entries))
            self._drop(oldest)
            evicted += 1
        return evicted

    def _drop(self, key: CacheKey) -> None:
        _, payload = self._entries.pop(key)
        self._bytes -= len(payload.data)
        variants = self._by_content.get(key.content)
        if variants is not None:
            variants.discard(key.variant)
            if not variants:
                del self._by_content[key.content]

    def remove(self, content: str, variant: str | None = None) -> None:
        with self._lock:
            variants = [variant] if variant is not None else list(self._by_content.get(content, ()))
            for v in variants:
                key = CacheKey(content, v)
                if key in self._entries:
                    self._drop(key)

    def keys(self) -> list[CacheKey]:
        with self._lock:
            return list(self._entries)

    def resize(self, max_entries: int, max_bytes: int | None) -> int:
        with self._lock:
            self.max_entries, self.max_bytes = max_entries, max_bytes
            return self._evict()

    def purge_expired(self, now: float) -> int:
        with self._lock:
            dead = [k for k, (exp, _) in self._entries.items() if now >= exp]
            for k in dead:
                self._drop(k)
            return len(dead)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_content.clear()
            self._bytes = 0

    def usage(self) -> dict[str, object]:
        with self._lock:
            entries, size = len(self._entries), self._bytes
        return {
            "entries": entries,
            "bytes": size,
            "max_entries": self.max_entries,
            "usage_percent": round(100.0 * entries / self.max_entries, 2) if self.max_entries else 0.0,
        }
