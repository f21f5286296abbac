"""One recorded chaos history: every operation every client ran, and every fault event.

After Jepsen's split: generators pick operations, clients execute them and record them here, the
nemesis schedule injects and heals faults (recorded as events), and checkers (chaos.checkers) read
only this history and the contract's declared capabilities. Nothing here judges anything.

An operation carries the instance and thread that ran it, what it was (put, get, invalidate,
clear_all, stats, holding = `tiers_holding`, ...), its key (a digest of the file's content and the
tier string), the value put or the result returned, its invoke and complete times on the monotonic
clock, the harness clock (`Env.clock`, the TTL clock) at both ends, the outcome, and the faults
active when it began (kind, tier, scope, instance) with the tiers still damaged by earlier faults.

Outcomes, as in Jepsen: "ok" (a write that returned True; a read that returned), "info" (a write
that returned False, raised or timed out: indeterminate, it may land later or never), "fail" (a
read that raised: it had no effect).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

WRITES = ("put", "invalidate", "clear_all")


def content_key(content: bytes) -> str:
    """A short, exact name for a file's content (the key is content + tier, P6)."""
    return hashlib.sha256(content).hexdigest()[:16]


@dataclass(frozen=True)
class Fault:
    """One fault as the history sees it: enough for a checker to know which tier of which instance it hits."""

    kind: str
    tier: str
    scope: str = "all"  # "all" instances, or "one": only `instance`
    instance: int | None = None
    destroys_data: bool = False

    def hits(self, instance: int) -> bool:
        return self.scope == "all" or self.instance == instance


@dataclass
class Operation:
    index: int
    instance: int
    incarnation: int  # which cache object of that instance slot (a restart makes a new one)
    thread: int
    op: str  # put | get | invalidate | clear_all | cleanup | stats | holding | restart
    path: str = ""
    content: str = ""  # content_key of the file when the operation began
    tier: str | None = None
    tiers: tuple[str, ...] = ()  # invalidate: the tier strings it removes
    value: Any = None  # put: the metadata
    role: str = ""  # "" (workload) | probe | sentinel | readmit | sweep
    probe_of: int | None = None  # holding: the index of the put it inspects
    invoked: float = 0.0  # time.monotonic()
    completed: float | None = None
    clock_invoked: float = 0.0  # Env.clock()
    clock_completed: float = 0.0
    result: Any = None
    error: str | None = None  # the exception that escaped, if any
    outcome: str = ""  # ok | info | fail
    faults: tuple[Fault, ...] = ()
    damaged: frozenset[str] = frozenset()  # tiers still carrying an earlier fault's damage
    quiescent: bool = False  # no other client was running (stats are exact only then)

    @property
    def key(self) -> str:
        return f"{self.content}:{self.tier}"

    def touched_keys(self) -> list[str]:
        if self.op == "invalidate":
            return [f"{self.content}:{t}" for t in self.tiers]
        return [self.key]

    def faulted_tiers(self) -> set[str]:
        return {f.tier for f in self.faults if f.hits(self.instance)} | set(self.damaged)

    def __str__(self) -> str:
        what = self.value if self.op == "put" else self.tiers if self.op == "invalidate" else self.tier
        end = f"{self.completed:.3f}" if self.completed is not None else "…"
        faults = ",".join(f.kind + ("" if f.scope == "all" else f"@{f.instance}") for f in self.faults) or "-"
        return (
            f"#{self.index} i{self.instance}.{self.incarnation} t{self.thread} [{self.invoked:.3f},{end}] "
            f"{self.op} {self.content[:6]} {what!r:.80} -> {self.result!r:.80} {self.outcome} faults={faults}"
        )


@dataclass
class Event:
    """A fault event: inject, heal, or a note such as "took_effect"/"no_effect", "damaged" (after heal)."""

    index: int
    time: float
    event: str
    fault: Fault
    detail: str = ""


@dataclass
class History:
    """Thread-safe recorder. `meta` holds what the run set up: ttl, the tiers each instance's Env enables."""

    ops: list[Operation] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    active: list[Fault] = field(default_factory=list)
    damaged: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = itertools.count()

    def begin(self, **fields: Any) -> Operation:
        with self._lock:
            op = Operation(
                index=next(self._counter),
                invoked=time.monotonic(),
                faults=tuple(self.active),
                damaged=frozenset(self.damaged),
                **fields,
            )
            self.ops.append(op)
        return op

    def event(self, event: str, fault: Fault, detail: str = "") -> Event:
        with self._lock:
            ev = Event(next(self._counter), time.monotonic(), event, fault, detail)
            self.events.append(ev)
            if event == "inject":
                self.active.append(fault)
            elif event == "heal" and fault in self.active:
                self.active.remove(fault)
            elif event == "damaged":
                self.damaged.add(fault.tier)
            elif event == "repaired":
                self.damaged.discard(fault.tier)
        return ev

    def completed_ops(self) -> list[Operation]:
        with self._lock:
            return [op for op in self.ops if op.completed is not None]


def finish(op: Operation, result: Any, error: BaseException | None, clock_now: float) -> Operation:
    """Record how an operation ended and classify its outcome."""
    op.completed = time.monotonic()
    op.clock_completed = clock_now
    op.result = result
    if error is not None:
        op.error = f"{type(error).__name__}: {str(error)[:200]}"
    if op.op in WRITES:
        ok = error is None and (result is True or (op.op == "clear_all" and result is None))
        op.outcome = "ok" if ok else "info"
    else:
        op.outcome = "fail" if error is not None else "ok"
    return op
