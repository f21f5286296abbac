"""The issue's targets, each a ratio of medians (reference ÷ anchor) unless said otherwise, and a
verdict that is only ever computed from the numbers of this run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Target:
    path: str  # the reference's path, as in the latency tables
    anchor: str
    op: str  # "<=" or ">="
    limit: float
    ratio: float = float("nan")
    note: str = ""

    @property
    def met(self) -> bool:
        return self.ratio <= self.limit if self.op == "<=" else self.ratio >= self.limit


LATENCY = [
    ("memory hit", "cachetools get+stat", 3.0),
    ("redis hit", "redis GET+decode", 1.3),
    ("disk hit", "diskcache get", 1.0),
    ("sqlite hit", "sqlite SELECT+decode", 2.0),
    ("put", "raw writes (sum)", 2.0),
]


def evaluate(latency: dict[str, np.ndarray], bandwidth: dict[str, float], big: dict[str, np.ndarray]) -> list[Target]:
    out = []
    for path, anchor, limit in LATENCY:
        if path in latency and anchor in latency:
            out.append(Target(path, anchor, "<=", limit, float(np.median(latency[path]) / np.median(latency[anchor]))))
    out.append(
        Target(
            "key hashing (bandwidth)",
            "plain read bandwidth",
            ">=",
            0.3,
            bandwidth["hash_gbps"] / bandwidth["read_gbps"],
            f"{bandwidth['hash_gbps']:.2f} vs {bandwidth['read_gbps']:.2f} GB/s; ratio of bandwidths",
        )
    )
    ratio = float(np.median(big["get big (unchanged)"]) / np.median(big["get 64 KiB (unchanged)"]))
    out.append(Target("repeated get, unchanged big file", "same on a 64 KiB file", "<=", 2.0, ratio))
    return out
