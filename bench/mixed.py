"""The classic mixed run: the whole op list (gets:puts:invalidates = 100:10:1, ~1% misses) on the
full stack (memory, Redis, disk, SQLite), each op timed and labelled by what served it (the
stats counter that moved, read untimed after the op)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from tiercheck.reference import MetadataCache

from .paths import FULL, TIER, config, racy_window, settle
from .scaling import run_op
from .services import Services
from .workload import Workload

_SERVED = {
    "memory_hits": "get: memory",
    "redis_hits": "get: redis",
    "disk_hits": "get: disk",
    "database_hits": "get: database",
    "misses": "get: miss",
}


def run(svc: Services, wl: Workload, workdir: Path) -> tuple[dict[str, np.ndarray], dict]:
    cache_dir = tempfile.mkdtemp(prefix="cache-mixed-", dir=workdir)
    cfg = config(svc, cache_dir, FULL)
    cache = MetadataCache(cfg)
    samples: dict[str, list[int]] = {}
    try:
        for path, md in zip(wl.files, wl.metadata, strict=True):
            cache.put(path, md, TIER)
        settle(cache, wl.files + wl.cold, racy_window(cfg))
        clock = time.perf_counter_ns
        before = cache.get_stats()
        wall0 = time.perf_counter()
        busy = 0
        for kind, i in wl.ops:
            t0 = clock()
            run_op(cache, wl, kind, i)
            dt = clock() - t0
            busy += dt
            if kind == "get":
                stats = cache.get_stats()
                label = next(_SERVED[k] for k in _SERVED if stats[k] != before[k])
                before = stats
            else:
                label = "put" if kind == "put" else "invalidate"
            samples.setdefault(label, []).append(dt)
        wall = time.perf_counter() - wall0
        stats = cache.get_stats()
    finally:
        cache.shutdown()
        shutil.rmtree(cache_dir, ignore_errors=True)
    gets = sum(len(v) for k, v in samples.items() if k.startswith("get"))
    info = {
        "ops": len(wl.ops),
        "busy_s": busy / 1e9,
        "wall_s": wall,
        "ops_per_s": len(wl.ops) / (busy / 1e9),
        "miss_rate": len(samples.get("get: miss", [])) / gets,
        "memory_share": len(samples.get("get: memory", [])) / gets,
        "evictions": stats["evictions"],
    }
    return {k: np.array(v, dtype=np.int64) for k, v in samples.items()}, info
