"""Thread-safe counters. A get counts one outcome (the tier that served it, or a miss) under one lock, and
total_requests and hits are sums of those outcomes, so the invariants (hits + misses = total_requests,
hits = sum of tier hits) hold at every instant, not only at rest, at one increment per get."""

from __future__ import annotations

import threading

TIER_HIT_KEYS = {"memory": "memory_hits", "redis": "redis_hits", "disk": "disk_hits", "database": "database_hits"}
_OUTCOMES: dict[str | None, str] = {None: "misses"}
_OUTCOMES.update(TIER_HIT_KEYS)
_OTHER_COUNTERS = ("writes", "invalidations", "bytes_raw", "bytes_stored", "corrupt_entries")


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # total_requests and hits are kept only as names (a subclass may count them); snapshot() derives them
        self._c = dict.fromkeys(["total_requests", "hits", "misses", *TIER_HIT_KEYS.values(), *_OTHER_COUNTERS], 0)

    def record_get(self, served_by: str | None) -> None:
        name, lock = _OUTCOMES[served_by], self._lock
        lock.acquire()  # not `with`: its __enter__/__exit__ calls cost more than the increment (every get)
        try:
            self._c[name] += 1
        finally:
            lock.release()

    def add(self, name: str, amount: int = 1) -> None:
        if amount:
            lock = self._lock
            lock.acquire()  # as in record_get: every promotion that evicts passes here
            try:
                self._c[name] += amount
            finally:
                lock.release()

    def snapshot(self) -> dict[str, float | int]:
        with self._lock:
            c: dict[str, float | int] = dict(self._c)
        c["hits"] = sum(c[name] for name in TIER_HIT_KEYS.values())
        c["total_requests"] = c["hits"] + c["misses"]
        c["hit_rate"] = round(c["hits"] / c["total_requests"], 6) if c["total_requests"] else 0.0
        c["compression_ratio"] = round(c["bytes_stored"] / c["bytes_raw"], 6) if c["bytes_raw"] else 1.0
        c["compression_savings_bytes"] = c["bytes_raw"] - c["bytes_stored"]
        return c
