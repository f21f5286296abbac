"""Turn pytest outcomes into one verdict per property (pass / FAIL / not applicable).

A pytest plugin records, for every test carrying `@pytest.mark.prop("ID")`, its outcome, the
skip reason, the failure text, the Hypothesis examples it ran and its time. `summarize` folds
those into verdicts: FAIL if any test of the property failed; pass if at least one passed and
none failed; not applicable when every test was skipped (the reasons are kept). A property
with no test collected at all is reported as not run — never as passed.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .catalog import PROPERTIES

SCHEMA_VERSION = 1


@dataclass
class TestRecord:
    nodeid: str
    properties: list[str]
    outcome: str = "not run"  # passed | failed | skipped | not run
    reason: str = ""
    failure: str = ""
    examples: int = 0
    seconds: float = 0.0


@dataclass
class Verdict:
    id: str
    title: str
    verdict: str  # pass | FAIL | not applicable | not run
    tests: int = 0
    examples: int = 0
    seconds: float = 0.0
    reasons: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)


class VerdictRecorder:
    """The pytest plugin object: pass it to `pytest.main(plugins=[...])`."""

    def __init__(self) -> None:
        self.records: dict[str, TestRecord] = {}
        self._started = time.monotonic()

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            ids = [m.args[0].upper() for m in item.iter_markers("prop") if m.args]
            if ids:
                self.records[item.nodeid] = TestRecord(item.nodeid, ids)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        """Count the examples Hypothesis ran (its statistics hook is cheap; observability is not)."""
        record = self.records.get(item.nodeid)
        try:
            from hypothesis.statistics import collector
        except ImportError:  # a Hypothesis without it: examples are then reported as 0
            yield
            return

        def note(stats: dict[str, Any]) -> None:
            if record is not None:
                record.examples += sum(
                    len(stats.get(phase, {}).get("test-cases", []))
                    for phase in ("explicit-phase", "reuse-phase", "generate-phase")
                )

        with collector.with_value(note):
            yield

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = self.records.get(report.nodeid)
        if record is None:
            return
        record.seconds += report.duration
        if report.skipped:
            record.outcome = "skipped"
            longrepr = report.longrepr
            record.reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            record.reason = record.reason.removeprefix("Skipped: ")
        elif report.failed:
            record.outcome = "failed"
            record.failure = report.longreprtext[-6000:]
        elif report.when == "call" and record.outcome != "failed":
            record.outcome = "passed"


def summarize(records: list[TestRecord], wanted: list[str] | None = None) -> list[Verdict]:
    verdicts = []
    for pid in wanted or list(PROPERTIES):
        mine = [r for r in records if pid in r.properties]
        v = Verdict(pid, PROPERTIES[pid], "not run", tests=len(mine))
        v.examples = sum(r.examples for r in mine)
        v.seconds = round(sum(r.seconds for r in mine), 3)
        failed = [r for r in mine if r.outcome == "failed"]
        passed = [r for r in mine if r.outcome == "passed"]
        skipped = [r for r in mine if r.outcome == "skipped"]
        if failed:
            v.verdict = "FAIL"
            v.failures = [{"test": r.nodeid, "detail": r.failure} for r in failed]
        elif passed:
            v.verdict = "pass"
            v.reasons = sorted({f"{r.nodeid}: {r.reason}" for r in skipped})
        elif skipped:
            v.verdict = "not applicable"
            v.reasons = sorted({r.reason for r in skipped})
        else:
            v.reasons = ["no test for this property was selected or collected"]
        verdicts.append(v)
    return verdicts


def write_json(
    path: Path, impl: str, profile: str, verdicts: list[Verdict], records: list[TestRecord], environment: dict[str, Any]
) -> None:
    document = {
        "schema_version": SCHEMA_VERSION,
        "impl": impl,
        "profile": profile,
        "environment": environment,
        "verdicts": [asdict(v) for v in verdicts],
        "tests": [asdict(r) for r in records],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
