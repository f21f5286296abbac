"""Throughput under concurrency: threads on one cache (memory-hit path, where the GIL and the
cache's locks decide), and processes that share Redis, the disk tier and the SQLite database
(each its own memory tier), running the mixed op list."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

from tiercheck.reference import CacheConfig, MetadataCache

from .paths import TIER, Scenario, settle
from .workload import Workload


def threads(sc: Scenario, files: list[str], counts: tuple[int, ...], total_ops: int) -> dict[int, float]:
    """ops/s of memory hits with k threads sharing one cache; total_ops split between them."""
    out = {}
    nf = len(files)
    for k in counts:
        per = total_ops // k
        barrier = threading.Barrier(k + 1)

        def worker(offset: int, per: int = per, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            for i in range(per):
                sc.cache.get(files[(offset + i) % nf], TIER)

        pool = [threading.Thread(target=worker, args=(j * 997,)) for j in range(k)]
        for t in pool:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in pool:
            t.join()
        out[k] = per * k / (time.perf_counter() - t0)
    return out


def _child(cfg: CacheConfig, wl: Workload, ops: list[tuple[str, int]], barrier, results) -> None:
    cache = MetadataCache(cfg)
    settle(cache, wl.files, cfg.racy_window_seconds)  # also fills this process's memory tier
    base = cache.get_stats()
    barrier.wait()
    t0 = time.monotonic_ns()
    run_ops(cache, wl, ops)
    t1 = time.monotonic_ns()
    stats = cache.get_stats()
    cache.shutdown()
    results.put((len(ops), t0, t1, {k: stats[k] - base[k] for k in ("hits", "misses", "memory_hits", "redis_hits")}))


def run_op(cache: MetadataCache, wl: Workload, kind: str, i: int) -> None:
    """One operation of the mixed list: i >= 0 a workload file, i < 0 a never-cached one."""
    path = wl.cold[-1 - i] if i < 0 else wl.files[i]
    if kind == "get":
        cache.get(path, TIER)
    elif kind == "put":
        cache.put(path, wl.metadata[i], TIER)
    else:
        cache.invalidate(path)


def run_ops(cache: MetadataCache, wl: Workload, ops: list[tuple[str, int]]) -> None:
    for kind, i in ops:
        run_op(cache, wl, kind, i)


def processes(
    redis_url: str, wl: Workload, workdir: Path, counts: tuple[int, ...], ops_per_process: int
) -> dict[int, dict]:
    """Aggregate ops/s of k processes sharing Redis + disk + SQLite (one cache_dir, as the README says)."""
    ctx = mp.get_context("spawn")
    out = {}
    for k in counts:
        cache_dir = tempfile.mkdtemp(prefix=f"shared-{k}-", dir=workdir)
        cfg = CacheConfig(cache_dir=cache_dir, redis_url=redis_url, namespace=f"bench-mp-{uuid.uuid4().hex[:8]}")
        seed = MetadataCache(cfg)
        for path, md in zip(wl.files, wl.metadata, strict=True):
            seed.put(path, md, TIER)
        barrier, results = ctx.Barrier(k), ctx.Queue()
        slices = [wl.ops[j * ops_per_process : (j + 1) * ops_per_process] for j in range(k)]
        procs = [ctx.Process(target=_child, args=(cfg, wl, s, barrier, results)) for s in slices]
        for p in procs:
            p.start()
        got = [results.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        seed.clear_all()
        seed.shutdown()
        shutil.rmtree(cache_dir, ignore_errors=True)
        span = (max(g[2] for g in got) - min(g[1] for g in got)) / 1e9
        hits = sum(g[3]["hits"] for g in got)
        gets = hits + sum(g[3]["misses"] for g in got)
        out[k] = {
            "ops_per_s": sum(g[0] for g in got) / span,
            "hit_rate": hits / gets if gets else 0.0,
            "memory_share": sum(g[3]["memory_hits"] for g in got) / hits if hits else 0.0,
        }
    return out
