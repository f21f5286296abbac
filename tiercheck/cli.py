"""`tiercheck verify`: run the property suites against an implementation and give a verdict per property.

Exit codes: 0 every applicable property passed; 1 some property failed; 2 usage or environment
error (bad --impl, unknown property), with a message saying what to do.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from .catalog import normalize
from .contract import DEFAULT_IMPL, ImplementationError, load_factory
from .verdicts import Verdict, VerdictRecorder, summarize, write_json

SUITES = ("properties",)
PROFILES = ("quick", "ci", "nightly")


def _suite_paths() -> list[str]:
    """The suite packages, found next to the tiercheck package (checkout or installed)."""
    root = Path(__file__).resolve().parent.parent
    return [str(root / name) for name in SUITES if (root / name).is_dir()]


class _Selector:
    """pytest plugin: keep only tests that carry one of the wanted property IDs."""

    def __init__(self, wanted: list[str]) -> None:
        self.wanted = set(wanted)

    def pytest_collection_modifyitems(self, config, items) -> None:
        keep, drop = [], []
        for item in items:
            ids = {m.args[0].upper() for m in item.iter_markers("prop") if m.args}
            (keep if ids & self.wanted else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep


def verify(args: argparse.Namespace) -> int:
    try:
        wanted = normalize(args.only)
        load_factory(args.impl)
    except (ValueError, ImplementationError) as exc:
        print(f"tiercheck: {exc}", file=sys.stderr)
        return 2
    os.environ["TIERCHECK_PROFILE"] = args.profile
    os.environ["TIERCHECK_IMPL"] = args.impl
    recorder = VerdictRecorder()
    pytest_args = [
        *_suite_paths(),
        "-p",
        "tiercheck.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "--impl",
        args.impl,
        "-q",
        "--no-header",
        "-rN",
        "--tb=short",
    ]
    if args.workers:
        pytest_args += ["-n", str(args.workers)]
    import pytest

    started = time.monotonic()
    code = pytest.main(pytest_args, plugins=[recorder, _Selector(wanted)])
    elapsed = time.monotonic() - started
    if code not in (0, 1, 5):  # interrupted, internal or usage error
        print(f"tiercheck: the test run did not complete (pytest exit code {code})", file=sys.stderr)
        return 2
    records = list(recorder.records.values())
    verdicts = summarize(records, wanted)
    _print_table(verdicts, args.impl, args.profile, elapsed)
    if args.report_dir:
        path = Path(args.report_dir) / "tiercheck.json"
        write_json(path, args.impl, args.profile, verdicts, records, _environment())
        print(f"report: {path}")
    return 1 if any(v.verdict == "FAIL" for v in verdicts) else 0


def _environment() -> dict[str, str]:
    versions = {}
    for name in ("tiercheck", "hypothesis", "pytest", "redis", "fakeredis"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"python": platform.python_version(), "platform": platform.platform(), **versions}


def _print_table(verdicts: list[Verdict], impl: str, profile: str, elapsed: float) -> None:
    from rich.console import Console
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
        )
    console = Console(width=max(Console().width, 140))
    console.print(table)
    for v in verdicts:
        for failure in v.failures:
            console.rule(f"[red]{v.id} FAIL: {failure['test']}")
            console.print(failure["detail"], markup=False, highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tiercheck", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check an implementation against SPEC properties P1-P12, E1-E10")
    v.add_argument("--impl", default=DEFAULT_IMPL, help="package.module:factory (default: %(default)s)")
    v.add_argument("--profile", choices=PROFILES, default="ci", help="Hypothesis profile (default: %(default)s)")
    v.add_argument("--only", help="comma-separated property IDs, e.g. P1,P7,E2")
    v.add_argument("--report-dir", help="write tiercheck.json (schema: docs in README) here")
    v.add_argument("-n", "--workers", type=int, default=0, help="pytest-xdist workers (0: in-process)")
    args = parser.parse_args(argv)
    if args.command == "verify":
        return verify(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
