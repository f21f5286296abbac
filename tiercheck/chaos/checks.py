"""Process-level checks: threads and descriptors left after shutdown, files touched outside cache_dir."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import psutil


def resources() -> tuple[set[str], int]:
    """(names of live threads other than this one's harness threads, open descriptor count)."""
    names = {f"{t.name}#{t.ident}" for t in threading.enumerate() if not t.name.startswith("chaos-")}
    return names, psutil.Process(os.getpid()).num_fds()


def leaked(before: tuple[set[str], int], after: tuple[set[str], int]) -> list[str]:
    threads = sorted(after[0] - before[0])
    problems = [f"thread left running: {t}" for t in threads]
    if after[1] > before[1]:
        problems.append(f"{after[1] - before[1]} file descriptor(s) left open ({before[1]} -> {after[1]})")
    return problems


def tree(root: Path, excluded: list[Path]) -> dict[str, tuple[int, int]]:
    """Every file and directory under root except the excluded subtrees, with (size, mtime_ns)."""
    skip = [str(p) for p in excluded]
    found: dict[str, tuple[int, int]] = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not any(os.path.join(d, x).startswith(s) for s in skip)]
        for name in dirs + files:
            path = os.path.join(d, name)
            if any(path.startswith(s) for s in skip):
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            found[path] = (st.st_size if name in files else -1, st.st_mtime_ns if name in files else 0)
    return found


def changed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
