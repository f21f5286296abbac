"""The reference cache, one operation path at a time, through its public API only.

A path is isolated the honest way: the cache is configured with only the tiers that path needs
(`redis_url`, `enable_disk`, `database_url`), and a lower-tier hit is forced by dropping the
entry from the memory tier (`cache.memory.remove`, untimed) before each timed get. The stats
counters must then move by exactly one per get for the tier we claim to measure; `check` says so.
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
from tiercheck.reference.keys import ContentHasher

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
}


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


def settle(cache: MetadataCache, files: list[str], racy_window: float) -> None:
    """Warm up until every file is out of the reference's racy window, so its stat memo is trusted
    (files in production are older than 2 s). Untimed gets, not a sleep: each one re-hashes."""
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
    cache = MetadataCache(config(svc, cache_dir, tiers, max_memory_entries=max(10_000, 2 * len(wl.files)), **changes))
    files, metadata, cold = wl.files, wl.metadata, wl.cold
    nf = len(files)
    try:
        for path, md in zip(files, metadata, strict=True):
            cache.put(path, md, TIER)
        settle(cache, files + cold, cache.config.racy_window_seconds)
        before = None
        if counter == "misses":
            op: Callable[[int], object] = lambda i: cache.get(cold[i % len(cold)], TIER)  # noqa: E731
        elif counter == "writes":
            op = lambda i: cache.put(files[i % nf], metadata[i % nf], TIER)  # noqa: E731
        else:
            op = lambda i: cache.get(files[i % nf], TIER)  # noqa: E731
            if counter != "memory_hits":
                hasher = ContentHasher()
                contents = [hasher.content_id(p) for p in files]
                before = lambda i: cache.memory.remove(contents[i % nf])  # noqa: E731
        yield Scenario(name, cache, op, before, counter)
    finally:
        with contextlib.suppress(Exception):
            cache.clear_all()  # frees the shared Redis / PostgreSQL
        cache.shutdown()
        shutil.rmtree(cache_dir, ignore_errors=True)


def counted(sc: Scenario, fn: Callable[[], object]) -> tuple[object, int]:
    """Run fn; return its result and how much the scenario's stats counter moved."""
    start = sc.cache.get_stats()[sc.counter]
    result = fn()
    return result, sc.cache.get_stats()[sc.counter] - start
