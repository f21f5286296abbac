"""Which checker findings a test of one property judges (SPEC section 5: a property's verdict comes only from
its own tests, and each names only its own contract behaviour).

A P5 test judges every finding (under a fault: no exception, no wrong data, healthy tiers keep storing,
re-admission). A test of another property judges its own property's findings and wrong data — a value the
history cannot explain, whichever name the checker gave it (the name is a heuristic) — plus the checks it
names in `also`. The rest (an exception, a return type, a stats counter, a late re-admission) belongs to the
properties whose own tests judge it: it is printed as "not judged here", never hidden and never a FAIL.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import Violation

WRONG_DATA = frozenset({"resurrection", "stale read", "wrong value"})


def judged(violations: Iterable[Violation], own: str | None, also: frozenset[str] = frozenset()) -> list[Violation]:
    """The violations a test of property `own` judges (None: a P5 test, every one); the others are printed."""
    found = list(violations)
    kept = [v for v in found if own is None or v.prop == own or v.check in WRONG_DATA | also]
    for v in found:
        if v not in kept:
            print(f"not judged here ({v.prop}'s business): {v}")
    return kept
