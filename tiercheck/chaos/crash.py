"""E3 crash consistency: a child process is SIGKILLed at seeded points of put, invalidate and cleanup,
many times over the same cache_dir and SQLite database; after each kill a fresh instance must read,
for every key, only the old value, the new one, or a miss — never garbage, never an exception.

The child (tiercheck.chaos.crash_child) reports each operation on a pipe before starting it and after it
returns, so the parent knows which operations completed and which one was cut. Two kill modes:
`self` (deterministic: the child kills itself after a seeded number of call events inside a seeded
operation) for the default test run, `external` (the parent SIGKILLs as soon as the child announced
a seeded operation: the kill lands wherever the child is) for campaigns.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tiercheck.backends import unique_namespace
from tiercheck.contract import Env, Factory

from .crash_child import content
from .model import Model, Violation
from .runner import Summary

TTL = 40.0
FAILSAFE = 120.0


def run_crashes(
    impl: str, factory: Factory, seed: int, kills: int, mode: str = "self", summary: Summary | None = None
) -> Summary:
    summary = summary if summary is not None else Summary(seed=seed)
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="tiercheck-crash-"))
    files = root / "files"
    files.mkdir()
    cache_dir, db_url, ns = str(root / "cache"), f"sqlite:///{root}/db.sqlite3", unique_namespace("crash")
    model = Model(TTL)
    base, step = 1_000_000.0, 0
    repo = str(Path(__file__).resolve().parents[2])  # the checkout (tiercheck/chaos/crash.py)
    # the child imports --impl as this process does: from the checkout and from the working directory
    path = os.pathsep.join([repo, os.getcwd(), os.environ.get("PYTHONPATH", "")])
    child_env = {**os.environ, "PYTHONPATH": path}
    try:
        for _ in range(kills):
            at = step + rng.randrange(2, 10)
            cmd = [
                sys.executable,
                "-m",
                "tiercheck.chaos.crash_child",
                "--impl",
                impl,
                "--cache-dir",
                cache_dir,
                "--database-url",
                db_url,
                "--namespace",
                ns,
                "--files",
                str(files),
                "--seed",
                str(rng.randrange(2**32)),
                "--start",
                str(step),
                "--clock",
                str(base + step),
                "--ttl",
                str(TTL),
            ]
            if mode == "self":
                cmd += ["--kill-at", f"{at}:{rng.randrange(1, 600)}"]
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=repo, env=child_env, start_new_session=True
            )
            pending = None
            try:
                assert proc.stdout is not None
                for raw in proc.stdout:
                    parts = raw.decode().rstrip("\n").split(" ", 7)
                    if parts[0] == "B":
                        pending = parts
                        if mode == "external" and int(parts[1]) >= at:
                            os.killpg(proc.pid, signal.SIGKILL)
                    elif parts[0] == "D" and pending is not None:
                        _apply(model, pending, parts[2], done=True)
                        pending = None
                proc.wait(FAILSAFE)
            finally:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(FAILSAFE)
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            if proc.returncode != -signal.SIGKILL:
                summary.violations.append(
                    Violation(
                        "exception escaped",
                        f"crash child exited {proc.returncode}: {err.strip().splitlines()[-1:]}",
                        step,
                        "SIGKILL",
                    )
                )
            summary.injected["process SIGKILL (E3)"] += 1
            summary.real["process SIGKILL (E3)"] = True
            if pending is not None:
                _apply(model, pending, None, done=False)
                summary.crashes[f"killed during {pending[2]}"] += 1
                step = int(pending[1]) + 1
            else:
                summary.crashes["killed between operations"] += 1
            clock = base + step
            _verify(
                factory,
                Env(cache_dir=cache_dir, database_url=db_url, namespace=ns, clock=lambda c=clock: c, ttl_seconds=TTL),
                model,
                files,
                clock,
                summary,
                step,
            )
            summary.recoveries["process SIGKILL (E3)"] += 1
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return summary


def _apply(model: Model, begin: list[str], result: str | None, done: bool) -> None:
    _, _, op, name, variant, tier, clock, shown = begin
    key_content = content(name, int(variant))
    if op == "put":
        value = json.loads(shown)
        if done:
            model.put((key_content, tier), value, result == "True", float(clock))
        else:
            model.uncertain((key_content, tier), value, float(clock))
    elif op == "invalidate" and done:
        model.invalidate(key_content, ["premium", "free"] if tier == "*" else [tier], result == "True")


def _verify(factory: Factory, env: Env, model: Model, files: Path, now: float, summary: Summary, step: int) -> None:
    scratch = files / "verify"
    try:
        cache = factory(env)
    except Exception as exc:
        summary.violations.append(Violation("exception escaped", f"factory after a crash: {exc!r}", step, "SIGKILL"))
        return
    try:
        for round_ in ("read", "after cleanup"):
            for name in ("a", "b", "c"):
                for variant in (0, 1):
                    scratch.write_bytes(content(name, variant))
                    for tier in ("premium", "free"):
                        summary.operations += 1
                        try:
                            got = cache.get(str(scratch), tier)
                        except Exception as exc:
                            summary.violations.append(
                                Violation("exception escaped", f"get after a crash: {exc!r}", step, "SIGKILL")
                            )
                            continue
                        problem = model.check_get((content(name, variant), tier), got, now)
                        if problem:
                            summary.violations.append(Violation(problem[0], f"{round_}: {problem[1]}", step, "SIGKILL"))
            if round_ == "read":
                try:
                    cache.cleanup()
                except Exception as exc:
                    summary.violations.append(
                        Violation("exception escaped", f"cleanup after a crash: {exc!r}", step, "SIGKILL")
                    )
    finally:
        with contextlib.suppress(Exception):
            cache.shutdown()
