"""MetadataCache: memory → Redis → disk → database, right under any tier's failure.

The correctness argument, in three rules:
- Every write carries a version (versions.py); each tier keeps per key the newest version it saw,
  as an entry or a tombstone, and refuses older writes. A write that lands late — a timed-out
  promotion, a put racing another instance's invalidate — can never bring back what a later
  removal took away, and concurrent puts of two instances leave every tier with the same winner.
- A removal a tier could not apply is journaled durably and applied before the tier is used again
  (repairs.py); a Redis that lost removals (restart, old snapshot) is purged first (its floor).
- The memory tier follows other instances per key (coherence.py); slower reads in flight are fenced
  by the memory tier's token, so a promotion never revives a removed or replaced entry.
Seams, after cachetools and diskcache: `MetadataCache(config, memory=, codec=, hasher=, stores=)`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from .codec import HEADER_LEN, Codec, CorruptEntry, InvalidMetadata, Payload, dump_metadata
from .coherence import Coherence
from .config import CacheConfig
from .health import TierHealth
from .keys import CacheKey, ContentHasher, UnreadableFile, tier_variant
from .management import CacheManagement
from .memory_tier import MemoryTier
from .repairs import Repairs
from .stats import Stats
from .store import ALL, Journal, Removal, StoreTier, TierError, default_stores
from .versions import VersionClock

log = logging.getLogger("reference.cache")

_WRITE_STRIPES = 256
_new_tuple = tuple.__new__
_loads = orjson.loads


class CacheClosedError(RuntimeError):
    """The cache was shut down; create a new one."""


class MetadataCache(CacheManagement):
    """A multi-tier metadata cache keyed by file content and extraction tier."""

    legacy_module: Any  # annotation only: `reference.factory` sets it (the legacy API capability, SPEC E9)

    def __init__(
        self,
        config: CacheConfig | None = None,
        *,
        memory: MemoryTier | None = None,
        codec: Codec | None = None,
        hasher: ContentHasher | None = None,
        stores: Callable[[CacheConfig], list[tuple[str, StoreTier | Exception]]] | None = None,
        **overrides: Any,
    ) -> None:
        config = config if config is not None else CacheConfig()
        self.config = config.with_changes(**overrides) if overrides else config.validate()
        cfg = self.config
        self.staleness_window_seconds = cfg.staleness_seconds
        self._codec = codec or Codec(cfg.compression_level, cfg.max_entry_bytes)
        self._hasher = hasher or ContentHasher(cfg.racy_window_seconds)
        self.memory = memory or MemoryTier(cfg.max_memory_entries, cfg.max_memory_bytes)
        self._build_stores = stores or default_stores
        self._stats = Stats()
        self._versions = VersionClock()
        self._stores: list[StoreTier] = []
        self._health: dict[str, TierHealth] = {}
        self._setup_errors: dict[str, str] = {}
        self._redis: Any = None
        self._repairs: Repairs = Repairs([], [], self._journal_call, cfg.staleness_seconds)
        self._coherence = Coherence(self.memory, cfg.staleness_seconds, None, self._journal_call)
        self._write_locks = [threading.Lock() for _ in range(_WRITE_STRIPES)]
        self._start_lock = threading.Lock()
        self._started = False
        self._closed = False
        self.tiercheck_capabilities = {
            "tiers": ["memory", "redis", "disk", "database"],
            "database_kinds": ["sqlite", "postgresql"],
            "introspection": True,
            "legacy_api": True,
            "readmission_seconds": cfg.retry_max_seconds + 1.0,
            "staleness_seconds": cfg.staleness_seconds,
        }

    # --- start-up: nothing connects before the first operation ------------------------------

    def _start(self) -> None:
        if self._started:
            return
        with self._start_lock:
            if self._started:
                return
            if self._closed:
                raise CacheClosedError("the cache was shut down")
            cfg = self.config
            for name, store in self._build_stores(cfg):
                if isinstance(store, Exception):  # e.g. a malformed URL: this tier stays off, the others work
                    log.error("tier %s could not be set up: %s", name, store)
                    self._setup_errors[name] = f"{type(store).__name__}: {store}"
                    continue
                self._stores.append(store)
                self._health[name] = TierHealth(name, cfg.failure_threshold, cfg.retry_max_ops, cfg.retry_max_seconds)
            by_name = {s.name: s for s in self._stores}
            self._redis = by_name.get("redis")
            journals: list[Journal] = [s for s in self._stores if isinstance(s, Journal)]
            self._repairs = Repairs(
                [s.name for s in self._stores],
                journals,
                self._journal_call,
                cfg.staleness_seconds * 0.8,
                self._floor_raised,
                self._learned,
            )
            self._repairs.load(at_start=True)
            shared = self._redis or by_name.get("database")
            self._coherence = Coherence(
                self.memory,
                cfg.staleness_seconds,
                shared,
                self._attempt,  # gated: a tier owing removals applies them before it answers
                redis_url=cfg.redis_url if self._redis is not None else None,
                prefix=getattr(self._redis, "prefix", ""),
                redis_tier=self._redis,
                on_reconnect=self._redis_reconnected,
            )
            self._coherence.start()
            self._started = True

    def _redis_reconnected(self) -> None:
        """The tracking connection came back: the server may have restarted; check its floor first."""
        self._repairs.load()
        self._redis.floor_unchecked = True

    def _learned(self, removal: Removal) -> None:
        """Another instance recorded a removal a tier owes: our memory may hold the entry and no message
        will come. Only entries older than it go (a newer one may be our put in flight, as in the tiers)."""
        if removal.content == ALL:
            return self.memory.clear(removal.version)
        variants = self.memory.fence(removal.content) if removal.variant == ALL else (removal.variant,)
        self.memory.remove(removal.content, None, dict.fromkeys(variants, removal.version))

    def _floor_raised(self, floor: int) -> None:
        if self._redis is not None and floor > self._redis.floor:
            self._redis.floor = floor

    # --- using a tier safely -----------------------------------------------------------------

    def _attempt(self, store: StoreTier, operation: str, fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
        """Run one tier operation once the tier owes nothing: (True, result), or (False, None). Never raises."""
        health = self._health[name := store.name]
        clean = health.clean  # no failure since the last success: nothing to allow or to record (every hit)
        if not (clean or health.allow()):
            return False, None
        try:
            if store is self._redis:
                self._check_floor()
            if self._repairs.owed[name]:
                self._repairs.apply(store)
            result = fn(*args)
        except Exception as exc:
            self._tier_failed(store, operation, exc)
            return False, None
        if not clean:
            health.record_success()
        return True, result

    def _check_floor(self) -> None:
        """Before anything moves Redis's removal counter (repairs do): a Redis behind the floor lost removals."""
        if self._redis.floor_unchecked and self._redis.check_floor():
            log.warning("redis lost removals (counter below the floor %d): namespace purged", self._redis.floor)

    def _journal_call(self, store: Any, operation: str, fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
        """Like _attempt without the tier's own repairs: journals and coherence checks touch no entries."""
        health = self._health.get(store.name)
        if health is not None and not health.allow():
            return False, None
        try:
            result = fn(*args)
        except Exception as exc:
            self._tier_failed(store, operation, exc)
            return False, None
        if health is not None:
            health.record_success()
        return True, result

    def _tier_failed(self, store: Any, operation: str, exc: Exception) -> None:
        health = self._health.get(store.name)
        if not isinstance(exc, TierError):
            log.exception("tier %s %s raised unexpectedly", store.name, operation)
        elif health is None or health.healthy:
            log.warning("tier %s %s failed: %s", store.name, operation, exc)
        if store is self._redis:
            store.floor_unchecked = True  # a reconnect may reach a server that lost removals
        if health is not None:
            health.record_failure(operation, exc)

    def _defer(self, store: StoreTier, content: str, variant: str, version: int) -> bool:
        """Record a removal the tier missed; True when it is durable (survives a restart)."""
        return self._repairs.defer(store.name, Removal(content, variant, version))

    # --- keys and write locks ------------------------------------------------------------------

    def _key(self, file_path: Any, tier: str) -> CacheKey | None:
        variant = tier_variant(tier)  # TypeError for a tier that is not a str: a clear caller error
        try:  # tuple.__new__: a third of the cost of CacheKey(...), whose __new__ is Python code
            return _new_tuple(CacheKey, (self._hasher.content_id(file_path), variant))
        except (UnreadableFile, TypeError) as exc:
            log.info("cannot key %r: %s", file_path, exc)
            return None

    @contextlib.contextmanager
    def _writing(self, content: str | None) -> Iterator[None]:
        """Serialize this process's writes to one content (None: all), so memory follows the tiers."""
        stripes = range(_WRITE_STRIPES) if content is None else (int(content[:8], 16) % _WRITE_STRIPES,)
        locks = [self._write_locks[i] for i in stripes]  # ascending order: no deadlock
        for lock in locks:
            lock.acquire()
        try:
            yield
        finally:
            for lock in locks:
                lock.release()

    # --- the contract ------------------------------------------------------------------------

    def get(self, file_path: str, tier: str = "premium") -> dict[str, Any] | None:
        self._check_open()
        key = self._key(file_path, tier)
        found = None if key is None else self._lookup(key)
        self._stats.record_get(found[0] if found else None)
        return found[1] if found else None

    def _lookup(self, key: CacheKey) -> tuple[str, dict[str, Any]] | None:
        """(tier that served, value) or None, without counting a request (warm_cache looks up too). Memory first,
        then the store tiers, fastest first; a hit there is promoted into the faster ones. One frame for all."""
        if not self._started:
            self._start()
        repairs, memory, begun = self._repairs, self.memory, time.monotonic()  # before the read: a promoted
        if begun >= repairs.poll_due:  # copy's stamp, so it is never trusted too long
            repairs.poll(begun)
        now = self.config.clock()
        entry = memory.get(key, now)  # the hot path: one stat, two dict look-ups, one decode
        if entry is not None and (self._coherence.fresh(entry) or self._coherence.confirm(key, entry)):
            payload = entry.payload  # a fresh object per hit (P1); orjson called here: one frame less per hit
            return "memory", _loads(payload.data) if not payload.flags else payload.load()
        token = memory.token(key)
        for index, store in enumerate(self._stores):
            if repairs.unread and not repairs.may_serve(store.name):
                continue
            ok, blob = self._attempt(store, "get", store.get, key)
            if not ok or blob is None:
                continue
            try:
                expires_at, version, payload = self._codec.decode(".".join(key), blob)  # str(key), in C: no frame
                value = payload.load()
            except CorruptEntry as exc:
                log.warning("tier %s held a corrupt entry %s (%s): removed", store.name, key, exc)
                self._stats.add("corrupt_entries")
                self._attempt(store, "discard", store.discard, key, None, blob)
                continue
            self._versions.observe(version)
            if now >= expires_at:
                self._attempt(store, "discard", store.discard, key, version)
                continue
            self._promote(key, blob, version, expires_at, payload, self._stores[:index], (token, begun), now)
            return store.name, value
        return None

    def _promote(
        self, key: CacheKey, blob: bytes, version: int, expires_at: float, payload: Payload,
        faster: list[StoreTier], token: tuple[int, float], now: float,
    ) -> None:
        """A byte-for-byte copy (same expiry and version) into the faster tiers (a variant's seam). Each refuses
        it if it holds anything newer, so a late copy is harmless; memory, if the content changed since the read
        began (`token`), and drops it when a faster tier refused it (a removal had not reached the slower one)."""
        self.memory.put(key, expires_at, payload, version, token[0], token[1])
        for store in faster:
            ok, landed = self._attempt(store, "promote", store.put, key, blob, version, expires_at, now)
            if ok and not landed:  # a faster tier holds a newer put or removal (its message may be handled)
                self.memory.remove(key.content, key.variant, {key.variant: version + 1})

    def put(
        self, file_path: str, metadata: dict[str, Any], tier: str = "premium", extraction_time_ms: float = 0
    ) -> bool:
        """Store in every healthy tier; True if at least one holds it. Invalid metadata raises InvalidMetadata."""
        self._check_open()
        payload = dump_metadata(metadata)
        key = self._key(file_path, tier)
        if key is None:
            return False
        self._start()
        now = self.config.clock()
        expires_at = now + self.config.ttl_seconds
        version = self._versions.next()
        blob = self._codec.encode(str(key), payload, expires_at, version)
        stored = refused = False
        with self._writing(key.content):
            for store in self._stores:
                ok, landed = self._attempt(store, "put", store.put, key, blob, version, expires_at, now)
                if ok and store is self._redis and landed:
                    self._repairs.note_floor(landed)
                if not ok:  # it may hold an older value, or get this one late: it owes a removal of both
                    self._defer(store, key.content, key.variant, version + 1)
                stored, refused = stored or bool(landed), refused or (ok and not landed)
            # Memory last, and only if no tier refused: a refusal means a newer write won, and a get meanwhile must
            # not serve the loser. Then fence the reads that overlapped the writes and drop what they promoted.
            if not refused:
                self.memory.put(key, expires_at, payload, version)
            self.memory.remove(key.content, key.variant, {key.variant: version + 1 if refused else version})
            stored = stored or (not refused and self.memory.peek(key, now))
        if stored:
            self._stats.add("writes")
            self._stats.add("bytes_raw", len(payload.data))
            self._stats.add("bytes_stored", len(blob) - HEADER_LEN)
        return stored

    def invalidate(self, file_path: str, tier: str | None = None) -> bool:
        """Remove the entry of one tier name, or of every tier name; True: nothing will serve it again."""
        self._check_open()
        if tier is not None:
            key = self._key(file_path, tier)
            if key is None:
                return False
            content, variant = key.content, key.variant
        else:
            try:
                content, variant = self._hasher.content_id(file_path), None
            except UnreadableFile as exc:
                log.info("cannot invalidate %r: %s", file_path, exc)
                return False
        self._start()
        if complete := self._remove(content, variant):
            self._stats.add("invalidations")
        return complete

    def _remove(self, content: str, variant: str | None) -> bool:
        version = self._versions.next()
        complete = True
        with self._writing(content):
            self.memory.remove(content, variant)
            for store in self._stores:
                ok, counter = self._attempt(store, "invalidate", store.remove, content, variant, version)
                if not ok:
                    complete = self._defer(store, content, variant or ALL, version) and complete
                elif store is self._redis:
                    complete = self._repairs.record_floor(counter) and complete
            self.memory.remove(content, variant)  # a read that overlapped the removals is fenced too
        return complete

    def clear_all(self) -> None:
        self._check_open()
        self._start()
        version = self._versions.next()
        with self._writing(None):
            self.memory.clear()
            for store in self._stores:
                ok, counter = self._attempt(store, "clear", store.clear, version)
                if not ok:
                    self._defer(store, ALL, ALL, version)
                elif store is self._redis:
                    self._repairs.record_floor(counter)
            self.memory.clear()

    def shutdown(self) -> None:
        """Close every connection and file; idempotent. The cache cannot be used afterwards."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            stores = self._stores
        self._coherence.stop()
        if self._started:
            self._repairs.save_floor()  # the counter our puts reached: a later Redis below it lost them
        self._stores = []
        for store in stores:
            try:
                store.close()
            except Exception as exc:
                log.warning("tier %s did not close cleanly: %s", store.name, exc)

    def _check_open(self) -> None:
        if self._closed:
            raise CacheClosedError("the cache was shut down; create a new one")

    def __enter__(self) -> MetadataCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


__all__ = ["CacheClosedError", "InvalidMetadata", "MetadataCache"]
