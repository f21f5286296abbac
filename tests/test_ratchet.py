"""`tiercheck ratchet`: fail on a property that newly fails, is newly not applicable or is no longer checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiercheck.cli import main
from tiercheck.ratchet import ReportError, check_report, compare, load_report

pytestmark = pytest.mark.selftest


def report(**verdicts: str) -> dict:
    return {
        "schema_version": 1,
        "impl": "m:factory",
        "profile": "ci",
        "environment": {},
        "verdicts": [{"id": pid, "title": "", "verdict": verdict} for pid, verdict in verdicts.items()],
        "tests": [],
    }


def write(tmp_path: Path, name: str, document: object) -> str:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def ratchet(tmp_path: Path, baseline: object, current: object, capsys) -> tuple[int, str]:
    code = main(["ratchet", "--baseline", write(tmp_path, "old.json", baseline), "--current",
                 write(tmp_path, "new.json", current)])  # fmt: skip
    captured = capsys.readouterr()
    return code, captured.out + captured.err


NA = "not applicable"


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        ({"P1": "pass"}, {"P1": "FAIL"}, "newly fails"),
        ({"P1": NA}, {"P1": "FAIL"}, "newly fails"),
        ({"P1": "not run"}, {"P1": "FAIL"}, "newly fails"),
        ({}, {"P1": "FAIL"}, "newly fails"),  # absent from the baseline
        ({"P1": "pass"}, {"P1": NA}, "newly not applicable"),
        ({"P1": "FAIL"}, {"P1": NA}, "newly not applicable"),  # a failure must not hide behind a missing capability
        ({"P1": "pass"}, {"P1": "not run"}, "no longer checked"),
        ({"P1": "pass"}, {}, "no longer checked"),
    ],
)
def test_rejected(tmp_path, capsys, before, after, kind):
    code, out = ratchet(tmp_path, report(P2="pass", **before), report(P2="pass", **after), capsys)
    assert code == 1
    assert f"REGRESSION P1 (Cache consistency): {kind}" in out
    assert "P2" not in out  # the unchanged property is not blamed
    assert "ratchet: FAIL — 1 property(ies) got worse: P1" in out


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"P1": "pass"}, {"P1": "pass"}),
        ({"P1": "FAIL"}, {"P1": "FAIL"}),  # a known failure
        ({"P1": "FAIL"}, {"P1": "pass"}),  # fixed
        ({"P1": NA}, {"P1": NA}),
        ({"P1": NA}, {"P1": "pass"}),
        ({"P1": "not run"}, {"P1": NA}),
        ({"P1": "FAIL"}, {"P1": "not run"}),
        ({}, {"P1": "pass"}),
    ],
)
def test_accepted(tmp_path, capsys, before, after):
    code, out = ratchet(tmp_path, report(**before), report(**after), capsys)
    assert code == 0, out
    assert "REGRESSION" not in out and "ratchet: ok" in out


def test_every_regression_is_named(tmp_path, capsys):
    code, out = ratchet(
        tmp_path,
        report(P1="pass", P2="pass", P3="pass", E1="FAIL", E2="FAIL"),
        report(P1="FAIL", P2=NA, P3="pass", E1="FAIL", E2="pass"),
        capsys,
    )
    assert code == 1
    assert "REGRESSION P1" in out and "REGRESSION P2" in out and "REGRESSION P3" not in out
    assert "known failure E1" in out and "fixed E2" in out
    assert "got worse: P1, P2" in out


def test_compare_can_be_restricted_to_the_selected_properties():
    result = compare(report(P1="pass", P2="pass"), report(P2="pass"), only=["P2"])
    assert result.regressions == []
    assert [c.id for c in compare(report(P1="pass", P2="pass"), report(P2="pass")).regressions] == ["P1"]


def test_a_different_implementation_is_noted():
    current = report(P1="pass")
    current["impl"] = "other:factory"
    assert any("impl differs" in note for note in compare(report(P1="pass"), current).notes)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        json.dumps({"schema_version": 3, "verdicts": []}),
        json.dumps({"schema_version": 1}),
        json.dumps({"schema_version": "1", "verdicts": []}),
        json.dumps({"schema_version": True, "verdicts": []}),
        json.dumps(report(P1="passed")),
        json.dumps(report(P99="pass")),
        json.dumps(
            {"schema_version": 1, "verdicts": [{"id": "P1", "verdict": "pass"}, {"id": "P1", "verdict": "FAIL"}]}
        ),
        json.dumps({"schema_version": 1, "verdicts": ["P1"]}),
    ],
)
def test_unreadable_or_foreign_reports_exit_2(tmp_path, capsys, content):
    good = report(P1="pass")
    for baseline, current in ((content, good), (good, content)):
        code, out = ratchet(tmp_path, baseline, current, capsys)
        assert code == 2, out
        assert "tiercheck: report" in out and "REGRESSION" not in out


def test_missing_file_exits_2(tmp_path, capsys):
    code = main(
        ["ratchet", "--baseline", str(tmp_path / "nope.json"), "--current", write(tmp_path, "n.json", report())]
    )
    assert code == 2
    assert "cannot read report" in capsys.readouterr().err


def test_a_version_1_baseline_gates_a_version_2_run(tmp_path, capsys):
    current = {**report(P1="FAIL", P2="pass"), "schema_version": 2}
    code, out = ratchet(tmp_path, report(P1="pass", P2="pass"), current, capsys)
    assert code == 1 and "REGRESSION P1 (Cache consistency): newly fails" in out


def test_load_report_and_check_report():
    assert check_report(report(P1="pass", E10=NA)) == []
    assert check_report({"schema_version": 1, "verdicts": [{"id": "P1", "verdict": "ok"}]}) == [
        "verdicts[0].verdict 'ok' is not one of ['pass', 'FAIL', 'not applicable', 'not run']"
    ]
    with pytest.raises(ReportError):
        load_report("/nonexistent/tiercheck.json")
