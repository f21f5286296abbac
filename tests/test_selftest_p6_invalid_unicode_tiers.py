"""P6 does not fail a cache that refuses tier strings UTF-8 cannot encode (a harness self-test).

SPEC's P6 asks that tier strings which are prefixes, case variants or contain separators never collide;
it does not ask that every code point be stored. test_P6_tier_strings_never_collide required `put` to
return True for "\\ud800" (a lone surrogate), so a cache that encodes tier strings strictly and refuses
that one with a ValueError failed P6 with no collision. Every other tier string must still store.
"""

from __future__ import annotations

import pytest
from fixture_runs import run_child

pytestmark = pytest.mark.selftest


def test_p6_passes_a_cache_refusing_lone_surrogate_tiers():
    run = run_child(
        "pytest", "tiercheck/properties/test_p6_p7_p8.py", "-k", "tier_strings_never_collide",
        "--tiercheck-impl", "strict_unicode_tiers:factory", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "1 passed" in out, out[-3000:]
