"""Contract-only ways to see which tier serves an entry, for the effectiveness properties (L1-L3) and
the real-time expiry test.

Two observations, both through the contract:
- `credited_get`: one get and the tier its stats credit for it (the hit counter that moved).
- `single_tier_env`: an Env for a fresh instance in which only ONE tier is shared with the run under
  test (Redis: same redis_url, no database, an empty new cache_dir; database: same database_url, no
  Redis, an empty new cache_dir; disk: same cache_dir, no Redis, no database). What such an instance
  serves from that tier, the run left in that tier — whatever layout the implementation uses.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

from tiercheck.contract import TIER_NAMES, Cache, Env, capabilities

SHARED_TIERS = ("redis", "disk", "database")
"""The tiers instances share through the Env's backends (memory belongs to one instance)."""


def make_files(root: str, names: Iterable[str]) -> list[str]:
    """One file per name under `root`, each of distinct content (the content names the file)."""
    os.makedirs(root, exist_ok=True)
    paths = []
    for name in names:
        path = os.path.join(root, name)
        with open(path, "wb") as f:
            f.write(f"effectiveness content of {name}\n".encode())
        paths.append(path)
    return paths


def stat_counts(cache: Cache) -> dict[str, int]:
    """The contract's counters (SPEC section 2) as plain ints."""
    stats = cache.get_stats()
    names = ["total_requests", "hits", "misses", "evictions", "writes", "invalidations"]
    names += [f"{t}_hits" for t in TIER_NAMES]
    return {name: int(stats[name]) for name in names}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in after}


def credited_get(cache: Cache, path: str, tier: str = "premium") -> tuple[Any, str | None]:
    """(what get returned, the tier whose hit counter moved: None when none did, "a+b" when several did).

    Only for a cache no other thread is using: the stats delta of one get names its tier. Only the per-tier
    hit counters are read: whether total_requests, hits and misses add up is P10's to judge (the P10
    machine), not that of the tests that use this probe.
    """
    before = stat_counts(cache)
    value = cache.get(path, tier)
    moved = delta(stat_counts(cache), before)
    credited = [t for t in TIER_NAMES if moved[f"{t}_hits"]]
    return value, "+".join(credited) or None


def judged_tiers(cache: Cache, env: Env) -> list[str]:
    """The shared tiers this run must find its entries in: declared by the implementation AND configured."""
    caps = capabilities(cache)
    configured = {
        "redis": env.redis_url is not None,
        "disk": True,  # cache_dir is always given
        "database": env.database_url is not None and caps.accepts_database(env.database_url),
    }
    return [t for t in SHARED_TIERS if caps.has_tier(t) and configured[t]]


def single_tier_env(env: Env, tier: str, scratch_root: str) -> Env:
    """An Env sharing only `tier` with `env` (same namespace and clock); fresh empty dirs for the rest."""
    empty_dir = tempfile.mkdtemp(prefix=f"only-{tier}-", dir=scratch_root)
    if tier == "redis":
        return dataclasses.replace(env, database_url=None, cache_dir=os.path.join(empty_dir, "cache"))
    if tier == "database":
        return dataclasses.replace(env, redis_url=None, cache_dir=os.path.join(empty_dir, "cache"))
    if tier == "disk":
        return dataclasses.replace(env, redis_url=None, database_url=None)
    raise ValueError(f"not a shared tier: {tier!r}")


def missing_from_tier(
    factory: Callable[[Env], Cache],
    env: Env,
    tier: str,
    expected: dict[str, Any],
    scratch_root: str,
    variant: str = "premium",
) -> list[str]:
    """Paths whose expected value a fresh instance sharing only `tier` does not get credited to that tier.

    Each entry is read once; a read promotes only into that instance's own memory and empty cache_dir,
    so probing one tier never writes into another tier under judgement.
    """
    probe = factory(single_tier_env(env, tier, scratch_root))
    try:
        missing = []
        for path, value in expected.items():
            got, credited = credited_get(probe, path, variant)
            if got != value or credited != tier:
                missing.append(f"{os.path.basename(path)}: got {got!r} credited to {credited}")
        return missing
    finally:
        probe.shutdown()
