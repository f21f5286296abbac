"""The latency plot: one CDF per path on a log time axis, each reference path (solid) drawn in the
same colour as its anchor (dashed), so a gap reads as a horizontal distance = a ratio."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

READS = [  # (reference path, anchor or None, colour)
    ("memory hit", "cachetools get+stat", "tab:blue"),
    (None, "cachetools get+stat+orjson.loads", "tab:cyan"),
    ("redis hit", "redis GET+decode", "tab:red"),
    ("disk hit", "diskcache get", "tab:green"),
    ("sqlite hit", "sqlite SELECT+decode", "tab:purple"),
    ("postgres hit", "postgres SELECT+decode", "tab:brown"),
]
WRITES = [
    ("put", "raw writes (sum)", "tab:orange"),
    ("put (no fsync)", None, "tab:olive"),
    ("miss", None, "tab:gray"),
    (None, "diskcache set", "tab:green"),
    (None, "file write+fsync", "tab:cyan"),
    (None, "redis SET", "tab:red"),
    (None, "sqlite upsert", "tab:purple"),
    ("invalidate", "raw deletes (sum)", "tab:pink"),
]


def _cdf(ax, samples: np.ndarray, label: str, colour: str, style: str) -> None:
    us = np.sort(samples) / 1000.0
    ax.plot(us, np.arange(1, len(us) + 1) / len(us), style, color=colour, label=label, linewidth=1.4)


def draw(latency: dict[str, np.ndarray], out: Path, title: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.8), sharey=True)
    for ax, rows, heading in ((axes[0], READS, "reads: hits by tier"), (axes[1], WRITES, "writes and misses")):
        for ref, anchor, colour in rows:
            if ref and ref in latency:
                _cdf(ax, latency[ref], f"reference {ref}", colour, "-")
            if anchor and anchor in latency:
                _cdf(ax, latency[anchor], f"anchor: {anchor}", colour, "--")
        ax.set_xscale("log")
        ax.set_xlabel("latency per operation (µs, log scale)")
        ax.set_title(heading)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel("fraction of operations ≤ x")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
