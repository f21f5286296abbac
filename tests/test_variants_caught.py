"""Every deliberately broken variant (variants/) is caught, in the CI profile, by the property meant to catch it.

Each case runs the real command a user runs, `tiercheck verify --impl variants.<name>:factory --only
<ID> --fail-fast`, in a child process, once per expected property, and requires exit code 1 with a
FAIL verdict for that property in the JSON report. Shrinking is switched off (TIERCHECK_SHRINK=0):
it changes how the counterexample reads, not whether the property fails, and a shrink can take minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from variants import CAUGHT_BY


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "prop"), [(v, p) for v in sorted(CAUGHT_BY) for p in CAUGHT_BY[v]])
def test_variant_is_caught(variant: str, prop: str, tmp_path) -> None:
    env = {**os.environ, "TIERCHECK_PROFILE": "ci", "TIERCHECK_SHRINK": "0"}
    env.pop("TIERCHECK_IMPL", None)
    run = subprocess.run(
        [sys.executable, "-m", "tiercheck.cli", "verify", "--impl", f"variants.{variant}:factory",
         "--only", prop, "--report-dir", str(tmp_path), "--fail-fast"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert run.returncode == 1, f"exit {run.returncode}, expected 1\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    report = json.loads((tmp_path / "tiercheck.json").read_text())
    verdicts = {v["id"]: v["verdict"] for v in report["verdicts"]}
    assert verdicts.get(prop) == "FAIL", f"{variant}: {prop} did not fail (verdicts {verdicts})"


def test_every_variant_module_is_listed() -> None:
    """A variant added without its expected property would never be checked."""
    import variants

    folder = os.path.dirname(variants.__file__)
    modules = {name[:-3] for name in os.listdir(folder) if name.endswith(".py") and name != "__init__.py"}
    assert modules == set(CAUGHT_BY)
    assert len(modules) >= 15
