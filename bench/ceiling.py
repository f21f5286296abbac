"""How many gets of a multi-process run any memory tier could serve fresh: the ceiling under the
memory-share figures.

A get cannot be a fresh memory hit when its file was never cached, when this process's own last
operation on the key was an invalidate, or when another process changed the key (put or invalidate,
counted from when that call returned) since this process last touched it: a cache that drops a changed
key and reads it again on the next get, as invalidate-on-change coherence does, must go below memory for
it. (A cache that pushes new values into every memory could beat this ceiling; one that serves values
older than a returned change could too, within its staleness window.) Computed from each process's
log of (monotonic_ns, kind, file index); CLOCK_MONOTONIC is one clock for every process of a host.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

Log = list[tuple[int, str, int]]  # (time.monotonic_ns(): a get's start or a change's return, kind, index)


def servable_gets(logs: list[Log], starts: list[int]) -> tuple[int, int]:
    """(gets a memory tier could serve fresh, all gets) over the processes' logs; `starts`: when each
    process began its timed ops (its memory tier held every file then, from the warm-up)."""
    changes: dict[int, list[tuple[int, int]]] = defaultdict(list)  # index -> sorted (time, process)
    for process, log in enumerate(logs):
        for t, kind, i in log:
            if kind != "get" and i >= 0:
                changes[i].append((t, process))
    for times in changes.values():
        times.sort()
    servable = gets = 0
    for process, log in enumerate(logs):
        last: dict[int, tuple[int, str]] = {}
        for t, kind, i in log:
            if kind == "get":
                gets += 1
                since, previous = last.get(i, (starts[process], "get"))
                if i >= 0 and previous != "inv" and not _changed_by_other(changes[i], process, since, t):
                    servable += 1
            last[i] = (t, kind)
    return servable, gets


def _changed_by_other(times: list[tuple[int, int]], process: int, since: int, until: int) -> bool:
    lo = bisect.bisect_right(times, (since, float("inf")))
    hi = bisect.bisect_left(times, (until, -1))
    return any(p != process for _, p in times[lo:hi])
