"""The reference cache, one operation path at a time, through its public API only
(`MetadataCache(CacheConfig(...))`, get/put/invalidate/get_stats), so it survives any rewrite of
the reference's internals.

A path is isolated the honest way: the cache is configured with only the tiers that path needs
(`redis_url`, `enable_disk`, `database_url`), and for a lower-tier hit its memory tier holds one
entry (`max_memory_entries=1`) while the gets cycle over thousands of files, so every get misses
memory and is served by the one tier below (its promotion into memory included, as in real use).
An invalidate is timed on an entry put back (untimed) just before it. The stats counter of each
path must move by exactly one per op; `counted` says how much it moved.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tiercheck.reference import CacheConfig, MetadataCache

from .services import Services
from .workload import Workload

TIER = "premium"
FULL = ("redis", "disk", "sqlite")

# name -> (tiers below memory, stats counter that must move once per op)
SCENARIOS: dict[str, tuple[tuple[str, ...], str]] = {
    "memory hit": (FULL, "memory_hits"),
    "redis hit": (("redis",), "redis_hits"),
    "disk hit": (("disk",), "disk_hits"),
    "sqlite hit": (("sqlite",), "database_hits"),
    "postgres hit": (("postgres",), "database_hits"),
    "miss": (FULL, "misses"),
    "put": (FULL, "writes"),
    "invalidate": (FULL, "invalidations"),
}
LOWER_TIER_HITS = ("redis_hits", "disk_hits", "database_hits")


def config(svc: Services, cache_dir: str, tiers: tuple[str, ...], **changes) -> CacheConfig:
    database = "sqlite" if "sqlite" in tiers else svc.postgres_url if "postgres" in tiers else None
    return CacheConfig(
        cache_dir=cache_dir,
        redis_url=svc.redis_url if "redis" in tiers else None,
        enable_disk="disk" in tiers,
        database_url=database,
        namespace=f"bench-{uuid.uuid4().hex[:8]}",
        **changes,
    )


@dataclass
class Scenario:
    name: str
    cache: MetadataCache
    op: Callable[[int], object]
    before: Callable[[int], object] | None
    counter: str
    cache_dir: str


def racy_window(cfg: CacheConfig) -> float:
    """Seconds within which a just-changed file is re-hashed on every get: a CacheConfig setting of the
    reference (git's racily-clean rule); 2 s if a future CacheConfig no longer has it."""
    return float(getattr(cfg, "racy_window_seconds", 2.0))


def settle(cache: MetadataCache, files: list[str], racy_window: float) -> None:
    """Warm up until every file is out of the cache's racy window, so its stat memo is trusted
    (files in production are older than that). Untimed gets, not a sleep: each one re-hashes."""
    newest = max(Path(p).stat().st_ctime for p in files)
    while True:
        for p in files:
            cache.get(p, TIER)
        if time.time() > newest + racy_window + 0.05:
            for p in files:  # one pass after the window: the memo is now trusted
                cache.get(p, TIER)
            return


@contextlib.contextmanager
def scenario(name: str, svc: Services, wl: Workload, workdir: Path, **changes) -> Iterator[Scenario]:
    tiers, counter = SCENARIOS[name.split(" (")[0]]
    cache_dir = tempfile.mkdtemp(prefix="cache-", dir=workdir)
    files, metadata, cold = wl.files, wl.metadata, wl.cold
    nf = len(files)
    memory_entries = 1 if counter in LOWER_TIER_HITS else max(10_000, 2 * nf)
    cfg = config(svc, cache_dir, tiers, max_memory_entries=memory_entries, **changes)
    cache = MetadataCache(cfg)
    try:
        for path, md in zip(files, metadata, strict=True):
            cache.put(path, md, TIER)
        settle(cache, files + cold, racy_window(cfg))
        before = None
        if counter == "misses":
            op: Callable[[int], object] = lambda i: cache.get(cold[i % len(cold)], TIER)  # noqa: E731
        elif counter == "writes":
            op = lambda i: cache.put(files[i % nf], metadata[i % nf], TIER)  # noqa: E731
        elif counter == "invalidations":
            op = lambda i: cache.invalidate(files[i % nf])  # noqa: E731
            before = lambda i: cache.put(files[i % nf], metadata[i % nf], TIER)  # noqa: E731
        else:
            op = lambda i: cache.get(files[i % nf], TIER)  # noqa: E731
        yield Scenario(name, cache, op, before, counter, cache_dir)
    finally:
        with contextlib.suppress(Exception):
            cache.clear_all()  # frees the shared Redis / PostgreSQL
        cache.shutdown()
        shutil.rmtree(cache_dir, ignore_errors=True)


def counted(sc: Scenario, fn: Callable[[], object]) -> tuple[object, int, dict[str, int]]:
    """Run fn; return its result, how much the scenario's stats counter moved, and the failures each tier
    reported meanwhile (a tier skipped after a timeout would make its path look faster than it is)."""
    before = sc.cache.get_stats()
    result = fn()
    after = sc.cache.get_stats()
    failed = {
        tier: health.get("total_failures", 0) - before.get("tier_health", {}).get(tier, {}).get("total_failures", 0)
        for tier, health in after.get("tier_health", {}).items()
    }
    return result, after[sc.counter] - before[sc.counter], {t: k for t, k in failed.items() if k}
