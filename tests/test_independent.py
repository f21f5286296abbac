"""Each one-bug variant of the second, independent implementation (variants/independent) is caught by
the property meant to catch it. (That the implementation itself conforms — `tiercheck verify` exits 0 in
the `ci` profile — is checked by CI's wheel job, `.ci/wheel-check`, as a user would run it, and in `quick`
with three seeds by `nox -s independent`; a whole verify run does not fit the default test run's budget.)

Each runs the command a user runs, `tiercheck verify`, in a child process in the `ci` profile. A catch
that only a cache shaped like the reference would produce would not show here: these caches share no
code and no storage layout with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from variants.independent import CAUGHT_BY


def verify(impl: str, report_dir, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "TIERCHECK_PROFILE": "ci", "TIERCHECK_SHRINK": "0"}
    env.pop("TIERCHECK_IMPL", None)
    run = subprocess.run(
        [sys.executable, "-m", "tiercheck.cli", "verify", "--impl", impl, "--report-dir", str(report_dir), *extra],
        capture_output=True, text=True, env=env, timeout=1800,
    )  # fmt: skip
    return run, json.loads((report_dir / "tiercheck.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "prop"), sorted(CAUGHT_BY.items()))
def test_independent_variant_is_caught(variant: str, prop: str, tmp_path) -> None:
    run, report = verify(f"variants.independent.{variant}:factory", tmp_path, "--only", prop, "--fail-fast")
    assert run.returncode == 1, f"exit {run.returncode}, expected 1\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    verdict = next(v for v in report["verdicts"] if v["id"] == prop)
    assert verdict["verdict"] == "FAIL", f"{variant}: {prop} did not fail ({verdict['verdict']})"


def test_every_independent_variant_is_listed() -> None:
    """A variant added without its expected property would never be checked."""
    import variants.independent as package

    folder = os.path.dirname(package.__file__)
    modules = {name[:-3] for name in os.listdir(folder) if name.endswith(".py") and name != "__init__.py"}
    assert modules == set(CAUGHT_BY)
    assert len(modules) >= 6
    assert {"P3", "P5", "P9", "E1", "E2", "E4"} <= set(CAUGHT_BY.values())
