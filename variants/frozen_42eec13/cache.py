"""MetadataCache: the fixed, clean `AdvancedMetadataCache` — memory → Redis → disk → database.

Three rules carry the correctness argument:
- Reads go fastest tier first; a hit is checked (checksum, expiry from the injected clock) and
  copied byte for byte into every faster tier, so promotion never extends an expiry.
- A write (put, invalidate, clear_all) that a tier could not apply is recorded as a pending
  repair for that tier, in memory and durably in the disk/database journal; the tier is not
  read again until the repair has been applied. So an outage can never bring old data back.
  The repaired tier marks the records it applied, so a record that a journal could not forget
  is never applied again over newer data.
- Writes to one content are serialized (striped locks), so a put is never half-applied
  around a concurrent invalidate.
- Promotions are conditional on no write to the same content having overlapped the read
  (striped, seqlock-style write epochs), so a slow read cannot overwrite a newer put or
  bring back what an invalidation removed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .codec import HEADER_LEN, Codec, CorruptEntry, InvalidMetadata, Payload, dump_metadata, load_payload
from .config import CacheConfig
from .database_tier import DatabaseTier
from .disk_tier import DiskTier
from .health import TierHealth
from .keys import CacheKey, ContentHasher, UnreadableFile, tier_variant
from .memory_tier import MemoryTier
from .redis_tier import RedisTier
from .stats import Stats
from .store import ALL, Repair, StoreTier, TierError

log = logging.getLogger("reference.cache")

_EPOCH_STRIPES = 1024


class CacheClosedError(RuntimeError):
    """The cache was shut down; create a new one."""


class MetadataCache:
    """A multi-tier metadata cache keyed by file content and extraction tier."""

    legacy_module: Any  # annotation only: `reference.factory` sets it (the legacy API capability, SPEC E9)

    def __init__(self, config: CacheConfig | None = None, **overrides: Any) -> None:
        config = config if config is not None else CacheConfig()
        self.config = config.with_changes(**overrides) if overrides else config.validate()
        self.staleness_window_seconds = self.config.staleness_seconds
        self._codec = Codec(self.config.compression_level, self.config.max_entry_bytes)
        self._hasher = ContentHasher(self.config.racy_window_seconds)
        self.memory = MemoryTier(self.config.max_memory_entries, self.config.max_memory_bytes)
        self._stats = Stats()
        self._stores: list[StoreTier] = []
        self._health: dict[str, TierHealth] = {}
        self._pending: dict[str, dict[tuple[str, str], set[str]]] = {}  # (content, variant) -> journal rids
        self._repairing: dict[str, set[str]] = {}  # rids a repair in progress is applying
        self._unread: set[str] = set()  # journals that could not be read yet: see _may_serve
        self._unread_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._repair_locks: dict[str, threading.Lock] = {}
        self._setup_errors: dict[str, str] = {}
        self._coordinator: Any = None
        self._redis: Any = None  # the Redis tier, if any: its change counter guards against old snapshots
        self._redis_unchecked = False  # a journal showed a floor Redis has not been checked against: _catch_up
        self._generation_seen: str | None = None
        self._generation_checked = float("-inf")
        self._epochs = [0] * _EPOCH_STRIPES
        self._writers = [0] * _EPOCH_STRIPES
        self._write_locks = [threading.Lock() for _ in range(_EPOCH_STRIPES)]
        self._epoch_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._started = False
        self._closed = False

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
            builders: list[tuple[str, Callable[[], StoreTier]]] = []
            if cfg.redis_url:
                builders.append(
                    (
                        "redis",
                        lambda: RedisTier(
                            cfg.redis_url,  # type: ignore[arg-type]  # not None: checked above, mypy forgets in a lambda
                            cfg.namespace,
                            cfg.redis_socket_timeout,
                            cfg.redis_connect_timeout,
                        ),
                    )
                )
            if cfg.enable_disk:
                builders.append(("disk", lambda: DiskTier(cfg.cache_dir, cfg.max_disk_bytes, cfg.disk_fsync)))
            if cfg.database_url:
                builders.append(
                    (
                        "database",
                        lambda: DatabaseTier(
                            cfg.database_url,  # type: ignore[arg-type]  # not None: checked above, mypy forgets in a lambda
                            cfg.namespace,
                            cfg.sqlite_path,
                            cfg.database_timeout,
                        ),
                    )
                )
            for name, build in builders:
                health = TierHealth(name, cfg.failure_threshold, cfg.retry_max_ops, cfg.retry_max_seconds)
                try:
                    store = build()
                except Exception as exc:  # e.g. a malformed URL: this tier stays off, the others work
                    log.error("tier %s could not be set up: %s", name, exc)
                    self._setup_errors[name] = f"{type(exc).__name__}: {exc}"
                    continue
                self._stores.append(store)
                self._health[name] = health
                self._pending[name] = {}
                self._repairing[name] = set()
                self._repair_locks[name] = threading.Lock()
            by_name = {s.name: s for s in self._stores}
            self._redis = by_name.get("redis")
            self._coordinator = self._redis or by_name.get("database")
            for journal in self._journals():
                if not self._read_journal(journal, at_start=True):
                    self._unread.add(journal.name)
            self._started = True

    def _journals(self, excluding: str | None = None) -> list[Any]:
        return [s for s in self._stores if s.name in ("disk", "database") and s.name != excluding]

    def _read_journal(self, journal: Any, at_start: bool = False) -> bool:
        """Add a journal's records to the pending repairs, and its floor to Redis's; False if unreadable.

        At start a failure is not held against the tier's health: a corrupt SQLite file is replaced by
        that very failure, and the fresh one must take the next write."""
        if at_start:
            try:
                records = journal.journal_load()
            except Exception as exc:  # logged, never raised (P5)
                log.warning("tier %s: cannot read the repair journal (others serve once it is): %s", journal.name, exc)
                return False
        else:
            ok, records = self._journal(journal, "journal", journal.journal_load)
            if not ok:
                return False
        with self._pending_lock:
            for tier, repair in records:
                if tier in self._pending:
                    self._pending[tier].setdefault((repair.content, repair.variant), set()).add(repair.rid)
        if self._redis is not None:
            ok, floor = self._journal(journal, "journal", journal.floor_get)
            if ok and floor > self._redis.floor:
                self._redis.floor = floor
                self._redis_unchecked = True  # Redis is checked against it before it serves again
        return True

    def _may_serve(self, store: StoreTier) -> bool:
        """A tier serves reads only once every journal that may hold removals it owes has been read:
        one unreadable at start (database down, disk failing) may hold the removal of an entry the tier
        still has. Writes go on meanwhile; a removal read later is applied before the next operation."""
        if not self._unread:
            return True
        if not self._unread_lock.acquire(blocking=False):  # another thread is reading it: no waiting
            return not (self._unread - {store.name})
        try:
            for journal in self._journals():
                if journal.name in self._unread and self._read_journal(journal):
                    self._unread.discard(journal.name)
                    log.info("tier %s: repair journal read; other tiers serve again", journal.name)
            return not (self._unread - {store.name})
        finally:
            self._unread_lock.release()

    # --- using a tier safely -----------------------------------------------------------------

    def _attempt(self, store: StoreTier, operation: str, fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
        """Run one tier operation: (True, result), or (False, None) if skipped or failed. Never raises."""
        health = self._health[store.name]
        if not health.allow():
            return False, None
        if self._pending[store.name] and not self._repair(store):
            return False, None
        if self._redis_unchecked and store is self._redis and not self._catch_up(store):
            return False, None
        try:
            result = fn(*args)
        except Exception as exc:
            self._tier_failed(store, operation, exc)
            return False, None
        health.record_success()
        return True, result

    def _tier_failed(self, store: StoreTier, operation: str, exc: Exception) -> None:
        if not isinstance(exc, TierError):
            log.exception("tier %s %s raised unexpectedly", store.name, operation)
        elif self._health[store.name].healthy:
            log.warning("tier %s %s failed: %s", store.name, operation, exc)
        else:
            log.debug("tier %s %s failed: %s", store.name, operation, exc)
        self._health[store.name].record_failure(operation, exc)

    def _journal(self, journal: Any, operation: str, fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
        """Like _attempt, without the journal tier's own pending repairs: a journal touches no entries."""
        health = self._health[journal.name]
        if not health.allow():
            return False, None
        try:
            result = fn(*args)
        except Exception as exc:
            self._tier_failed(journal, operation, exc)
            return False, None
        health.record_success()
        return True, result

    def _repair(self, store: StoreTier) -> bool:
        """Apply the tier's pending removals before it may serve again; True when none are left.

        Records the tier marks as applied are not applied again: a journal that could not forget
        them (read-only disk, database down) must not replay them over newer data after a restart."""
        name = store.name
        with self._repair_locks[name]:
            with self._pending_lock:
                todo = {cv: set(rids) for cv, rids in self._pending[name].items()}
                rids = set().union(*todo.values()) if todo else set()
                self._repairing[name] = rids
            if not todo:
                return True
            try:
                applied = store.repairs_applied(rids)
                removals = [cv for cv, cv_rids in todo.items() if cv_rids - applied]
                if (ALL, ALL) in removals:
                    store.clear()
                else:
                    for content, variant in removals:
                        store.remove(content, None if variant == ALL else variant)
                store.mark_repaired(rids - applied, time.time())
            except Exception as exc:
                with self._pending_lock:
                    self._repairing[name] = set()
                self._tier_failed(store, "repair", exc)
                return False
            with self._pending_lock:  # in one step: a deferral must not reuse a rid this repair is retiring
                pending = self._pending[name]
                for cv, cv_rids in todo.items():
                    left = pending.get(cv, set()) - cv_rids
                    if left:
                        pending[cv] = left
                    else:
                        pending.pop(cv, None)
                self._repairing[name] = set()
                done = not pending
            records = [Repair(content, variant, rid) for (content, variant), cv_rids in todo.items() for rid in cv_rids]
            for journal in self._journals(excluding=name):
                self._journal(journal, "journal", journal.journal_discard, name, records)
            before = len(todo) - len(removals)
            log.info("tier %s repaired: %d removals applied, %d applied before", name, len(removals), before)
            return done

    def _catch_up(self, store: StoreTier) -> bool:
        """Before Redis serves: if it shows an older change counter than the journals' floor, it lost
        removals while no instance watched it (E1), and its namespace is purged."""
        with self._repair_locks[store.name]:
            if not self._redis_unchecked:
                return True
            self._redis_unchecked = False  # before reading the floor: a higher one found meanwhile sets it again
            floor = self._redis.floor
            try:
                purged = store.catch_up(floor)  # type: ignore[attr-defined]
            except Exception as exc:
                self._redis_unchecked = True
                self._tier_failed(store, "catch up", exc)
                return False
            if purged:
                log.warning("redis is behind the journal (counter < %d): restored from an older state; purged", floor)
            return True

    def _lift_floor(self) -> None:
        """Before a removal: bump the Redis counter and record the value durably, so that a Redis that
        later shows an older counter (restored from a snapshot taken before the removal) is purged."""
        if self._redis is None:
            return
        ok, token = self._attempt(self._redis, "bump generation", self._redis.bump_generation)
        if ok:
            for journal in self._journals():
                self._journal(journal, "journal", journal.floor_raise, int(token))
            self._redis.floor = max(self._redis.floor, int(token))
            self._saw_change(token)  # our own bump: the announcement after the removal must follow it

    def _defer(self, store: StoreTier, content: str, variant: str) -> bool:
        """Record a removal the tier owes; True when the record is durable (survives a restart)."""
        with self._pending_lock:
            rids = self._pending[store.name].setdefault((content, variant), set())
            reusable = rids - self._repairing[store.name]  # one record per removal while the tier is out
            rid = min(reusable) if reusable else uuid.uuid4().hex
            rids.add(rid)
        durable = False
        for journal in self._journals(excluding=store.name):
            ok, _ = self._journal(journal, "journal", journal.journal_add, store.name, Repair(content, variant, rid))
            durable = durable or ok
        return durable

    # --- keys and epochs ---------------------------------------------------------------------

    def _key(self, file_path: Any, tier: str) -> CacheKey | None:
        variant = tier_variant(tier)  # TypeError for a tier that is not a str: a clear caller error
        try:
            return CacheKey(self._hasher.content_id(file_path), variant)
        except (UnreadableFile, TypeError) as exc:
            log.info("cannot key %r: %s", file_path, exc)
            return None

    def _stripe(self, content: str) -> int:
        return int(content[:8], 16) % _EPOCH_STRIPES

    @contextlib.contextmanager
    def _writing(self, content: str | None) -> Iterator[None]:
        """Serialize writes to one content (None: all), and mark them seqlock style: the epoch moves
        at the start and at the end, so a read that overlaps any part of a write never promotes."""
        stripes = range(_EPOCH_STRIPES) if content is None else (self._stripe(content),)
        locks = [self._write_locks[i] for i in stripes]  # ascending order: no deadlock
        for lock in locks:  # writes to one content never interleave across tiers
            lock.acquire()
        try:
            with self._epoch_lock:
                for i in stripes:
                    self._epochs[i] += 1
                    self._writers[i] += 1
            try:
                yield
            finally:
                with self._epoch_lock:
                    for i in stripes:
                        self._epochs[i] += 1
                        self._writers[i] -= 1
        finally:
            for lock in locks:
                lock.release()

    def _promotable(self, stripe: int, epoch: int) -> bool:
        return self._epochs[stripe] == epoch and not self._writers[stripe]

    # --- the contract ------------------------------------------------------------------------

    def get(self, file_path: str, tier: str = "premium") -> dict[str, Any] | None:
        self._check_open()
        key = self._key(file_path, tier)
        found = None if key is None else self._lookup(key)
        self._stats.record_get(found[0] if found else None)
        return found[1] if found else None

    def _lookup(self, key: CacheKey) -> tuple[str, dict[str, Any]] | None:
        self._start()
        self._sync_generation()
        now = self.config.clock()
        item = self.memory.get(key, now)
        if item is not None:
            return "memory", item[1].load()
        stripe = self._stripe(key.content)
        epoch = self._epochs[stripe]
        for index, store in enumerate(self._stores):
            if not self._may_serve(store):
                continue
            ok, blob = self._attempt(store, "get", store.get, key)
            if not ok or blob is None:
                continue
            try:
                expires_at, payload = self._codec.decode(str(key), blob)
                value = load_payload(payload)
            except CorruptEntry as exc:
                log.warning("tier %s held a corrupt entry %s (%s): removed", store.name, key, exc)
                self._stats.add("corrupt_entries")
                self._attempt(store, "remove", store.remove, key.content, key.variant)
                continue
            if now >= expires_at:
                self._attempt(store, "remove", store.remove, key.content, key.variant)
                continue
            self._promote(key, blob, expires_at, payload, store, self._stores[:index], stripe, epoch, now)
            return store.name, value
        return None

    def _promote(
        self,
        key: CacheKey,
        blob: bytes,
        expires_at: float,
        payload: Payload,
        source: StoreTier,
        faster: list[StoreTier],
        stripe: int,
        epoch: int,
        now: float,
    ) -> None:
        """Copy a lower-tier hit into the faster tiers, unless a write to it overlapped the read.

        In this process the epochs tell. Another instance sharing the tiers writes and removes
        bottom-up (database first, Redis last), so a copy that landed after its removal or
        overwrite of a faster tier comes after its change of the source too: re-reading the
        source afterwards and undoing the copy when it changed closes that race.
        """
        with self._epoch_lock:  # writers move the epoch before they touch memory: this orders us first
            if not self._promotable(stripe, epoch):
                return
            self._stats.add("evictions", self.memory.put(key, expires_at, payload))
        promoted = [s for s in faster if self._attempt(s, "promote", s.put, key, blob, expires_at, now)[0]]
        if not promoted:
            return
        if self._promotable(stripe, epoch):
            ok, again = self._attempt(source, "recheck", source.get, key)
            if ok and again == blob:
                return
            self.memory.remove(key.content, key.variant)  # a miss is always allowed; a stale copy is not
        for store in promoted:  # a write started meanwhile: it must win
            if not self._attempt(store, "undo promote", store.remove, key.content, key.variant)[0]:
                self._defer(store, key.content, key.variant)

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
        blob = self._codec.encode(str(key), payload, expires_at)
        announced = None
        with self._writing(key.content):
            evicted = self.memory.put(key, expires_at, payload)
            stored = self.memory.peek(key, now)
            for store in reversed(self._stores):  # bottom-up: see _promote
                # the coordinator announces the change in the same round trip when it can (Redis: one MULTI)
                write = getattr(store, "put_and_announce", None) if store is self._coordinator else None
                ok, result = self._attempt(store, "put", write or store.put, key, blob, expires_at, now)
                if ok:
                    stored = True
                    announced = result if write else announced
                else:
                    self._defer(store, key.content, key.variant)
        self._announce_change(announced)  # other instances may hold the value this put replaced
        self._stats.add("evictions", evicted)
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
        self._lift_floor()
        complete = True
        with self._writing(content):
            self.memory.remove(content, variant)
            for store in reversed(self._stores):  # bottom-up: see _promote
                if not self._attempt(store, "invalidate", store.remove, content, variant)[0]:
                    complete = self._defer(store, content, variant or ALL) and complete
        self._announce_change()
        if complete:
            self._stats.add("invalidations")
        return complete

    def clear_all(self) -> None:
        self._check_open()
        self._start()
        self._lift_floor()
        with self._writing(None):
            self.memory.clear()
            for store in reversed(self._stores):  # bottom-up: see _promote
                if not self._attempt(store, "clear", store.clear)[0]:
                    self._defer(store, ALL, ALL)
        self._announce_change()

    def cleanup(self) -> None:
        """Remove expired and corrupt entries from every tier now, and enforce the disk budget."""
        self._check_open()
        self._start()
        now = self.config.clock()
        self.memory.purge_expired(now)

        def is_dead(key: CacheKey, blob: bytes) -> bool:
            try:
                expires_at, _ = self._codec.decode(str(key), blob)
            except CorruptEntry:
                return True
            return now >= expires_at

        for store in self._stores:
            self._attempt(store, "cleanup", store.purge, is_dead)

    def remove_matching(self, pattern: str) -> int:
        """Remove every entry whose key `<content>.<variant>` matches the glob; return how many keys."""
        self._check_open()
        self._start()
        keys = set(self.memory.keys())
        for store in self._stores:
            ok, found = self._attempt(store, "scan", lambda s=store: list(s.keys()))
            keys.update(found if ok else ())
        matched = [k for k in keys if fnmatch.fnmatchcase(str(k), pattern)]
        if matched:
            self._lift_floor()
        for key in matched:
            with self._writing(key.content):
                self.memory.remove(key.content, key.variant)
                for store in reversed(self._stores):  # bottom-up: see _promote
                    if not self._attempt(store, "remove", store.remove, key.content, key.variant)[0]:
                        self._defer(store, key.content, key.variant)
        if matched:
            self._announce_change()
        return len(matched)

    def get_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._stats.snapshot()
        stats["memory"] = self.memory.usage()
        disk = next((s for s in self._stores if s.name == "disk"), None)
        if disk is not None:
            stats["disk"] = disk.usage()
        stats["tier_health"] = {name: h.snapshot() for name, h in self._health.items()}
        with self._pending_lock:
            stats["pending_repairs"] = {name: len(p) for name, p in self._pending.items()}
        if self._setup_errors:
            stats["tier_setup_errors"] = dict(self._setup_errors)
        return stats

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
        self._stats.add("evictions", self.memory.resize(self.config.max_memory_entries, self.config.max_memory_bytes))

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
            by_key: dict[CacheKey, list[str]] = {}
            for path, key in keys.items():
                if key is not None:
                    by_key.setdefault(key, []).append(path)

            def warm(key: CacheKey, path: str) -> bool:
                if self._lookup(key) is not None:
                    return True
                try:
                    metadata = extract(path, tier)
                    return self.put(path, metadata, tier)
                except Exception as exc:
                    log.warning("warm_cache: extracting %r failed: %s", path, exc)
                    return False

            outcomes = {key: pool.submit(warm, key, group[0]) for key, group in by_key.items()}
            results = {path: False for path in unique}
            for key, future in outcomes.items():
                for path in by_key[key]:
                    results[path] = future.result()
        return results

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
                    expires_at, _ = self._codec.decode(str(key), blob)
                except CorruptEntry:
                    continue
                if now < expires_at:
                    held.add(store.name)
        return held

    def shutdown(self) -> None:
        """Close every connection and file; idempotent. The cache cannot be used afterwards."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            stores, self._stores = self._stores, []
        for store in stores:
            try:
                store.close()
            except Exception as exc:
                log.warning("tier %s did not close cleanly: %s", store.name, exc)

    # --- helpers -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise CacheClosedError("the cache was shut down; create a new one")

    def _sync_generation(self) -> None:
        """Drop the memory tier when another instance changed something (see staleness_seconds)."""
        if self._coordinator is None:
            return
        tick = time.monotonic()
        if tick - self._generation_checked < self.config.staleness_seconds:
            return
        self._generation_checked = tick
        ok, token = self._attempt(self._coordinator, "read generation", self._coordinator.read_generation)
        if ok and token != self._generation_seen:
            if self._generation_seen is not None:
                with self._writing(None):
                    self.memory.clear()
            self._generation_seen = token

    def _announce_change(self, token: str | None = None) -> None:
        """Move the shared counter (unless `token` says it was moved already); if it had moved since we last
        looked, another instance changed something meanwhile and our memory tier may hold what it replaced."""
        if self._coordinator is None:
            return
        if token is None:
            ok, token = self._attempt(self._coordinator, "bump generation", self._coordinator.bump_generation)
            if not ok:
                return
        self._saw_change(token)

    def _saw_change(self, token: str) -> None:
        """Our own bump returned `token`: a gap since the last one we saw means another instance changed something."""
        seen = self._generation_seen
        if seen is not None and not _follows(token, seen):
            with self._writing(None):
                self.memory.clear()
        self._generation_seen = token

    def __enter__(self) -> MetadataCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _follows(token: str, seen: str) -> bool:
    """Is `token` the counter right after `seen` ("" before the first change)?"""
    try:
        return int(token) == int(seen or 0) + 1
    except ValueError:
        return False


__all__ = ["CacheClosedError", "InvalidMetadata", "MetadataCache"]
