"""Issue 12's targets, each a same-run figure with its anchor measured in the same run, and a verdict
computed only from the numbers of this run: a target whose figure is missing is "not measured",
never met."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Target:
    name: str  # what the row measures
    anchor: str
    op: str  # "<=", ">=", or "" for a figure reported without a target
    limit: float
    value: float = float("nan")
    unit: str = "x"  # "x": a ratio; "%": a share
    note: str = ""
    path: str = ""  # the reference's latency path, when the row is one (profiled when missed)
    inconclusive: str = ""  # why this run's figure cannot decide the target (then neither met nor not met)

    @property
    def measured(self) -> bool:
        return not math.isnan(self.value)

    @property
    def met(self) -> bool:
        if not self.measured or not self.op or self.inconclusive:
            return False
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    @property
    def verdict(self) -> str:
        if not self.measured:
            return "not measured"
        if not self.op:
            return "reported (no target)"
        if self.inconclusive:
            return f"inconclusive: {self.inconclusive}"
        return "met" if self.met else "**not met**"

    def show(self, x: float) -> str:
        return f"{100 * x:.1f} %" if self.unit == "%" else f"{x:.2f}x"

    @property
    def bound(self) -> str:
        return f"{self.op} {self.show(self.limit)}" if self.op else "—"


LATENCY = [  # (reference path, anchor, limit or None for "reported against")
    ("memory hit", "cachetools get+stat+orjson.loads", 1.3),
    ("memory hit", "cachetools get+stat", None),
    ("disk hit", "diskcache get", 1.5),
    ("sqlite hit", "sqlite SELECT+decode", 1.5),
    ("put", "raw writes (sum)", 1.5),
    ("invalidate", "raw deletes (sum)", 1.5),
    ("put", "raw writes (in sequence)", None),
    ("invalidate", "raw deletes (in sequence)", None),
]
SHARE_FLOOR = 0.9
SHARE_KEPT = 0.8
THREADS_KEPT = 0.8


def _ratio(latency: dict[str, np.ndarray], path: str, anchor: str) -> float:
    if path not in latency or anchor not in latency:
        return float("nan")
    return float(np.median(latency[path]) / np.median(latency[anchor]))


def evaluate(
    latency: dict[str, np.ndarray],
    processes: dict[int, dict],
    threads: dict[int, float],
    anchor_threads: dict[int, float],
    threads_load: float,
    cores: int,
    threads_others: float | None = None,
) -> list[Target]:
    out = []
    for path, anchor, limit in LATENCY:
        ratio = _ratio(latency, path, anchor)
        out.append(Target(f"{path} latency (median)", anchor, "<=" if limit else "", limit or 0.0, ratio, path=path))
    one = processes.get(1, {}).get("memory_share", float("nan"))
    out.append(
        Target(
            "mixed run, 1 process: gets served by memory",
            "— (share of all gets)",
            ">=",
            SHARE_FLOOR,
            one,
            unit="%",
        )
    )
    for k in sorted(processes):
        if k == 1:
            continue
        share, ceiling = processes[k]["memory_share"], processes[k].get("memory_ceiling", float("nan"))
        note = f"{100 * share:.1f} % vs {100 * one:.1f} %"
        if not math.isnan(ceiling) and one > 0:
            note += (
                f"; ceiling: {100 * ceiling:.1f} % of these gets could be served fresh by a memory tier that drops "
                f"a key another process changed (bench/ceiling.py), {ceiling / one:.2f}x the 1-process share"
            )
        out.append(
            Target(
                f"mixed run, {k} processes sharing backends: share served by memory",
                "the 1-process share, same run",
                ">=",
                SHARE_KEPT,
                share / one if one > 0 else float("nan"),
                note=note,
            )
        )
    top = max(threads) if threads else 0
    ref = threads[top] / threads[1] if top and 1 in threads else float("nan")
    anchor_note = ""
    if top in anchor_threads and 1 in anchor_threads:
        anchor_note = (
            f"reference {threads[top]:,.0f} vs {threads[1]:,.0f} ops/s; anchor (cachetools behind a lock, + stat + "
            f"orjson.loads) {anchor_threads[top]:,.0f} ops/s on {top} threads, "
            f"{anchor_threads[top] / anchor_threads[1]:.2f}x "
            f"its 1 thread; reference ÷ anchor on {top} threads: {threads[top] / anchor_threads[top]:.2f}x"
        )
    out.append(
        Target(
            f"memory-hit throughput, {top} threads ÷ 1 thread",
            f"cachetools behind a lock on {top} threads (in the note)",
            ">=",
            THREADS_KEPT,
            ref,
            note=anchor_note,
            inconclusive=_shared_machine(threads_load, cores, threads_others),
        )
    )
    return out


def _shared_machine(load: float, cores: int, others: float | None) -> str:
    """Why a thread-scaling figure cannot be judged, or "": other processes took CPU while it was measured (a
    process then gets CPU time in proportion to its runnable threads, so the ratio overstates scaling). With
    /proc/stat, their CPU time is measured (more than half a core: shared); without, the load average decides,
    which also counts the benchmark's own threads."""
    if others is not None:
        shared = f"other processes used {others:.2f} cores while measured (/proc/stat less this process)"
        return shared if others > 0.5 else ""
    return f"1-min load average {load:.1f} on {cores} cores while measured" if load > cores else ""


def earlier(bandwidth: dict[str, float], big: dict[str, np.ndarray]) -> list[Target]:
    """Targets of earlier issues on keys of big files, kept measured so a regression shows."""
    return [
        Target(
            "first get of a big file (its key)",
            "plain read of the file",
            ">=",
            0.3,
            bandwidth["hash_gbps"] / bandwidth["read_gbps"],
            note=f"{bandwidth['hash_gbps']:.2f} vs {bandwidth['read_gbps']:.2f} GB/s; ratio of bandwidths",
        ),
        Target(
            "repeated get, unchanged big file",
            "same on a 64 KiB file",
            "<=",
            2.0,
            float(np.median(big["get big (unchanged)"]) / np.median(big["get 64 KiB (unchanged)"])),
        ),
    ]
