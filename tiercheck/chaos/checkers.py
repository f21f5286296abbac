"""Checkers over a recorded chaos history (chaos.history), after Jepsen's checkers.

Each checker is a small object with `check(history, contract) -> list[Violation]` that reads only the
history and the contract's declared capabilities (`ContractInfo`): never the implementation, never
how it stores anything. Every one is tested on hand-written histories (tests/test_history_checkers.py).

- `Linearizable`: per key, linearizable with misses allowed (properties.linearizability), indeterminate
  writes that may land later, invalidates that returned True never undone, and gets by another
  instance allowed to be stale only within the declared `staleness_seconds` (E1, E6, P1).
- `NoExceptionEscaped` and `ContractTypes`: nothing raised out of a contract method; return types are
  the contract's.
- `StatsInvariants`: hits + misses = total_requests, hits = the sum of the tier hits, and, where no
  other client ran, total_requests = the gets this cache object was asked (P10).
- `Expiry`: no value served after its put time + TTL on the harness clock (P9).
- `Readmission`: after a fault that took effect is healed, the tier holds a new put within the
  declared `readmission_seconds`, on the monotonic clock (P5 only).
- `HealthyTiers`: during a fault, a put lands in every tier that is healthy by the harness's own
  account, and an entry stored before keeps its healthy tiers (P5; only with `tiers_holding`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tiercheck.contract import TIER_NAMES
from tiercheck.properties.linearizability import Op, by_key, check_key, token

from .history import History, Operation
from .model import Violation

DURABLE = frozenset({"disk", "database"})


@dataclass(frozen=True)
class ContractInfo:
    """What the contract and the implementation's declared capabilities tell the checkers."""

    ttl_seconds: float = 3600.0
    staleness_seconds: float = 1.0
    readmission_seconds: float = 5.0
    tiers: frozenset[str] = frozenset(TIER_NAMES)  # declared tiers
    introspection: bool = True  # tiers_holding declared

    @classmethod
    def of(cls, cache: object, ttl_seconds: float) -> ContractInfo:
        from tiercheck.contract import capabilities

        caps = capabilities(cache)
        return cls(
            ttl_seconds=ttl_seconds,
            staleness_seconds=caps.staleness_seconds,
            readmission_seconds=caps.readmission_seconds,
            tiers=frozenset(caps.tiers),
            introspection=bool(caps.introspection),
        )


def _v(check: str, detail: str, op: Operation | None, prop: str, key: str = "") -> Violation:
    fault = ",".join(f.kind for f in op.faults) if op is not None and op.faults else "none"
    return Violation(check, detail, op.index if op is not None else 0, fault, prop=prop, key=key or check)


def enabled_tiers(history: History, contract: ContractInfo, instance: int) -> set[str]:
    """The tiers an instance has: declared by the implementation and enabled by its Env (meta)."""
    env_tiers = history.meta.get("env_tiers", {}).get(instance, set(TIER_NAMES))
    return set(env_tiers) & set(contract.tiers)


# --- linearizability -----------------------------------------------------------------------------


class Linearizable:
    """Per key: linearizable, misses allowed, indeterminate writes may land later (never after a
    successful invalidate that began after they returned), stale reads across instances only
    within `staleness_seconds`.

    One harness rule, stated in contract terms: a write that reported success while every durable tier
    the instance has (disk, database) was failing by the harness's own account counts as
    indeterminate: nothing durable could record what a failed tier still owed, so no implementation
    can promise that the old value stays away after a restart. Likewise a put the instance could not
    record (False, raised, or so excused) may be undone by a restart of that instance: an earlier value
    of its key may come back then (`undone_at_restart`, a window put per earlier value)."""

    name = "linearizable"

    def __init__(self) -> None:
        self.undecided: list[str] = []  # keys the search gave up on (reported as notes, never as passes)

    def check(self, history: History, contract: ContractInfo) -> list[Violation]:
        ops = history.completed_ops()
        lin, source = self.translate(ops, history, contract)
        found = []
        for key, key_ops in by_key(lin).items():
            verdict = check_key(key_ops, contract.staleness_seconds)
            if verdict.ok:
                continue
            if verdict.undecided:
                self.undecided.append(key)
                continue
            short = shortest_failing_prefix(key_ops, contract.staleness_seconds)
            violation = self.classify(key, short, source, check_key(short, contract.staleness_seconds), contract)
            kinds = faults_between(history, min(o.invoked for o in short), max(o.completed or 0.0 for o in short))
            violation.detail = violation.detail.replace("\n", f"; faults in the window: {kinds or 'none'}\n", 1)
            found.append(violation)
        return found

    def translate(
        self, ops: list[Operation], history: History, contract: ContractInfo
    ) -> tuple[list[Op], dict[int, Operation]]:
        lin: list[Op] = []
        source: dict[int, Operation] = {}
        keys = sorted({k for op in ops if op.op in ("put", "get", "invalidate") for k in op.touched_keys()})

        def add(op: Operation, key: str, kind: str, value: Any, result: Any) -> None:
            o = Op(op.thread, key, kind, value, result, op.invoked, op.completed, op.instance)
            source[id(o)] = op
            lin.append(o)

        for op in ops:
            if op.role in ("probe", "readmit", "sentinel"):
                continue  # the harness's own traffic on its own paths
            held = op.outcome == "ok" and not self.excused(op, history, contract)
            if op.op == "put":
                add(op, op.key, "put", op.value, True if held else None)
            elif op.op == "get" and op.outcome == "ok" and isinstance(op.result, dict | type(None)):
                add(op, op.key, "get", None, op.result)
            elif op.op == "invalidate":
                for key in op.touched_keys():
                    add(op, key, "invalidate", None, True if held else None)
            elif op.op == "clear_all":
                for key in keys:
                    add(op, key, "invalidate", None, True if held else None)
        for restart, values in self.undone_at_restart(ops, history, contract):
            for key, value in values:
                o = Op(
                    restart.thread, key, "put", value, None, restart.invoked, restart.completed, restart.instance, True
                )
                source[id(o)] = restart
                lin.append(o)
        return lin, source

    def undone_at_restart(
        self, ops: list[Operation], history: History, contract: ContractInfo
    ) -> list[tuple[Operation, list[tuple[str, Any]]]]:
        """What a restart may bring back (contract, "Known limits"): a put the instance could not record
        (it returned False or raised, or reported success while every durable tier was failing) is not
        held to after a restart of that instance, so an earlier value of its key may be served again.
        Per restart: (key, value) for every value put on such a key before the unrecorded put began."""
        found = []
        for restart in ops:
            if restart.op != "restart" or restart.outcome != "ok":
                continue
            unrecorded: dict[str, float] = {}
            for op in ops:
                if (
                    op.op == "put"
                    and op.instance == restart.instance
                    and op.incarnation == restart.incarnation
                    and op.role not in ("probe", "readmit", "sentinel")
                    and (op.outcome != "ok" or self.excused(op, history, contract))
                ):
                    unrecorded[op.key] = max(unrecorded.get(op.key, 0.0), op.invoked)
            values: dict[tuple[str, str], tuple[str, Any]] = {}
            for op in ops:
                if (
                    op.op == "put"
                    and op.key in unrecorded
                    and op.invoked < unrecorded[op.key]
                    and op.index < restart.index
                ):
                    values[(op.key, token(op.value))] = (op.key, op.value)
            if values:
                found.append((restart, list(values.values())))
        return found

    @staticmethod
    def excused(op: Operation, history: History, contract: ContractInfo) -> bool:
        durable = enabled_tiers(history, contract, op.instance) & DURABLE
        return bool(durable) and durable <= op.faulted_tiers()

    def classify(
        self, key: str, ops: list[Op], source: dict[int, Operation], verdict: Any, contract: ContractInfo
    ) -> Violation:
        """Name the failure: a value an invalidate had removed (E1), a stale read across instances (E6),
        or any other value the history cannot explain (P1)."""
        gets = [o for o in ops if o.kind == "get" and o.result is not None]
        if "never put" in verdict.message:
            return _v(
                "wrong value",
                f"key {key}: " + verdict.message,
                source.get(id(verdict.witness[0])),
                "P1",
                key=f"lin {key}",
            )
        for g in sorted(gets, key=lambda o: o.invoked):
            value = token(g.result)
            put_ends = [o.completed for o in ops if o.kind == "put" and token(o.value) == value]
            for inv in ops:
                if inv.kind != "invalidate" or inv.result is not True or inv.completed is None:
                    continue
                slack = 0.0 if inv.instance == g.instance else contract.staleness_seconds
                if (
                    put_ends
                    and inv.completed + slack < g.invoked
                    and all(e is not None and e < inv.invoked for e in put_ends)
                ):
                    op = source[id(g)]
                    return _v(
                        "resurrection",
                        f"instance {g.instance} got {g.result!r:.100} {g.invoked - inv.completed:.3f} s after "
                        f"instance {inv.instance}'s invalidate removed it (returned True"
                        + (f"; staleness window {contract.staleness_seconds:g} s" if slack else "")
                        + f"); key {key}\n"
                        + verdict.message,
                        op,
                        "E1",
                        key=f"lin {key}",
                    )
        first = source.get(id(gets[0])) if gets else None
        other = len({o.instance for o in ops}) > 1
        return _v(
            "stale read" if other else "wrong value",
            f"key {key}: " + verdict.message,
            first,
            "E6" if other else "P1",
            key=f"lin {key}",
        )


def faults_between(history: History, start: float, end: float) -> str:
    """The faults active or injected between two times (what a witness history lived through)."""
    kinds: list[str] = []
    active: set[str] = set()
    for ev in history.events:
        name = ev.fault.kind + ("" if ev.fault.scope == "all" else f" (instance {ev.fault.instance})")
        if ev.time > end:
            break
        if ev.event == "inject":
            active.add(name)
            if ev.time >= start and name not in kinds:
                kinds.append(name)
        elif ev.event == "heal":
            if ev.time >= start and name in active and name not in kinds:
                kinds.append(name)
            active.discard(name)
    return ", ".join(kinds + sorted(k for k in active if k not in kinds))


def shortest_failing_prefix(ops: list[Op], stale_window: float) -> list[Op]:
    """A short failing part of a non-linearizable key history: the shortest prefix by invocation time
    (with the puts of every value its gets returned) that still fails — the witness a reader needs."""
    ordered = sorted(ops, key=lambda o: o.invoked)
    puts = {}
    for o in ordered:
        if o.kind == "put":
            puts.setdefault(token(o.value), []).append(o)

    def prefix(k: int) -> list[Op]:
        part = ordered[:k]
        read = {token(o.result) for o in part if o.kind == "get" and o.result is not None}
        extra = [p for v in read for p in puts.get(v, []) if p not in part]
        return sorted(part + extra, key=lambda o: o.invoked)

    lo, hi = 1, len(ordered)
    while lo < hi:
        mid = (lo + hi) // 2
        if check_key(prefix(mid), stale_window).ok:
            lo = mid + 1
        else:
            hi = mid
    found = prefix(lo)
    return found if not check_key(found, stale_window).ok else ordered


# --- contract shape -----------------------------------------------------------------------------


class NoExceptionEscaped:
    name = "exception escaped"

    def check(self, history: History, contract: ContractInfo) -> list[Violation]:
        return [
            _v(
                "exception escaped",
                f"{op.op} raised {op.error}",
                op,
                "P5" if op.faults else "P1",
                key=f"exc {op.index}",
            )
            for op in history.completed_ops()
            if op.error is not None
        ]


class ContractTypes:
    name = "contract"
    EXPECTED = {"put": (bool,), "invalidate": (bool,), "get": (dict, type(None)), "clear_all": (type(None),)}

    def check(self, history: History, contract: ContractInfo) -> list[Violation]:
        found = []
        for op in history.completed_ops():
            want = self.EXPECTED.get(op.op)
            if want and op.error is None and not isinstance(op.result, want):
                found.append(_v("contract", f"{op.op} returned {op.result!r:.80}", op, "P1", key=f"type {op.index}"))
        return found


class StatsInvariants:
    name = "stats"
    TIER_HITS = ("memory_hits", "redis_hits", "disk_hits", "database_hits")

    def check(self, history: History, contract: ContractInfo) -> list[Violation]:
        found = []
        gets: dict[tuple[int, int], int] = {}
        raised: set[tuple[int, int]] = set()
        for op in history.completed_ops():
            incarnation = (op.instance, op.incarnation)
            if op.op == "get":
                gets[incarnation] = gets.get(incarnation, 0) + 1
                if op.error is not None:
                    raised.add(incarnation)
            if op.op != "stats" or op.error is not None:
                continue
            s = op.result
            if not hasattr(s, "get"):
                found.append(_v("stats", f"get_stats returned {s!r:.80}", op, "P10", key=f"stats {op.index}"))
                continue
            total, hits, misses = s.get("total_requests"), s.get("hits"), s.get("misses")
            if hits is None or misses is None or hits + misses != total:
                found.append(
                    _v(
                        "stats",
                        f"hits {hits} + misses {misses} != total_requests {total}",
                        op,
                        "P10",
                        key=f"stats {op.index}",
                    )
                )
            elif all(name in s for name in self.TIER_HITS) and sum(s[n] for n in self.TIER_HITS) != hits:
                found.append(
                    _v(
                        "stats",
                        f"hits {hits} != the sum of the tier hits {dict(s)}",
                        op,
                        "P10",
                        key=f"stats {op.index}",
                    )
                )
            elif op.quiescent and incarnation not in raised and total != gets.get(incarnation, 0):
                found.append(
                    _v(
                        "stats",
                        f"total_requests {total} but {gets.get(incarnation, 0)} gets were made",
                        op,
                        "P10",
                        key=f"stats {op.index}",
                    )
                )
        return found


class Expiry:
    name = "expired value"

    def check(self, history: History, contract: ContractInfo) -> list[Violation]:
        ops = history.completed_ops()
        put_clock: dict[tuple[str, str], float] = {}
        for op in ops:
            if op.op == "put":
                put_clock[(op.key, token(op.value))] = max(
                    put_clock.get((op.key, token(op.value)), 0.0), op.clock_completed
                )
        found = []
        for op in ops:
            if op.op != "get" or op.outcome != "ok" or not isinstance(op.result, dict):
                continue
            stored = put_clock.get((op.key, token(op.result)))
            if stored is not None and op.clock_invoked >= stored + contract.ttl_seconds:
                found.append(
                    _v(
                        "expired value",
                        f"served at clock {op.clock_invoked} a value put at {stored} (ttl {contract.ttl_seconds})",
                        op,
                        "P9",
                        key=f"exp {op.key}",
                    )
                )
        return found


# --- fault recovery (P5) --------------------------------------------------------------------------


def _probes(history: History, role: str) -> list[tuple[Operation, Operation]]:
    """(put, holding) pairs the harness made with one role."""
    by_index = {op.index: op for op in history.completed_ops()}
    return [
        (by_index[op.probe_of], op)
        for op in by_index.values()
        if op.op == "holding" and op.role == role and op.probe_of in by_index
    ]


@dataclass
class Readmission:
    """Seconds from heal to the first put that the healed tier holds; `measured` keeps them per fault kind."""

    name = "re-admission"
    measured: dict[str, list[float]] = field(default_factory=dict)

    def check(self, history: History, contract: ContractInfo) -> list[Violation]:
        if not contract.introspection:
            return []
        self.measured = {}
        probes = sorted(_probes(history, "readmit"), key=lambda p: p[0].invoked)
        found = []
        for fault, heal, notes in fault_cycles(history):
            if heal is None or "no_effect" in notes or "damaged" in notes:
                continue  # only faults that took effect, and whose damage is gone by the harness's account
            mine = [(p, h) for p, h in probes if p.invoked >= heal.time and fault.hits(p.instance)]
            mine = [(p, h) for p, h in mine if fault.tier in enabled_tiers(history, contract, p.instance)]
            if not mine:
                continue  # nothing probed: the schedule moved on (e.g. the round ended)
            back = next((p for p, h in mine if isinstance(h.result, set | frozenset) and fault.tier in h.result), None)
            if back is not None and back.invoked - heal.time <= contract.readmission_seconds:
                self.measured.setdefault(fault.kind, []).append(back.invoked - heal.time)
                continue
            last = mine[-1][0]
            if back is None and last.invoked - heal.time < contract.readmission_seconds:
                continue  # probing stopped before the bound: no verdict
            found.append(
                _v(
                    "re-admission",
                    f"the {fault.tier} tier was not used again within {contract.readmission_seconds:g} s after "
                    f"{fault.kind} healed" + (f" (first back after {back.invoked - heal.time:.2f} s)" if back else ""),
                    last,
                    "P5",
                    key=f"readmit {heal.index}",
                )
            )
        return found


def fault_cycles(history: History) -> list[tuple[Any, Any, set[str]]]:
    """(fault, its heal event or None, the other events of that cycle: no_effect, damaged, ...) per inject."""
    cycles: list[tuple[Any, Any, set[str]]] = []
    current: dict[Any, int] = {}
    for ev in history.events:
        if ev.event == "inject":
            current[ev.fault] = len(cycles)
            cycles.append((ev.fault, None, set()))
        elif ev.fault in current:
            i = current[ev.fault]
            fault, heal, notes = cycles[i]
            if ev.event == "heal" and heal is None:
                cycles[i] = (fault, ev, notes)
            else:
                notes.add(ev.event)
    return cycles


def _readmitting(cycles: list[tuple[Any, Any, set[str]]], contract: ContractInfo, put: Operation) -> set[str]:
    """Tiers whose fault (on this instance) healed less than the declared re-admission bound before the
    put began: P5 gives the implementation that long to use them again, and Readmission judges it."""
    return {
        fault.tier
        for fault, heal, notes in cycles
        if heal is not None
        and "no_effect" not in notes
        and fault.hits(put.instance)
        and heal.time <= put.invoked < heal.time + contract.readmission_seconds
    }


class HealthyTiers:
    """During a fault a put must land in every tier healthy by the harness's account: enabled, not hit
    by an active fault for this instance, not still damaged by an earlier one (the harness's own probe
    traffic and fills included, which the nemesis reports as damage). Memory may be emptied at any
    time (restart, coherence), so for memory the second of two puts during the fault is enough, and
    while Redis (the path to the other instances) is faulted for this instance, or a fault destroys a
    shared tier's data (every store tier is shared by the instances), memory is not held to it. An entry
    stored before the fault keeps its healthy durable/shared tiers unless the history shows a reason
    it may go: a clear_all, an invalidate of it, expiry, a restart, or data-destroying damage."""

    name = "healthy tiers"

    def check(self, history: History, contract: ContractInfo) -> list[Violation]:
        if not contract.introspection:
            return []
        found = []
        windows: dict[tuple[int, tuple], list[tuple[Operation, Operation]]] = {}
        for put, held in _probes(history, "probe"):
            if not put.faults:
                continue
            windows.setdefault((put.instance, put.faults), []).append((put, held))
        cycles = fault_cycles(history)
        for pairs in windows.values():
            put, held = pairs[-1]
            expected = enabled_tiers(history, contract, put.instance) - put.faulted_tiers()
            expected -= _readmitting(cycles, contract, put)
            if any(f.hits(put.instance) and (f.tier == "redis" or f.destroys_data) for f in put.faults):
                # cut off from the other instances, or their shared state replaced by garbage (whether another
                # instance removed or replaced the entry cannot be known): it may distrust its memory tier
                expected.discard("memory")
            if put.outcome != "ok":
                if expected and put.error is None:
                    found.append(
                        _v(
                            "healthy tiers keep storing",
                            f"put returned False; healthy: {sorted(expected)}",
                            put,
                            "P5",
                            key=f"store {put.index}",
                        )
                    )
                continue
            got = held.result if isinstance(held.result, set | frozenset) else None
            if got is not None and not expected <= got:
                found.append(
                    _v(
                        "healthy tiers keep storing",
                        f"a put landed in {sorted(got)}; healthy: {sorted(expected)}",
                        put,
                        "P5",
                        key=f"store {put.index}",
                    )
                )
        found += self._kept(history, contract)
        return found

    def _kept(self, history: History, contract: ContractInfo) -> list[Violation]:
        found = []
        ops = history.completed_ops()
        sentinels = {put.index: (put, held) for put, held in _probes(history, "sentinel") if put.probe_of is None}
        for check in ops:
            if check.op != "holding" or check.role != "sentinel-check" or check.probe_of not in sentinels:
                continue
            put, before = sentinels[check.probe_of]
            if put.outcome != "ok" or not isinstance(before.result, set | frozenset):
                continue
            if not isinstance(check.result, set | frozenset):
                continue
            between = [o for o in ops if put.index < o.index < check.index]
            if any(o.op in ("clear_all", "restart") for o in between):
                continue
            if check.clock_invoked >= put.clock_completed + contract.ttl_seconds:
                continue
            lost = set()
            for f in check.faults:
                lost.add(f.tier)
            for e in history.events:
                if put.invoked <= e.time <= check.completed and (e.event == "damaged" or e.fault.destroys_data):
                    lost.add(e.fault.tier)
                if put.invoked <= e.time <= check.completed and e.event == "inject" and e.fault.hits(check.instance):
                    lost.add(e.fault.tier)
            keep = (set(before.result) & enabled_tiers(history, contract, check.instance)) - {"memory"} - lost
            keep -= set(put.damaged) | set(check.damaged)
            if not keep <= set(check.result):
                found.append(
                    _v(
                        "healthy tiers keep their data",
                        f"an entry held by {sorted(before.result)} is now only in {sorted(check.result)}; "
                        f"healthy throughout: {sorted(keep)}",
                        check,
                        "P5",
                        key=f"keep {check.index}",
                    )
                )
        return found


def default_checkers() -> list[Any]:
    return [
        Linearizable(),
        NoExceptionEscaped(),
        ContractTypes(),
        StatsInvariants(),
        Expiry(),
        Readmission(),
        HealthyTiers(),
    ]


def check_all(history: History, contract: ContractInfo, checkers: list[Any] | None = None) -> list[Violation]:
    found: list[Violation] = []
    for checker in checkers if checkers is not None else default_checkers():
        found += checker.check(history, contract)
    return found
