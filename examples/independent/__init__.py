"""A second, independent implementation of the tiercheck cache contract — and a "write your own" example.

Written from docs/contract.md alone, deliberately unlike the reference:

- Redis entries are plain strings (`SET`/`GET`, `PX` only as a space hint) under
  `<namespace>:indep:<epoch>:<content hash>.<tier hash>`;
- the disk tier keeps, per entry, a `.meta` sidecar (expiry, size, digest, entry file name) beside
  the entry file, plus one `STATE` file in `cache_dir`;
- SQLite only (`database_kinds=("sqlite",)`), no `tiers_holding`, no legacy API;
- one coarse `threading.RLock` around every operation and a breaker on `time.monotonic`: a store that
  fails is skipped for a second, then tried again;
- no resurrection (E1) by *epochs*: a store that fails, or is cleared, gets a fresh epoch recorded
  durably, and nothing stored under an older epoch is ever read again.

Run tiercheck on it from the repository root:

    tiercheck verify --impl examples.independent:factory                 # every property, ci profile
    tiercheck verify --impl examples.independent:factory --only P1,E1 -n 2

Writing your own: provide `factory(env) -> cache object` with the methods of docs/contract.md section
2, and declare what you support in a `tiercheck_capabilities` mapping (section 3) — this package does
both without importing tiercheck.
"""

from __future__ import annotations

from typing import Any

from .cache import CAPABILITIES, IndependentCache

__all__ = ["CAPABILITIES", "IndependentCache", "factory"]


def factory(env: Any) -> IndependentCache:
    """Build the cache over a tiercheck `Env` (any object with the same fields will do)."""
    return IndependentCache(env)
