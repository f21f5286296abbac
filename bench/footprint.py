"""Memory cost of the memory tier, through the public API: a memory-only cache (no Redis, disk or
database) holding N entries — one small file under N tier names, so N distinct (content, tier) keys
and a stat memo of one file — measured as bytes per entry (tracemalloc) and as the peak RSS of the
process, each in a fresh child so nothing else is counted."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import shutil
import tempfile
import tracemalloc

import orjson

from tiercheck.reference import CacheConfig, MetadataCache

from .workload import make_metadata


def _status_bytes(field: str) -> int:
    """VmRSS / VmHWM of this process (ru_maxrss would carry the parent's peak over the spawn's exec)."""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _fill(n: int, trace: bool, workdir: str, results) -> None:
    rng = random.Random(11)
    cache_dir = tempfile.mkdtemp(prefix="cache-footprint-", dir=workdir)
    source = os.path.join(cache_dir, "source.jpg")
    with open(source, "wb") as f:
        f.write(rng.randbytes(4096))
    cache = MetadataCache(
        CacheConfig(
            cache_dir=os.path.join(cache_dir, "c"),
            database_url=None,
            enable_disk=False,
            max_memory_entries=n,
            max_memory_bytes=None,
        )
    )
    shapes = [make_metadata(rng, i) for i in range(min(n, 1000))]
    cache.put(source, shapes[0], "warm-up")  # opens whatever the cache opens lazily
    cache.invalidate(source)
    rss0 = _status_bytes("VmRSS")
    if trace:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0] if trace else 0
    raw = 0
    for i in range(n):
        md = shapes[i % len(shapes)]
        md["file"]["name"] = f"IMG_{i:07d}.jpg"  # every entry its own payload
        raw += len(orjson.dumps(md))
        cache.put(source, md, f"t{i}")
    traced = tracemalloc.get_traced_memory()[0] - base if trace else 0
    rss = _status_bytes("VmHWM")
    sample = range(max(0, n - 100), n)  # are the entries really held? a few gets, after the measurement
    before = cache.get_stats()["memory_hits"]
    for i in sample:
        cache.get(source, f"t{i}")
    held = (cache.get_stats()["memory_hits"] - before, len(sample))
    cache.shutdown()
    shutil.rmtree(cache_dir, ignore_errors=True)
    results.put(
        {
            "n": n,
            "bytes_per_entry": traced / n,
            "payload_per_entry": raw / n,
            "rss_before": rss0,
            "peak_rss": rss,
            "held": held,
        }
    )


def measure(n: int, workdir: str) -> dict:
    """tracemalloc bytes/entry (traced child) and peak RSS (untraced child: tracing inflates it)."""
    ctx = mp.get_context("spawn")
    out: dict = {}
    for trace in (True, False):
        q = ctx.Queue()
        p = ctx.Process(target=_fill, args=(n, trace, workdir, q))
        p.start()
        got = q.get(timeout=900)
        p.join()
        if trace:
            out.update(
                bytes_per_entry=got["bytes_per_entry"], payload_per_entry=got["payload_per_entry"], held=got["held"]
            )
        else:
            out.update(n=n, rss_before=got["rss_before"], peak_rss=got["peak_rss"])
    return out
