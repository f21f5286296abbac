"""`tiercheck verify`: run the property suites against an implementation and give a verdict per property.

`tiercheck ratchet`: compare two reports and fail on any property that newly fails or is newly not applicable.

Exit codes: 0 every applicable property passed (ratchet: nothing got worse); 1 some property failed (ratchet:
something got worse); 2 usage or environment error (bad --impl, a factory that raises or returns no cache,
unknown property, empty --only, unwritable --report-dir, unreadable report, missing server), with one line
saying what to do, printed before any test runs; 3 nothing was checked: every selected property was not
applicable (or had no test), so no verdict can gate anything.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from . import door
from .catalog import normalize
from .contract import DEFAULT_IMPL
from .ratchet import ReportError, compare, format_comparison, load_report
from .report_html import write_html
from .report_junit import write_junit
from .suites import FIXTURES_PLUGIN, suite_dirs
from .verdicts import Verdict, VerdictRecorder, summarize, write_json

_EXIT_CODES = next(part for part in __doc__.split("\n\n") if part.startswith("Exit codes"))
EXIT_NOTHING_CHECKED = 3
"""Every selected property was not applicable or not run: nothing was checked."""


def _import_from_cwd() -> None:
    """Let --impl name a module in the current directory, as `python -m` would (workers and children too)."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if cwd not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([cwd, *paths])


def _at_the_door(args: argparse.Namespace) -> tuple[list[str], dict[str, Any] | None]:
    """Every check that needs no test run, in the order a user would fix them; raise DoorError."""
    args.profile = door.profile(args.profile)
    door.check_only(args.only)
    try:
        wanted = normalize(args.only)
    except ValueError as exc:
        raise door.DoorError(str(exc)) from None
    door.check_report_dir(args.report_dir)
    try:
        baseline = load_report(args.baseline) if args.baseline else None
    except ReportError as exc:
        raise door.DoorError(str(exc)) from None
    _import_from_cwd()
    door.check_impl(args.impl)
    return wanted, baseline


def verify(args: argparse.Namespace) -> int:
    try:
        wanted, baseline = _at_the_door(args)
    except door.DoorError as exc:
        print(f"tiercheck: {exc}", file=sys.stderr)
        return door.EXIT_USAGE
    derandomized = args.profile == "ci"
    seed = None if derandomized else (args.seed if args.seed is not None else random.randrange(2**32))
    if derandomized and args.seed is not None:
        print("tiercheck: --seed has no effect with --profile ci (derandomized: fixed per test)", file=sys.stderr)
    os.environ["TIERCHECK_PROFILE"] = args.profile
    os.environ["TIERCHECK_IMPL"] = args.impl
    console = _console()
    recorder = VerdictRecorder(
        args.impl, args.profile, seed, progress=lambda line: _progress(console, line), quiet_terminal=True
    )
    pytest_args = [
        *map(str, suite_dirs()),
        "-p",
        "tiercheck.pytest_plugin",
        "-p",
        "tiercheck.recording",
        "-p",
        FIXTURES_PLUGIN,  # real-server fixtures (also when run outside a checkout, with no conftest.py)
        "-p",
        "no:cacheprovider",
        "--impl",
        args.impl,
        "--tiercheck-only",
        ",".join(wanted),
        "-q",
        "--no-header",
        "-rN",
        "--tb=short",
        "-o",
        "console_output_style=classic",
    ]
    if seed is not None:
        pytest_args.append(f"--hypothesis-seed={seed}")
    if args.workers:
        pytest_args += ["-n", str(args.workers)]
    if args.fail_fast:
        pytest_args.append("--exitfirst")
    import pytest

    seed_note = "derandomized (fixed per test)" if derandomized else f"--hypothesis-seed={seed}"
    console.print(f"tiercheck: {args.impl}, profile {args.profile}, seed {seed_note}, properties {','.join(wanted)}")
    started = time.monotonic()
    code = pytest.main(pytest_args, plugins=[recorder])
    elapsed = time.monotonic() - started
    if code not in (0, 1, 5):  # interrupted, internal or usage error
        print(f"tiercheck: the test run did not complete (pytest exit code {code})", file=sys.stderr)
        return 2
    records = list(recorder.records.values())
    verdicts = summarize(records, wanted)
    _print_table(console, verdicts, args.impl, args.profile, elapsed)
    if args.report_dir:
        directory = Path(args.report_dir)
        document = write_json(
            directory / "tiercheck.json",
            args.impl,
            args.profile,
            verdicts,
            records,
            _environment(),
            seed=seed,
            derandomized=derandomized,
            duration_seconds=elapsed,
        )
        write_junit(directory / "junit.xml", document)
        write_html(directory / "report.html", document)
        names = ", ".join(str(directory / name) for name in ("tiercheck.json", "junit.xml", "report.html"))
        console.print(f"reports: {names}", markup=False)
    if baseline is not None:
        current = {"verdicts": [{"id": v.id, "verdict": v.verdict} for v in verdicts]}
        comparison = compare(baseline, current, only=wanted)
        console.print(format_comparison(comparison, args.baseline, "this run"), markup=False, highlight=False)
        code = 1 if comparison.regressions else 0
    else:
        code = 1 if any(v.verdict == "FAIL" for v in verdicts) else 0
    if code == 0 and not any(v.verdict in ("pass", "FAIL") for v in verdicts):
        print(
            "tiercheck: nothing was checked: every selected property was not applicable or had no test "
            f"(exit {EXIT_NOTHING_CHECKED}); see the reasons in the table",
            file=sys.stderr,
        )
        return EXIT_NOTHING_CHECKED
    return code


def ratchet(args: argparse.Namespace) -> int:
    try:
        baseline = load_report(args.baseline)
        current = load_report(args.current)
    except ReportError as exc:
        print(f"tiercheck: {exc}", file=sys.stderr)
        return 2
    comparison = compare(baseline, current)
    print(format_comparison(comparison, args.baseline, args.current))
    return 1 if comparison.regressions else 0


def _environment() -> dict[str, str]:
    versions = {}
    for name in ("tiercheck", "hypothesis", "pytest", "redis", "fakeredis"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"python": platform.python_version(), "platform": platform.platform(), **versions}


def _console() -> Any:
    from rich.console import Console

    return Console(width=max(Console().width, 140), highlight=False)


def _progress(console: Any, line: str) -> None:
    style = "red" if " FAIL " in line else ("yellow" if " n/a " in line else "")
    console.print(line, style=style or None, markup=False, highlight=False, soft_wrap=True)


def _print_table(console: Any, verdicts: list[Verdict], impl: str, profile: str, elapsed: float) -> None:
    from rich.table import Table

    style = {"pass": "green", "FAIL": "bold red", "not applicable": "yellow", "not run": "dim"}
    table = Table(title=f"tiercheck verify — {impl} — profile {profile} — {elapsed:.1f}s")
    for column in ("ID", "Property", "Verdict", "Tests", "Examples", "Time (s)", "Notes"):
        table.add_column(column)
    for v in verdicts:
        if v.verdict == "FAIL":
            notes = "; ".join(f["test"].rsplit("::", 1)[-1] for f in v.failures)
        elif v.verdict == "not run":
            notes = "no test selected"
        else:
            notes = "; ".join(v.reasons)[:100]
        table.add_row(
            v.id,
            v.title,
            f"[{style[v.verdict]}]{v.verdict}[/]",
            str(v.tests),
            str(v.examples),
            f"{v.seconds:.1f}",
            notes,
            end_section=False,
        )
    console.print(table)
    for v in verdicts:
        for failure in v.failures:
            _print_failure(console, v, failure)


def _print_failure(console: Any, verdict: Verdict, failure: dict[str, Any]) -> None:
    console.rule(f"[red]{verdict.id} FAIL: {failure['test']}")
    if failure.get("message"):
        console.print(failure["message"], style="bold", markup=False)
    detail = failure["detail"]
    steps = failure.get("steps") or []
    if steps:
        console.print("Counterexample (shrunk):", style="bold")
        for number, step in enumerate(steps, 1):
            console.print(f"  {number:>2}. {step}", markup=False)
        detail = detail.split("Failing test case:", 1)[0].split("Falsifying example:", 1)[0].rstrip()
    console.print("Traceback:", style="bold")
    console.print(detail, markup=False, style="dim")
    console.print("Replay (from any shell):", style="bold")
    console.print(f"  {failure.get('replay', '')}", markup=False, soft_wrap=True)
    if failure.get("reproduce_failure"):
        console.print(
            f"  (or decorate the test with {failure['reproduce_failure']})", markup=False, soft_wrap=True, style="dim"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tiercheck",
        description="\n\n".join(__doc__.split("\n\n")[:2]),
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser(
        "verify",
        help="check an implementation against SPEC properties P1-P12, E1-E10",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("--impl", default=DEFAULT_IMPL, help="package.module:factory (default: %(default)s)")
    v.add_argument(
        "--profile",
        default="ci",
        metavar="{quick,dev,ci,nightly}",
        help="Hypothesis profile: quick (alias dev: 30 random examples), ci (derandomized, 100), nightly (2,000); "
        "default: %(default)s",
    )
    v.add_argument("--only", help="comma-separated property IDs, e.g. P1,P7,E2 (an empty value is an error)")
    v.add_argument(
        "--report-dir", help="write tiercheck.json, junit.xml and report.html here (schema: docs/report-schema.md)"
    )
    v.add_argument("-n", "--workers", type=int, default=0, help="pytest-xdist workers (0: in-process)")
    v.add_argument(
        "--fail-fast", action="store_true", help="stop at the first failing test (properties not reached: not run)"
    )
    v.add_argument("--seed", type=int, help="Hypothesis seed for the quick and nightly profiles (default: random)")
    v.add_argument(
        "--baseline",
        help="a previous tiercheck.json: exit 1 only if a property newly fails or is newly not applicable",
    )
    r = sub.add_parser("ratchet", help="compare two tiercheck.json reports; exit 1 if a property got worse")
    r.add_argument("--baseline", required=True, help="the stored report (e.g. from the main branch)")
    r.add_argument("--current", required=True, help="the report of the run to gate")
    args = parser.parse_args(argv)
    if args.command == "verify":
        return verify(args)
    if args.command == "ratchet":
        return ratchet(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
