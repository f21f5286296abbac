"""L1-L3 effectiveness (SPEC section 3) and the measured figures beside them.

"A miss is always allowed" lets a cache that flushes its memory tier, or purges a healthy Redis, pass
every correctness property. These tests run with no fault injected and ask, in contract terms only,
whether the tiers are actually used: which tier the stats credit for a get, what a fresh instance
sharing one tier serves from it, and `tiers_holding` where the implementation declares introspection.
Workloads are seeded and free of timing; the measured figures (memory share with two instances, E6
staleness) are recorded with the `measure` fixture and not judged beyond the contract's own bounds.
"""

from __future__ import annotations

import math
import random
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tiercheck.contract import Cache, capabilities, has_capability
from tiercheck.pytest_plugin import require

from .effectiveness_probes import (
    credited_get,
    delta,
    judged_tiers,
    make_files,
    missing_from_tier,
    stat_counts,
)

SEED = 20261128
THREADS = 8


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run work(0..count-1) in threads released together; re-raise the first exception any of them hit."""
    start = threading.Barrier(count, timeout=60)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            start.wait()
            work(index)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), name=f"tiercheck-eff-{i}") for i in range(count)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


def value_of(path: str, version: int = 0) -> dict:
    return {"file": Path(path).name, "version": version}


# --- L1 ------------------------------------------------------------------------------------------

L1_FILES_PER_PHASE = 48
L1_THREADS_PER_INSTANCE = 4
L1_GETS_PER_THREAD = 12


@pytest.mark.prop("L1")
@pytest.mark.real_redis
def test_L1_healthy_tiers_keep_every_put(impl_factory, make_env, any_redis_url, tmp_path):
    """No fault: several instances over one Redis, one SQLite database and one cache_dir, each used by
    several threads from the moment its factory returns (concurrent first use), a restart of one of them
    (a new instance over the same backends), and a third instance joining populated backends. Afterwards
    every put that returned True must be held by every shared tier the implementation declares and the
    Env configures.

    Neutral: the run contains no invalidate, no clear_all, no clock move and no fault, so for ANY correct
    implementation nothing may remove an entry; each file is put once, with one value. Holding is judged
    through the contract only: a fresh instance sharing just that tier must serve the entry and its stats
    must credit that tier (and `tiers_holding` agrees, when declared). Memory is per instance and judged
    by L2/L3, not here. What the implementation logs or counts as tier health is not part of the
    contract and is not read; a tier it wrongly took for failed shows up as puts it skipped.
    """
    env = make_env(redis_url=any_redis_url)
    rng = random.Random(SEED)
    print(f"L1 seed {SEED}")
    put_ok: dict[str, bool] = {}
    lock = threading.Lock()
    instances: list[Cache] = []

    def phase(number: int, live: list[Cache]) -> None:
        files = make_files(str(tmp_path / "files"), [f"p{number}-{i}" for i in range(L1_FILES_PER_PHASE)])
        with lock:
            earlier = list(put_ok)
        workers = [(cache, t) for cache in live for t in range(L1_THREADS_PER_INSTANCE)]
        reads = [rng.sample(earlier, min(L1_GETS_PER_THREAD, len(earlier))) for _ in workers]

        def work(index: int) -> None:
            cache, _ = workers[index]
            for n, path in enumerate(files[index :: len(workers)]):
                ok = cache.put(path, value_of(path))
                with lock:
                    put_ok[path] = ok
                if n < len(reads[index]):
                    got = cache.get(reads[index][n])
                    assert got in (None, value_of(reads[index][n])), f"get returned another value: {got!r}"

        run_threads(len(workers), work)

    try:
        instances += [impl_factory(env), impl_factory(env)]  # two fresh instances, first used by 8 threads at once
        phase(1, instances)
        instances.pop(0).shutdown()  # a restart: a new instance over the same backends, used at once by its threads
        instances.insert(0, impl_factory(env))
        phase(2, instances)
        instances.append(impl_factory(env))  # a third instance joins populated backends
        phase(3, instances)
    finally:
        for cache in instances:
            cache.shutdown()

    failed_puts = sorted(Path(p).name for p, ok in put_ok.items() if ok is not True)
    assert not failed_puts, f"fault-free puts returned something other than True: {failed_puts[:10]}"
    expected = {path: value_of(path) for path in put_ok}

    probe = impl_factory(env)
    try:
        tiers = judged_tiers(probe, env)
        introspection = has_capability(probe, "tiers_holding")
        not_held = {}
        if introspection:
            for path in expected:
                held = probe.tiers_holding(path)
                if set(tiers) - held:
                    not_held[Path(path).name] = sorted(set(tiers) - held)
    finally:
        probe.shutdown()
    if not tiers:
        pytest.skip("not applicable: the implementation declares none of the shared tiers this Env configures")
    assert not not_held, (
        f"tiers_holding: {len(not_held)}/{len(expected)} entries put fault-free and never invalidated are missing "
        f"from a declared tier, e.g. {dict(list(not_held.items())[:5])}"
    )
    for tier in tiers:
        missing = missing_from_tier(impl_factory, env, tier, expected, str(tmp_path))
        assert not missing, (
            f"{len(missing)}/{len(expected)} entries put fault-free are not served from the {tier} tier by a "
            f"fresh instance sharing only that tier: {missing[:5]}"
        )


# --- L2 ------------------------------------------------------------------------------------------

WITH_REDIS = pytest.mark.parametrize("with_redis", [False, True], ids=["no-redis", "redis"])


def l2_cache(open_cache, with_redis: bool, request: pytest.FixtureRequest, capacity: int) -> Cache:
    redis_url = request.getfixturevalue("fake_redis_url") if with_redis else None
    cache = open_cache(redis_url=redis_url, max_memory_entries=capacity)
    if with_redis:
        require(cache, "redis")
    return cache


def put_all(cache: Cache, files: list[str]) -> list[str]:
    """THREADS threads put every file once; returns the files whose put did not return True (read from put
    itself: whether the `writes` counter agrees is P10's business)."""
    results: dict[str, object] = {}
    run_threads(THREADS, lambda t: results.update({p: cache.put(p, value_of(p)) for p in files[t::THREADS]}))
    return [Path(p).name for p in files if results.get(p) is not True]


def first_use_alone(cache: Cache, tmp_path: Path) -> None:
    """One get of a file nobody put: the instance's first use is done before the threads start (L1 covers
    concurrent first use); it stores nothing and invalidates nothing."""
    (lone,) = make_files(str(tmp_path / "lone"), ["never-put"])
    assert cache.get(lone) is None


@pytest.mark.prop("L2")
@WITH_REDIS
def test_L2_entries_that_fit_are_all_memory_hits(open_cache, with_redis, request, tmp_path):
    """8 threads of one instance put K = capacity distinct entries, then 8 threads get every one of them
    three times: every get must be a memory hit and nothing may be evicted.

    Neutral: no invalidation, no other instance, no clock move, K fits the capacity the Env gives; an LRU
    that holds up to `max_memory_entries` (P8) keeps all K whatever order the threads ran in, and P2 makes
    the memory tier the one that serves. Read through the contract's counters only (deltas, so whatever an
    implementation counts at start-up does not matter).
    """
    capacity = 64
    cache = l2_cache(open_cache, with_redis, request, capacity)
    first_use_alone(cache, tmp_path)
    files = make_files(str(tmp_path / "files"), [f"fit{i}" for i in range(capacity)])
    before = stat_counts(cache)
    failed = put_all(cache, files)
    after_puts = stat_counts(cache)
    assert not failed, f"fault-free puts did not all succeed: {failed[:5]}"
    assert delta(after_puts, before)["evictions"] == 0, f"{capacity} entries fit {capacity} places: evictions"
    wrong: list[str] = []

    def read(t: int) -> None:
        for rounds in range(3):
            for p in files[t + rounds :] + files[: t + rounds]:
                got = cache.get(p)
                if got != value_of(p):
                    wrong.append(f"{Path(p).name}: {got!r}")

    run_threads(THREADS, read)
    moved = delta(stat_counts(cache), after_puts)
    gets = THREADS * 3 * capacity
    assert not wrong, f"entries put and never invalidated were missed or wrong: {wrong[:5]}"
    # (whether total_requests moved by exactly `gets` is P10's, judged by its own tests)
    assert moved["memory_hits"] == gets, (
        f"only {moved['memory_hits']}/{gets} gets were memory hits (tiers credited: "
        f"{ {t: moved[t] for t in moved if t.endswith('_hits')} }); the memory tier lost entries that fit"
    )
    assert moved["evictions"] == 0


@pytest.mark.prop("L2")
@WITH_REDIS
def test_L2_memory_holds_exactly_capacity_and_evictions_are_exact(open_cache, with_redis, request, tmp_path):
    """8 threads of one instance put K > capacity distinct entries: `evictions` must grow by exactly
    K - capacity and the memory tier must then hold exactly `capacity` entries.

    Neutral: with no invalidation and no other instance, an LRU of N places that receives K distinct puts
    ends full and has evicted K - N, in any interleaving (P8). "Holds exactly N" is observed without
    knowing which N the interleaving left: then one thread gets each of the K entries once. Every get is
    a hit (the lower tiers hold them all); a memory miss is served below and promoted into memory (P2),
    and promotion into a FULL memory tier evicts exactly one entry, so `evictions` must grow by exactly
    the number of memory misses — any promotion that evicts nothing shows the tier was not full, i.e.
    held fewer than N. Finally the N most recently read entries must all be memory hits (LRU by get).
    With `tiers_holding` declared, exactly N entries report "memory" right after the puts as well.
    """
    capacity = 32
    k = THREADS * 24
    cache = l2_cache(open_cache, with_redis, request, capacity)
    first_use_alone(cache, tmp_path)
    files = make_files(str(tmp_path / "files"), [f"over{i}" for i in range(k)])
    before = stat_counts(cache)
    failed = put_all(cache, files)
    after_puts = stat_counts(cache)
    puts = delta(after_puts, before)
    assert not failed, f"fault-free puts did not all succeed: {failed[:5]}"
    assert puts["evictions"] == k - capacity, (
        f"{k} distinct puts into {capacity} places evicted {puts['evictions']}, expected exactly {k - capacity}"
    )
    if has_capability(cache, "tiers_holding"):
        in_memory = sum("memory" in cache.tiers_holding(p) for p in files)
        assert in_memory == capacity, f"tiers_holding: memory holds {in_memory} entries, capacity {capacity}"

    order = random.Random(SEED).sample(files, k)
    served = [credited_get(cache, p) for p in order]
    not_served = [Path(p).name for p, (got, _) in zip(order, served, strict=True) if got != value_of(p)]
    assert not not_served, f"entries put and never invalidated were missed or wrong: {not_served[:5]}"
    memory_misses = sum(tier != "memory" for _, tier in served)
    evicted = delta(stat_counts(cache), after_puts)["evictions"]
    assert memory_misses >= k - capacity
    assert evicted == memory_misses, (
        f"{memory_misses} gets missed memory and were promoted into it, but only {evicted} evictions followed: "
        f"the memory tier held fewer than {capacity} entries (or evictions are not counted exactly)"
    )
    recent = order[-capacity:]
    again = [credited_get(cache, p)[1] for p in reversed(recent)]
    assert again.count("memory") == capacity, (
        f"of the {capacity} entries read last, only {again.count('memory')} are memory hits: {again}"
    )


# --- L3 ------------------------------------------------------------------------------------------

HOT_SET = 150
WARM_ROUNDS = 3
MEASURED_ROUNDS = 20


class MixedWorkload:
    """gets:puts:invalidates = 100:10:1 per round, shuffled with a seeded RNG, over a hot set.

    An invalidated file is re-extracted by the next put (a changed file is read again), otherwise a put
    refreshes a random hot file with a new version: the workload a cache sees in service, in which a
    miss is rare for a correct cache. Each operation goes to `pick(rng)` of the instances given.
    """

    def __init__(self, files: list[str], seed: int) -> None:
        self.files = files
        self.rng = random.Random(seed)
        self.versions = {p: 0 for p in files}
        self.invalidated: list[str] = []
        self.gets = 0

    def round(self, instances: list[Cache]) -> list[str]:
        """One round; returns complaints about values no put ever stored for that file."""
        ops = ["get"] * 100 + ["put"] * 10 + ["invalidate"]
        self.rng.shuffle(ops)
        wrong = []
        for op in ops:
            cache = self.rng.choice(instances)
            if op == "get":
                path = self.rng.choice(self.files)
                got = cache.get(path)
                self.gets += 1
                if got is not None and not (
                    got.get("file") == Path(path).name and 0 <= got.get("version", -1) <= self.versions[path]
                ):
                    wrong.append(f"{Path(path).name}: {got!r}")
            elif op == "put":
                path = self.invalidated.pop(0) if self.invalidated else self.rng.choice(self.files)
                self.versions[path] += 1
                assert cache.put(path, value_of(path, self.versions[path])) is True, "a fault-free put failed"
            else:
                path = self.rng.choice([p for p in self.files if p not in self.invalidated])
                assert cache.invalidate(path) is True, "a fault-free invalidate failed"
                self.invalidated.append(path)
        return wrong


def warm(workload: MixedWorkload, instances: list[Cache]) -> None:
    for i, path in enumerate(workload.files):
        assert instances[i % len(instances)].put(path, value_of(path)) is True
    for _ in range(WARM_ROUNDS):
        assert not workload.round(instances)


def memory_share(workload: MixedWorkload, instances: list[Cache]) -> tuple[float, list[str]]:
    before = [stat_counts(c) for c in instances]
    gets_before = workload.gets
    wrong = []
    for _ in range(MEASURED_ROUNDS):
        wrong += workload.round(instances)
    moved = [delta(stat_counts(c), b) for c, b in zip(instances, before, strict=True)]
    gets = workload.gets - gets_before  # counted by the harness: whether total_requests agrees is P10's business
    return sum(m["memory_hits"] for m in moved) / gets, wrong


@pytest.mark.prop("L3")
@WITH_REDIS
def test_L3_memory_serves_at_least_90_percent_of_a_mixed_workload(open_cache, with_redis, request, tmp_path, measure):
    """One instance, no fault, gets:puts:invalidates = 100:10:1 over 150 hot files (capacity 1,000):
    after a warm-up, at least 90 % of gets must be memory hits.

    Neutral: single-threaded, seeded, no clock move and no timing, so the run is the same for every
    implementation; the hot set fits the memory tier, and each invalidated file is put again by the next
    put, so a correct cache misses memory only for the few gets of a file between its invalidation and
    its next put (about 1 % here) — well inside the 10 % the floor leaves. A slow cache passes; one that
    flushes or bypasses its memory tier does not. Values are checked too: a get returns None or a version
    put for that file.
    """
    cache = l2_cache(open_cache, with_redis, request, 1000)
    files = make_files(str(tmp_path / "hot"), [f"hot{i}" for i in range(HOT_SET)])
    workload = MixedWorkload(files, SEED)
    print(f"L3 seed {SEED}")
    warm(workload, [cache])
    share, wrong = memory_share(workload, [cache])
    measure(f"memory_share_one_instance_{'redis' if with_redis else 'no_redis'}", round(share, 4))
    print(f"memory share, one instance: {share:.1%}")
    assert not wrong, f"gets returned values no put stored for that file: {wrong[:5]}"
    assert share >= 0.9, f"only {share:.1%} of gets were served by the memory tier (floor 90 %)"


# --- measured, not judged ----------------------------------------------------------------------------


@pytest.mark.prop("E6")
@pytest.mark.real_redis
def test_measure_memory_share_with_two_instances(impl_factory, make_env, redis_server, measure, tmp_path):
    """The L3 workload split at random over two instances sharing valkey, a SQLite database and cache_dir:
    the share of gets served by memory is recorded (not judged: an implementation may trade memory hits
    for coherence between instances). Judged only what E6 allows any implementation: a get returns None
    or a version put for that file, never another file's or an unknown version.

    Neutral: seeded and single-threaded; the two instances share Redis, database, namespace and cache_dir
    (which makes them one cache, docs/contract.md section 5); an older version inside the staleness
    window, or a miss, is accepted, and the share itself is only recorded."""
    env = make_env(redis_url=redis_server.url)
    a, b = impl_factory(env), impl_factory(env)
    try:
        files = make_files(str(tmp_path / "hot"), [f"hot{i}" for i in range(HOT_SET)])
        workload = MixedWorkload(files, SEED + 1)
        warm(workload, [a, b])
        share, wrong = memory_share(workload, [a, b])
    finally:
        a.shutdown()
        b.shutdown()
    measure("memory_share_two_instances", round(share, 4))
    print(f"memory share with two instances: {share:.1%}")
    assert not wrong, f"gets returned values no put stored for that file: {wrong[:5]}"


STALENESS_TRIALS = 4
STALENESS_MARGIN = 1.0
"""Seconds of slack past the declared window before the poll gives up (as the E6 process tests allow)."""


def staleness_trials(a: Cache, b: Cache, files: list[str], judged: bool = True) -> list[float]:
    """Per file: put on A, B serves it (twice: into its memory), invalidate on A, then poll B on the
    monotonic clock until it misses. Returns the seconds from A's invalidate returning to B's first miss.
    Not `judged`: B still serving past the window ends the trial (recorded as infinite), without failing."""
    window = capabilities(b).staleness_seconds
    observed: list[float] = []
    for path in files:
        assert a.put(path, value_of(path)) is True
        assert b.get(path) == value_of(path), "a put on one instance is not served by the other (E6)"
        assert b.get(path) == value_of(path)
        assert a.invalidate(path) is True
        returned = time.monotonic()
        deadline = returned + window + STALENESS_MARGIN
        while True:
            got = b.get(path)
            now = time.monotonic()
            if got is None:
                observed.append(now - returned)
                break
            assert got == value_of(path), f"B served {got!r}, never put for this file"
            if not judged and now >= deadline:
                observed.append(math.inf)
                break
            assert now < deadline, (
                f"B still serves an entry invalidated on A {now - returned:.2f}s ago; declared window {window}s (E6)"
            )
            time.sleep(0.005)  # pacing of the poll, not synchronisation: the loop ends on B's first miss
        if observed[-1] != math.inf:
            assert b.get(path) is None, "B served the entry again after it had missed (E6)"
        # (A serving what A itself invalidated is P3's business, judged by the P3 machine, not by E6 here)
    return observed


@pytest.mark.prop("E6")
@pytest.mark.real_redis
@pytest.mark.parametrize("shared", ["valkey-database-disk", "database-disk"])
def test_measure_observed_staleness(impl_factory, make_env, request, shared, measure, tmp_path):
    """The E6 staleness actually observed: seconds from an invalidate on A returning to B's first miss,
    p50 and max over a few trials, next to the declared window. Shared backends: real valkey + SQLite +
    cache_dir, or no Redis at all (the SQLite database is then the only shared server; cache_dir stays
    shared, as instances sharing backends share it) when the implementation declares a SQLite database
    tier. Judged, with Redis shared, only the contract's bound: B misses within the declared
    `staleness_seconds` (plus a margin for polling) and does not serve the entry again. Without Redis it is
    measured only: SPEC's E6 names two instances sharing Redis and a database, so a cache that keeps
    instances coherent only through Redis is correct; a value served past the window is recorded as "inf".
    Every get must still return the value put for its file or None.

    Neutral: the window is the one the implementation declares (`capabilities(cache).staleness_seconds`),
    measured from the moment invalidate returned, on the monotonic clock; B is polled (a bounded loop that
    ends on its first miss), never timed against a fixed sleep; each trial uses a file B has never read,
    so its first get after the put must come from the shared tiers."""
    redis_url = request.getfixturevalue("redis_server").url if shared.startswith("valkey") else None
    env = make_env(redis_url=redis_url)
    a, b = impl_factory(env), impl_factory(env)
    try:
        if redis_url is None and not has_capability(b, "sqlite"):
            pytest.skip("not applicable: the implementation does not declare a SQLite database tier")
        files = make_files(str(tmp_path / "files"), [f"stale{i}" for i in range(STALENESS_TRIALS)])
        observed = staleness_trials(a, b, files, judged=redis_url is not None)
        window = capabilities(b).staleness_seconds
    finally:
        a.shutdown()
        b.shutdown()
    label = shared.replace("-", "_")
    honoured = [seconds for seconds in observed if seconds != math.inf]
    if honoured:
        measure(f"e6_staleness_p50_{label}", round(statistics.median(honoured), 4), unit="s")
        measure(f"e6_staleness_max_{label}", round(max(honoured), 4), unit="s")
    measure(f"e6_staleness_declared_{label}", window, unit="s")
    measure(f"e6_trials_served_past_window_{label}", len(observed) - len(honoured))
    print(f"E6 staleness ({shared}): {[round(s, 3) for s in observed]} s, declared window {window} s")
