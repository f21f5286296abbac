"""The properties of SPEC section 3: IDs and titles in report order, and the capabilities each needs.

`NEEDS` says, in one line per property, what an implementation must have (tiers, database kinds,
`tiers_holding` introspection, the legacy API; see docs/contract.md, "Declared capabilities") for the
property's tests to apply. A test whose capability is missing is "not applicable" with the reason, never
a pass; `tiercheck list` prints these lines.
"""

from __future__ import annotations

PROPERTIES: dict[str, str] = {
    "P1": "Cache consistency",
    "P2": "Tier order and promotion",
    "P3": "Invalidation completeness",
    "P4": "Thread safety",
    "P5": "Error recovery",
    "P6": "Key uniqueness",
    "P7": "Compression round trip",
    "P8": "LRU eviction",
    "P9": "TTL expiration",
    "P10": "Statistics accuracy",
    "P11": "Method definition correctness",
    "P12": "Instantiation",
    "E1": "No resurrection",
    "E2": "Corruption detection",
    "E3": "Crash consistency",
    "E4": "Safe decoding",
    "E5": "Containment",
    "E6": "Multi-instance coherence",
    "E7": "Restart persistence",
    "E8": "Warming",
    "E9": "Legacy API",
    "E10": "Bounded resources",
    "L1": "Healthy tiers stay in use",
    "L2": "Memory tier works under concurrency",
    "L3": "Hit-rate floor",
}

NEEDS: dict[str, str] = {
    "P1": "the contract methods; some checks also use a Redis tier",
    "P2": "two or more tiers; tiers_holding() introspection for the promotion checks (stats for the rest)",
    "P3": "the contract methods",
    "P4": "the contract methods; the multi-process checks need a shared Redis or database tier",
    "P5": "the tiers it declares (each fault applies to a declared tier: redis, disk, sqlite or postgresql)",
    "P6": "the contract methods",
    "P7": "the contract methods",
    "P8": "a memory tier; tiers_holding() introspection for the eviction-order check",
    "P9": "the contract methods; tiers_holding() introspection to check every tier after cleanup()",
    "P10": "the contract methods",
    "P11": "Python source for the implementation's classes",
    "P12": "a factory importable in a clean child process",
    "E1": "a Redis or database tier that can have an outage and come back with old data",
    "E2": "a disk, Redis or database tier whose entries can be altered",
    "E3": "a persistent tier (disk, Redis or database) and a child process that can be killed",
    "E4": "a disk, Redis or database tier into which entries can be planted",
    "E5": "the contract methods (a disk or database tier for the containment checks to bite)",
    "E6": "a shared Redis or database tier (two instances over the same backends)",
    "E7": "a persistent tier (Redis, disk or database)",
    "E8": "warm_cache()",
    "E9": "the legacy module API (legacy_api capability)",
    "E10": "a memory tier and a disk budget; tiers_holding() introspection for the memory-budget check",
    "L1": "tiers_holding() introspection to see every declared tier holding its entries",
    "L2": "a memory tier; tiers_holding() introspection or per-tier hit stats",
    "L3": "a memory tier and per-tier hit stats (memory_hits)",
}


def normalize(ids: str | list[str] | None) -> list[str]:
    """'P1,E2' or ['p1'] → ['P1', 'E2']; raise ValueError naming unknown IDs."""
    if not ids:
        return list(PROPERTIES)
    items = ids.split(",") if isinstance(ids, str) else ids
    wanted = [i.strip().upper() for i in items if i.strip()]
    unknown = [i for i in wanted if i not in PROPERTIES]
    if unknown:
        raise ValueError(f"unknown property IDs {unknown}; known: {', '.join(PROPERTIES)}")
    return wanted
