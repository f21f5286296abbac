"""Numbers behind the tuning guide: what each zstd level costs and saves on the workload's
metadata (through the reference's own Codec), and what an entry really occupies on disk next to
what the disk budget counts."""

from __future__ import annotations

import os

import numpy as np

from tiercheck.reference import MetadataCache
from tiercheck.reference.codec import Codec, dump_metadata

from . import timing

LEVELS = (0, 1, 3, 6, 9, 19)


def compression(metadata: list[dict], n: int) -> dict[int, dict[str, float]]:
    payloads = [dump_metadata(md) for md in metadata]
    raw = sum(len(p.data) for p in payloads)
    out = {}
    for level in LEVELS:
        codec = Codec(level, 64 << 20)
        blobs = [codec.encode(f"k{i}", p, 1e12) for i, p in enumerate(payloads)]
        m = len(payloads)
        enc = timing.run(lambda i, codec=codec: codec.encode(f"k{i % m}", payloads[i % m], 1e12), n)
        dec = timing.run(lambda i, codec=codec, blobs=blobs: codec.decode(f"k{i % m}", blobs[i % m]), n)
        out[level] = {
            "encode_us": timing.median_us(enc),
            "decode_us": timing.median_us(dec),
            "stored_ratio": sum(len(b) for b in blobs) / raw,
            "entry_bytes": float(np.mean([len(b) for b in blobs])),
        }
    return out


def disk_usage(cache: MetadataCache) -> dict[str, float]:
    """Allocated bytes (st_blocks) of the disk tier's files and directories vs the budget's count."""
    root = os.path.join(cache.config.cache_dir, "entries")
    allocated, files = 0, 0
    for dirpath, _dirs, names in os.walk(root):
        allocated += os.lstat(dirpath).st_blocks * 512
        for name in names:
            allocated += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            files += 1
    counted = cache.get_stats()["disk"]["bytes"]
    return {
        "entries": files,
        "counted_bytes": counted,
        "allocated_bytes": allocated,
        "allocated_per_entry": allocated / max(files, 1),
        "counted_per_entry": counted / max(files, 1),
    }
