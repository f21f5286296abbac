"""`tiercheck verify`: run the property suites against an implementation and give a verdict per property.

`tiercheck ratchet`: compare two reports and fail on any property that newly fails or is newly not applicable.
`tiercheck list`: every property, one line each, with the capabilities it needs.

Exit codes: 0 every applicable property passed (ratchet: nothing got worse); 1 some property failed (ratchet:
something got worse); 2 usage or environment error (bad --impl, a factory that raises or returns no cache,
unknown property, empty --only, unwritable --report-dir, unreadable report, missing server or extra), with
one line saying what to do, printed before any test runs; 3 nothing was checked: every selected property was
not applicable (or had no test), so no verdict can gate anything.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import random
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from . import catalog, door
from .catalog import normalize
from .contract import DEFAULT_IMPL
from .ratchet import ReportError, compare, format_comparison, load_report
from .report_html import write_html
from .report_junit import write_junit
from .suites import FIXTURES_PLUGIN, SERVER_SUITES, fixtures_module, suite_dirs
from .verdicts import TestRecord, Verdict, VerdictRecorder, summarize, write_json

_EXIT_CODES = next(part for part in __doc__.split("\n\n") if part.startswith("Exit codes"))
EXIT_NOTHING_CHECKED = 3
"""Every selected property was not applicable or not run: nothing was checked."""
DETAILED_FAILURES = 5
"""Failures shown with their counterexample and replay command; every failure gets its one-line summary."""


def _import_from_cwd() -> None:
    """Let --impl name a module in the current directory (workers and children too).

    In this process the directory goes last on the path, so a project's own `integration/` or `properties/`
    folder cannot shadow tiercheck's suites of the same name.
    """
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if cwd not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([*paths, cwd])


def _workers(value: str) -> str:
    if value == "auto" or (value.isdigit() and int(value) >= 0):
        return value
    raise argparse.ArgumentTypeError(f"-n takes a number of workers or 'auto', got {value!r}")


def _at_the_door(args: argparse.Namespace) -> tuple[list[str], dict[str, Any] | None]:
    """Every check that needs no test run, in the order a user would fix them; raise DoorError."""
    args.profile = door.profile(args.profile)
    door.check_only(args.only)
    try:
        wanted = normalize(args.only)
    except ValueError as exc:
        raise door.DoorError(str(exc)) from None
    if args.workers not in ("0", "") and not door.module_available("xdist"):
        raise door.DoorError(f"-n {args.workers} needs pytest-xdist: pip install pytest-xdist")
    door.check_report_dir(args.report_dir)
    try:
        baseline = load_report(args.baseline) if args.baseline else None
    except ReportError as exc:
        raise door.DoorError(str(exc)) from None
    _import_from_cwd()
    door.check_impl(args.impl)
    return wanted, baseline


def _pytest_args(args: argparse.Namespace, wanted: list[str], seed: int | None) -> list[str]:
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
        "--tiercheck-impl",
        args.impl,
        "--tiercheck-only",
        ",".join(wanted),
        "-q",
        "--no-header",
        "-rN",
        "--tb=short",
        "-o",
        "console_output_style=classic",
        "-W",  # the CLI imports the fixtures plugin (to plan the servers) before pytest can rewrite it
        "ignore::pytest.PytestAssertRewriteWarning",
        "-W",  # docker-py asks platformdirs for a runtime directory it does not need here
        "ignore:XDG_RUNTIME_DIR is not set",
    ]
    if seed is not None:
        pytest_args.append(f"--hypothesis-seed={seed}")
    if args.workers not in ("0", ""):
        pytest_args += ["-n", args.workers]
    if args.fail_fast:
        pytest_args.append("--exitfirst")
    return [*pytest_args, *args.pytest_args]


class _NeedsServers:
    """A collect-only plugin: do the selected tests need a real server (a suite that starts them, or a fixture)?"""

    def __init__(self) -> None:
        self.needs = False

    def pytest_collection_finish(self, session: Any) -> None:
        from .recording import property_ids

        starting = [d for d in suite_dirs() if d.name in SERVER_SUITES]
        for item in session.items:
            if not property_ids(item):
                continue
            params = getattr(getattr(item, "callspec", None), "params", {})
            if (
                any(Path(str(item.path)).is_relative_to(d) for d in starting)
                or {"redis_server", "postgres_server"} & set(getattr(item, "fixturenames", ()))
                or params.get("real_database_url") == "postgres"
                or params.get("any_redis_url") == "valkey"
            ):
                self.needs = True
                return


def _check_servers(console: Any, pytest_args: list[str]) -> None:
    """Say which provider will serve each kind of server; a missing one the run needs is a DoorError."""
    fixtures = fixtures_module()
    plan = fixtures.planned_providers()
    chosen = ", ".join(f"{kind} from {plan[kind] or 'nothing'}" for kind in fixtures.KINDS)
    console.print(
        f"servers (tried in order: {fixtures.PROVIDER_ORDER}): {chosen}", markup=False, highlight=False, soft_wrap=True
    )
    missing = [kind for kind, provider in plan.items() if provider is None]
    if not missing:
        return
    import pytest

    probe = _NeedsServers()
    args = [a for a in pytest_args if a not in ("-q", "--exitfirst")]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        pytest.main([*args, "--collect-only", "-qq", "-p", "no:xdist"], plugins=[probe])
    if probe.needs:
        raise door.DoorError(fixtures.missing_server_message(missing))


def _environment_error(records: list[TestRecord]) -> str | None:
    """The first line of an environment error a test met (a server that could not be started), if any."""
    for record in records:
        for marker in (fixtures_module().ENVIRONMENT_ERROR, "servers.Unavailable: "):
            if marker in record.failure:
                line = record.failure.split(marker, 1)[1].strip().splitlines()[0]
                return f"a server could not be started ({line}); the run is not a verdict"
    return None


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
    pytest_args = _pytest_args(args, wanted, seed)
    try:
        _check_servers(console, pytest_args)
    except door.DoorError as exc:
        print(f"tiercheck: {exc}", file=sys.stderr)
        return door.EXIT_USAGE
    recorder = VerdictRecorder(
        args.impl, args.profile, seed, progress=lambda line: _progress(console, line), quiet_terminal=True
    )
    import pytest

    fixtures = fixtures_module()
    seed_note = "derandomized (fixed per test)" if derandomized else f"--hypothesis-seed={seed}"
    console.print(f"tiercheck: {args.impl}, profile {args.profile}, seed {seed_note}, properties {','.join(wanted)}")
    with tempfile.TemporaryDirectory(prefix="tiercheck-run-") as scratch:
        server_log = Path(scratch) / "servers.jsonl"
        os.environ[fixtures.SERVER_LOG_ENV] = str(server_log)
        started = time.monotonic()
        try:
            code = pytest.main(pytest_args, plugins=[recorder])
        finally:
            os.environ.pop(fixtures.SERVER_LOG_ENV, None)
        elapsed = time.monotonic() - started
        served = fixtures.read_server_log(server_log)
    if code not in (0, 1, 5):  # interrupted, internal or usage error
        print(f"tiercheck: the test run did not complete (pytest exit code {code})", file=sys.stderr)
        return door.EXIT_USAGE
    records = list(recorder.records.values())
    verdicts = summarize(records, wanted)
    _print_table(console, verdicts, args.impl, args.profile, elapsed)
    for server in served:
        console.print(
            f"served by: {server['kind']} {server['version']} from {server['provider']} ({server['url']})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    report_paths: list[Path] = []
    if args.report_dir:
        directory = Path(args.report_dir)
        document = write_json(
            directory / "tiercheck.json",
            args.impl,
            args.profile,
            verdicts,
            records,
            _environment(served),
            seed=seed,
            derandomized=derandomized,
            duration_seconds=elapsed,
        )
        write_junit(directory / "junit.xml", document)
        write_html(directory / "report.html", document)
        report_paths = [directory / name for name in ("tiercheck.json", "junit.xml", "report.html")]
        console.print(f"reports: {', '.join(map(str, report_paths))}", markup=False)
    _print_failure_summary(console, verdicts, report_paths)
    environment_error = _environment_error(records)
    if environment_error:
        print(f"tiercheck: {environment_error}", file=sys.stderr)
        return door.EXIT_USAGE
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
        return door.EXIT_USAGE
    comparison = compare(baseline, current)
    print(format_comparison(comparison, args.baseline, args.current))
    return 1 if comparison.regressions else 0


def list_properties(args: argparse.Namespace) -> int:
    """One line per property: ID, title, and what an implementation needs for its tests to apply."""
    needs = getattr(catalog, "NEEDS", {})
    width = max(len(title) for title in catalog.PROPERTIES.values())
    lines = []
    for pid, title in catalog.PROPERTIES.items():
        need = needs.get(pid)
        if need is None:
            need = "(not listed by this version of tiercheck)"
        elif not isinstance(need, str):
            need = ", ".join(map(str, need)) or "the contract methods"
        lines.append(f"{pid:<4} {title:<{width}}  needs: {need}")
    with contextlib.suppress(BrokenPipeError):  # `tiercheck list | head`
        print("\n".join(lines), flush=True)
    return 0


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _environment(served: list[dict[str, str]] | None = None) -> dict[str, str]:
    """What the run ran on, for the reports: Python, the libraries that judge, and the servers that served."""
    environment = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("tiercheck", "hypothesis", "pytest", "pytest-xdist", "redis", "fakeredis", "psycopg"):
        environment[name] = _version(name)
    for server in served or []:
        key = "redis server" if server["kind"] == "redis" else "postgresql server"
        entry = f"{server['version']} from {server['provider']}"
        previous = environment.get(key)
        environment[key] = entry if previous in (None, entry) else f"{previous}; {entry}"
    return environment


def _console() -> Any:
    from rich.console import Console

    # A CI log is not a terminal: rich would lay the verdict table out in 80 columns and wrap every note
    # word by word. Wider there, unless COLUMNS says otherwise.
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=160 if wide else None)


def _progress(console: Any, line: str) -> None:
    style = "red" if " FAIL " in line else ("yellow" if " n/a " in line else "")
    console.print(line, style=style or None, markup=False, highlight=False, soft_wrap=True)


def _notes(v: Verdict) -> str:
    if v.verdict == "FAIL":
        return "; ".join(f["test"].rsplit("::", 1)[-1] for f in v.failures)
    if v.verdict == "not run":
        return "no test selected"
    return "; ".join(v.reasons)


def _print_table(console: Any, verdicts: list[Verdict], impl: str, profile: str, elapsed: float) -> None:
    """The verdict table, as wide as the terminal; long reasons wrap at word boundaries inside their cell."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    style = {"pass": "green", "FAIL": "bold red", "not applicable": "yellow", "not run": "dim"}
    table = Table(
        title=f"tiercheck verify — {impl} — profile {profile} — {elapsed:.1f}s",
        box=box.SIMPLE_HEAD,  # no vertical rules: every column of an 80-column terminal goes to the text
        pad_edge=False,
    )
    table.add_column("ID", no_wrap=True)
    table.add_column("Property", overflow="fold", max_width=32)
    table.add_column("Verdict", overflow="fold")
    table.add_column("Tests", justify="right")
    table.add_column("Examples", justify="right", overflow="fold")
    table.add_column("Time (s)", justify="right")
    table.add_column("Notes", overflow="fold", ratio=1)
    for v in verdicts:
        table.add_row(
            v.id,
            v.title,
            Text(v.verdict, style=style[v.verdict]),
            str(v.tests),
            str(v.examples),
            f"{v.seconds:.1f}",
            Text(_notes(v)),
        )
    console.print(table)
    shown = 0
    for v in verdicts:
        for failure in v.failures:
            if shown < DETAILED_FAILURES:
                _print_failure(console, v, failure)
            shown += 1


def _print_failure_summary(console: Any, verdicts: list[Verdict], reports: list[Path]) -> None:
    """Every failing test, one line each, last on the screen, with where the full details are."""
    failures = [(v, f) for v in verdicts for f in v.failures]
    if not failures:
        return
    console.rule(f"[red]{len(failures)} failing test{'s' if len(failures) != 1 else ''}")
    for v, failure in failures:
        message = (failure.get("message") or "").splitlines()
        console.print(
            f"{v.id} FAIL {failure['test']}" + (f" — {message[0]}" if message else ""),
            markup=False,
            highlight=False,
            overflow="ellipsis",
            no_wrap=True,
        )
    if len(failures) > DETAILED_FAILURES:
        console.print(
            f"(counterexample and replay shown above for the first {DETAILED_FAILURES}; all are in the reports)",
            markup=False,
        )
    if reports:
        html = next((p for p in reports if p.suffix == ".html"), reports[0])
        console.print(f"full details: {html} (and {', '.join(str(p) for p in reports if p != html)})", markup=False)
    else:
        console.print("full details: rerun with --report-dir DIR for report.html, tiercheck.json and junit.xml")


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tiercheck",
        description="\n\n".join(__doc__.split("\n\n")[:2]),
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version('tiercheck')}")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser(
        "verify",
        help="check an implementation against the SPEC properties",
        usage="tiercheck verify [options] [-- pytest arguments]",
        epilog=_EXIT_CODES + "\n\nArguments after `--` go to pytest unchanged, e.g. `-- -k lru -x`.",
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
    v.add_argument(
        "-n", "--workers", type=_workers, default="0", help="pytest-xdist workers: a number or auto (0: in-process)"
    )
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
    sub.add_parser("list", help="every property, one line each, with the capabilities it needs")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passed_on: list[str] = []
    if "--" in argv:  # everything after `--` goes to pytest unchanged
        cut = argv.index("--")
        argv, passed_on = argv[:cut], argv[cut + 1 :]
    args = _parser().parse_args(argv)
    args.pytest_args = passed_on
    if passed_on and args.command != "verify":
        print(f"tiercheck: arguments after -- are for pytest and only `verify` runs it: {passed_on}", file=sys.stderr)
        return door.EXIT_USAGE
    commands = {"verify": verify, "ratchet": ratchet, "list": list_properties}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
