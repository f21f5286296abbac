"""The runner's rules about what a fault excuses, checked on their own (no servers)."""

from __future__ import annotations

from tiercheck.chaos.nemesis import Nemesis
from tiercheck.chaos.runner import Runner, Summary


class _Fault(Nemesis):
    def __init__(self, tier: str, damaged: bool = False) -> None:
        self.tier, self.kind, self.damaged = tier, f"{tier} fault", damaged

    def still_damaged(self) -> bool:
        return self.damaged


def _runner(enabled: set[str], active: Nemesis | None = None, damaged: dict | None = None) -> Runner:
    runner = Runner.__new__(Runner)  # the rules read only these fields
    runner.enabled, runner.active, runner.damaged, runner.summary = enabled, active, damaged or {}, Summary()
    return runner


ALL_TIERS = {"memory", "redis", "disk", "database"}


def test_a_write_is_held_to_its_success_unless_every_durable_tier_is_out():
    assert _runner(ALL_TIERS).confirmed(True)
    assert not _runner(ALL_TIERS).confirmed(False)
    assert _runner(ALL_TIERS, _Fault("disk")).confirmed(True)  # the database can still record it
    assert _runner(ALL_TIERS, _Fault("redis"), {"database": _Fault("database", True)}).confirmed(True)
    both = _runner(ALL_TIERS, _Fault("disk"), {"database": _Fault("database", True)})
    assert not both.confirmed(True) and both.summary.unconfirmed == 1
    healed = _runner(ALL_TIERS, _Fault("disk"), {"database": _Fault("database", False)})
    assert healed.confirmed(True)  # the damage was found and replaced: the database records again
    no_introspection = _runner(set(), _Fault("disk"), {"database": _Fault("database", True)})
    assert no_introspection.confirmed(True)  # tiers unknown: strict
