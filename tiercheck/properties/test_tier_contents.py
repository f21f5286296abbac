"""P9 and P2 checks that look into the backends themselves (properties/backend_probe.py).

`tiers_holding` reports live entries only, so "after cleanup() no tier holds an expired entry" and
"a Redis that lost an entry is refilled by promotion" are checked on the raw Redis namespace, cache
directory and SQLite file the harness gave the implementation.
"""

from __future__ import annotations

import uuid

import pytest

from tiercheck.pytest_plugin import require

from .backend_probe import evict_from_redis, where_held
from .machine import declared, skip_unless_accepted

TTL = 100.0


def marked(tmp_path, name: str) -> tuple[str, dict]:
    path = tmp_path / name
    path.write_bytes(f"content of {name}".encode())
    return str(path), {"marker": f"tiercheck-marker-{uuid.uuid4().hex}", "name": name}


def visible_or_skip(env, markers: list[str]) -> dict[str, set[str]]:
    held = {m: where_held(env, m) for m in markers}
    if not any(held.values()):
        pytest.skip("not applicable: entries are not visible in the raw backends (encoded beyond recognition)")
    return held


@pytest.mark.prop("P9")
def test_P9_cleanup_leaves_no_expired_entry_in_any_backend(
    open_cache, impl_factory, make_env, fake_redis_url, clock, tmp_path
):
    env = make_env(redis_url=fake_redis_url, compression_level=0, ttl_seconds=TTL)
    skip_unless_accepted(impl_factory, env)
    cache = open_cache(env)
    old = [marked(tmp_path, f"old{i}") for i in range(4)]
    for path, meta in old:
        assert cache.put(path, meta, "premium" if path.endswith(("0", "2")) else "free")
    clock.advance(TTL / 2)
    young = [marked(tmp_path, f"young{i}") for i in range(4)]
    for path, meta in young:
        assert cache.put(path, meta)
    held_before = visible_or_skip(env, [m["marker"] for _, m in old + young])
    clock.advance(TTL / 2)  # the old entries are exactly at put time + TTL: expired
    cache.cleanup()
    for path, meta in old:
        left = where_held(env, meta["marker"])
        assert not left, f"after cleanup() the expired entry of {path} is still held by {sorted(left)}"
    for path, meta in young:
        kept = where_held(env, meta["marker"])
        assert kept == held_before[meta["marker"]], (
            f"cleanup() removed the live entry of {path} from {sorted(held_before[meta['marker']] - kept)}"
        )
        assert cache.get(path) == meta


@pytest.mark.prop("P2")
def test_P2_an_entry_redis_lost_is_served_by_disk_and_promoted_back(
    open_cache, impl_factory, make_env, fake_redis_url, tmp_path
):
    """Redis at maxmemory evicts an entry: the next get is a disk hit, and promotion refills memory and Redis."""
    env = make_env(redis_url=fake_redis_url, compression_level=0)
    skip_unless_accepted(impl_factory, env)
    first = open_cache(env)
    for needed in ("tiers_holding", "redis", "disk"):
        require(first, needed)
    path, meta = marked(tmp_path, "photo.jpg")
    assert first.put(path, meta)
    if "redis" not in visible_or_skip(env, [meta["marker"]])[meta["marker"]]:
        pytest.skip("not applicable: the entry is not recognisable in Redis (encoded beyond recognition)")
    first.shutdown()
    assert evict_from_redis(env, meta["marker"]) > 0
    cache = open_cache(env)
    below = {t for t in declared(impl_factory).tiers if t in ("disk", "database")}
    held = cache.tiers_holding(path)
    if "memory" in held:  # allowed: then no get reaches the lower tiers, and nothing here is P2's to judge
        pytest.skip("not applicable: the new instance filled its memory tier at start-up; no get reaches disk")
    assert held == below, "after a restart and Redis's eviction, only the lower tiers hold it"
    assert cache.get(path) == meta
    stats = cache.get_stats()
    assert (stats["redis_hits"], stats["disk_hits"], stats["database_hits"]) == (0, 1, 0)
    held = cache.tiers_holding(path)
    assert {"memory", "redis"} <= held, f"served by disk, but afterwards only {sorted(held)} hold it"
    assert "redis" in where_held(env, meta["marker"])
