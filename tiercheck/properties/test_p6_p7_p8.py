"""P6 key uniqueness, P7 compression round trip, P8 LRU eviction — through the contract only."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import OrderedDict

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tiercheck.backends import FakeClock, unique_namespace
from tiercheck.contract import Env
from tiercheck.pytest_plugin import require

from . import strategies as S
from .machine import (
    accepted_database,  # noqa: F401 - a fixture, used below
    canonical,
    declared_tiers,
    needs_introspection,
    skip_unless_accepted,
)

pytestmark = pytest.mark.usefixtures("accepted_database")


class Scratch:
    """A fresh env per Hypothesis example (pytest fixtures are per test, not per example)."""

    def __init__(self, factory, **env) -> None:
        self.root = tempfile.mkdtemp(prefix="tiercheck-prop-")
        self.env = Env(
            cache_dir=os.path.join(self.root, "cache"),
            namespace=unique_namespace("p"),
            database_url=f"sqlite:///{self.root}/db.sqlite3",
            clock=FakeClock(),
            **env,
        )
        skip_unless_accepted(factory, self.env)
        self.factory = factory
        self.cache = factory(self.env)

    def file(self, name: str, data: bytes) -> str:
        path = os.path.join(self.root, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def restart(self) -> None:
        self.cache.shutdown()
        self.cache = self.factory(self.env)

    def close(self) -> None:
        self.cache.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)


def sparse_file(path: str, size: int, flips: list[int]) -> None:
    """A file of `size` zero bytes with a 1 at each offset in `flips`, written without filling it."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset in flips:
            f.seek(offset)
            f.write(b"\x01")


# --- P6 ------------------------------------------------------------------------------------------


@pytest.mark.prop("P6")
@given(tiers=st.lists(S.tiers, min_size=2, max_size=6, unique=True))
@example(tiers=S.TIER_NAMES)  # every named hazard at once, in every run: case variants, prefixes, separators
def test_P6_tier_strings_never_collide(impl_factory, tiers):
    """Every tier string stores its own entry. One that is not valid Unicode (a lone surrogate, which UTF-8
    cannot encode) may be refused — SPEC names prefixes, case variants and separators, not any code point —
    and then reads as a miss, never as another tier's entry."""
    s = Scratch(impl_factory)
    try:
        path = s.file("f.bin", b"content")
        stored = {}
        for i, tier in enumerate(tiers):
            stored[tier] = _refusable(False, s.cache.put, path, {"tier_index": i}, tier)
            assert stored[tier] or not _valid_unicode(tier), f"put refused the tier string {tier!r}"
        s.restart()
        for i, tier in enumerate(tiers):
            expected = {"tier_index": i} if stored[tier] else None
            got = _refusable(None, s.cache.get, path, tier)
            assert got == expected, f"tier {tier!r} answered another tier's entry"
    finally:
        s.close()


def _refusable(refused, call, path, *args):
    """call(path, ..., tier); for a tier string (the last argument) that is not valid Unicode, a ValueError
    (a clear error for bad input) counts as `refused`."""
    try:
        return call(path, *args)
    except ValueError:
        if _valid_unicode(args[-1]):
            raise
        return refused


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.prop("P6")
@given(
    size=st.integers((1 << 20) + 1, 8 << 20),
    where=st.sampled_from(["after_head", "before_middle", "after_middle", "before_tail"]),
)
def test_P6_files_agreeing_on_sampled_regions_differ(impl_factory, size, where):
    """Same size, same first/middle/last 4 KiB, one byte different elsewhere: two different keys."""
    offset = {
        "after_head": 8192,
        "before_middle": size // 2 - 8192,
        "after_middle": size // 2 + 8192,
        "before_tail": size - 8192,
    }[where]
    s = Scratch(impl_factory)
    try:
        a, b = os.path.join(s.root, "a"), os.path.join(s.root, "b")
        sparse_file(a, size, [])
        sparse_file(b, size, [offset])
        assert s.cache.put(a, {"file": "a"})
        assert s.cache.get(b) is None, "a file differing outside the sampled regions shares the other's key"
        assert s.cache.put(b, {"file": "b"})
        s.restart()
        assert (s.cache.get(a), s.cache.get(b)) == ({"file": "a"}, {"file": "b"})
    finally:
        s.close()


@pytest.mark.prop("P6")
@settings(max_examples=3)  # 65 MiB files: three examples keep this test under ten seconds
@given(where=st.sampled_from([1 << 16, 33 << 20, (65 << 20) - (1 << 16)]))
def test_P6_files_above_64_MiB(impl_factory, where):
    size = (65 << 20) + 123
    s = Scratch(impl_factory)
    try:
        a, b = os.path.join(s.root, "a"), os.path.join(s.root, "b")
        sparse_file(a, size, [])
        sparse_file(b, size, [where])
        assert s.cache.put(a, {"file": "a"})
        assert s.cache.get(b) is None
    finally:
        s.close()


@pytest.mark.prop("P6")
@given(name=S.file_names, content=st.binary(max_size=512))
def test_P6_same_content_same_entry_across_instances_and_paths(impl_factory, name, content):
    s = Scratch(impl_factory)
    try:
        first = s.file(name, content)
        assert s.cache.put(first, {"c": content.hex()})
        s.restart()
        other = s.file("copy-" + name[:50], content)
        assert s.cache.get(other) == {"c": content.hex()}
    finally:
        s.close()


# --- P7 ------------------------------------------------------------------------------------------


@pytest.mark.prop("P7")
@given(metadata=S.any_metadata, level=st.integers(0, 22))
def test_P7_round_trip_every_level_from_every_tier(impl_factory, metadata, level):
    s = Scratch(impl_factory, compression_level=level)
    try:
        path = s.file("f", b"x")
        expected = canonical(metadata)
        assert s.cache.put(path, metadata)
        assert canonical(s.cache.get(path)) == expected  # from memory
        s.restart()
        assert canonical(s.cache.get(path)) == expected  # from a lower tier
    finally:
        s.close()


# --- P8 ------------------------------------------------------------------------------------------


@pytest.fixture
def introspection(impl_factory) -> None:
    """Skip before Hypothesis starts (not inside an example) when tiers_holding is not declared."""
    reason = needs_introspection(impl_factory)
    if reason:
        pytest.skip(f"not applicable: {reason} to see the memory tier")


def _used(model: OrderedDict[int, None], i: int, capacity: int) -> int:
    """The LRU model after a get or put of `i`: it becomes the most recent; returns how many were evicted."""
    model[i] = None
    model.move_to_end(i)
    evicted = 0
    while len(model) > capacity:
        model.popitem(last=False)
        evicted += 1
    return evicted


@pytest.mark.prop("P8")
@given(
    capacity=st.integers(1, 5), ops=st.lists(st.tuples(st.sampled_from(["put", "get"]), st.integers(0, 8)), max_size=60)
)
# the smallest history where least-recently-used and first-in differ: always tried, whatever the seed
@example(capacity=2, ops=[("put", 0), ("put", 1), ("get", 0), ("put", 2)])
def test_P8_lru_eviction(impl_factory, introspection, capacity, ops):
    s = Scratch(impl_factory, max_memory_entries=capacity)
    try:
        paths = [s.file(f"f{i}", b"%d" % i) for i in range(9)]
        model: OrderedDict[int, None] = OrderedDict()
        stored: set[int] = set()
        evictions = 0
        for op, i in ops:
            if op == "put":
                assert s.cache.put(paths[i], {"i": i})
                stored.add(i)
            elif i in stored:
                assert s.cache.get(paths[i]) == {"i": i}
            else:
                assert s.cache.get(paths[i]) is None
                continue
            evictions += _used(model, i, capacity)
            in_memory = {j for j in range(9) if "memory" in s.cache.tiers_holding(paths[j])}
            assert in_memory == set(model), f"memory holds {sorted(in_memory)}, LRU order says {list(model)}"
        assert s.cache.get_stats()["evictions"] == evictions
    finally:
        s.close()


@pytest.mark.prop("P8")
@given(
    capacity=st.integers(1, 5), ops=st.lists(st.tuples(st.sampled_from(["put", "get"]), st.integers(0, 8)), max_size=60)
)
@example(capacity=2, ops=[("put", 0), ("put", 1), ("get", 0), ("put", 2), ("get", 0), ("get", 2), ("get", 1)])
def test_P8_lru_eviction_through_the_stats(impl_factory, capacity, ops):
    """P8 without `tiers_holding`: the stats credit the tier that served each get (P2, P10), so a get of an
    entry the LRU model still holds in memory must be a memory hit, and one the model evicted must not be.

    Neutral: one instance, no invalidation, no clock move, healthy lower tiers that hold every put, so the
    fastest tier holding a live entry serves it (P2) and a hit from below is promoted into memory (a use, as
    in the model). Needs no introspection: docs/contract.md section 3 says a check is judged through the
    contract (which tier the stats credit) where it can be, and P8 can.
    """
    s = Scratch(impl_factory, max_memory_entries=capacity)
    try:
        require(s.cache, "memory")
        if declared_tiers(impl_factory, s.env) == ["memory"]:
            pytest.skip("not applicable: no tier below memory serves an evicted entry (the stats cannot show it)")
        paths = [s.file(f"f{i}", b"%d" % i) for i in range(9)]
        model: OrderedDict[int, None] = OrderedDict()
        stored: set[int] = set()
        evictions = 0
        for step, (op, i) in enumerate(ops):
            if op == "put":
                assert s.cache.put(paths[i], {"i": i})
                stored.add(i)
            elif i in stored:
                before = s.cache.get_stats()["memory_hits"]
                assert s.cache.get(paths[i]) == {"i": i}
                from_memory = s.cache.get_stats()["memory_hits"] - before == 1
                assert from_memory == (i in model), (
                    f"step {step}: get f{i} was {'' if from_memory else 'not '}a memory hit; the LRU order "
                    f"{list(model)} (capacity {capacity}) says it is {'' if i in model else 'not '}in memory"
                )
            else:
                assert s.cache.get(paths[i]) is None
                continue
            evictions += _used(model, i, capacity)
        assert s.cache.get_stats()["evictions"] == evictions
    finally:
        s.close()
