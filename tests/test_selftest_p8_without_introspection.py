"""P8 is judged through the stats when an implementation offers no `tiers_holding` (a harness self-test).

docs/contract.md section 3: without introspection a check is judged through the contract (which tier the
stats credit) where it can be; only P2 promotion and the E10 memory budget are not applicable. P8 used to
need `tiers_holding` and reported "not applicable" for every such implementation (examples/independent, a
third probe implementation), so a FIFO memory tier there went unjudged. This runs the user's command on a
FIFO variant with its introspection hidden and requires P8 to FAIL.
"""

from __future__ import annotations

import json

import pytest
from fixture_runs import run_child

pytestmark = pytest.mark.selftest


def test_p8_catches_a_fifo_memory_tier_without_tiers_holding(tmp_path):
    run = run_child(
        "tiercheck.cli", "verify", "--impl", "fifo_without_introspection:factory", "--only", "P8",
        "--report-dir", str(tmp_path), "-n", "0", timeout=600, TIERCHECK_SHRINK="0",
    )  # fmt: skip
    report = json.loads((tmp_path / "tiercheck.json").read_text())
    verdicts = {v["id"]: v["verdict"] for v in report["verdicts"]}
    assert verdicts.get("P8") == "FAIL", (
        f"P8 verdict {verdicts.get('P8')!r}, exit {run.returncode}\n{run.stdout[-2000:]}"
    )
    assert run.returncode == 1
