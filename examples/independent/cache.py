"""The cache: a memory LRU over the shared stores, one coarse lock, a time-based breaker, epochs.

How it keeps the contract (docs/contract.md):

- **One lock.** Every public method holds `self.lock` (an RLock) from start to end, so within a
  process no operation interleaves with another.
- **Breaker.** A store that raises is skipped for `RETRY_AFTER` seconds of `time.monotonic`, then
  tried again; nothing a store raises reaches the caller.
- **Epochs (E1).** Each store's entries live under an *epoch* name. The moment a store fails or a
  write skips it (it may now miss a removal or an overwrite), or on `clear_all`, that store gets a
  fresh epoch, recorded in a small state record kept in every durable store (disk file, SQLite row).
  Whatever the store held before is never read again — not after its outage ends, not after a restart, not when a server
  comes back from an old snapshot — and `cleanup` sweeps it. An operation reports success only when
  the current epochs are recorded durably.
- **Holders.** Epochs are merged by taking the newest per store, so a holder that lags (an old copy,
  a server or file restored from before) does no harm. A holder that cannot take a new record has its
  old record removed if possible. A new instance does not trust a record while another holder cannot be
  read or holds a damaged record: that one may hold the newest record while the one that answers
  lagged (it could be neither written nor cleared during an outage). Then it starts every store
  afresh. Left: a holder that lagged, and the other one later loses its record (removed) before the
  lagging one was written again — two durable tiers out, one after the other.
- **Other instances (E6).** The state record is re-read every `REFRESH` seconds; a memory entry older
  than `REFRESH` is re-checked against the stores (by its put's stamp) before it is served. A put or
  an invalidate re-reads it first, always: written under an epoch another instance has already
  replaced, it would be lost (and an older value served after it), or remove nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from . import codec
from .codec import Entry, Key
from .stores import BACKEND_ERRORS, DiskStore, RedisStore, SqliteStore, epoch_order

log = logging.getLogger("examples.independent")

RETRY_AFTER = 1.0
"""Seconds a failed store is skipped before it is tried again."""

REFRESH = 0.5
"""Seconds between re-reads of the shared state, and the age at which a memory entry is re-checked."""

CAPABILITIES = {
    "tiers": ("memory", "redis", "disk", "database"),
    "database_kinds": ("sqlite",),
    "introspection": False,
    "legacy_api": False,
    # a hung server costs one socket timeout (1 s) after the heal, then RETRY_AFTER, then one operation
    "readmission_seconds": 3.0,
    # REFRESH plus the time of one operation, with room to spare
    "staleness_seconds": 1.0,
}

Store = RedisStore | DiskStore | SqliteStore
INITIAL_EPOCH = "0-00000000"


def new_epoch(current: str) -> str:
    """Never used before: above every earlier epoch, wall-clock milliseconds if higher, a random token."""
    number = max(epoch_order(current)[0] + 1, time.time_ns() // 1_000_000)
    return f"{number}-{secrets.token_hex(4)}"


@dataclass
class Remembered:
    """A memory-tier entry: the metadata's JSON (a fresh dict per get), its expiry and its put's stamp."""

    entry: Entry
    checked: float = field(default_factory=time.monotonic)


class Memory:
    """An LRU of at most `capacity` entries; evictions are counted."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: OrderedDict[Key, Remembered] = OrderedDict()
        self.evictions = 0

    def get(self, key: Key) -> Remembered | None:
        item = self.items.get(key)
        if item is not None:
            self.items.move_to_end(key)
        return item

    def put(self, key: Key, entry: Entry, read_at: float | None = None) -> None:
        """`read_at`: when the entry was read from a store (its age counts from then, not from now)."""
        self.items[key] = Remembered(entry) if read_at is None else Remembered(entry, read_at)
        self.items.move_to_end(key)
        while len(self.items) > self.capacity:
            self.items.popitem(last=False)
            self.evictions += 1

    def drop(self, key: Key) -> None:
        self.items.pop(key, None)

    def drop_content(self, content: str) -> None:
        for key in [k for k in self.items if k.content == content]:
            del self.items[key]


class State:
    """Each store's epoch, as a checksummed JSON record; merged by taking the newest epoch per store."""

    def __init__(self, namespace: str, epochs: dict[str, str] | None = None) -> None:
        self.namespace = namespace
        self.epochs = dict(epochs or {})

    def epoch(self, store: str) -> str:
        return self.epochs.get(store, INITIAL_EPOCH)

    def redis_server(self) -> str | None:
        """The Redis run_id the current Redis epoch was opened against (recorded as "<epoch>/<run_id>")."""
        epoch, _, server = self.epochs.get("redis.server", "").partition("/")
        return server if epoch == self.epoch("redis") else None

    def record_redis_server(self, run_id: str) -> None:
        self.epochs["redis.server"] = f"{self.epoch('redis')}/{run_id}"

    def _sum(self, body: str) -> str:
        return hashlib.sha256(f"{self.namespace}\0{body}".encode()).hexdigest()

    def dump(self) -> bytes:
        body = json.dumps(self.epochs, sort_keys=True)
        return json.dumps({"epochs": body, "sum": self._sum(body)}).encode()

    def parse(self, data: bytes) -> dict[str, str] | None:
        """The epochs a record holds, or None when it is damaged."""
        try:
            doc = json.loads(data)
            body = doc["epochs"]
            if doc["sum"] != self._sum(body):
                return None
            epochs = json.loads(body)
        except (ValueError, KeyError, TypeError, RecursionError):
            return None
        if not isinstance(epochs, dict) or not all(isinstance(v, str) for v in epochs.values()):
            return None
        return epochs

    def merge(self, other: dict[str, str]) -> bool:
        """Take the newer epoch of each store; True if anything changed."""
        changed = False
        for name, value in other.items():
            mine = self.epochs.get(name)
            if mine is None or (epoch_order(value), value) > (epoch_order(mine), mine):
                self.epochs[name] = value
                changed = True
        return changed


class IndependentCache:
    """The contract's cache object (docs/contract.md section 2)."""

    tiercheck_capabilities = CAPABILITIES

    def __init__(self, env: Any) -> None:
        self.env = env
        self.clock: Callable[[], float] = env.clock
        self.lock = threading.RLock()
        self.memory = Memory(max(0, int(env.max_memory_entries)))
        self.disk = DiskStore(env.cache_dir, env.max_disk_bytes)
        self.database = SqliteStore(env.database_url, env.namespace) if env.database_url else None
        self.redis = RedisStore(env.redis_url, env.namespace) if env.redis_url else None
        self.stores: list[Store] = [s for s in (self.redis, self.disk, self.database) if s is not None]
        self.holders: list[DiskStore | SqliteStore] = [s for s in (self.disk, self.database) if s is not None]
        self.state = State(env.namespace)
        self.durable = True  # the current epochs are recorded in at least one holder
        self.open_until: dict[str, float] = {}
        self.redis_known = False  # whether the server's identity was checked against the state
        self.next_refresh = 0.0
        self.stats = dict.fromkeys(
            ("total_requests", "hits", "misses", "memory_hits", "redis_hits", "disk_hits", "database_hits")
            + ("writes", "invalidations"),
            0,
        )
        self.closed = False

    # --- the breaker ----------------------------------------------------------------------------

    def usable(self, store: Store) -> bool:
        return time.monotonic() >= self.open_until.get(store.name, 0.0)

    def failed(self, store: Store, exc: BaseException) -> None:
        """Skip the store for a while and give it a fresh epoch: it may have missed a write."""
        if self.usable(store):
            log.warning(
                "%s tier failed (%s: %s); retried after %.1fs", store.name, type(exc).__name__, exc, RETRY_AFTER
            )
        self.open_until[store.name] = time.monotonic() + RETRY_AFTER
        if store is self.redis:
            self.redis_known = False
        if isinstance(store, SqliteStore):
            store.close()  # reopened on the next try: the file may be replaced meanwhile
        self.state.epochs[store.name] = new_epoch(self.state.epoch(store.name))
        self.persist()

    def change(self, store: Store, action: Callable[[Any, str], Any]) -> None:
        """A write or a removal. A store skipped by its breaker misses it just like a failing one, and
        another instance may have written its current epoch meanwhile: it gets a fresh epoch too."""
        if not self.usable(store):
            self.state.epochs[store.name] = new_epoch(self.state.epoch(store.name))
            self.persist()
            return
        self.attempt(store, action)

    def attempt(self, store: Store, action: Callable[[Any, str], Any]) -> tuple[bool, Any]:
        """(True, action(store, its current epoch)) or (False, None) when the store is skipped or fails."""
        if not self.usable(store):
            return False, None
        try:
            if store is self.redis and not self.redis_known:
                self.handshake()
            return True, action(store, self.state.epoch(store.name))
        except BACKEND_ERRORS as exc:
            self.failed(store, exc)
            return False, None

    def handshake(self) -> None:
        """Before Redis is used (first time, after a failure, after an epoch change): a server that is not
        the one this epoch was opened against (it restarted, perhaps from an older snapshot) gets a
        fresh epoch, so nothing it brought back is read."""
        run_id = self.redis.server_id() if self.redis is not None else None
        if run_id is not None and run_id != self.state.redis_server():
            if self.state.redis_server() is not None:
                log.warning("redis server changed (run_id %s): fresh epoch", run_id)
                self.state.epochs["redis"] = new_epoch(self.state.epoch("redis"))
            self.state.record_redis_server(run_id)
            self.persist()
        self.redis_known = True

    # --- the shared state -----------------------------------------------------------------------

    def persist(self) -> None:
        """Write the state to every usable holder; `durable` says whether one took it. Newer epochs another
        instance recorded there are adopted first: a record is never overwritten with an older one."""
        for holder in self.holders:
            if self.usable(holder):
                with contextlib.suppress(*BACKEND_ERRORS):
                    self.adopt(holder.read_state())
        data, written = self.state.dump(), False
        for holder in self.holders:
            if self.usable(holder):
                try:
                    holder.write_state(data)
                    written = True
                except BACKEND_ERRORS as exc:
                    with contextlib.suppress(*BACKEND_ERRORS):
                        holder.forget_state()  # a stale record must not outlive a newer one held elsewhere
                    self.failed(holder, exc)  # a fresh epoch for it too; that call persists again without it
                    return
        self.durable = written or not self.holders

    def adopt(self, data: bytes | None) -> bool:
        """Take the newer epochs of a record; False when there is no intact record."""
        epochs = None if data is None else self.state.parse(data)
        if epochs is None:
            return False
        before = self.state.epoch("redis")
        if self.state.merge(epochs):
            self.memory.items.clear()  # another instance removed something we cannot name
            self.redis_known &= self.state.epoch("redis") == before
        return True

    def refresh(self, force: bool = False) -> None:
        """Every REFRESH seconds: adopt newer epochs from the holders and repair holders that lag."""
        now = time.monotonic()
        if now < self.next_refresh and not force:
            return
        first = self.next_refresh == 0.0
        self.next_refresh = now + REFRESH
        mine, readable, damaged, lagging, unread = self.state.dump(), False, False, False, False
        for holder in self.holders:
            ok, data = self.attempt(holder, lambda s, e: s.read_state())
            unread |= not ok
            if not ok or data is None:
                lagging |= ok
                continue
            if not self.adopt(data):
                damaged = lagging = True
                continue
            readable = True
            lagging |= data != mine
        # at start, a holder that cannot be read, or whose record is damaged, may hold the newest record
        # (the readable holder may be one that lagged while it was out): no trustworthy record then. A
        # holder without any record is a new one (a fresh cache_dir): the other's record stands.
        partial = first and readable and (unread or damaged)
        if partial or (not readable and (damaged or (first and unread))):  # every store afresh
            for store in self.stores:
                self.state.epochs[store.name] = new_epoch(self.state.epoch(store.name))
            self.memory.items.clear()
            self.redis_known = False
        if first:
            self.attempt(self.disk, lambda s, e: s.recount(e))
        self.attempt(self.disk, lambda s, e: s.drop_older_epochs(e))  # dead data must not fill the disk
        if lagging or damaged or not self.durable or self.state.dump() != mine:
            self.persist()

    # --- entries ---

    @staticmethod
    def decode(key: Key, data: bytes) -> Entry | None:
        return codec.decode(key, data)

    @staticmethod
    def expired(entry: Entry, now: float) -> bool:
        """Live while now < put time + TTL: at the expiry itself the entry is gone."""
        return now >= entry.expires

    # --- look-ups -------------------------------------------------------------------------------

    def find(self, key: Key, now: float) -> tuple[int, Entry, bytes] | None:
        """The first store (index) holding a live, intact entry; damaged or expired copies are removed."""
        for index, store in enumerate(self.stores):
            ok, data = self.attempt(store, lambda s, e: s.read(e, key))
            if not ok or data is None:
                continue
            entry = self.decode(key, data)
            if entry is None or self.expired(entry, now):
                self.attempt(store, lambda s, e: s.delete(e, key))
                continue
            return index, entry, data
        return None

    def promote(self, key: Key, index: int, entry: Entry, data: bytes, now: float, read_at: float) -> None:
        """Copy the bytes (same expiry) into every store above `index` that lacks the key, and memory."""
        source = self.stores[index]
        copied = []
        for store in self.stores[:index]:
            ok, done = self.attempt(store, lambda s, e: s.write(e, key, data, self.expiry_arg(s, entry, now), True))
            if ok and done:
                copied.append(store)
        if copied:  # another process may have removed or replaced the source meanwhile: then undo
            ok, again = self.attempt(source, lambda s, e: s.read(e, key))
            if not ok or again != data:
                for store in copied:
                    self.attempt(store, lambda s, e: self.delete_if_same(s, e, key, data))
                return
        self.memory.put(key, entry, read_at)  # a slow promotion must not make an old read look fresh

    @staticmethod
    def delete_if_same(store: Store, epoch: str, key: Key, data: bytes) -> None:
        if store.read(epoch, key) == data:
            store.delete(epoch, key)

    @staticmethod
    def expiry_arg(store: Store, entry: Entry, now: float) -> float:
        """Redis takes a remaining lifetime (a space hint only); the other stores the absolute expiry."""
        return entry.expires - now if isinstance(store, RedisStore) else entry.expires

    def lookup(self, key: Key) -> tuple[str, dict] | None:
        """(tier that served, metadata) or None. Memory entries older than REFRESH are re-checked."""
        now = self.clock()
        remembered = self.memory.get(key)
        if remembered is not None and self.expired(remembered.entry, now):
            self.memory.drop(key)
            remembered = None
        if remembered is not None and time.monotonic() - remembered.checked < REFRESH:
            return "memory", json.loads(remembered.entry.metadata_json)
        read_at = time.monotonic()
        found = self.find(key, now)
        if remembered is not None:
            if found is not None and found[1].stamp == remembered.entry.stamp:
                remembered.checked = read_at
                return "memory", json.loads(remembered.entry.metadata_json)
            self.memory.drop(key)
        if found is None:
            return None
        index, entry, data = found
        self.promote(key, index, entry, data, now, read_at)
        return self.stores[index].name, json.loads(entry.metadata_json)

    # --- the contract ---------------------------------------------------------------------------

    def get(self, file_path: str, tier: str = "premium") -> dict | None:
        key = self.key(file_path, tier)
        with self.lock:
            self.stats["total_requests"] += 1
            found = None
            if key is not None:
                self.refresh()
                found = self.lookup(key)
            if found is None:
                self.stats["misses"] += 1
                return None
            self.stats["hits"] += 1
            self.stats[f"{found[0]}_hits"] += 1
            return found[1]

    def put(self, file_path: str, metadata: dict, tier: str = "premium", extraction_time_ms: float = 0) -> bool:
        if not codec.is_json_compatible(metadata):
            return False
        key = self.key(file_path, tier)
        if key is None:
            return False
        metadata_json = json.dumps(metadata)  # a copy: what the caller does to its dict later never matters
        with self.lock:
            self.refresh(force=True)  # the current epochs: a write under a replaced one would be lost
            now = self.clock()
            entry = Entry(metadata_json, now + self.env.ttl_seconds, uuid.uuid4().hex)
            data = codec.encode(key, entry, self.env.compression_level)
            self.memory.put(key, entry)
            for store in reversed(self.stores):  # most durable first, like removals
                self.change(store, lambda s, e: s.write(e, key, data, self.expiry_arg(s, entry, now)))
            if self.durable:  # memory holds it; every store either holds it or has a fresh epoch
                self.stats["writes"] += 1
            return self.durable

    def invalidate(self, file_path: str, tier: str | None = None) -> bool:
        content = codec.content_digest(file_path)
        if content is None:
            return False  # no content, nothing to name: either answer is honest
        with self.lock:
            self.refresh(force=True)  # the current epochs: a removal under a replaced one removes nothing
            if tier is None:
                self.memory.drop_content(content)
            else:
                self.memory.drop(Key(content, codec.tier_digest(tier)))
            for store in reversed(self.stores):  # most durable first: a promotion racing us is undone
                if tier is None:
                    self.change(store, lambda s, e: s.delete_content(e, content))
                else:
                    self.change(store, lambda s, e: s.delete(e, Key(content, codec.tier_digest(tier))))
            if self.durable:
                self.stats["invalidations"] += 1
            return self.durable

    def clear_all(self) -> None:
        with self.lock:
            self.refresh(force=True)
            self.memory.items.clear()
            for store in self.stores:
                self.state.epochs[store.name] = new_epoch(self.state.epoch(store.name))
            self.redis_known = False
            self.persist()
            self.open_until.clear()  # every store is tried: whatever can still be deleted is deleted
            self.sweep()

    def cleanup(self) -> None:
        with self.lock:
            self.refresh()
            now = self.clock()
            for key in [k for k, v in self.memory.items.items() if self.expired(v.entry, now)]:
                self.memory.drop(key)
            self.sweep()

    def sweep(self) -> None:
        now = self.clock()
        for store in self.stores:
            self.attempt(store, lambda s, e: s.cleanup(e, now))

    def get_stats(self) -> dict[str, int]:
        with self.lock:
            return {**self.stats, "evictions": self.memory.evictions}

    def warm_cache(
        self, paths: Iterable[str], extract: Callable[[str, str], dict], tier: str = "premium", max_workers: int = 4
    ) -> dict[str, bool]:
        def warm(path: str) -> bool:
            key = self.key(path, tier)
            if key is None:
                return False
            with self.lock:
                self.refresh()
                if self.lookup(key) is not None:  # cached: not extracted again, not a caller request
                    return True
            try:
                metadata = extract(path, tier)
            except Exception as exc:  # one failure never stops the rest
                log.warning("warm_cache: extracting %r failed: %s", path, exc)
                return False
            return self.put(path, metadata, tier)

        paths = list(paths)
        with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="independent-warm") as pool:
            return dict(zip(paths, pool.map(warm, paths), strict=True))

    def shutdown(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            for store in self.stores:
                try:
                    store.close()
                except BACKEND_ERRORS as exc:
                    log.warning("closing %s: %s", store.name, exc)

    @staticmethod
    def key(file_path: str, tier: str) -> Key | None:
        content = codec.content_digest(file_path)
        return None if content is None else Key(content, codec.tier_digest(tier))
