"""A per-key linearizability checker (Wing & Gong search with memoization, as in Porcupine).

The model of one cache entry is a register that may also be empty: put(v) sets it, invalidate
empties it, and a get returns the current value — or None, which is always allowed (entries may be
evicted, tiers may fail), so misses never constrain the search and are dropped up front.
Linearizability is local, so a multi-key history is checked key by key.

Outcomes, after Jepsen: a put or invalidate that returned True is *ok*; one that returned False,
raised, timed out or never completed is *indeterminate* ("info"):
- an indeterminate put may take effect at any point after it began — also long after it returned,
  after later puts and gets (a write the client gave up on may still land) — or never; the one
  thing it can never do is land after an invalidate that returned True and began after it returned
  (an invalidate that reported success is never undone: E1);
- an indeterminate invalidate may or may not have happened; since it can only produce misses, which
  are always allowed, it never constrains the search and is dropped.

A *window* put (`Op.window`) is optional and bounded: it may take effect between its invocation and
its completion, or never; once any operation that began after it completed has taken effect, it no
longer can. Checkers use it for what the contract lets a restart bring back (chaos.checkers).

Several instances (E6): `Op.instance` names the cache instance that ran the operation. With
`stale_window` S, a get need not follow an operation of *another* instance that completed less than S
before the get began (the declared staleness window): it may miss that instance's recent puts and
invalidates, and read an older value than another instance just read (bounded staleness: every
value read was current at most S before the read began). Its own instance's puts and invalidates it
must see at once. The contract promises no more between reads of one instance, so with several
instances its earlier reads bind it only up to S as well.

Times are numbers on one clock (a global counter or monotonic seconds).

Why hand-written: no maintained Python package checks linearizability (Porcupine is Go, Knossos
is Clojure); the algorithm is small and is tested against histories that must be rejected.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any

MAX_STATES = 200_000
SHOWN = 16  # operations an explanation lists (the last ones)
INF = float("inf")


@dataclass(frozen=True)
class Op:
    thread: int
    key: str
    kind: str  # "put" | "get" | "invalidate"
    value: Any  # the value put, for puts
    result: Any  # put/invalidate: bool (anything but True is indeterminate); get: the value or None
    invoked: float
    completed: float | None  # None: never completed
    instance: int = 0  # which cache instance ran it (E6 staleness applies between instances)
    window: bool = False  # a put that may take effect only within [invoked, completed], or never

    @property
    def ok(self) -> bool:
        """A write that reported success and completed (gets: completed)."""
        return self.completed is not None and not self.window and (self.kind == "get" or self.result is True)


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


def _relevant(ops: list[Op]) -> list[Op]:
    """The operations that can constrain the search (see the module docstring)."""
    read = {token(op.result) for op in ops if op.kind == "get" and op.result is not None and op.completed is not None}
    kept = []
    for op in ops:
        if op.kind == "get":
            if op.result is not None and op.completed is not None:
                kept.append(op)
        elif op.kind == "invalidate":
            if op.ok:
                kept.append(op)
        elif op.kind == "put":
            if op.ok or token(op.value) in read:  # an indeterminate put nobody read changes nothing observable
                kept.append(op)
        else:
            raise ValueError(f"unknown operation kind {op.kind!r}")
    kept.sort(key=lambda op: op.invoked)
    return kept


def check_key(ops: list[Op], stale_window: float = 0.0) -> Verdict:
    key = ops[0].key if ops else None
    puts = {token(op.value) for op in ops if op.kind == "put"}
    for op in ops:
        if op.kind == "get" and op.result is not None and token(op.result) not in puts:
            return Verdict(False, key, f"get returned {op.result!r}, which was never put for key {key!r}", [op])
    relevant = _relevant(ops)
    n = len(relevant)
    done_at = [op.completed if op.completed is not None else INF for op in relevant]
    info = [op.kind == "put" and not op.ok for op in relevant]
    windows = [i for i, op in enumerate(relevant) if op.window]
    kinds = [op.kind for op in relevant]
    instances = sorted({op.instance for op in relevant})
    values = [
        token(op.value) if op.kind == "put" else token(op.result) if op.kind == "get" else None for op in relevant
    ]
    must = sum(1 << i for i in range(n) if not info[i])
    own_reads_slack = stale_window if len(instances) > 1 else 0.0
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
        # the earliest completion among pending operations, by what must follow them
        h_any = h_info = INF
        h_reads = dict.fromkeys(instances, INF)  # per instance: its pending gets
        h_writes = dict.fromkeys(instances, INF)  # per instance: its pending ok writes
        for j in range(n):
            if done >> j & 1:
                continue
            if info[j]:
                h_info = min(h_info, done_at[j])
                continue
            h_any = min(h_any, done_at[j])
            per = h_reads if kinds[j] == "get" else h_writes
            per[relevant[j].instance] = min(per[relevant[j].instance], done_at[j])
        for i in range(n):
            if done >> i & 1:
                continue
            op = relevant[i]
            # window puts that completed before this operation began: if not yet, then never
            closed = sum(1 << j for j in windows if not done >> j & 1 and done_at[j] < op.invoked)
            if kinds[i] == "get":
                mine = op.instance
                limit = min(
                    min(h_writes[mine], h_reads[mine] + own_reads_slack),
                    min((min(h_reads[o], h_writes[o]) + stale_window for o in instances if o != mine), default=INF),
                )
                if op.invoked > limit or values[i] != state:
                    continue
                stack.append((done | 1 << i | closed, state))
            elif kinds[i] == "put":
                if op.invoked > h_any:
                    continue
                stack.append((done | 1 << i | closed, values[i]))
            else:  # an invalidate that returned True
                if op.invoked > min(h_any, h_info):
                    continue
                # indeterminate puts that returned before it began can no longer land: they never happened
                gone = sum(1 << j for j in range(n) if info[j] and not done >> j & 1 and done_at[j] < op.invoked)
                stack.append((done | 1 << i | gone | closed, None))
    return Verdict(False, key, _explain(relevant), relevant)


def _explain(ops: list[Op]) -> str:
    lines = ["no linearization exists for this history ('…' = never completed; misses and unread outcomes left out):"]
    if len(ops) > SHOWN:
        lines.append(f"  ({len(ops) - SHOWN} earlier operations not shown)")
    for op in ops[-SHOWN:]:
        result = op.result if op.kind != "put" else f"{op.value!r} -> {op.result}"
        end = f"{op.completed:g}" if op.completed is not None else "…"
        lines.append(f"  instance {op.instance} thread {op.thread}: [{op.invoked:g}, {end}] {op.kind} {result!r:.160}")
    return "\n".join(lines)


def check_history(ops: list[Op], stale_window: float = 0.0) -> Verdict:
    """Check every key; the first failing (or undecided) key's verdict, else ok."""
    for key_ops in by_key(ops).values():
        verdict = check_key(key_ops, stale_window)
        if not verdict.ok:
            return verdict
    return Verdict(True)


def by_key(ops: list[Op]) -> dict[str, list[Op]]:
    grouped: dict[str, list[Op]] = {}
    for op in ops:
        grouped.setdefault(op.key, []).append(op)
    return grouped
