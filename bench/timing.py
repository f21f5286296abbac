"""Per-operation latency with time.perf_counter_ns, and the summaries the report prints.

Why not pytest-benchmark: it times rounds of a function and reports aggregates, while this
report needs every single operation's latency (for p99, max and the CDF plot), untimed per-op
set-up (e.g. dropping an entry from the memory tier before a timed Redis hit), and the anchors
timed in the same process, on the same data, in the same run.
"""

from __future__ import annotations

import gc
import os
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


def busy_seconds() -> float | None:
    """CPU seconds every process on the machine has used since boot (/proc/stat), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class OthersCpu:
    """How many cores' worth of CPU other processes used while the block ran: the machine's busy time less
    this process's own. The load average cannot tell: the benchmark's own runnable threads count in it."""

    cores: float | None = None

    def __enter__(self) -> OthersCpu:
        self._busy, self._own, self._wall = busy_seconds(), _own_seconds(), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, wall = busy_seconds(), time.monotonic() - self._wall
        if busy is not None and self._busy is not None and wall > 0:
            others = (busy - self._busy) - (_own_seconds() - self._own)
            self.cores = max(0.0, others / wall)


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


class LoadSampler:
    """The 1-minute load average every few seconds during the run, from a daemon thread: other work on
    the machine shifts absolute numbers, and the report says how much there was."""

    def __init__(self, every: float = 5.0) -> None:
        import os
        import threading

        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.wait(every):
                self.samples.append(os.getloadavg()[0])

        self._thread = threading.Thread(target=sample, name="bench-load", daemon=True)
        self._thread.start()

    def stop(self) -> list[float]:
        import os

        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])
        return self.samples


def interleaved(
    ops: dict[str, tuple[Callable[[int], object], Callable[[int], object] | None]],
    n: int,
    chunk: int = 50,
    warmup: int = 50,
) -> dict[str, np.ndarray]:
    """Like `run` for several ops at once, in rounds of `chunk` ops each, so that a reference path and its
    anchors see the same machine load (on a shared machine it drifts over minutes). Op i of every entry
    runs in the same round, so per-op sums across entries are of neighbouring moments. The order within a
    round rotates from one round to the next: whichever op runs first after another's round is slower (an
    A/A run of one disk-hit path against itself measured the first 1.5-4 % slower), so no entry always pays it."""
    for op, before in ops.values():
        for i in range(min(warmup, n)):
            if before is not None:
                before(i)
            op(i)
    gc.collect()
    out = {name: np.empty(n, dtype=np.int64) for name in ops}
    clock = time.perf_counter_ns
    entries = list(ops.items())
    for round_no, start in enumerate(range(0, n, chunk)):
        shift = round_no % len(entries)
        for name, (op, before) in entries[shift:] + entries[:shift]:
            samples = out[name]
            for i in range(start, min(start + chunk, n)):
                if before is not None:
                    before(i)
                t0 = clock()
                op(i)
                samples[i] = clock() - t0
    return out
