"""The memory tier: true LRU by get and put, bounded by entries and bytes, expiry honoured."""

from __future__ import annotations

from tiercheck.reference.codec import Payload
from tiercheck.reference.keys import CacheKey
from tiercheck.reference.memory_tier import MemoryTier


def key(i: int, variant: str = "v") -> CacheKey:
    return CacheKey(f"{i:064x}", variant)


P = Payload(b'{"a":1}', 0)


def test_lru_by_get_and_put():
    m = MemoryTier(max_entries=3)
    for i in range(3):
        m.put(key(i), 100.0, P)
    assert m.get(key(0), 0.0) is not None  # 0 is now most recent
    assert m.put(key(3), 100.0, P) == 1  # evicts 1, the least recently used
    assert [k for k in (key(0), key(1), key(2), key(3)) if m.peek(k, 0.0)] == [key(0), key(2), key(3)]
    m.put(key(2), 100.0, P)  # re-put refreshes 2
    m.put(key(4), 100.0, P)
    assert not m.peek(key(0), 0.0) and m.peek(key(2), 0.0)


def test_byte_bound():
    m = MemoryTier(max_entries=100, max_bytes=20)
    assert m.put(key(1), 9.0, P) == 0
    assert m.put(key(2), 9.0, P) == 0
    assert m.put(key(3), 9.0, P) == 1
    assert m.usage()["bytes"] <= 20
    assert m.put(key(4), 9.0, Payload(b"x" * 21, 0)) == 0 and not m.peek(key(4), 0.0)


def test_expiry_is_exclusive_at_the_boundary():
    m = MemoryTier(10)
    m.put(key(1), 50.0, P)
    assert m.get(key(1), 49.999) is not None
    assert m.get(key(1), 50.0) is None and m.usage()["entries"] == 0


def test_remove_by_content_or_variant():
    m = MemoryTier(10)
    m.put(key(1, "a"), 9.0, P)
    m.put(key(1, "b"), 9.0, P)
    m.put(key(2, "a"), 9.0, P)
    m.remove(key(1).content, "a")
    assert not m.peek(key(1, "a"), 0) and m.peek(key(1, "b"), 0)
    m.remove(key(1).content)
    assert not m.peek(key(1, "b"), 0) and m.peek(key(2, "a"), 0)


def test_resize_evicts_down_to_the_new_bound():
    m = MemoryTier(10)
    for i in range(10):
        m.put(key(i), 9.0, P)
    assert m.resize(4, None) == 6 and m.usage()["entries"] == 4
    assert m.peek(key(9), 0) and not m.peek(key(5), 0)


def test_purge_expired():
    m = MemoryTier(10)
    m.put(key(1), 5.0, P)
    m.put(key(2), 50.0, P)
    assert m.purge_expired(10.0) == 1 and m.keys() == [key(2)]


def test_purge_is_exclusive_at_the_boundary_too():
    m = MemoryTier(10)
    m.put(key(1), 5.0, P)
    assert m.purge_expired(4.999) == 0
    assert m.purge_expired(5.0) == 1 and m.keys() == []


def test_bytes_are_accounted_exactly_through_every_change():
    """Mutation testing found the byte count unchecked: every path that adds or drops an entry must keep it exact."""
    m = MemoryTier(max_entries=3)
    sizes = {i: Payload(b"x" * (10 * (i + 1)), 0) for i in range(5)}
    for i in range(3):
        m.put(key(i), 9.0, sizes[i])
    assert m.usage()["bytes"] == 10 + 20 + 30
    m.put(key(1), 9.0, sizes[4])  # replace: old size out, new in
    assert m.usage()["bytes"] == 10 + 50 + 30
    m.put(key(3), 9.0, sizes[3])  # evicts key 0 (LRU)
    assert m.usage()["bytes"] == 50 + 30 + 40
    m.remove(key(2).content)
    assert m.usage()["bytes"] == 50 + 40
    m.get(key(1), 9.0)  # expired at the boundary: dropped on read
    assert m.usage()["bytes"] == 40
    m.clear()
    assert m.usage() == {"entries": 0, "bytes": 0, "max_entries": 3, "usage_percent": 0.0}


def test_usage_reports_the_bounds():
    m = MemoryTier(max_entries=8)
    for i in range(2):
        m.put(key(i), 9.0, P)
    assert m.usage() == {"entries": 2, "bytes": 2 * len(P.data), "max_entries": 8, "usage_percent": 25.0}


def test_usage_percent_is_rounded_to_two_places():
    m = MemoryTier(max_entries=3)
    m.put(key(1), 9.0, P)
    assert m.usage()["usage_percent"] == 33.33
    assert MemoryTier(0).usage()["usage_percent"] == 0.0  # a disabled tier reports 0, not a ZeroDivisionError


def test_peek_and_byte_bound_boundaries():
    m = MemoryTier(max_entries=10, max_bytes=len(P.data))
    assert m.put(key(1), 5.0, P) == 0 and m.peek(key(1), 4.999)  # exactly max_bytes: kept
    assert not m.peek(key(1), 5.0)  # dead at exactly expires_at


def test_lock_free_hits_never_break_an_iteration_under_the_lock():
    """A hit moves its entry to the LRU end without the tier's lock. Anything that walks the entries under the
    lock (purge_expired, a clear older than a version, eviction) must not see "OrderedDict mutated during
    iteration" when such a hit lands between two of its steps: with a switch interval of a microsecond, the
    GIL changes hands many times inside one walk of 20,000 entries — even inside a C-level copy, when a
    garbage collection there runs Python code (a finalizer; here a gc callback)."""
    import gc
    import sys
    import threading

    tier = MemoryTier(max_entries=30_000)
    for i in range(20_000):
        tier.put(CacheKey(f"{i:064x}", "v"), 100.0, Payload(b"{}", 0), version=i + 1)
    hot = [CacheKey(f"{i:064x}", "v") for i in range(0, 20_000, 997)]
    stop, errors = threading.Event(), []

    def hits() -> None:
        while not stop.is_set():
            for key in hot:
                tier.get(key, 1.0)

    def in_collection(phase: str, info: dict) -> None:  # Python code inside any garbage collection, as a
        sum(range(50))  # finalizer runs: the GIL may change hands inside a C-level copy of the entries

    hitter = threading.Thread(target=hits)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    gc.callbacks.append(in_collection)
    thresholds = gc.get_threshold()
    gc.set_threshold(50)
    hitter.start()
    try:
        for round_ in range(20):
            try:
                tier.purge_expired(1.0)  # nothing expired: a full walk
                tier.clear(older_than=1)  # nothing that old: a full walk
                tier.resize(30_000 - round_, None)
            except RuntimeError as exc:
                errors.append(exc)
    finally:
        stop.set()
        hitter.join()
        sys.setswitchinterval(interval)
        gc.callbacks.remove(in_collection)
        gc.set_threshold(*thresholds)
    assert not errors, errors[:1]
