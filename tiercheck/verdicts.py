"""Turn pytest outcomes into one verdict per property (pass / FAIL / not applicable).

`tiercheck.recording` (loaded where the tests run, pytest-xdist workers included) attaches to every report of a
test carrying `@pytest.mark.prop("ID")` its property IDs, the Hypothesis examples it ran, whether it exercised
the implementation (the `impl_factory` fixture is in its closure) and whether it is a self-test.
`VerdictRecorder` (in the controlling process) folds the reports into one record per test — outcome, skip
reason, failure text with its counterexample steps and replay command, examples and time — and prints a line
as each test finishes.

`summarize` folds the records into verdicts. Only tests that exercised the implementation count (self-tests
and tests that never reached the implementation's factory prove nothing about it): FAIL if any of them failed;
pass if at least one passed and none failed; not applicable when every one was skipped (the reasons are
kept); not run when none ran — never pass.

`write_json` writes the report documented in docs/report-schema.md (JSON Schema: tiercheck/report.schema.json).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .catalog import PROPERTIES
from .recording import exercises_implementation, is_selftest, property_ids
from .replay import parse_failure, replay_command

SCHEMA_VERSION = 2
VERDICTS = ("pass", "FAIL", "not applicable", "not run")


@dataclass
class TestRecord:
    __test__ = False  # not a pytest test class

    nodeid: str
    properties: list[str]
    outcome: str = "not run"  # passed | failed | skipped | not run
    reason: str = ""
    failure: str = ""
    examples: int = 0
    seconds: float = 0.0
    message: str = ""
    steps: list[str] = field(default_factory=list)
    replay: str = ""
    reproduce_failure: str | None = None
    exercised_implementation: bool = False  # the test's fixture closure holds impl_factory
    selftest: bool = False  # marked @pytest.mark.selftest: a test of the harness
    notes: list[str] = field(default_factory=list)  # what the test says it looked at (e.g. P11's files)
    measurements: list[dict[str, Any]] = field(default_factory=list)  # {name, value, unit}: measured, not judged

    @property
    def counts(self) -> bool:
        """Whether this test's outcome may decide a verdict."""
        return self.exercised_implementation and not self.selftest


@dataclass
class Verdict:
    id: str
    title: str
    verdict: str  # pass | FAIL | not applicable | not run
    tests: int = 0  # tests that exercised the implementation
    examples: int = 0
    seconds: float = 0.0
    reasons: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    not_counted: int = 0  # tests marked with this property that did not exercise the implementation


class VerdictRecorder:
    """The pytest plugin object: pass it to `pytest.main(plugins=[...])` together with `-p tiercheck.recording`.

    `impl`, `profile` and `seed` go into each failure's replay command; `progress` (a callable taking one
    line) is called as each test finishes; with `quiet_terminal`, pytest's own per-test letters and its
    failure sections are left out (the caller prints the verdicts and failures itself).
    """

    def __init__(
        self,
        impl: str = "",
        profile: str = "ci",
        seed: int | None = None,
        progress: Callable[[str], None] | None = None,
        quiet_terminal: bool = False,
    ) -> None:
        self.records: dict[str, TestRecord] = {}
        self.impl, self.profile, self.seed = impl, profile, seed
        self.progress = progress
        self.quiet_terminal = quiet_terminal
        self.rootdir: Path | None = None
        self.total = 0
        self.finished = 0
        self._config: pytest.Config | None = None
        self._started = time.monotonic()

    def pytest_configure(self, config: pytest.Config) -> None:
        self._config = config
        self.rootdir = config.rootpath
        if not self.impl:
            self.impl = config.getoption("--impl", default="") or ""

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            ids = property_ids(item)
            if ids:
                record = self.records.setdefault(item.nodeid, TestRecord(item.nodeid, ids))
                record.exercised_implementation = exercises_implementation(item)
                record.selftest = is_selftest(item)
        self.total = len(self.records)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.total = max(self.total, len(ids))

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config):
        result = yield
        if self.quiet_terminal and result and isinstance(result, tuple) and len(result) == 3:
            category, _letter, word = result
            return category, "", word  # no dot per test: our progress lines say it
        return result

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        extra: dict[str, Any] = dict(report.user_properties)
        record = self.records.get(report.nodeid)
        if record is None:
            ids = extra.get("tiercheck.properties")
            if not ids:
                return
            record = self.records[report.nodeid] = TestRecord(report.nodeid, list(ids))
        record.seconds += report.duration
        # user_properties is the item's whole list so far: take ours from it afresh (the teardown has them all)
        record.notes = [str(v) for k, v in report.user_properties if k == "tiercheck.note"]
        record.measurements = [measurement(v) for k, v in report.user_properties if k == "tiercheck.measure"]
        if "tiercheck.exercised" in extra:
            record.exercised_implementation = bool(extra["tiercheck.exercised"])
            record.selftest = bool(extra.get("tiercheck.selftest", False))
        if report.when == "call":
            record.examples = int(extra.get("tiercheck.examples", 0))
        if report.skipped:
            record.outcome = "skipped"
            longrepr = report.longrepr
            record.reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            record.reason = record.reason.removeprefix("Skipped: ")
        elif report.failed:
            record.outcome = "failed"
            text = report.longreprtext
            if report.when != "call":
                text = f"(error in test {report.when})\n{text}"
            info = parse_failure(text, set(extra.get("tiercheck.fixtures", ())))
            record.failure = text[-6000:]
            record.message, record.steps, record.reproduce_failure = info.message, info.steps, info.reproduce_failure
            record.replay = replay_command(report.nodeid, self.impl, self.profile, self.seed, self.rootdir)
        elif report.when == "call" and record.outcome != "failed":
            record.outcome = "passed"
        if report.when == "teardown":
            self.finished += 1
            if self.progress is not None:
                self.progress(progress_line(record, self.finished, max(self.total, self.finished)))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.quiet_terminal and self._config is not None:
            # pytest's own FAILURES/ERRORS sections would repeat what the verdict output prints.
            self._config.option.tbstyle = "no"


def measurement(entry: Any) -> dict[str, Any]:
    """A `measure` fixture entry as {name, value, unit}; a value that is not a finite number becomes null."""
    entry = entry if isinstance(entry, dict) else {}
    value = entry.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        value = None
    return {"name": str(entry.get("name", "")), "value": value, "unit": str(entry.get("unit", ""))}


def measurements_of(records: list[TestRecord]) -> list[dict[str, Any]]:
    """Every figure the implementation's tests measured, one entry each: {property, test, name, value, unit}."""
    return [
        {"property": ",".join(r.properties), "test": r.nodeid, **m}
        for r in records
        if not r.selftest
        for m in r.measurements
    ]


_OUTCOME_WORD = {"passed": "pass", "failed": "FAIL", "skipped": "n/a", "not run": "not run"}


def shown_id(nodeid: str) -> str:
    """A test id for people: from an installed tiercheck, pytest's id starts with the path to site-packages
    (`venv/lib/python3.11/site-packages/tiercheck/...`); what follows is the part that names the test.
    The reports keep the full id, which replays need."""
    return nodeid.rpartition("site-packages/")[2]


def progress_line(record: TestRecord, done: int, total: int) -> str:
    """'[ 3/12] P8   FAIL  properties/test_p6_p7_p8.py::test_P8_lru_eviction  80 examples  15.0 s'."""
    width = len(str(total))
    ids = ",".join(record.properties)
    outcome = _OUTCOME_WORD.get(record.outcome, record.outcome)
    line = f"[{done:>{width}}/{total}] {ids:<4} {outcome:<4}  {shown_id(record.nodeid)}"
    line += f"  {record.examples} examples  {record.seconds:.1f} s"
    if record.outcome == "skipped" and record.reason:
        reason = record.reason if len(record.reason) <= 120 else record.reason[:119] + "…"  # cut visibly
        line += f"  ({reason})"
    return line


def summarize(records: list[TestRecord], wanted: list[str] | None = None) -> list[Verdict]:
    verdicts = []
    for pid in wanted or list(PROPERTIES):
        marked = [r for r in records if pid in r.properties]
        mine = [r for r in marked if r.counts]
        v = Verdict(pid, PROPERTIES[pid], "not run", tests=len(mine), not_counted=len(marked) - len(mine))
        v.examples = sum(r.examples for r in mine)
        v.seconds = round(sum(r.seconds for r in mine), 3)
        failed = [r for r in mine if r.outcome == "failed"]
        passed = [r for r in mine if r.outcome == "passed"]
        skipped = [r for r in mine if r.outcome == "skipped"]
        if failed:
            v.verdict = "FAIL"
            v.failures = [
                {
                    "test": r.nodeid,
                    "detail": r.failure,
                    "message": r.message,
                    "steps": list(r.steps),
                    "replay": r.replay,
                    "reproduce_failure": r.reproduce_failure,
                }
                for r in failed
            ]
        elif passed:
            v.verdict = "pass"
            v.reasons = sorted({f"{shown_id(r.nodeid)}: {r.reason}" for r in skipped})
        elif skipped:
            v.verdict = "not applicable"
            v.reasons = sorted({r.reason for r in skipped})
        elif v.not_counted:
            v.reasons = [
                f"no test that exercised the implementation ran; {v.not_counted} test(s) marked {pid} "
                "never used the implementation's factory (self-tests of the harness do not count)"
            ]
        else:
            v.reasons = ["no test for this property was selected or collected"]
        verdicts.append(v)
    return verdicts


def build_report(
    impl: str,
    profile: str,
    verdicts: list[Verdict],
    records: list[TestRecord],
    environment: dict[str, Any],
    *,
    seed: int | None = None,
    derandomized: bool | None = None,
    duration_seconds: float | None = None,
    generated_at: str | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready dict (schema_version 2; docs/report-schema.md)."""
    summary = {name: sum(1 for v in verdicts if v.verdict == name) for name in VERDICTS}
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "impl": impl,
        "profile": profile,
        "environment": environment,
        "verdicts": [asdict(v) for v in verdicts],
        "tests": [asdict(r) for r in records],
        "measurements": measurements_of(records),
        "outcome": "fail" if summary["FAIL"] else "pass",
        "summary": summary,
        "seed": seed,
        "derandomized": profile == "ci" if derandomized is None else derandomized,
        "generated_at": generated_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if duration_seconds is not None:
        document["duration_seconds"] = round(duration_seconds, 3)
    return document


def write_json(
    path: Path,
    impl: str,
    profile: str,
    verdicts: list[Verdict],
    records: list[TestRecord],
    environment: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """Write tiercheck.json; return the document (the other report writers render the same dict)."""
    document = build_report(impl, profile, verdicts, records, environment, **extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    return document
