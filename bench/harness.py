"""The harness's own speed: how fast the suites run and how fast they catch the broken variants.

Measured in the same run as the cache numbers, as wall time of the real commands a user runs
(pytest and `tiercheck verify` in child processes), so the numbers include start-up costs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine_steps() -> dict:
    """Examples per second and steps per example of the main model machine, in the ci profile."""
    from tiercheck.properties.machine import run_machine
    from tiercheck.properties.test_model_properties import ConsistencyMachine
    from tiercheck.reference import factory

    steps: list[int] = []
    machine = type("Instrumented", (ConsistencyMachine,), {"step_log": steps})
    started = time.perf_counter()
    run_machine(machine, factory)
    seconds = time.perf_counter() - started
    ordered = sorted(steps)
    return {
        "examples": len(steps),
        "seconds": seconds,
        "examples_per_second": len(steps) / seconds,
        "steps_per_second": sum(steps) / seconds,
        "min": ordered[0],
        "p10": ordered[len(ordered) // 10],
        "median": statistics.median(ordered),
        "max": ordered[-1],
        "at_least_20": sum(s >= 20 for s in steps) / len(steps),
        "zero": steps.count(0),
    }


def _timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})})
    return time.perf_counter() - started, run


def variant_times() -> list[dict]:
    """Wall time of `tiercheck verify --only <ID>` until each broken variant is caught (shrinking off)."""
    from variants import CAUGHT_BY

    rows = []
    for name, ids in sorted(CAUGHT_BY.items()):
        with tempfile.TemporaryDirectory() as report_dir:
            seconds, run = _timed(
                [
                    sys.executable,
                    "-m",
                    "tiercheck.cli",
                    "verify",
                    "--impl",
                    f"variants.{name}:factory",
                    "--only",
                    ids[0],
                    "--report-dir",
                    report_dir,
                    "--fail-fast",
                ],
                {"TIERCHECK_PROFILE": "ci", "TIERCHECK_SHRINK": "0"},
            )
            report = Path(report_dir) / "tiercheck.json"
            verdict = "no report"
            if report.exists():
                verdicts = {v["id"]: v["verdict"] for v in json.loads(report.read_text())["verdicts"]}
                verdict = verdicts.get(ids[0], "missing")
        rows.append(
            {"variant": name, "property": ids[0], "verdict": verdict, "exit": run.returncode, "seconds": seconds}
        )
    return rows


def suite_times() -> list[dict]:
    """The suites as CI and users run them."""
    commands = {
        "properties, ci profile (`pytest -n 2 properties`)": [
            "-m",
            "pytest",
            "-n",
            "2",
            "-q",
            "-p",
            "no:cacheprovider",
            "properties",
        ],
        "conformance (`tiercheck verify -n 2`)": ["-m", "tiercheck.cli", "verify", "-n", "2"],
    }
    rows = []
    for label, args in commands.items():
        seconds, run = _timed([sys.executable, *args], {"TIERCHECK_PROFILE": "ci"})
        lines = run.stdout.strip().splitlines()
        tail = next(
            (line for line in reversed(lines) if " passed" in line or " failed" in line), lines[-1] if lines else ""
        )
        rows.append({"suite": label, "seconds": seconds, "exit": run.returncode, "summary": tail[:100]})
    return rows


def measure(say) -> dict:
    say("harness: model machine")
    result = {"machine": machine_steps()}
    say("harness: broken variants")
    result["variants"] = variant_times()
    say("harness: suites")
    result["suites"] = suite_times()
    return result


def render(h: dict) -> str:
    m = h["machine"]
    lines = [
        "",
        "## The harness",
        "",
        "Wall times of the real commands, in this run (child processes; start-up included).",
        "",
        "| suite | time (s) | exit | last line |",
        "|---|---:|---:|---|",
        *(f"| {r['suite']} | {r['seconds']:.0f} | {r['exit']} | {r['summary']} |" for r in h["suites"]),
        "",
        f"Model machine (`ConsistencyMachine`, ci profile, reference on fakeredis + SQLite): {m['examples']} "
        f"examples in {m['seconds']:.1f} s = **{m['examples_per_second']:.1f} examples/s** "
        f"({m['steps_per_second']:.0f} steps/s). Steps per example: min {m['min']}, p10 {m['p10']}, median "
        f"{m['median']:g}, max {m['max']}; {m['at_least_20']:.0%} reach 20 steps; {m['zero']} run none "
        "(`tests/test_machine_steps.py` requires at least half at 20+ and none at 0).",
        "",
        "Time to catch each broken variant: `tiercheck verify --impl variants.<name>:factory --only <ID> "
        "--fail-fast`, ci profile, `TIERCHECK_SHRINK=0` (shrinking changes how a counterexample reads, not "
        "whether it is found).",
        "",
        "| variant | property | verdict | exit | time (s) |",
        "|---|---|---|---:|---:|",
        *(
            f"| {r['variant']} | {r['property']} | {r['verdict']} | {r['exit']} | {r['seconds']:.1f} |"
            for r in h["variants"]
        ),
        "",
        f"Caught: {sum(r['verdict'] == 'FAIL' for r in h['variants'])} of {len(h['variants'])}; median time to "
        f"catch {statistics.median(r['seconds'] for r in h['variants']):.1f} s, slowest "
        f"{max(r['seconds'] for r in h['variants']):.1f} s.",
        "",
    ]
    return "\n".join(lines)
