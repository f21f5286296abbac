"""One-bug variants of examples.independent, each caught by a named property.

They subclass `examples.independent.IndependentCache` and swap exactly one part, so a catch shows the
harness judges contract behaviour and not the reference's design. `tests/test_independent.py` runs
`tiercheck verify --impl variants.independent.<name>:factory --only <ID>` on each and requires a FAIL.
"""

CAUGHT_BY: dict[str, str] = {
    "invalidate_skips_database": "P3",
    "tier_errors_escape": "P5",
    "expiry_inclusive": "P9",
    "wall_clock_ttl": "P9",
    "failed_removal_forgotten": "E1",
    "checksum_unchecked": "E2",
    "pickle_fallback": "E4",
}
