"""The CI ratchet: compare a run's report with a stored one and fail only when a property got worse.

`tiercheck ratchet --baseline OLD.json --current NEW.json` (or `tiercheck verify ... --baseline OLD.json`)
exits 1 when a property

- newly fails: FAIL now, and not FAIL in the baseline (or absent from it);
- is newly not applicable: not applicable now, pass or FAIL in the baseline — an implementation must not
  escape a check by dropping a capability;
- is no longer checked: pass in the baseline, not run or absent now (a passing property cannot silently
  leave the gate).

A property that failed in the baseline and still fails is a known failure, allowed and listed; one that
now passes is listed as fixed (store the new report as the baseline to lock that in). Exit 0 otherwise;
2 when a report cannot be read or is not a tiercheck report (see docs/report-schema.md).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import PROPERTIES

VERDICTS = ("pass", "FAIL", "not applicable", "not run")
SUPPORTED_SCHEMA_VERSIONS = (1, 2)  # a version-1 baseline stays usable: only ids and verdicts are read


class ReportError(Exception):
    """A report file that cannot be read, or is not a tiercheck report."""


@dataclass(frozen=True)
class Change:
    id: str
    before: str  # a verdict, or "absent"
    after: str
    kind: str  # newly fails | newly not applicable | no longer checked | still fails | fixed


@dataclass
class Comparison:
    regressions: list[Change] = field(default_factory=list)
    known_failures: list[Change] = field(default_factory=list)
    fixed: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a tiercheck.json; raise ReportError saying what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read report {str(path)!r}: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"report {str(path)!r} is not JSON: {exc}") from exc
    problems = check_report(document)
    if problems:
        raise ReportError(f"report {str(path)!r} is not a tiercheck report: " + "; ".join(problems))
    return document


def check_report(document: Any) -> list[str]:
    """What the ratchet needs of a report (a subset of report.schema.json): the problems, or []."""
    if not isinstance(document, dict):
        return ["the top level is not an object"]
    problems = []
    version = document.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
        problems.append(f"schema_version {version!r} is not one of {list(SUPPORTED_SCHEMA_VERSIONS)}")
    verdicts = document.get("verdicts")
    if not isinstance(verdicts, list):
        return [*problems, "'verdicts' is missing or not a list"]
    seen = set()
    for index, entry in enumerate(verdicts):
        if not isinstance(entry, dict):
            problems.append(f"verdicts[{index}] is not an object")
            continue
        pid, verdict = entry.get("id"), entry.get("verdict")
        if pid not in PROPERTIES:
            problems.append(f"verdicts[{index}].id {pid!r} is not a property ID")
        elif pid in seen:
            problems.append(f"property {pid} appears twice")
        seen.add(pid)
        if verdict not in VERDICTS:
            problems.append(f"verdicts[{index}].verdict {verdict!r} is not one of {list(VERDICTS)}")
    return problems


def compare(baseline: dict[str, Any], current: dict[str, Any], only: list[str] | None = None) -> Comparison:
    """Property by property, what changed from baseline to current (restricted to `only` when given)."""
    before = {v["id"]: v["verdict"] for v in baseline["verdicts"]}
    after = {v["id"]: v["verdict"] for v in current["verdicts"]}
    result = Comparison()
    for key in ("impl", "profile"):
        if key in baseline and key in current and baseline[key] != current[key]:
            result.notes.append(f"{key} differs: {baseline[key]!r} in the baseline, {current[key]!r} now")
    for pid in only or list(PROPERTIES):
        old, new = before.get(pid, "absent"), after.get(pid, "absent")
        if new == "FAIL":
            kind = "still fails" if old == "FAIL" else "newly fails"
        elif new == "not applicable" and old in ("pass", "FAIL"):
            kind = "newly not applicable"
        elif old == "pass" and new in ("not run", "absent"):
            kind = "no longer checked"
        elif old == "FAIL" and new == "pass":
            kind = "fixed"
        else:
            continue
        change = Change(pid, old, new, kind)
        {"still fails": result.known_failures, "fixed": result.fixed}.get(kind, result.regressions).append(change)
    return result


def format_comparison(comparison: Comparison, baseline_name: Any, current_name: Any) -> str:
    lines = [f"ratchet: {current_name} against baseline {baseline_name}"]
    lines += [f"  note: {note}" for note in comparison.notes]
    for change in comparison.regressions:
        what = f"{change.kind} (baseline {change.before}, now {change.after})"
        lines.append(f"  REGRESSION {change.id} ({PROPERTIES[change.id]}): {what}")
    for change in comparison.known_failures:
        lines.append(f"  known failure {change.id} ({PROPERTIES[change.id]}): failed in the baseline too")
    for change in comparison.fixed:
        lines.append(f"  fixed {change.id} ({PROPERTIES[change.id]}): now passes; store this report as the baseline")
    if comparison.regressions:
        ids = ", ".join(c.id for c in comparison.regressions)
        lines.append(f"ratchet: FAIL — {len(comparison.regressions)} property(ies) got worse: {ids}")
    else:
        lines.append("ratchet: ok — no property newly fails or became not applicable")
    return "\n".join(lines)
