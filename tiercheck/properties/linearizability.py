"""A per-key linearizability checker for P4 (Wing & Gong search with memoization, as in Porcupine).

The model of one cache entry is a register that may also be empty: put(v) sets it (a put that
returned False may or may not have taken effect), invalidate empties it (likewise), and a get
returns the current value — or None, which is always allowed (entries may be evicted, tiers may
fail), so misses never constrain the search and are dropped up front. Operations that never
completed (the thread died, an exception escaped) may take effect at any point after they began,
or not at all. Linearizability is local, so a multi-key history is checked key by key.

Why hand-written: no maintained Python package checks linearizability (Porcupine is Go, Knossos
is Clojure); the algorithm is small and is tested here against histories that must be rejected.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any

MAX_STATES = 200_000


@dataclass(frozen=True)
class Op:
    thread: int
    key: str
    kind: str  # "put" | "get" | "invalidate"
    value: Any  # the value put, for puts
    result: Any  # put/invalidate: bool; get: the value or None
    invoked: int
    completed: int | None  # None: never completed


@dataclass
class Verdict:
    ok: bool
    key: str | None = None
    message: str = ""
    witness: list[Op] = field(default_factory=list)
    undecided: bool = False


def token(value: Any) -> str:
    """A hashable, exact image of a JSON-like value (True and 1 differ)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


class HistoryRecorder:
    """Thread-safe: `with recorder.op(thread, key, kind, value) as done: done(result)`."""

    def __init__(self) -> None:
        self._clock = itertools.count()
        self._lock = threading.Lock()
        self.ops: list[Op] = []

    def begin(self) -> int:
        return next(self._clock)

    def end(
        self, thread: int, key: str, kind: str, value: Any, result: Any, invoked: int, completed: bool = True
    ) -> None:
        op = Op(thread, key, kind, value, result, invoked, next(self._clock) if completed else None)
        with self._lock:
            self.ops.append(op)


def check_key(ops: list[Op]) -> Verdict:
    key = ops[0].key if ops else None
    puts = {token(op.value) for op in ops if op.kind == "put"}
    for op in ops:
        if op.kind == "get" and op.result is not None and token(op.result) not in puts:
            return Verdict(False, key, f"get returned {op.result!r}, which was never put for key {key!r}", [op])
    relevant = [op for op in ops if not (op.kind == "get" and (op.result is None or op.completed is None))]
    relevant.sort(key=lambda op: op.invoked)
    n = len(relevant)
    inf = float("inf")
    completes = [op.completed if op.completed is not None else inf for op in relevant]
    must = sum(1 << i for i, op in enumerate(relevant) if op.completed is not None)
    seen: set[tuple[int, str | None]] = set()
    stack: list[tuple[int, str | None]] = [(0, None)]
    explored = 0
    while stack:
        done, state = stack.pop()
        if done & must == must:
            return Verdict(True, key)
        if (done, state) in seen:
            continue
        seen.add((done, state))
        explored += 1
        if explored > MAX_STATES:
            return Verdict(False, key, f"undecided after {MAX_STATES} states", undecided=True)
        horizon = min((completes[i] for i in range(n) if not done >> i & 1), default=inf)
        for i in range(n):
            if done >> i & 1 or relevant[i].invoked > horizon:
                continue
            op = relevant[i]
            for nxt in _next_states(op, state):
                stack.append((done | 1 << i, nxt))
    return Verdict(False, key, _explain(relevant), relevant)


def _next_states(op: Op, state: str | None) -> list[str | None]:
    """Model states after applying op to state; [] when op cannot happen in that state."""
    if op.kind == "get":
        return [state] if token(op.result) == state else []
    if op.kind == "put":
        new = token(op.value)
        return [new] if op.result is True else [new, state]
    if op.kind == "invalidate":
        return [None] if op.result is True else [None, state]
    raise ValueError(f"unknown operation kind {op.kind!r}")


def _explain(ops: list[Op]) -> str:
    lines = ["no linearization exists for this history (times are a global counter; '…' = never completed):"]
    for op in ops:
        result = op.result if op.kind != "put" else f"{op.value!r} -> {op.result}"
        lines.append(
            f"  thread {op.thread}: [{op.invoked}, {op.completed if op.completed is not None else '…'}] "
            f"{op.kind} {result!r}"
        )
    return "\n".join(lines)


def check_history(ops: list[Op]) -> Verdict:
    """Check every key; the first failing (or undecided) key's verdict, else ok."""
    by_key: dict[str, list[Op]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    for key_ops in by_key.values():
        verdict = check_key(key_ops)
        if not verdict.ok:
            return verdict
    return Verdict(True)
