"""Throughput under concurrency: threads on one cache (memory-hit path, where the GIL and the
cache's locks decide) next to cachetools behind a lock, and processes that share Redis, the disk
tier and the SQLite database (each its own memory tier), running the mixed op list while a pair of
instances in the parent measures the E6 staleness under that load."""

from __future__ import annotations

import multiprocessing as mp
import queue
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tiercheck.reference import CacheConfig, MetadataCache

from . import ceiling, staleness
from .paths import TIER, racy_window, settle
from .services import Services
from .workload import Workload


def throughput(op: Callable[[int], object], k: int, seconds: float) -> float:
    """ops/s of op(i) with k threads calling it at once for about `seconds` (the main thread waits
    out the measuring period, then stops them; each thread checks the stop flag every 64 ops)."""
    stop = threading.Event()
    done = [0] * k
    barrier = threading.Barrier(k + 1)

    def worker(j: int) -> None:
        barrier.wait()
        i, count = j * 997, 0
        while not stop.is_set():
            for _ in range(64):
                op(i)
                i += 1
            count += 64
        done[j] = count

    pool = [threading.Thread(target=worker, args=(j,)) for j in range(k)]
    for t in pool:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    stop.wait(seconds)  # the measuring period
    stop.set()
    for t in pool:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


def threads(
    reference: Callable[[int], object],
    anchor: Callable[[int], object],
    counts: tuple[int, ...],
    seconds: float,
    rounds: int,
) -> tuple[dict[int, float], dict[int, float]]:
    """Median ops/s per thread count over `rounds` rounds; within a round the reference at every count and
    the anchor at the fewest and the most threads run back to back, so load from elsewhere hits both alike."""
    ref: dict[int, list[float]] = {k: [] for k in counts}
    anc: dict[int, list[float]] = {k: [] for k in (counts[0], counts[-1])}
    for _ in range(rounds):
        for k in counts:
            ref[k].append(throughput(reference, k, seconds))
            if k in anc:
                anc[k].append(throughput(anchor, k, seconds))
    return {k: statistics.median(v) for k, v in ref.items()}, {k: statistics.median(v) for k, v in anc.items()}


def _child(cfg: CacheConfig, wl: Workload, ops: list[tuple[str, int]], barrier, results) -> None:
    cache = MetadataCache(cfg)
    settle(cache, wl.files, racy_window(cfg))  # also fills this process's memory tier
    base = cache.get_stats()
    barrier.wait(timeout=900)
    log: ceiling.Log = []
    clock = time.monotonic_ns
    t0 = clock()
    for kind, i in ops:  # each op logged: a get at its start, a change when it returned (bench/ceiling.py)
        started = clock()
        run_op(cache, wl, kind, i)
        log.append((started if kind == "get" else clock(), kind, i))
    t1 = clock()
    stats = cache.get_stats()
    cache.shutdown()
    results.put((len(ops), t0, t1, {k: stats[k] - base[k] for k in ("hits", "misses", "memory_hits")}, log))


def run_op(cache: MetadataCache, wl: Workload, kind: str, i: int) -> None:
    """One operation of the mixed list: i >= 0 a workload file, i < 0 a never-cached one."""
    path = wl.cold[-1 - i] if i < 0 else wl.files[i]
    if kind == "get":
        cache.get(path, TIER)
    elif kind == "put":
        cache.put(path, wl.metadata[i], TIER)
    else:
        cache.invalidate(path)


def processes(
    svc: Services,
    wl: Workload,
    workdir: Path,
    k: int,
    ops_per_process: int,
    probe: list[str],
    timeout: float = 900.0,
) -> dict:
    """k processes sharing Redis + disk + SQLite (one cache_dir, as the README says), each running its own
    slice of the mixed list; meanwhile the parent runs staleness trials on a pair of instances over the
    same servers (own namespace and cache_dir, so the probe's invalidations touch no worker's entries)."""
    ctx = mp.get_context("spawn")
    cache_dir = tempfile.mkdtemp(prefix=f"shared-{k}-", dir=workdir)
    cfg = CacheConfig(cache_dir=cache_dir, redis_url=svc.redis_url, namespace=f"bench-mp-{uuid.uuid4().hex[:8]}")
    seed = MetadataCache(cfg)
    for path, md in zip(wl.files, wl.metadata, strict=True):
        seed.put(path, md, TIER)
    seed.shutdown()
    barrier, results = ctx.Barrier(k + 1), ctx.Queue()
    slices = [wl.ops[j * ops_per_process : (j + 1) * ops_per_process] for j in range(k)]
    procs = [ctx.Process(target=_child, args=(cfg, wl, s, barrier, results)) for s in slices]
    for p in procs:
        p.start()
    got: list[tuple] = []
    started = time.monotonic()

    def finished() -> bool:
        while True:
            try:
                got.append(results.get_nowait())
            except queue.Empty:
                break
        failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
        if failed or time.monotonic() - started > timeout:
            raise RuntimeError(f"mixed-run workers failed (exit codes {failed}) or ran past {timeout:.0f} s")
        return len(got) == k

    with staleness.pair(svc, workdir, staleness.SETUPS[0]) as (a, b):
        barrier.wait(timeout=timeout)
        stale = staleness.run(f"{staleness.SETUPS[0]}, {k} busy", a, b, probe, wl.metadata, until=finished)
    for p in procs:
        p.join()
    cleaner = MetadataCache(cfg)
    cleaner.clear_all()
    cleaner.shutdown()
    shutil.rmtree(cache_dir, ignore_errors=True)
    span = (max(g[2] for g in got) - min(g[1] for g in got)) / 1e9
    hits = sum(g[3]["hits"] for g in got)
    gets = hits + sum(g[3]["misses"] for g in got)
    servable, logged_gets = ceiling.servable_gets([g[4] for g in got], [g[1] for g in got])
    return {
        "ops_per_s": sum(g[0] for g in got) / span,
        "hit_rate": hits / gets if gets else 0.0,
        "memory_share": sum(g[3]["memory_hits"] for g in got) / gets if gets else 0.0,
        "memory_ceiling": servable / logged_gets if logged_gets else float("nan"),
        "staleness": stale,
    }
