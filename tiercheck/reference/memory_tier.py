"""The memory tier: a true LRU (by get and by put), bounded by entries and optionally bytes.

It keeps serialized payloads, not dicts: every hit decodes a fresh object, so nothing a
caller does to what it got back (or passed in) can change what later gets return.

Each entry carries its version and the monotonic time it was admitted or last confirmed (`stamp`,
see coherence.py). A copy from a slower tier is admitted only if nothing about its content changed
since the read began: `token()` before the read, `put(..., token=)` after (removals and
invalidation messages move the token), so a slow read never brings back what was removed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from typing import NamedTuple

from .codec import Payload
from .keys import CacheKey

_STRIPES = 1024
_new_tuple = tuple.__new__  # builds a NamedTuple without its __new__, which is Python code (~0.3 us per call)


class Entry(NamedTuple):
    expires_at: float
    payload: Payload
    version: int
    stamp: float


class MemoryTier:
    name = "memory"

    def __init__(self, max_entries: int, max_bytes: int | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, Entry] = OrderedDict()
        self._by_content: dict[str, set[str]] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self._moves = [0] * _STRIPES  # removals per stripe of contents (a clear moves every stripe)
        self.evictions = 0  # LRU evictions, counted under the lock that evicts (no second lock per promotion)

    def _stripe(self, content: str) -> int:
        return hash(content) % _STRIPES

    def token(self, key: CacheKey) -> int:
        return self._moves[hash(key[0]) % _STRIPES]  # _stripe, inlined; key[0]: .content is slower

    def get(self, key: CacheKey, now: float) -> Entry | None:
        """A hit takes no lock: each OrderedDict call is atomic (the GIL), and a get that read the entry
        before a concurrent removal came first. Only dropping an expired entry locks. So walks under the lock go
        over a copy (`_walk`) and eviction pops (`popitem`): a hit's move_to_end inside an iteration breaks it."""
        item = self._entries.get(key)
        if item is None:
            return None
        if now >= item.expires_at:
            with self._lock:
                if self._entries.get(key) is item:
                    self._drop(key)
            return None
        try:  # noqa: SIM105 (contextlib.suppress costs ~1 us per hit)
            self._entries.move_to_end(key)
        except KeyError:  # removed meanwhile: this get came first
            pass
        return item

    def peek(self, key: CacheKey, now: float) -> bool:
        """Holds a live entry? Does not touch the LRU order."""
        item = self._entries.get(key)
        return item is not None and now < item.expires_at

    def put(
        self,
        key: CacheKey,
        expires_at: float,
        payload: Payload,
        version: int = 0,
        token: int | None = None,
        stamp: float | None = None,
    ) -> int:
        """Store unless a newer version is held or `token` moved; return how many entries were evicted.
        `stamp`: the monotonic time the value was known current (a read's start), default now."""
        size = len(payload[0])  # payload.data: a NamedTuple's field by name is a slow attribute look-up
        entry = _new_tuple(Entry, (expires_at, payload, version, time.monotonic() if stamp is None else stamp))
        (content, variant), entries, lock = key, self._entries, self._lock
        lock.acquire()  # not `with`: its __enter__/__exit__ calls cost more than this bookkeeping (every promotion)
        try:
            if token is not None and token != self.token(key):
                return 0
            old = entries.get(key)
            if old is not None:
                if old.version > version:
                    return 0
                self._drop(key)
            if self.max_bytes is not None and size > self.max_bytes:
                return 0  # larger than the whole tier: the lower tiers hold it
            entries[key] = entry
            variants = self._by_content.get(content)
            if variants is None:
                self._by_content[content] = {variant}
            else:
                variants.add(variant)
            self._bytes += size
            return self._evict()
        finally:
            lock.release()

    def confirm(self, key: CacheKey, version: int) -> None:
        """The shared tiers still hold this version: trust the entry for another window."""
        with self._lock:
            item = self._entries.get(key)
            if item is not None and item.version == version:
                self._entries[key] = item._replace(stamp=time.monotonic())

    def fence(self, content: str) -> dict[str, int]:
        """Fence slower reads of a content in flight (as a removal does) and return the versions held, at
        once: an entry admitted after this is this process's own put, or a read begun after it."""
        with self._lock:
            self._moves[self._stripe(content)] += 1
            return {v: self._entries[CacheKey(content, v)].version for v in self._by_content.get(content, ())}

    def _evict(self) -> int:
        evicted, entries = 0, self._entries
        while len(entries) > self.max_entries or (self.max_bytes is not None and self._bytes > self.max_bytes):
            key, item = entries.popitem(last=False)
            self._forget(key, item)
            evicted += 1
        self.evictions += evicted
        return evicted

    def _drop(self, key: CacheKey) -> None:
        self._forget(key, self._entries.pop(key))

    def _forget(self, key: CacheKey, item: Entry) -> None:
        content, variant = key
        self._bytes -= len(item[1][0])  # item.payload.data: by name is slower
        variants = self._by_content.get(content)
        if variants is not None:
            variants.discard(variant)
            if not variants:
                del self._by_content[content]

    def remove(self, content: str, variant: str | None = None, unless_version: dict[str, int] | None = None) -> None:
        """Drop one variant (None: every variant) of a content, and fence slower reads of it in flight.
        `unless_version`: only the variants it names, each kept when at least that new (still current)."""
        with self._lock:
            self._moves[self._stripe(content)] += 1
            if variant is not None:
                variants = [variant]
            else:
                variants = list(self._by_content.get(content, ()) if unless_version is None else unless_version)
            for v in variants:
                key = CacheKey(content, v)
                item = self._entries.get(key)
                if item is None:
                    continue
                if unless_version is not None and item.version >= unless_version.get(v, 1 << 63):
                    continue
                self._drop(key)

    def keys(self) -> list[CacheKey]:
        with self._lock:
            return self._walk()

    def _walk(self) -> list[CacheKey]:
        """The keys, for a walk under the lock: a lock-free hit may move an entry meanwhile, so walks go over
        a copy taken by one C call that allocates nothing per key (no garbage collection, hence no Python
        code that could hand over the GIL, runs inside it), retried were it ever interrupted anyway."""
        while True:
            with contextlib.suppress(RuntimeError):  # "OrderedDict mutated during iteration"
                return list(self._entries)

    def resize(self, max_entries: int, max_bytes: int | None) -> int:
        with self._lock:
            self.max_entries, self.max_bytes = max_entries, max_bytes
            return self._evict()

    def purge_expired(self, now: float) -> int:
        with self._lock:
            dead = [k for k in self._walk() if now >= self._entries[k].expires_at]
            for k in dead:
                self._drop(k)
            return len(dead)

    def clear(self, older_than: int | None = None) -> None:
        """Drop every entry (or those older than a clear_all's version), and fence reads in flight."""
        with self._lock:
            self._moves = [moves + 1 for moves in self._moves]
            if older_than is not None:
                for key in [k for k in self._walk() if self._entries[k].version < older_than]:
                    self._drop(key)
                return
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
