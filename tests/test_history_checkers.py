"""Self-tests of the history checkers (chaos.checkers) on hand-written histories: what each must
accept and what each must reject. No cache runs here: these never count toward a property's verdict."""

from __future__ import annotations

import pytest

from tiercheck.chaos.checkers import (
    ContractInfo,
    Expiry,
    HealthyTiers,
    Linearizable,
    NoExceptionEscaped,
    Readmission,
    StatsInvariants,
)
from tiercheck.chaos.history import Event, Fault, History, Operation
from tiercheck.properties.linearizability import Op, check_key

pytestmark = pytest.mark.selftest

ALL = {"memory", "redis", "disk", "database"}
CONTRACT = ContractInfo(ttl_seconds=100.0, staleness_seconds=1.0, readmission_seconds=5.0)


class Builder:
    """A history written by hand: `op(...)` appends an operation with explicit times."""

    def __init__(self, instances: int = 2) -> None:
        self.h = History(meta={"ttl": 100.0, "env_tiers": {i: set(ALL) for i in range(instances)}})
        self.n = 0

    def op(
        self,
        op: str,
        start: float,
        end: float,
        result=None,
        *,
        inst: int = 0,
        value=None,
        tier="premium",
        content="c1",
        role="",
        probe_of=None,
        error=None,
        faults=(),
        damaged=frozenset(),
        clock=0.0,
        quiescent=False,
        thread=0,
        incarnation=0,
    ) -> Operation:
        writes = op in ("put", "invalidate", "clear_all")
        outcome = (
            ("ok" if error is None and (result is True or op == "clear_all") else "info")
            if writes
            else ("fail" if error else "ok")
        )
        o = Operation(
            self.n,
            inst,
            incarnation,
            thread,
            op,
            content=content,
            tier=tier,
            tiers=(tier,) if op == "invalidate" else (),
            value=value,
            role=role,
            probe_of=probe_of,
            invoked=start,
            completed=end,
            clock_invoked=clock,
            clock_completed=clock,
            result=result,
            error=error,
            outcome=outcome,
            faults=tuple(faults),
            damaged=frozenset(damaged),
            quiescent=quiescent,
        )
        self.n += 1
        self.h.ops.append(o)
        return o

    def event(self, event: str, fault: Fault, at: float) -> None:
        self.h.events.append(Event(self.n, at, event, fault))
        self.n += 1


V1, V2 = {"v": 1}, {"v": 2}


def lin(b: Builder) -> list:
    return Linearizable().check(b.h, CONTRACT)


# --- linearizability with indeterminate writes and instances ----------------------------------------


def test_late_indeterminate_put_may_land_after_later_operations():
    b = Builder()
    b.op("put", 0, 1, False, value=V1)  # timed out on the client
    b.op("put", 2, 3, True, value=V2)
    b.op("get", 4, 5, V2)
    b.op("get", 6, 7, V1)  # the late write landed after the put of V2
    assert lin(b) == []


def test_late_put_never_lands_after_a_later_successful_invalidate():
    b = Builder()
    b.op("put", 0, 1, False, value=V1)
    b.op("invalidate", 2, 3, True)
    b.op("get", 4, 5, V1)
    found = lin(b)
    assert [v.check for v in found] == ["resurrection"] and found[0].prop == "E1"


def test_late_put_still_running_when_the_invalidate_began_may_land_after_it():
    b = Builder()
    b.op("put", 0, 3.5, False, value=V1)
    b.op("invalidate", 2, 3, True)
    b.op("get", 4, 5, V1)
    assert lin(b) == []


def test_a_raised_put_is_indeterminate_too():
    b = Builder()
    b.op("put", 0, 1, None, value=V1, error="TimeoutError: x")
    b.op("get", 2, 3, V1)
    assert lin(b) == []


def test_failed_invalidate_changes_nothing_observable():
    b = Builder()
    b.op("put", 0, 1, True, value=V1)
    b.op("invalidate", 2, 3, False)
    b.op("get", 4, 5, V1)
    assert lin(b) == []


def test_other_instance_may_be_stale_within_the_window_only():
    within, beyond = Builder(), Builder()
    for b, at in ((within, 3.5), (beyond, 4.5)):
        b.op("put", 0, 1, True, value=V1, inst=1)
        b.op("get", 1.2, 1.3, V1, inst=0)
        b.op("invalidate", 2, 3, True, inst=1)
        b.op("get", at, at + 0.1, V1, inst=0)
    assert lin(within) == []
    found = lin(beyond)
    assert [v.check for v in found] == ["resurrection"] and "staleness window" in found[0].detail


def test_own_instance_gets_no_staleness():
    b = Builder()
    b.op("put", 0, 1, True, value=V1)
    b.op("invalidate", 2, 3, True)
    b.op("get", 3.2, 3.3, V1)  # same instance, 0.2 s later
    assert [v.check for v in lin(b)] == ["resurrection"]


def test_stale_instance_may_lag_another_instance_that_already_saw_the_new_value():
    b = Builder()
    b.op("put", 0, 1, True, value=V1, inst=0)
    b.op("get", 1.1, 1.2, V1, inst=1)
    b.op("put", 2, 2.1, True, value=V2, inst=0)
    b.op("get", 2.2, 2.3, V2, inst=0)
    b.op("get", 2.5, 2.6, V1, inst=1)  # 0.4 s after the put elsewhere
    assert lin(b) == []


def test_reads_of_one_instance_go_back_only_within_the_window():
    def run(at: float) -> list:
        b = Builder()
        b.op("put", 0, 1, True, value=V1, inst=0)
        b.op("put", 2, 2.1, True, value=V2, inst=0)
        b.op("get", 2.2, 2.3, V2, inst=1)
        b.op("get", at, at + 0.1, V1, inst=1)  # instance 1 already saw V2
        return lin(b)

    assert run(2.5) == []  # bounded staleness: V1 was current 0.4 s ago
    found = run(3.5)
    assert found and found[0].check in ("stale read", "wrong value")


def test_a_single_instance_never_reads_back_in_time():
    b = Builder(instances=1)
    b.op("put", 0, 1, True, value=V1)
    b.op("put", 2, 2.1, False, value=V2)  # indeterminate, but it was read below
    b.op("get", 2.2, 2.3, V2)
    b.op("get", 2.5, 2.6, V1)
    assert [v.prop for v in lin(b)] == ["P1"]


def test_clear_all_removes_every_key():
    b = Builder()
    b.op("put", 0, 1, True, value=V1, content="x")
    b.op("put", 0, 1, True, value=V2, content="y")
    b.op("clear_all", 2, 3, None)
    b.op("get", 4, 5, V2, content="y")
    assert [v.check for v in lin(b)] == ["resurrection"]


def test_a_write_while_every_durable_tier_was_out_is_indeterminate():
    disk = Fault("disk ENOSPC", "disk")
    b = Builder()
    b.op("put", 0, 1, True, value=V1)
    b.op("invalidate", 2, 3, True, faults=[disk], damaged={"database"})
    b.op("get", 4, 5, V1)
    assert lin(b) == []
    b2 = Builder()
    b2.op("put", 0, 1, True, value=V1)
    b2.op("invalidate", 2, 3, True, faults=[disk])  # the database could still record it
    b2.op("get", 4, 5, V1)
    assert [v.check for v in lin(b2)] == ["resurrection"]


V3 = {"v": 3}


def test_a_put_the_instance_could_not_record_may_be_undone_by_its_restart():
    """Contract, "Known limits": a put that returned False is not held to after a restart, so the
    value before it may come back then (and only then, and only for that key)."""

    def run(recorded: bool, restart: bool) -> list:
        b = Builder()
        b.op("put", 0, 1, True, value=V1)
        b.op("put", 2, 3, recorded, value=V2)
        b.op("get", 4, 5, V2)  # the unrecorded put took effect (memory held it)
        if restart:
            b.op("restart", 6, 7, None)
        b.op("get", 8, 9, V1, incarnation=1 if restart else 0)
        return lin(b)

    assert run(recorded=False, restart=True) == []
    assert [v.check for v in run(recorded=False, restart=False)] == ["wrong value"]  # no restart: no excuse
    assert [v.check for v in run(recorded=True, restart=True)] == ["wrong value"]  # it returned True


def test_what_a_restart_brings_back_comes_back_at_the_restart_only():
    b = Builder()
    b.op("put", 0, 1, True, value=V1)
    b.op("put", 2, 3, False, value=V2)
    b.op("get", 4, 5, V2)
    b.op("restart", 6, 7, None)
    b.op("put", 8, 9, True, value=V3, incarnation=1)
    b.op("get", 10, 11, V1, incarnation=1)  # V1 came back after a later successful put: not excused
    assert [v.check for v in lin(b)] == ["wrong value"]
    other = Builder()
    other.op("put", 0, 1, True, value=V1)
    other.op("put", 2, 3, False, value=V2)
    other.op("get", 4, 5, V2)
    other.op("restart", 6, 7, None, inst=1)  # another instance's restart excuses nothing here
    other.op("get", 8, 9, V1)
    assert [v.check for v in lin(other)] == ["wrong value"]


def test_another_keys_value_is_reported():
    b = Builder()
    b.op("put", 0, 1, True, value=V1, content="x")
    b.op("get", 2, 3, V1, content="y")
    found = lin(b)
    assert found and "never put" in found[0].detail


def test_search_stays_small_with_many_unread_indeterminate_puts():
    ops = [Op(0, "k", "put", {"v": i}, False, i, i + 0.5) for i in range(200)]
    ops.append(Op(1, "k", "get", None, {"v": 7}, 300, 301))
    assert check_key(ops).ok


# --- exceptions, stats, expiry --------------------------------------------------------------------


def test_no_exception_escaped():
    b = Builder()
    b.op("get", 0, 1, None)
    assert NoExceptionEscaped().check(b.h, CONTRACT) == []
    b.op("get", 2, 3, None, error="RuntimeError: boom")
    assert [v.check for v in NoExceptionEscaped().check(b.h, CONTRACT)] == ["exception escaped"]


def test_stats_invariants():
    b = Builder()
    b.op("get", 0, 1, None)
    b.op("get", 1, 2, None)
    good = {
        "total_requests": 2,
        "hits": 0,
        "misses": 2,
        "memory_hits": 0,
        "redis_hits": 0,
        "disk_hits": 0,
        "database_hits": 0,
    }
    b.op("stats", 2, 3, good, quiescent=True)
    assert StatsInvariants().check(b.h, CONTRACT) == []
    b.op("stats", 3, 4, {**good, "total_requests": 5, "misses": 5}, quiescent=True)
    assert [v.detail for v in StatsInvariants().check(b.h, CONTRACT)] == ["total_requests 5 but 2 gets were made"]
    b.op("stats", 4, 5, {**good, "hits": 1})
    assert len(StatsInvariants().check(b.h, CONTRACT)) == 2


def test_expiry_on_the_harness_clock():
    b = Builder()
    b.op("put", 0, 1, True, value=V1, clock=0.0)
    b.op("get", 2, 3, V1, clock=99.0)
    assert Expiry().check(b.h, CONTRACT) == []
    b.op("get", 4, 5, V1, clock=100.0)
    assert [v.prop for v in Expiry().check(b.h, CONTRACT)] == ["P9"]


# --- re-admission (P5) ------------------------------------------------------------------------------

REDIS_DOWN = Fault("redis SIGKILL", "redis")


def readmit_history(back_after: float | None, probes_until: float, effect: bool = True) -> Builder:
    b = Builder(instances=1)
    b.event("inject", REDIS_DOWN, 0.0)
    if not effect:
        b.event("no_effect", REDIS_DOWN, 0.5)
    b.event("heal", REDIS_DOWN, 1.0)
    t = 1.0
    while t <= 1.0 + probes_until:
        put = b.op("put", t, t + 0.01, True, value={"p": t}, role="readmit", content=f"p{t}")
        back = back_after is not None and t - 1.0 >= back_after
        b.op(
            "holding",
            t + 0.01,
            t + 0.02,
            {"memory", "disk", "database"} | ({"redis"} if back else set()),
            role="readmit",
            probe_of=put.index,
            content=f"p{t}",
        )
        if back:
            break
        t += 0.5
    return b


def test_readmission_in_seconds_within_the_declared_bound():
    checker = Readmission()
    assert checker.check(readmit_history(2.0, 6.0).h, CONTRACT) == []
    assert checker.measured == {"redis SIGKILL": [2.0]}


def test_readmission_too_late_or_never_is_a_P5_violation():
    late = Readmission().check(readmit_history(5.5, 6.0).h, CONTRACT)
    never = Readmission().check(readmit_history(None, 6.0).h, CONTRACT)
    assert [v.prop for v in late] == ["P5"] and "5.50 s" in late[0].detail
    assert [v.check for v in never] == ["re-admission"]


def test_readmission_bound_is_the_declared_one_and_no_effect_means_no_verdict():
    slow = ContractInfo(readmission_seconds=10.0)
    assert Readmission().check(readmit_history(5.5, 6.0).h, slow) == []
    assert Readmission().check(readmit_history(None, 6.0, effect=False).h, CONTRACT) == []
    assert Readmission().check(readmit_history(None, 6.0).h, ContractInfo(introspection=False)) == []


# --- healthy tiers (P5) -----------------------------------------------------------------------------

DISK_FULL = Fault("disk ENOSPC", "disk")


def probe(b: Builder, t: float, held: set, faults=(DISK_FULL,), damaged=frozenset(), inst: int = 0, ok=True) -> None:
    put = b.op(
        "put", t, t + 0.1, ok, value={"p": t}, role="probe", content=f"p{t}", faults=faults, damaged=damaged, inst=inst
    )
    b.op("holding", t + 0.1, t + 0.2, held, role="probe", probe_of=put.index, content=f"p{t}", faults=faults, inst=inst)


def test_healthy_tiers_keep_storing():
    good, bad = Builder(1), Builder(1)
    probe(good, 1, {"redis", "database"})
    probe(good, 2, {"memory", "redis", "database"})  # memory was emptied once: the second put is what counts
    assert HealthyTiers().check(good.h, CONTRACT) == []
    probe(bad, 1, {"memory", "database"})
    probe(bad, 2, {"memory", "database"})
    found = HealthyTiers().check(bad.h, CONTRACT)
    assert [v.check for v in found] == ["healthy tiers keep storing"] and found[0].prop == "P5"


def test_a_tier_damaged_by_an_earlier_fault_is_not_held_to_storing():
    b = Builder(1)
    probe(b, 1, {"memory", "redis"}, damaged={"database"})
    probe(b, 2, {"memory", "redis"}, damaged={"database"})
    assert HealthyTiers().check(b.h, CONTRACT) == []


def test_memory_not_held_while_redis_is_cut_for_that_instance_and_only_declared_tiers_count():
    cut = Fault("redis partition (one instance)", "redis", "one", 1)
    b = Builder(2)
    probe(b, 1, {"disk", "database"}, faults=(cut,), inst=1)
    assert HealthyTiers().check(b.h, CONTRACT) == []
    probe(b, 2, {"disk", "database"}, faults=(cut,), inst=0)  # instance 0 still reaches Redis
    assert [v.check for v in HealthyTiers().check(b.h, CONTRACT)] == ["healthy tiers keep storing"]
    no_redis = ContractInfo(tiers=frozenset({"memory", "disk", "database"}))
    b2 = Builder(1)
    probe(b2, 1, {"memory", "disk", "database"}, faults=(Fault("sqlite locked", "database"),))
    probe(b2, 2, {"memory", "disk"}, faults=(Fault("sqlite locked", "database"),))
    assert HealthyTiers().check(b2.h, no_redis) == []


def test_memory_not_held_while_a_fault_replaces_a_shared_tiers_data():
    """Campaign seed 2: hostile rows replaced the versions of the database's removal records; a cache that
    then cannot tell whether another instance removed an entry may keep it out of memory (a correct choice)."""
    hostile = Fault("database hostile rows", "database", destroys_data=True)
    b = Builder(1)
    probe(b, 1, {"disk", "redis"}, faults=(hostile,))
    probe(b, 2, {"disk", "redis"}, faults=(hostile,))
    assert HealthyTiers().check(b.h, CONTRACT) == []
    b = Builder(1)
    probe(b, 1, {"memory", "disk"}, faults=(hostile,))
    probe(b, 2, {"memory", "disk"}, faults=(hostile,))  # Redis stays held to storing
    assert [v.check for v in HealthyTiers().check(b.h, CONTRACT)] == ["healthy tiers keep storing"]


def test_a_tier_healed_within_the_readmission_bound_is_not_held_to_storing_yet():
    """Campaign seed 335271362: PostgreSQL killed, healed; 0.2 s later a disk fault began, and the other
    instance (its connection pool still backing off) was blamed for not storing in the database."""
    killed = Fault("postgres SIGKILL", "database")

    def run(after_heal: float) -> list:
        b = Builder(1)
        b.event("inject", killed, 0.0)
        b.event("heal", killed, 1.0)
        b.event("inject", DISK_FULL, 1.0 + after_heal)
        probe(b, 1.1 + after_heal, {"memory", "redis"})
        probe(b, 1.3 + after_heal, {"memory", "redis"})
        return HealthyTiers().check(b.h, CONTRACT)

    assert run(0.2) == []
    assert [v.check for v in run(CONTRACT.readmission_seconds)] == ["healthy tiers keep storing"]


def test_healthy_tiers_keep_their_data_unless_the_history_explains_the_loss():
    def run(between: str | None) -> list:
        b = Builder(1)
        put = b.op("put", 0, 0.1, True, value={"s": 1}, role="sentinel", content="s")
        b.op("holding", 0.1, 0.2, set(ALL), role="sentinel", probe_of=put.index, content="s")
        b.event("inject", DISK_FULL, 0.3)
        if between == "clear_all":
            b.op("clear_all", 0.4, 0.5, None)
        b.op(
            "holding", 0.6, 0.7, {"memory"}, role="sentinel-check", probe_of=put.index, content="s", faults=(DISK_FULL,)
        )
        return HealthyTiers().check(b.h, CONTRACT)

    assert [v.check for v in run(None)] == ["healthy tiers keep their data"]
    assert run("clear_all") == []


def test_a_violation_names_the_faults_its_window_lived_through():
    from tiercheck.chaos.checkers import faults_between

    h = History()
    stop, cut = Fault("redis SIGSTOP", "redis"), Fault("redis partition (one instance)", "redis", "one", 1)
    h.events += [Event(0, 1.0, "inject", stop), Event(1, 2.0, "heal", stop), Event(2, 3.0, "inject", cut)]
    assert faults_between(h, 1.5, 2.5) == "redis SIGSTOP"  # healed inside the window
    assert faults_between(h, 3.5, 4.0) == "redis partition (one instance) (instance 1)"  # still active
    assert faults_between(h, 0.0, 0.5) == ""
    b = Builder()
    b.event("inject", stop, 0.5)
    b.op("put", 0, 1, True, value=V1)
    b.op("invalidate", 2, 3, True)
    b.event("heal", stop, 3.5)
    b.op("get", 4, 5, V1)
    assert "faults in the window: redis SIGSTOP" in lin(b)[0].detail
