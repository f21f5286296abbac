"""The chaos checks catch the fault-related broken variants (variants/__init__.py, CAUGHT_BY).

Each case runs one short, seeded chaos scenario against `variants.<name>:factory` and requires the
named check to report a violation; the same scenario on the implementation under test reports none.
"""

from __future__ import annotations

import pytest

from tiercheck.contract import load_factory

from .scenarios import E1_SCRIPT, HOSTILE_SCRIPT, run_fault

SEED = 7
CASES = {
    # variant: (fault kind, scripted fault window or None, checks of which one must fire)
    "errors_escape": ("redis SIGSTOP", None, {"exception escaped"}),
    "decode_errors_as_empty": ("disk entry bitflip", None, {"wrong value"}),
    "no_checksum": ("disk entry swap", None, {"wrong value"}),
    # a partition, not a pause: a paused Redis applies the buffered removal when it resumes
    "no_repair_journal": ("redis partition", E1_SCRIPT, {"resurrection"}),
    # pickle_disk (E4) is not here: the chaos runs judged "corrupt entry kept" by reading files back, which
    # is not contract behaviour (an implementation may keep bookkeeping files); its E4 test catches it.
    "raw_tier_filenames": ("redis reset mid-reply", HOSTILE_SCRIPT, {"containment"}),
}


def _run(factory, kind, script):
    return run_fault(factory, kind, SEED, cycles=1, ops=6, script=script)


@pytest.mark.parametrize("variant", sorted(CASES))
def test_chaos_checks_catch_variant(variant):
    kind, script, expected = CASES[variant]
    summary, orphans = _run(load_factory(f"variants.{variant}:factory"), kind, script)
    fired = {v.check for v in summary.violations}
    print(f"variants.{variant}: {kind} seed={SEED} -> {sorted(fired)}")
    assert fired & expected, f"variants.{variant} not caught: expected one of {sorted(expected)}, got {sorted(fired)}"
    assert orphans == []


@pytest.mark.parametrize("variant", sorted(CASES))
def test_same_scenarios_pass_on_the_implementation(impl_factory, variant):
    kind, script, _ = CASES[variant]
    summary, orphans = _run(impl_factory, kind, script)
    assert not summary.violations, "\n".join(str(v) for v in summary.violations[:10])
    assert orphans == []
