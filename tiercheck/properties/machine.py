"""The model-based state machine behind P1, P2, P3, P9, P10 and E7.

It drives an implementation only through the contract, keeps a simple model (what the latest
live put for each (content, tier) was) and checks every answer against it. Subclasses switch on
the extra checks of one property; `run_machine` runs one with the active Hypothesis profile.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import tempfile
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tiercheck.backends import FakeClock, shared_fake_redis, unique_namespace
from tiercheck.contract import TIER_NAMES, Capabilities, Env, Factory, capabilities, has_capability

from . import strategies as S

TTL = 100.0


def canonical(value: Any) -> str:
    """Equality that tells True from 1 and 1.0 from 1, and ignores key order."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


class CacheMachine(RuleBasedStateMachine):
    """Files, puts, gets, invalidations, clock and restarts, checked against a model."""

    factory: Factory
    use_redis = True
    check_stats = False
    check_promotion = False
    judges_misses = True
    """A live entry missed with every tier healthy is P1's finding — and P2's, P9's (they need the hit) and P3's
    (`invalidate(file, tier)` that removed another tier name shows as a miss). The P10 machine prints it as not
    judged here and goes on (a miss changes nothing in the model, and is counted as one)."""
    step_log: list[int] | None = None
    """Set to a list to record the number of steps of every example (the harness's own instrumentation)."""

    def __init__(self) -> None:
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="tiercheck-machine-")
        self.files_dir = os.path.join(self.root, "files")
        os.mkdir(self.files_dir)
        self.clock = FakeClock()
        self.env = Env(
            cache_dir=os.path.join(self.root, "cache"),
            redis_url=shared_fake_redis().url if self.use_redis else None,
            database_url=f"sqlite:///{os.path.join(self.root, 'cache.sqlite3')}",
            namespace=unique_namespace("machine"),
            clock=self.clock,
            ttl_seconds=TTL,
            max_memory_entries=10_000,
            max_disk_bytes=1 << 30,
            compression_level=3,
        )
        skip_unless_accepted(self.factory, self.env)
        self.cache = self.factory(self.env)
        self.files: dict[str, bytes] = {}
        self.model: dict[tuple[bytes, str], tuple[str, float]] = {}
        self.counts = {"gets": 0, "writes": 0, "invalidations": 0}
        self.enabled_tiers = declared_tiers(self.factory, self.env)
        self.invariant_checks = 0  # invariants run once after __init__, then after every step

    def teardown(self) -> None:
        if self.step_log is not None:
            self.step_log.append(self.invariant_checks - 1)
        try:
            self.cache.shutdown()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- files ---------------------------------------------------------------------------

    def path(self, name: str) -> str:
        return os.path.join(self.files_dir, name)

    @initialize(name=S.machine_names, content=S.machine_contents)
    def first_file(self, name: str, content: bytes) -> None:
        """Every example starts with a file, so no example is spent on operations that cannot succeed."""
        self.write_file(name, content, "other_size")

    @rule(name=S.machine_names, content=S.machine_contents, mode=S.rewrite_modes)
    def write_file(self, name: str, content: bytes, mode: str) -> None:
        path = self.path(name)
        old = self.files.get(name)
        if old is None or mode == "other_size" or len(old) != len(content):
            with open(path, "wb") as f:
                f.write(content)
        elif mode == "same_tick_replace":  # a new inode carrying the old times, renamed over
            before = os.stat(path)
            temp = path + ".new"
            with open(temp, "wb") as f:
                f.write(content)
            os.utime(temp, ns=(before.st_atime_ns, before.st_mtime_ns))
            os.replace(temp, path)
        else:  # same size, in place; optionally with the mtime put back
            before = os.stat(path)
            with open(path, "r+b") as f:
                f.write(content)
                f.truncate()
            if mode == "same_size_utime":
                os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        self.files[name] = content

    @rule(name=S.machine_names, first=S.machine_contents, tier=S.machine_tiers, restore_mtime=st.booleans())
    def racy_rewrite(self, name: str, first: bytes, tier: str, restore_mtime: bool) -> None:
        """Put, then rewrite the file with same-size content within the same timestamp tick."""
        second = bytes(b ^ 0x01 for b in first)
        path = self.path(name)
        with open(path, "wb") as f:
            f.write(first)
        self.files[name] = first
        self.put(name, tier, {"content": first.hex()[:40]})
        self.missed(self.cache.get(path, tier) is None and self.live(first, tier) is not None)
        self.counts["gets"] += 1
        before = os.stat(path)
        with open(path, "r+b") as f:
            f.write(second)
        if restore_mtime:
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        self.files[name] = second
        self.get(name, tier)

    @precondition(lambda self: self.files)
    @rule(data=st.data())
    def delete_file(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.files)))
        os.unlink(self.path(name))
        del self.files[name]

    # --- cache operations ----------------------------------------------------------------

    def live(self, content: bytes, tier: str) -> str | None:
        entry = self.model.get((content, tier))
        if entry is None or self.clock() >= entry[1]:
            return None
        return entry[0]

    @rule(name=S.machine_names, tier=S.machine_tiers, metadata=S.metadata)
    def put(self, name: str, tier: str, metadata: dict) -> None:
        expected = canonical(metadata)
        ok = self.cache.put(self.path(name), metadata, tier)
        content = self.files.get(name)
        if content is None:
            assert ok is False, f"put of a missing file returned {ok!r}"
            return
        assert ok is True, "put with every tier healthy returned False"
        self.counts["writes"] += 1
        self.model[(content, tier)] = (expected, self.clock() + TTL)
        metadata.clear()  # what the caller does to its dict afterwards must not matter
        metadata["mutated by caller"] = True

    @rule(name=S.machine_names, tier=S.machine_tiers)
    def get(self, name: str, tier: str) -> None:
        path = self.path(name)
        content = self.files.get(name)
        before = self.cache.tiers_holding(path, tier) if self.check_promotion and content is not None else None
        stats_before = dict(self.cache.get_stats()) if self.check_promotion else None
        got = self.cache.get(path, tier)
        self.counts["gets"] += 1
        expected = None if content is None else self.live(content, tier)
        if expected is None:
            assert got is None, f"get returned {got!r} but no live put exists for this content and tier"
        elif self.missed(got is None):
            return
        else:
            assert canonical(got) == expected, f"get returned {got!r}, the latest live put was {expected}"
            if self.check_promotion:
                self.check_served_and_promoted(path, tier, before, stats_before)
            got.clear()  # mutating what we got back must not matter either
            got["mutated by caller"] = True

    def missed(self, missed: bool) -> bool:
        """Judge a miss of a live entry (every tier healthy) where this machine's property owns it, else print it."""
        if missed and self.judges_misses:
            raise AssertionError("a live entry was missed with every tier healthy")
        if missed:
            print("not judged here (P1's business): a live entry was missed with every tier healthy")
        return missed

    def check_served_and_promoted(
        self, path: str, tier: str, before: set[str] | None, stats_before: dict | None
    ) -> None:
        fastest = next(t for t in TIER_NAMES if t in (before or set()))
        stats_after = self.cache.get_stats()
        credited = [t for t in TIER_NAMES if stats_after[f"{t}_hits"] != stats_before[f"{t}_hits"]]
        assert credited == [fastest], f"hit credited to {credited}, but the fastest tier holding it was {fastest}"
        after = self.cache.tiers_holding(path, tier)
        above = self.enabled_tiers[: self.enabled_tiers.index(fastest)]
        missing = [t for t in above if t not in after]
        assert not missing, f"served by {fastest}, but faster tiers {missing} do not hold it afterwards"

    @rule(name=S.machine_names, tier=st.none() | S.machine_tiers)
    def invalidate(self, name: str, tier: str | None) -> None:
        ok = self.cache.invalidate(self.path(name), tier)
        content = self.files.get(name)
        if content is None:  # nothing identifies the entry: either answer is honest
            self.counts["invalidations"] += ok is True  # SPEC: invalidations counts the ones that returned True
            return
        assert ok is True, "invalidate with every tier healthy returned False"
        self.counts["invalidations"] += 1
        for key in [k for k in self.model if k[0] == content and (tier is None or k[1] == tier)]:
            del self.model[key]

    @rule()
    def clear_all(self) -> None:
        self.cache.clear_all()
        self.model.clear()

    @rule(seconds=st.sampled_from([1.0, 10.0, TTL / 2, TTL - 1, TTL, TTL + 1]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def cleanup(self) -> None:
        self.cache.cleanup()

    @rule()
    def restart(self) -> None:
        """A new instance over the same backends: live entries must still be served (E7)."""
        self.cache.shutdown()
        self.cache = self.factory(self.env)
        self.counts = {"gets": 0, "writes": 0, "invalidations": 0}

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def count_steps(self) -> None:
        self.invariant_checks += 1

    @invariant()
    def stats_are_exact(self) -> None:
        if not self.check_stats:
            return
        s = self.cache.get_stats()
        assert s["total_requests"] == self.counts["gets"], (
            f"total_requests={s['total_requests']}, gets made={self.counts['gets']}"
        )
        assert s["hits"] + s["misses"] == s["total_requests"], f"hits+misses != total_requests in {dict(s)}"
        tier_hits = sum(s[f"{t}_hits"] for t in TIER_NAMES)
        assert s["hits"] == tier_hits, f"hits={s['hits']} but tier hits sum to {tier_hits}"
        assert s["writes"] == self.counts["writes"], f"writes={s['writes']}, successful puts={self.counts['writes']}"
        assert s["invalidations"] == self.counts["invalidations"], (
            f"invalidations={s['invalidations']}, successful invalidates={self.counts['invalidations']}"
        )
        assert s["evictions"] == 0, "evictions counted while the memory tier had room to spare"


def run_machine(machine: type[CacheMachine], factory: Factory, **overrides: Any) -> None:
    """Bind the implementation and run the machine under the current profile."""
    bound = type(machine.__name__, (machine,), {"factory": staticmethod(factory)})
    # _min_steps: Hypothesis otherwise spends a few examples on zero steps (measured: 2 in 109)
    run_state_machine_as_test(bound, settings=settings(settings.default, **overrides), _min_steps=2)


def needs_introspection(factory: Factory) -> str | None:
    """The reason a check is not applicable, or None when the implementation has tiers_holding."""
    return None if declared(factory).introspection else "no tiers_holding() introspection"


@functools.cache
def _declared(factory: Factory) -> tuple[Capabilities, bool]:
    probe_dir = tempfile.mkdtemp(prefix="tiercheck-probe-")
    try:
        cache = factory(Env(cache_dir=probe_dir, database_url=None, clock=FakeClock()))
        try:
            return capabilities(cache), has_capability(cache, "tiers_holding")
        finally:
            cache.shutdown()
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)


def declared(factory: Factory) -> Capabilities:
    """What the implementation declares (tiercheck.contract.capabilities), read from an instance built over
    no backend at all, so that it can be known before an Env the implementation might refuse is built."""
    caps, introspects = _declared(factory)
    return dataclasses.replace(caps, introspection=introspects)


def skip_unless_accepted(factory: Factory, env: Env) -> None:
    """Skip as not applicable when the Env names a database kind the implementation does not declare."""
    if not declared(factory).accepts_database(env.database_url):
        kind = (env.database_url or "").split(":", 1)[0]
        pytest.skip(f"not applicable: the implementation does not declare a {kind} database tier")


@pytest.fixture
def accepted_database(impl_factory: Factory, make_env) -> None:
    """For modules whose tests build caches over `make_env()`'s default Env (a SQLite database): not
    applicable when the implementation does not declare a SQLite tier. Use with pytest.mark.usefixtures."""
    skip_unless_accepted(impl_factory, make_env())


def declared_tiers(factory: Factory, env: Env) -> list[str]:
    """The tiers an instance over `env` has: the declared ones, minus those the Env leaves out."""
    caps = declared(factory)
    absent = {"redis"} if env.redis_url is None else set()
    absent |= {"database"} if env.database_url is None else set()
    return [t for t in TIER_NAMES if caps.has_tier(t) and t not in absent]
