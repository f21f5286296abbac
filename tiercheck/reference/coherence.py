"""Per-key coherence of the memory tier with other instances sharing the backends.

With Redis, server-assisted client-side caching: one dedicated RESP3 connection runs
`CLIENT TRACKING ON BCAST PREFIX <ns>:e:` and a reader thread receives an invalidation message for
every change of a content hash, by any instance (and of the clear_all marker: it flushes the tier).
For each, the memory entries of that content are checked against the versions Redis now holds
(`RedisTier.fences`): an entry another instance replaced or removed is dropped; our own writes are
still current and stay. Slower reads in flight for that content are fenced (`MemoryTier.remove`
moves its token). The whole memory tier is flushed only on a clear_all or a FLUSHALL.

An entry is trusted while the tracking connection is alive (confirmed by a PING at least every
quarter window) and its data was read after the connection was established: what was read before,
or while tracking was down, may have missed a message, and is checked per key like below (rather
than flushing the whole tier when the connection is lost or comes back). Otherwise — no Redis, a server without
tracking (fakeredis), or tracking down — an entry older than the staleness window is checked
against the shared tier's version of that key (one small read) before it is served: per key,
never a flush. The fallback is counted and reported in get_stats()["coherence"].
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from .keys import CacheKey
from .memory_tier import Entry, MemoryTier

log = logging.getLogger("reference.coherence")

_monotonic = time.monotonic
_TRUST = 0.8  # an unconfirmed entry is checked after this share of the window: the check itself takes time


class Coherence:
    def __init__(
        self,
        memory: MemoryTier,
        window: float,
        shared: Any,  # the SharedTier memory is checked against (Redis, else the database), or None
        call: Callable[..., tuple[bool, Any]],
        redis_url: str | None = None,
        prefix: str = "",
        redis_tier: Any = None,
        on_reconnect: Callable[[], None] = lambda: None,
    ) -> None:
        self.memory = memory
        self.window = window
        self._shared = shared
        self._call = call
        self._url = redis_url
        self._prefix = prefix
        self._redis = redis_tier
        self._on_reconnect = on_reconnect
        self._live = False
        self._since = float("inf")  # when the current tracking connection was established
        self._alive_at = float("-inf")  # when it last answered
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: redis.Redis | None = None
        self.mode = "none" if shared is None else ("tracking" if redis_url else "polling")
        self.counts = {"notifications": 0, "validations": 0, "stale_dropped": 0, "flushes": 0, "fallback_reads": 0}
        self.fallback_reason: str | None = None if self.mode != "polling" else "no Redis: per-key version polling"

    def start(self) -> None:
        if self.mode == "tracking":
            self._thread = threading.Thread(target=self._run, name="tiercheck-tracking", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        client = self._client
        if client is not None:
            client.connection_pool.disconnect()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- the read path ----------------------------------------------------------------------

    def fresh(self, entry: Entry) -> bool:
        """Every memory hit asks: no call but the clock's."""
        now = _monotonic()
        window = self.window
        if self._live and entry.stamp >= self._since and now - self._alive_at < window / 2:
            return True
        return self._shared is None or now - entry.stamp < window * _TRUST

    def confirm(self, key: CacheKey, entry: Entry) -> bool:
        """An entry too old to trust blindly: serve it if the shared tier still holds its version."""
        self.counts["fallback_reads"] += 1
        ok, version = self._call(self._shared, "coherence", self._shared.version_of, key)
        if ok and version == entry.version:
            self.counts["validations"] += 1
            self.memory.confirm(key, entry.version)
            return True
        if ok and version is not None and version < entry.version:
            # newer than the shared tier: this process's put on its way there. Not served, but kept:
            # dropped, a get would promote the value the put replaces, served after the put completed
            return False
        self.counts["stale_dropped"] += ok
        self.memory.remove(key.content, key.variant)
        return False

    # --- the tracking connection -----------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            try:
                self._track()
                backoff = 0.05
            except redis.ResponseError as exc:  # the server has no RESP3 or no tracking: poll versions
                self.mode, self.fallback_reason = "polling", f"server refused tracking: {exc}"
                log.warning("redis: no client tracking (%s); memory entries are checked per key instead", exc)
                return
            except Exception as exc:  # lost (or closed under us by stop()): reconnect, never die
                if self._live or backoff == 0.05:
                    log.info("redis tracking connection lost: %s", exc)
            finally:
                self._live = False
            self._stop.wait(backoff)
            backoff = min(backoff * 2, max(self.window, 0.1))

    def _track(self) -> None:
        interval = max(self.window / 4, 0.01)
        assert self._url is not None  # only tracking mode runs this thread
        client = redis.Redis.from_url(self._url, protocol=3, socket_timeout=interval, socket_connect_timeout=interval)
        self._client = client
        conn = client.connection_pool.get_connection()
        try:
            conn._parser.set_invalidation_push_handler(lambda message: message)
            # also the clear_all marker: a clear removes only the keys Redis holds, and a memory entry
            # whose key Redis lacks (lost, or its promotion failed) would never hear of it
            cleared = ("PREFIX", self._redis.cleared_key) if self._redis is not None else ()
            conn.send_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", self._prefix, *cleared)
            conn.read_response()
            self._on_reconnect()
            self._since = self._alive_at = time.monotonic()
            self._live = True
            while not self._stop.is_set():
                if conn.can_read(timeout=interval):
                    self._handle(conn.read_response(push_request=True))
                else:
                    conn.send_command("PING")
                    while (reply := conn.read_response(push_request=True)) not in (b"PONG", "PONG"):
                        self._handle(reply)
                self._alive_at = time.monotonic()
        finally:
            client.connection_pool.release(conn)
            client.close()

    def _handle(self, message: Any) -> None:
        if not isinstance(message, list) or len(message) != 2 or message[0] not in (b"invalidate", "invalidate"):
            return
        self.counts["notifications"] += 1
        if message[1] is None:  # FLUSHDB / FLUSHALL
            self.memory.clear()
            self.counts["flushes"] += 1
            return
        for name in message[1]:
            name = name.decode() if isinstance(name, bytes) else str(name)
            if self._redis is not None and name == self._redis.cleared_key:  # a clear_all: what it covers goes
                ok, cleared = self._call(self._redis, "coherence", self._redis.cleared_version)
                self.memory.clear(cleared + 1 if ok else None)
                self.counts["flushes"] += 1
                continue
            if not name.startswith(self._prefix):
                continue
            content = name[len(self._prefix) :]
            # Only the entries held now are checked: one admitted while Redis answers is this process's
            # own put (current: its tiers follow under the write lock; dropping it let a get promote the
            # value the put was replacing, and serve it after the put completed) or a read that began
            # after this fence, after the change this message reports.
            held = self.memory.fence(content)
            if not held:
                continue
            ok, fences = self._call(self._redis, "coherence", self._redis.fences, content, list(held))
            self.memory.remove(content, None, fences if ok else dict.fromkeys(held, 1 << 63))

    def snapshot(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "tracking_live": self._live,
            "fallback": self.fallback_reason,
            "staleness_seconds": self.window,
            **self.counts,
        }
