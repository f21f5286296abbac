"""Per-operation latency with time.perf_counter_ns, and the summaries the report prints.

Why not pytest-benchmark: it times rounds of a function and reports aggregates, while this
report needs every single operation's latency (for p99, max and the CDF plot), untimed per-op
set-up (e.g. dropping an entry from the memory tier before a timed Redis hit), and the anchors
timed in the same process, on the same data, in the same run.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import numpy as np


def run(
    op: Callable[[int], object], n: int, before: Callable[[int], object] | None = None, warmup: int = 50
) -> np.ndarray:
    """Call op(i) for i in range(n); return each call's latency in ns. `before(i)` runs untimed."""
    for i in range(min(warmup, n)):
        if before is not None:
            before(i)
        op(i)
    gc.collect()
    out = np.empty(n, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(n):
        if before is not None:
            before(i)
        t0 = clock()
        op(i)
        out[i] = clock() - t0
    return out


def summary(samples: np.ndarray) -> dict[str, float]:
    """n, median, p90, p99 and max in microseconds."""
    us = samples / 1000.0
    p50, p90, p99 = np.percentile(us, [50, 90, 99])
    return {"n": int(len(us)), "median": float(p50), "p90": float(p90), "p99": float(p99), "max": float(us.max())}


def median_us(samples: np.ndarray) -> float:
    return float(np.median(samples)) / 1000.0
