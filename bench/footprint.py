"""Memory cost of the memory tier: bytes per entry (tracemalloc) and the peak RSS of a process
holding N entries, each measured in a fresh child process so nothing else is counted."""

from __future__ import annotations

import multiprocessing as mp
import random
import tracemalloc

import blake3

from tiercheck.reference.codec import Payload, dump_metadata
from tiercheck.reference.keys import CacheKey
from tiercheck.reference.memory_tier import MemoryTier

from .workload import make_metadata


def _status_bytes(field: str) -> int:
    """VmRSS / VmHWM of this process (ru_maxrss would carry the parent's peak over the spawn's exec)."""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _fill(n: int, trace: bool, trim: bool, results) -> None:
    rng = random.Random(11)
    tier = MemoryTier(max_entries=n, max_bytes=None)
    rss0 = _status_bytes("VmRSS")
    if trace:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0] if trace else 0
    raw = 0
    shapes = [make_metadata(rng, i) for i in range(min(n, 1000))]
    for i in range(n):
        md = shapes[i % len(shapes)]
        md["file"]["name"] = f"IMG_{i:07d}.jpg"  # every entry its own payload bytes
        payload = dump_metadata(md)  # only the tier keeps a reference: to these bytes
        if trim:  # what a right-sized copy would keep (orjson over-allocates the bytes it returns)
            payload = Payload(memoryview(payload.data).tobytes(), payload.flags)
        raw += len(payload.data)
        h = blake3.blake3(i.to_bytes(8, "big")).hexdigest()
        tier.put(CacheKey(h, h[:32]), 1e12, payload)
    traced = tracemalloc.get_traced_memory()[0] - base if trace else 0
    rss = _status_bytes("VmHWM")
    results.put(
        {"n": n, "bytes_per_entry": traced / n, "payload_per_entry": raw / n, "rss_before": rss0, "peak_rss": rss}
    )


def measure(n: int) -> dict:
    """tracemalloc bytes/entry (traced child), the same with right-sized payload bytes, and peak RSS
    (untraced child: tracing inflates it)."""
    ctx = mp.get_context("spawn")
    out = {}
    for trace, trim in ((True, False), (True, True), (False, False)):
        q = ctx.Queue()
        p = ctx.Process(target=_fill, args=(n, trace, trim, q))
        p.start()
        got = q.get(timeout=600)
        p.join()
        if trim:
            out["bytes_per_entry_trimmed"] = got["bytes_per_entry"]
        elif trace:
            out.update(bytes_per_entry=got["bytes_per_entry"], payload_per_entry=got["payload_per_entry"])
        else:
            out.update(n=n, rss_before=got["rss_before"], peak_rss=got["peak_rss"])
    return out
