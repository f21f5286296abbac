"""Deliberately broken variants of the reference cache: each carries ONE realistic bug.

Every module exposes `factory(env)` (the contract's factory) and swaps ONE part of the reference
through its seams — `MetadataCache(config, memory=, codec=, hasher=, stores=)`, a store tier through
`swap_store(name, cls)` — or, where the bug lives in the orchestration itself, subclasses
`reference.cache.MetadataCache`. Nothing is patched globally, so any number of variants can be
imported in one process. `tests/test_variants_caught.py`
runs `tiercheck verify --only <ID>` on each and requires the property to FAIL.

module                      bug                                                            caught by
--------------------------  -------------------------------------------------------------  ---------
sampled_hash                key from size + first/middle/last 4 KiB of the file            P6
mtime_memo                  stat memo on (size, mtime) with 1 s tolerance skips re-hashing  P3, P1
case_folded_tier            tier lower-cased in the key ('Premium' == 'premium')           P6
decode_errors_as_empty      a corrupt entry is served as {} instead of a miss              E2
fifo_memory                 memory tier is FIFO: a get does not refresh the entry          P8
promotion_resets_expiry     a promoted entry gets a fresh TTL in memory                    P9
unlocked_stats              stats counters: unlocked read-modify-write, lost updates       P4, P10
errors_escape               tier errors reach the caller (no try/except around tier calls) P5
no_checksum                 entries decoded without verifying the checksum                 E2
invalidate_skips_redis      invalidate() never removes the Redis copy                      P3
clear_all_forgets_disk      clear_all() leaves the disk tier as it was                     P1
no_repair_journal           a removal a tier missed (outage) is forgotten: resurrection    E1
pickle_disk                 disk tier stores pickles and unpickles what it reads           E4
unbounded_decompression     disk tier zstd-decompresses with no bound on the output         E4
raw_tier_filenames          disk files named after the raw tier string (../ escapes)       E5
aliasing_memory             memory tier keeps and hands out the caller's dict object       P1
evictions_not_counted       memory-tier LRU evictions are not counted                      P8
expiry_off_by_one           memory tier serves at exactly put time + TTL (<= vs <)         P9
wall_clock_ttl              expiry follows time.time(), not the injected clock             P9
cleanup_memory_only         cleanup() sweeps the memory tier only                          P9
promotes_memory_only        a lower-tier hit is promoted into memory only, not Redis       P2
hit_credited_to_slowest     Redis and database hits are credited as disk hits              P2
invalidate_drops_all_tiers  invalidate(file, tier) removes every tier name                 P3
warm_reextracts             warm_cache extracts files that are already cached              E8
warm_unbounded_pool         warm_cache ignores max_workers (one thread per file)           E8
warm_counts_requests        warm_cache's look-ups are counted as caller gets               P10
legacy_stubs                the legacy module functions are stubs                          E9
shutdown_leaks_thread       a janitor thread survives shutdown()                           P12
method_outside_class        a method dedented out of its class, still taking self          P11
budget_on_cleanup_only      disk budget enforced by cleanup() only, not on put              E10
memory_first_put            a put is visible in memory before a store tier can refuse it   P4

`CAUGHT_BY` below is the same table as data: module -> the property IDs that must FAIL on it
(the first is the one designed to catch it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tiercheck.reference import legacy
from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.config import CacheConfig
from tiercheck.reference.store import default_stores

CAUGHT_BY: dict[str, tuple[str, ...]] = {
    "sampled_hash": ("P6",),
    "mtime_memo": ("P3", "P1"),
    "case_folded_tier": ("P6",),
    "decode_errors_as_empty": ("E2",),
    "fifo_memory": ("P8",),
    "promotion_resets_expiry": ("P9",),
    "unlocked_stats": ("P4", "P10"),
    "errors_escape": ("P5",),
    "no_checksum": ("E2",),
    "invalidate_skips_redis": ("P3",),
    "clear_all_forgets_disk": ("P1",),
    "no_repair_journal": ("E1",),
    "pickle_disk": ("E4",),
    "unbounded_decompression": ("E4",),
    "raw_tier_filenames": ("E5",),
    "aliasing_memory": ("P1",),
    "evictions_not_counted": ("P8",),
    "expiry_off_by_one": ("P9",),
    "wall_clock_ttl": ("P9",),
    "cleanup_memory_only": ("P9",),
    "promotes_memory_only": ("P2",),
    "hit_credited_to_slowest": ("P2",),
    "invalidate_drops_all_tiers": ("P3",),
    "warm_reextracts": ("E8",),
    "warm_unbounded_pool": ("E8",),
    "warm_counts_requests": ("P10",),
    "legacy_stubs": ("E9",),
    "shutdown_leaks_thread": ("P12",),
    "method_outside_class": ("P11",),
    "budget_on_cleanup_only": ("E10",),
    "memory_first_put": ("P4",),
}


def build(cls: type[MetadataCache], env: Any, config: CacheConfig | None = None, **parts: Any) -> MetadataCache:
    """What `reference.factory` does, for a subclass or with one part swapped (`memory=`, `codec=`,
    `hasher=`, `stores=`): configure from the contract env, expose the legacy API."""
    cache = cls(config if config is not None else CacheConfig.from_contract_env(env), **parts)
    cache.legacy_module = legacy
    return cache


def swap_store(name: str, cls: type) -> Callable[[CacheConfig], list[tuple[str, Any]]]:
    """A `stores=` factory: the default tiers, with the one called `name` made an instance of `cls`
    (a subclass of its class)."""

    def stores(config: CacheConfig) -> list[tuple[str, Any]]:
        built = default_stores(config)
        for tier_name, store in built:
            if tier_name == name and not isinstance(store, Exception):
                store.__class__ = cls
        return built

    return stores
