"""Keys of big files: what the first get of a big file costs (a content-keyed cache must read every
byte of it: P6 forbids keys that skip any part) next to just reading it, and what a repeated get on an
unchanged big file costs next to a small one (a stat memo should make the size irrelevant once the
file is out of the racy window). Public API only: each first get is on a fresh memory-only instance."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from tiercheck.reference import CacheConfig, MetadataCache

from . import timing
from .paths import TIER, racy_window, settle


def read_bandwidth(path: str, reps: int) -> list[float]:
    """Seconds to read the whole file (page cache warm), 1 MiB readinto at a time."""
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        with open(path, "rb", buffering=0) as f:
            while f.readinto(view):
                pass
        out.append(time.perf_counter() - t0)
    return out


def first_get_times(path: str, warm: str, workdir: Path, reps: int) -> list[float]:
    """Seconds of the first get (a miss) of the file on a fresh memory-only instance, which has no memo
    of it: the cost of its key. The instance is built and has served a get of another file, untimed."""
    out = []
    for _ in range(reps):
        cache_dir = tempfile.mkdtemp(prefix="cache-key-", dir=workdir)
        cache = MetadataCache(CacheConfig(cache_dir=cache_dir, database_url=None, enable_disk=False))
        try:
            cache.get(warm, TIER)
            t0 = time.perf_counter()
            cache.get(path, TIER)
            out.append(time.perf_counter() - t0)
        finally:
            cache.shutdown()
            shutil.rmtree(cache_dir, ignore_errors=True)
    return out


def bandwidth(big: str, small: str, workdir: Path, reps: int) -> dict[str, float]:
    size = Path(big).stat().st_size
    read_bandwidth(big, 1)  # make sure the page cache holds it
    read_s = float(np.median(read_bandwidth(big, reps)))
    hash_s = float(np.median(first_get_times(big, small, workdir, reps)))
    return {
        "size": size,
        "read_s": read_s,
        "hash_s": hash_s,
        "read_gbps": size / read_s / 1e9,
        "hash_gbps": size / hash_s / 1e9,
    }


def repeated_get(big: str, small: str, metadata: dict, workdir: Path, n: int) -> dict[str, np.ndarray]:
    """Memory hits on an unchanged big file and on a small one, interleaved, same cache."""
    cache_dir = tempfile.mkdtemp(prefix="cache-big-", dir=workdir)
    cfg = CacheConfig(cache_dir=cache_dir, database_url=None, enable_disk=False)
    cache = MetadataCache(cfg)
    try:
        for path in (big, small):
            cache.put(path, metadata, TIER)
        settle(cache, [big, small], racy_window(cfg))
        return {
            "get big (unchanged)": timing.run(lambda i: cache.get(big, TIER), n),
            "get 64 KiB (unchanged)": timing.run(lambda i: cache.get(small, TIER), n),
        }
    finally:
        cache.shutdown()
        shutil.rmtree(cache_dir, ignore_errors=True)
