"""P1, P2, P3, P9, P10 and E7 through the model-based machine (properties/machine.py)."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import rule

from tiercheck.contract import has_capability
from tiercheck.pytest_plugin import require

from . import strategies as S
from .machine import (
    TTL,
    CacheMachine,
    accepted_database,  # noqa: F401 - a fixture, used below
    needs_introspection,
    run_machine,
)

pytestmark = pytest.mark.usefixtures("accepted_database")


class ConsistencyMachine(CacheMachine):
    """Every rule, model checked after every step."""

    @rule(name=S.machine_names, tier=S.machine_tiers, metadata=S.metadata)
    def put_then_get(self, name: str, tier: str, metadata: dict) -> None:
        """A put followed at once by a get of the same entry: the get is served by the fastest tier, so what
        the caller did to its dict after the put (P1) shows, however the examples are drawn."""
        if name in self.files:
            self.put(name, tier, metadata)
            self.get(name, tier)


class PromotionMachine(CacheMachine):
    check_promotion = True


class StatsMachine(CacheMachine):
    check_stats = True
    judges_misses = False  # P1's: the counters are judged whatever a get returned


class InvalidationMachine(CacheMachine):
    """Only files, puts, gets and invalidations: more of them per example than the full machine."""

    advance_clock = cleanup = restart = clear_all = None  # type: ignore[assignment]

    @rule(
        name=S.machine_names,
        tier=S.machine_tiers,
        metadata=S.metadata,
        scope=st.sampled_from(["this tier", "every tier", "another tier"]),
        restart_first=st.booleans(),
    )
    def put_invalidate_get(self, name: str, tier: str, metadata: dict, scope: str, restart_first: bool) -> None:
        """Put, invalidate, get: the sequence P3 is about, which a random walk strings together too rarely.

        With `restart_first` the get comes from a new instance, so a stale copy in any shared tier shows.
        """
        if name not in self.files:
            return
        self.put(name, tier, metadata)
        other = next(t for t in ("premium", "free") if t != tier)
        self.invalidate(name, {"this tier": tier, "every tier": None, "another tier": other}[scope])
        if restart_first:
            CacheMachine.restart(self)
        self.get(name, tier)


class TTLMachine(CacheMachine):
    """Clock, promotions (through restarts) and cleanup, with the TTL boundaries sampled."""

    delete_file = invalidate = clear_all = None  # type: ignore[assignment]

    @rule(name=S.machine_names, tier=S.machine_tiers)
    def cleanup_then_inspect(self, name: str, tier: str) -> None:
        """After cleanup() no tier holds an expired entry."""
        self.cache.cleanup()
        content = self.files.get(name)
        if content is None or not has_capability(self.cache, "tiers_holding"):
            return
        if (content, tier) in self.model and self.live(content, tier) is None:
            held = self.cache.tiers_holding(self.path(name), tier)
            assert not held, f"after cleanup() the expired entry is still held by {sorted(held)}"

    @rule(name=S.machine_names, tier=S.machine_tiers, metadata=S.metadata, at_expiry=st.booleans())
    def get_at_the_boundary(self, name: str, tier: str, metadata: dict, at_expiry: bool) -> None:
        """Put, then get a hair before put time + TTL (served) or exactly at it (a miss: expiry is exclusive)."""
        if name not in self.files:
            return
        self.put(name, tier, metadata)
        self.advance_clock(TTL if at_expiry else TTL - 0.001)
        self.get(name, tier)


class TTLAcrossPromotionMachine(TTLMachine):
    @rule(name=S.machine_names, tier=S.machine_tiers, metadata=S.metadata, first=st.sampled_from([TTL / 2, TTL - 1]))
    def promotion_keeps_expiry(self, name: str, tier: str, metadata: dict, first: float) -> None:
        """Put, age, restart, get (a promotion from a lower tier), age past the put's expiry: a miss."""
        if name not in self.files:
            return
        self.put(name, tier, metadata)
        self.advance_clock(first)
        self.restart()
        self.get(name, tier)
        self.advance_clock(TTL - first)
        self.get(name, tier)


@pytest.mark.prop("P1")
def test_P1_consistency_model(impl_factory):
    run_machine(ConsistencyMachine, impl_factory)


@pytest.mark.prop("P1")
def test_P1_consistency_without_redis(impl_factory):
    run_machine(type("NoRedis", (ConsistencyMachine,), {"use_redis": False}), impl_factory, max_examples=30)


@pytest.mark.prop("P2")
def test_P2_served_by_fastest_and_promoted(impl_factory):
    reason = needs_introspection(impl_factory)
    if reason:
        pytest.skip(f"not applicable: {reason}")
    run_machine(PromotionMachine, impl_factory)


@pytest.mark.prop("P3")
def test_P3_invalidation_model(impl_factory):
    run_machine(InvalidationMachine, impl_factory)


@pytest.mark.prop("P9")
def test_P9_ttl_model(impl_factory):
    run_machine(TTLAcrossPromotionMachine, impl_factory)


@pytest.mark.prop("P10")
def test_P10_stats_model(impl_factory):
    run_machine(StatsMachine, impl_factory)


@pytest.mark.prop("P10")
def test_P10_warming_lookups_are_not_caller_requests(open_cache, tmp_path):
    """SPEC section 2: total_requests counts the caller's gets; the look-ups warm_cache makes do not count (nor,
    since hits + misses = total_requests, do they count as hits or misses). Warming itself is E8's."""
    cache = open_cache()
    paths = []
    for i in range(6):
        f = tmp_path / f"warm{i}"
        f.write_bytes(b"warm %d" % i)
        paths.append(str(f))
    assert cache.put(paths[0], {"pre": True})  # a cached file: warming looks it up and skips it
    before = dict(cache.get_stats())
    result = cache.warm_cache(paths, lambda path, tier: {"name": path[-5:]}, max_workers=2)
    after = dict(cache.get_stats())
    assert set(result) == set(paths)
    moved = {name: after[name] - before[name] for name in ("total_requests", "hits", "misses")}
    assert moved == {"total_requests": 0, "hits": 0, "misses": 0}, f"warming 6 files moved the counters {moved}"
    assert cache.get(paths[1]) == {"name": "warm1"}
    assert cache.get_stats()["total_requests"] == after["total_requests"] + 1


@pytest.mark.prop("E7")
def test_E7_restart_persistence(open_cache, make_env, tmp_path, fake_redis_url):
    env = make_env(redis_url=fake_redis_url)
    f = tmp_path / "photo.jpg"
    f.write_bytes(b"exif" * 1000)
    first = open_cache(env)
    assert first.put(str(f), {"camera": "X100", "iso": 200}, "premium")
    first.shutdown()
    second = open_cache(env)
    # E7 judges what is served. Which tier the stats credit is P2's and P10's (test_P2_restart_credits_redis_not_disk,
    # the P10 machine); an implementation may also fill its memory tier at start-up, so a memory hit is no fault.
    assert second.get(str(f), "premium") == {"camera": "X100", "iso": 200}


@pytest.mark.prop("P2")
def test_P2_restart_credits_redis_not_disk(open_cache, make_env, tmp_path, fake_redis_url):
    """After a restart, an entry still in Redis is a Redis hit, not a disk hit."""
    env = make_env(redis_url=fake_redis_url)
    f = tmp_path / "a.raw"
    f.write_bytes(b"raw" * 100)
    first = open_cache(env)
    assert first.put(str(f), {"k": 1})
    first.shutdown()
    second = open_cache(env)
    require(second, "redis")
    require(second, "tiers_holding")
    held = second.tiers_holding(str(f))
    if "redis" not in held:
        pytest.skip("not applicable: after the restart Redis does not hold the entry (nothing to credit to it)")
    # Redis, or memory when the implementation fills its memory tier at start-up: the fastest holder serves
    fastest = "memory" if "memory" in held else "redis"
    assert second.get(str(f)) == {"k": 1}
    stats = second.get_stats()
    credited = [t for t in ("memory", "redis", "disk", "database") if stats[f"{t}_hits"]]
    assert credited == [fastest], f"the hit was credited to {credited}; the fastest tier holding it was {fastest}"
    assert "memory" in second.tiers_holding(str(f))
