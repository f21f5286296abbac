"""Numbers behind the tuning guide: what each zstd level costs and saves on the workload's metadata
(zstandard and orjson themselves, the libraries a cache's codec sits on: the floor of any codec, not
the reference's), and what the entries of a disk-only cache really occupy under its cache_dir."""

from __future__ import annotations

import os

import numpy as np
import orjson
import zstandard

from . import timing

LEVELS = (0, 1, 3, 6, 9, 19)


def compression(metadata: list[dict], n: int) -> dict[int, dict[str, float]]:
    """Per level: orjson.dumps + zstd compress µs, zstd decompress + orjson.loads µs, compressed/raw."""
    raw = [orjson.dumps(md) for md in metadata]
    total = sum(len(r) for r in raw)
    m = len(raw)
    dctx = zstandard.ZstdDecompressor()
    out = {}
    for level in LEVELS:
        if level == 0:
            enc = timing.run(lambda i: orjson.dumps(metadata[i % m]), n)
            dec = timing.run(lambda i: orjson.loads(raw[i % m]), n)
            blobs = raw
        else:
            cctx = zstandard.ZstdCompressor(level=level)
            blobs = [cctx.compress(r) for r in raw]
            enc = timing.run(lambda i, cctx=cctx: cctx.compress(orjson.dumps(metadata[i % m])), n)
            dec = timing.run(lambda i, blobs=blobs: orjson.loads(dctx.decompress(blobs[i % m])), n)
        out[level] = {
            "encode_us": timing.median_us(enc),
            "decode_us": timing.median_us(dec),
            "stored_ratio": sum(len(b) for b in blobs) / total,
            "entry_bytes": float(np.mean([len(b) for b in blobs])),
        }
    return out


def disk_usage(cache_dir: str, entries: int) -> dict[str, float]:
    """Allocated bytes (st_blocks) of everything under the cache_dir of a cache whose only persistent
    tier is disk, per entry it holds; the implementation's layout is its own, so all of it counts."""
    allocated, files = 0, 0
    for dirpath, _dirs, names in os.walk(cache_dir):
        allocated += os.lstat(dirpath).st_blocks * 512
        for name in names:
            allocated += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            files += 1
    return {"entries": entries, "files": files, "allocated_per_entry": allocated / max(entries, 1)}
