"""The verdict rule, measurements and notes end to end: a real pytest run (in-process and under pytest-xdist)
of tests that do and do not build the implementation, folded by `VerdictRecorder` and `summarize`.

Only a test with `impl_factory` in its fixture closure (directly or through `open_cache`) counts: a harness test
marked with a property, or a self-test, never makes a property pass or fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.selftest

SUITE = """
import pytest

@pytest.mark.prop("P1")
def test_builds_a_cache(open_cache, measure, request):
    assert open_cache().get("/nonexistent") is None
    measure("share", 0.5, unit="share")
    measure("seconds", 1.25, unit="s")
    request.node.user_properties.append(("tiercheck.note", "looked at one file"))

@pytest.mark.prop("P1")
def test_harness_only_passes():
    pass

@pytest.mark.prop("P2")
def test_capability_missing(impl_factory):
    pytest.skip("not applicable: the implementation does not declare it")

@pytest.mark.prop("P2")
def test_harness_only_fails():
    assert False, "a bug of the harness, not of the implementation"

@pytest.mark.prop("P3")
@pytest.mark.selftest
def test_a_selftest_with_the_factory(impl_factory):
    assert False
"""

DRIVER = """
import json, sys
from dataclasses import asdict
import pytest
from tiercheck.verdicts import VerdictRecorder, summarize
recorder = VerdictRecorder()
args = [sys.argv[1], "-p", "tiercheck.pytest_plugin", "-p", "tiercheck.recording", "-p", "no:cacheprovider", "-q",
        *sys.argv[2:]]
pytest.main(args, plugins=[recorder])
records = list(recorder.records.values())
print("RESULT " + json.dumps({"records": [asdict(r) for r in records],
                              "verdicts": [asdict(v) for v in summarize(records, ["P1", "P2", "P3"])]}))
"""


@pytest.mark.parametrize("workers", [[], ["-p", "xdist", "-n", "2"]], ids=["in-process", "xdist"])
def test_tests_that_never_built_the_implementation_do_not_count(tmp_path, workers):
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))
    run = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path / "test_suite.py"), *workers],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    line = next((x for x in run.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(line.removeprefix("RESULT "))
    exercised = {
        r["nodeid"].rsplit("::", 1)[-1]: (r["exercised_implementation"], r["selftest"]) for r in result["records"]
    }
    assert exercised == {
        "test_builds_a_cache": (True, False),
        "test_harness_only_passes": (False, False),
        "test_capability_missing": (True, False),
        "test_harness_only_fails": (False, False),
        "test_a_selftest_with_the_factory": (True, True),
    }
    (built,) = [r for r in result["records"] if r["nodeid"].endswith("test_builds_a_cache")]
    assert built["measurements"] == [
        {"name": "share", "value": 0.5, "unit": "share"},
        {"name": "seconds", "value": 1.25, "unit": "s"},
    ]
    assert built["notes"] == ["looked at one file"]
    verdicts = {v["id"]: v for v in result["verdicts"]}
    assert (verdicts["P1"]["verdict"], verdicts["P1"]["tests"], verdicts["P1"]["not_counted"]) == ("pass", 1, 1)
    # P2's only implementation test skipped; the failing test never built a cache
    assert verdicts["P2"]["verdict"] == "not applicable"
    assert verdicts["P2"]["reasons"] == ["not applicable: the implementation does not declare it"]
    assert verdicts["P3"]["verdict"] == "not run" and verdicts["P3"]["not_counted"] == 1
