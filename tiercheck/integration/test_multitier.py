"""Multi-tier operations end to end against a real valkey-server and a real database tier.

Every test runs twice — on the session's PostgreSQL and on a SQLite file — with the same
assertions (parity). The implementation is reached only through the contract: `Env` + the
factory named by --impl (`open_cache`), plus the optional `tiers_holding` / `legacy_module`
capabilities, which are skipped as not applicable when missing. The harness looks at the
servers directly only to check what the contract promises about them (the namespace prefix).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import threading
import uuid
import warnings
from pathlib import Path

import pytest
import redis

from tiercheck.contract import has_capability
from tiercheck.properties.backend_probe import redis_keys_holding
from tiercheck.properties.machine import declared, skip_unless_accepted
from tiercheck.pytest_plugin import require

pytestmark = [pytest.mark.real_redis]


@pytest.fixture
def real_env(real_env, impl_factory):
    """The integration Env builder, skipping as not applicable a database kind the implementation does not
    declare (e.g. PostgreSQL for a SQLite-only cache)."""

    def build(**overrides):
        env = real_env(**overrides)
        skip_unless_accepted(impl_factory, env)
        return env

    return build


def marker(tag: str) -> str:
    """A string put inside metadata, to find an entry's bytes in Redis whatever the key scheme."""
    return f"tiercheck-marker-{tag}-{uuid.uuid4().hex}"


def entries_in_redis(env, mark: str) -> list[bytes]:
    """Keys of the namespace whose value (any type) carries the marker: entries, not bookkeeping."""
    return redis_keys_holding(env.redis_url, env.namespace, mark)


def make_files(root: Path, count: int, prefix: str = "f", size: int = 0) -> list[str]:
    """`count` files of distinct content (optionally padded to `size` bytes)."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = root / f"{prefix}{i}"
        body = f"{prefix} content {i}\n".encode()
        path.write_bytes(body.ljust(size, b".") if size else body)
        paths.append(str(path))
    return paths


def disk_bytes(cache_dir: str) -> int:
    total = 0
    for root, _, files in os.walk(cache_dir):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def check_stats_invariants(stats) -> None:
    assert stats["hits"] + stats["misses"] == stats["total_requests"], stats
    assert stats["hits"] == sum(stats[f"{t}_hits"] for t in ("memory", "redis", "disk", "database")), stats


def bulk_load(cache, paths: list[str], tiers: list[str], workers: int = 8, mark: str = "") -> None:
    """Store one entry per (path, tier) through the contract: warm_cache is its concurrent bulk put."""
    for tier in tiers:
        result = cache.warm_cache(
            paths, lambda p, t: {"path": os.path.basename(p), "tier": t, "marker": mark}, tier, workers
        )
        assert all(result.values()), f"{sum(not ok for ok in result.values())} entries could not be stored"


# --- the basic operations, tier by tier ---------------------------------------------------------


def test_put_get_promote_invalidate_end_to_end(open_cache, real_env, impl_factory, clock, tmp_path):
    env = real_env()
    cache = open_cache(env)
    require(cache, "redis")  # the second instance's first hit is checked as a Redis hit
    a, b = make_files(tmp_path / "files", 2)
    assert cache.get(a) is None
    assert cache.put(a, {"camera": "X100", "n": [1, 2.5, None, True]}) is True
    assert cache.put(a, {"camera": "free"}, tier="free") is True
    assert cache.put(b, {"b": 1}) is True
    assert cache.get(a) == {"camera": "X100", "n": [1, 2.5, None, True]}
    assert cache.get(a, "free") == {"camera": "free"}
    if has_capability(cache, "tiers_holding"):
        assert cache.tiers_holding(a) == set(declared(impl_factory).tiers), "a put must reach every healthy tier"

    # A second instance over the same backends: the entry comes from Redis and is promoted.
    cache.shutdown()
    cache = open_cache(env)
    before = dict(cache.get_stats())
    assert cache.get(a) == {"camera": "X100", "n": [1, 2.5, None, True]}
    after = cache.get_stats()
    assert after["redis_hits"] - before["redis_hits"] == 1, "after a restart Redis is the fastest holder"
    if has_capability(cache, "tiers_holding"):
        assert "memory" in cache.tiers_holding(a), "a Redis hit is promoted into memory"
    assert cache.get(a) == {"camera": "X100", "n": [1, 2.5, None, True]}
    assert cache.get_stats()["memory_hits"] - after["memory_hits"] == 1

    # invalidate(file, tier) removes that tier name only; invalidate(file) every one.
    assert cache.invalidate(a, "free") is True
    assert cache.get(a, "free") is None
    assert cache.get(a) is not None
    assert cache.invalidate(a) is True
    assert cache.get(a) is None and cache.get(a, "free") is None
    assert cache.get(b) == {"b": 1}
    stats = cache.get_stats()
    check_stats_invariants(stats)
    assert (stats["invalidations"], stats["writes"], stats["total_requests"]) == (2, 0, 7)
    cache.shutdown()
    cache = open_cache(env)
    assert cache.get(a) is None, "an invalidation must hold for a new instance"
    assert cache.get(b) == {"b": 1}

    # TTL from the injected clock: served before expiry, by no tier after, gone after cleanup.
    clock.advance(env.ttl_seconds - 1)
    assert cache.get(b) == {"b": 1}
    clock.advance(1)
    assert cache.get(b) is None
    cache.cleanup()
    if has_capability(cache, "tiers_holding"):
        assert cache.tiers_holding(b) == set()
    check_stats_invariants(cache.get_stats())


def test_modified_file_never_serves_old_content(open_cache, real_env, tmp_path):
    cache = open_cache(real_env())
    path = tmp_path / "img.jpg"
    path.write_bytes(b"version one")
    assert cache.put(str(path), {"v": 1})
    path.write_bytes(b"version two")  # same size
    assert cache.get(str(path)) is None
    assert cache.put(str(path), {"v": 2})
    path.write_bytes(b"version one")
    assert cache.get(str(path)) == {"v": 1}, "content-addressed: the old content's entry is still valid"


# --- E7 restart persistence ---------------------------------------------------------------------


@pytest.mark.prop("E7")
def test_E7_live_entries_survive_restart(open_cache, real_env, tmp_path):
    env = real_env()
    paths = make_files(tmp_path / "files", 40)
    cache = open_cache(env)
    for i, p in enumerate(paths):
        assert cache.put(p, {"i": i}, tier="premium" if i % 2 else "free")
    cache.shutdown()

    cache = open_cache(env)
    # E7 judges what is served; which tier the stats credit is P2's and P10's business (and a memory tier filled
    # at start-up is allowed), so the counters are not read here.
    for i, p in enumerate(paths):
        assert cache.get(p, "premium" if i % 2 else "free") == {"i": i}
    cache.shutdown()

    # Redis lost the namespace and the disk tier is gone: the database still serves every entry.
    require(cache, "database")
    client = redis.Redis.from_url(env.redis_url)
    for key in client.scan_iter(match=f"{env.namespace}*"):
        client.delete(key)
    client.close()
    cache = open_cache(dataclasses.replace(env, cache_dir=str(tmp_path / "fresh-cache")))
    for i, p in enumerate(paths):  # only the database can serve them now (Redis emptied, a new cache_dir)
        assert cache.get(p, "premium" if i % 2 else "free") == {"i": i}


@pytest.mark.prop("E7")
def test_E7_survives_server_restarts(open_cache, real_env, real_database_url, request, tmp_path):
    """A dedicated valkey-server (restarted without its data) and the session PostgreSQL (restarted
    with its data): a new instance still serves every live entry, and invalidations still hold."""
    from tiercheck.integration import servers

    try:
        own_redis = servers.start_redis()
    except servers.Unavailable as exc:
        pytest.skip(f"not applicable: {exc}")
    try:
        if not own_redis.controllable:
            pytest.skip("not applicable: an external Redis server cannot be restarted by the harness")
        env = real_env(redis_url=own_redis.url)
        paths = make_files(tmp_path / "files", 20)
        cache = open_cache(env)
        for i, p in enumerate(paths):
            assert cache.put(p, {"i": i})
        assert cache.invalidate(paths[0])
        cache.shutdown()
        own_redis.restart(empty=True)
        if real_database_url.startswith("postgres"):
            postgres_server = request.getfixturevalue("postgres_server")  # only a PostgreSQL run needs it
            if postgres_server.controllable:
                postgres_server.restart()
        cache = open_cache(env)
        assert cache.get(paths[0]) is None
        for i, p in enumerate(paths[1:], start=1):  # the tier credited is P2's and P10's business, not read here
            assert cache.get(p) == {"i": i}
        assert cache.put(paths[0], {"again": True}) and cache.get(paths[0]) == {"again": True}
    finally:
        own_redis.close()


# --- management at scale --------------------------------------------------------------------------


def _clear_all_at(open_cache, env, tmp_path, files: int, tiers: list[str]) -> None:
    paths = make_files(tmp_path / "bulk", files)
    cache = open_cache(env)
    mark = marker("clear")
    bulk_load(cache, paths, tiers, mark=mark)
    sample = random.Random(files).sample(paths, min(200, files))
    assert all(cache.get(p, tiers[-1]) is not None for p in sample)
    # Under load a put may skip Redis (a timeout opens its breaker): allowed. What is checked is what clear_all
    # leaves: no key of the namespace still carries an entry's bytes (found by the marker in every entry,
    # whatever the key scheme; bookkeeping keys carry no marker and may stay).
    visible = has_capability(cache, "redis") and bool(entries_in_redis(env, mark))
    before = cache.get_stats()
    assert before["writes"] == files * len(tiers)

    cache.clear_all()
    if visible:
        left = entries_in_redis(env, mark)
        assert not left, f"{len(left)} keys of the namespace still hold entries after clear_all: {left[:5]}"
    assert all(cache.get(p, t) is None for p in sample for t in tiers)
    cache.shutdown()
    cache = open_cache(env)  # nothing comes back from the disk or database tier either
    assert all(cache.get(p, t) is None for p in sample for t in tiers)
    if has_capability(cache, "tiers_holding"):
        assert all(cache.tiers_holding(p, tiers[0]) == set() for p in sample[:20])
    check_stats_invariants(cache.get_stats())


def test_clear_all_management(open_cache, real_env, tmp_path):
    """The default-run size: 1,500 entries (500 files x 3 tiers)."""
    _clear_all_at(
        open_cache, real_env(max_memory_entries=2000, compression_level=0), tmp_path, 500, ["free", "premium", "super"]
    )


@pytest.mark.scale
@pytest.mark.slow
@pytest.mark.timeout(1800)  # 100,000 puts with an fsync each: minutes on 2 busy cores
def test_clear_all_management_100k(open_cache, real_env, tmp_path):
    """100,000 entries (25,000 files x 4 tiers), then clear_all: no entry key left in Redis, all miss."""
    env = real_env(max_memory_entries=10_000, compression_level=0)
    _clear_all_at(open_cache, env, tmp_path, 25_000, ["free", "starter", "premium", "super"])


def test_cleanup_stats_and_disk_budget(open_cache, real_env, clock, tmp_path):
    budget = 64 * 1024
    env = real_env(max_disk_bytes=budget, compression_level=0)
    cache = open_cache(env)
    rng = random.Random(7)
    paths = make_files(tmp_path / "files", 120)
    expiring = marker("expiring")
    for i, p in enumerate(paths):
        assert cache.put(p, {"i": i, "blob": rng.randbytes(600).hex(), "m": expiring})  # ~1.2 KiB each: 2x the budget
        assert disk_bytes(env.cache_dir) <= budget, "the disk tier must stay within its budget after a put"
    cache.cleanup()
    assert disk_bytes(env.cache_dir) <= budget, "max_disk_bytes exceeded after cleanup"
    # Evicted from disk is not lost: Redis and the database still hold every entry.
    fresh = open_cache(env)
    assert all(fresh.get(p) is not None for p in paths)
    stats = fresh.get_stats()
    check_stats_invariants(stats)
    assert stats["total_requests"] == len(paths) and stats["misses"] == 0

    # Half of the entries expire; cleanup removes them from every tier and keeps the others.
    clock.advance(env.ttl_seconds / 2)
    later = make_files(tmp_path / "later", 10, prefix="l")
    for p in later:
        assert cache.put(p, {"later": True})
    clock.advance(env.ttl_seconds / 2)
    cache.cleanup()
    fresh.cleanup()
    assert all(fresh.get(p) is None for p in paths)
    assert all(fresh.get(p) == {"later": True} for p in later)
    if has_capability(fresh, "tiers_holding"):
        assert all(fresh.tiers_holding(p) == set() for p in paths[:10])
    left = entries_in_redis(env, expiring)
    assert not left, f"after cleanup() {len(left)} keys of the namespace still hold expired entries: {left[:5]}"
    stats = cache.get_stats()
    assert stats["writes"] == len(paths) + len(later) and stats["total_requests"] == 0


# --- E8 warming at size ------------------------------------------------------------------------


@pytest.mark.prop("E8")
def test_E8_warming_1000_files_bounded_no_reextraction(open_cache, real_env, tmp_path):
    max_workers = 4
    cache = open_cache(real_env())
    paths = make_files(tmp_path / "warm", 1000, prefix="w")
    for p in paths[:50]:  # already cached: must never be extracted
        assert cache.put(p, {"pre": True})
    failing = set(paths[100:1000:97])
    lock = threading.Lock()
    active, peak, calls = [0], [0], []
    first_wave = threading.Barrier(max_workers, timeout=30)  # proves max_workers really run at once
    wave_broken = []

    def extract(path: str, tier: str) -> dict:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            calls.append(path)
            in_first_wave = len(calls) <= max_workers
        try:
            if in_first_wave:
                try:
                    first_wave.wait()
                except threading.BrokenBarrierError:
                    wave_broken.append(path)
            digest = slow_digest(path)  # "slow": a little CPU work per file, so workers overlap, no sleep
            if path in failing:
                raise OSError(f"cannot read {path}")
            return {"name": os.path.basename(path), "digest": digest}
        finally:
            with lock:
                active[0] -= 1

    result = cache.warm_cache(paths, extract, max_workers=max_workers)
    assert peak[0] <= max_workers, f"{peak[0]} extractions at once with max_workers={max_workers}"
    assert not wave_broken, f"only {peak[0]} of {max_workers} workers ever extracted at once"
    assert set(result) == set(paths), "every file must be reported"
    assert result == {p: p not in failing for p in paths}
    assert len(calls) == len(set(calls)) == len(paths) - 50, "a file was extracted twice, or a cached one at all"
    assert not set(calls) & set(paths[:50])
    # whether warming's look-ups count as caller requests is P10's (test_P10_warming_lookups_are_not_caller_requests)

    calls.clear()
    again = cache.warm_cache(paths, extract, max_workers=max_workers)
    assert sorted(calls) == sorted(failing), "a second warming may extract only what failed before"
    assert again == {p: p not in failing for p in paths}
    assert cache.get(paths[500]) == {"name": "w500", "digest": slow_digest(paths[500])}


def slow_digest(path: str) -> int:
    digest = 0
    for byte in Path(path).read_bytes() * 50:
        digest = (digest * 31 + byte) & 0xFFFFFFFF
    return digest


# --- E9 legacy API over real servers ------------------------------------------------------------


@pytest.mark.prop("E9")
def test_E9_legacy_api_on_real_servers(open_cache, real_env, tmp_path):
    env = real_env(compression_level=0)  # so the marker in an entry is visible in Redis
    cache = open_cache(env)
    require(cache, "legacy")
    legacy = cache.legacy_module
    if not hasattr(legacy, "install"):
        pytest.skip("not applicable: the legacy module offers no `install(cache)` to point it at the test's backends")
    legacy.install(cache)
    a, b = make_files(tmp_path / "files", 2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # warn-once is checked by properties E9
            assert legacy.set_cache(a, {"dpi": 300}) is True
            assert cache.get(a) == {"dpi": 300}
            assert cache.put(b, {"dpi": 600}, "free")
            assert legacy.get_from_cache(b, "free") == {"dpi": 600}
            assert legacy.get_cache() is cache
            assert legacy.get_cache_stats()["writes"] == cache.get_stats()["writes"]  # agree (exactness is P10's)
            info = legacy.get_cache_info()
            assert isinstance(info, dict) and info
            digest = legacy.get_file_hash_quick(a)
            assert isinstance(digest, str) and digest
            assert legacy.get_file_hash_quick(a) == digest
            assert legacy.get_file_hash_quick(b) != digest, "two different files hashed alike"
            assert legacy.clear_cache_pattern("*") >= 2
            assert cache.get(a) is None and cache.get(b, "free") is None
            fresh = open_cache(env)  # the removal reached the shared tiers, not only memory
            assert fresh.get(a) is None and fresh.get(b, "free") is None
            mark = marker("legacy")
            assert legacy.set_cache(a, {"dpi": 1, "m": mark})
            assert fresh.get(a) == {"dpi": 1, "m": mark}, "a legacy put is served by another instance"
            visible = bool(entries_in_redis(env, mark))
            legacy.clear_cache()
            assert cache.get(a) is None
            assert not (visible and entries_in_redis(env, mark)), "clear_cache() left the entry in Redis"
            legacy.shutdown_cache()
    finally:
        legacy.install(None)
