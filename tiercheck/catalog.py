"""The properties of SPEC section 3: IDs and titles, in report order."""

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
