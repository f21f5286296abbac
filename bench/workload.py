"""The data every measurement uses, generated once from a seed so the reference and the anchors
see exactly the same bytes: ~2 KiB metadata dicts shaped like real extraction output, 64 KiB
source files of incompressible content (like JPEGs), and the classic op mix
(gets:puts:invalidates = 100:10:1, ~1% of gets on files never cached)."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import orjson

SOURCE_BYTES = 64 * 1024
METADATA_BYTES = 2048
_MAKES = ["Canon", "Nikon", "Sony", "Fujifilm", "Apple", "Google", "Panasonic", "Leica"]
_WORDS = [
    "harbour",
    "sunset",
    "portrait",
    "family",
    "city",
    "night",
    "street",
    "mountain",
    "lake",
    "wedding",
    "concert",
    "market",
    "forest",
    "beach",
    "snow",
    "bridge",
    "cathedral",
    "museum",
    "garden",
    "train",
]


def make_metadata(rng: random.Random, i: int, target: int = METADATA_BYTES) -> dict:
    """One JSON-compatible dict of about `target` bytes (orjson), with EXIF/XMP/IPTC-like keys."""
    make = rng.choice(_MAKES)
    md = {
        "file": {
            "name": f"IMG_{i:06d}.jpg",
            "size_bytes": SOURCE_BYTES,
            "mime_type": "image/jpeg",
            "sha256": rng.randbytes(32).hex(),
            "modified": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:14:07Z",
        },
        "exif": {
            "Make": make,
            "Model": f"{make} X{rng.randint(10, 999)}",
            "LensModel": f"{rng.randint(14, 200)}mm F{rng.choice([1.4, 1.8, 2.8, 4.0])}",
            "ExposureTime": f"1/{rng.choice([30, 60, 125, 250, 500, 1000])}",
            "FNumber": rng.choice([1.4, 2.0, 2.8, 4.0, 5.6, 8.0]),
            "ISOSpeedRatings": rng.choice([100, 200, 400, 800, 1600, 3200]),
            "FocalLength": rng.randint(14, 200),
            "DateTimeOriginal": f"2024:{rng.randint(1, 12):02d}:{rng.randint(1, 28):02d} 10:21:33",
            "Orientation": rng.randint(1, 8),
            "Flash": rng.choice([0, 1, 16, 24]),
            "WhiteBalance": rng.choice(["Auto", "Manual"]),
            "ImageWidth": 6000,
            "ImageHeight": 4000,
            "GPSLatitude": round(rng.uniform(-90, 90), 6),
            "GPSLongitude": round(rng.uniform(-180, 180), 6),
            "GPSAltitude": round(rng.uniform(0, 3000), 1),
            "Software": f"firmware {rng.randint(1, 9)}.{rng.randint(0, 99)}",
        },
        "xmp": {
            "dc:creator": [f"photographer-{rng.randint(1, 500)}"],
            "dc:rights": "All rights reserved",
            "xmp:Rating": rng.randint(0, 5),
            "xmp:CreatorTool": "MetaExtract 4.2",
            "photoshop:ColorMode": 3,
        },
        "iptc": {"Keywords": [], "City": rng.choice(["Lisbon", "Oslo", "Kyoto", "Lima"]), "Country": "XX"},
        "thumbnails": [
            {"width": 160, "height": 120, "offset": rng.randint(1000, 90000), "length": rng.randint(4000, 9000)}
        ],
        "extraction": {
            "tier": "premium",
            "engine": "metaextract",
            "version": "4.2.1",
            "duration_ms": rng.randint(5, 900),
        },
        "histogram": [rng.randint(0, 65535) for _ in range(32)],
    }
    size = len(orjson.dumps(md))
    while size < target:  # pad with keywords: realistic, partly compressible text
        word = f"{rng.choice(_WORDS)}-{rng.randint(0, 9999)}"
        md["iptc"]["Keywords"].append(word)
        size += len(word) + 3  # quotes and comma
    return md


@dataclass
class Workload:
    root: Path
    files: list[str]  # "hot": put before measuring; files[i] has metadata[i]
    cold: list[str]  # never put: every get on them is a miss
    metadata: list[dict]
    ops: list[tuple[str, int]] = field(default_factory=list)  # ("get"|"put"|"inv", index; -1-i = cold[i])


def make_workload(root: Path, n_files: int, n_ops: int, seed: int = 7) -> Workload:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    n_cold = max(10, n_files // 100)
    paths = []
    for i in range(n_files + n_cold):
        path = root / f"src-{i:06d}.jpg"
        path.write_bytes(rng.randbytes(SOURCE_BYTES))  # unique content per file: unique keys
        paths.append(str(path))
    wl = Workload(root, paths[:n_files], paths[n_files:], [make_metadata(rng, i) for i in range(n_files)])
    wl.ops = op_mix(rng, n_ops, n_files, n_cold)
    return wl


def op_mix(rng: random.Random, n_ops: int, n_files: int, n_cold: int, miss_rate: float = 0.01) -> list[tuple[str, int]]:
    """gets:puts:invalidates = 100:10:1. A put first refills a file invalidated earlier (cache-aside),
    otherwise it re-writes a random file; 1% of gets ask for files never cached."""
    ops: list[tuple[str, int]] = []
    invalidated: list[int] = []
    for kind in rng.choices(["get", "put", "inv"], weights=[100, 10, 1], k=n_ops):
        if kind == "get":
            ops.append(("get", -1 - rng.randrange(n_cold) if rng.random() < miss_rate else rng.randrange(n_files)))
        elif kind == "put":
            ops.append(("put", invalidated.pop() if invalidated else rng.randrange(n_files)))
        else:
            i = rng.randrange(n_files)
            invalidated.append(i)
            ops.append(("inv", i))
    return ops


def make_big_file(path: Path, size: int) -> str:
    """A file of `size` random bytes, written in 8 MiB chunks."""
    chunk = os.urandom(8 << 20)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
    return str(path)
