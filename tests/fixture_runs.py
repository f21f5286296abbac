"""Run a user's command in a child process against an implementation from tests/fixtures (for self-tests
that must see a verdict exactly as a user's run gives it). Not a test module: imported by a few."""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_child(*args: str, timeout: float = 300, **env_vars: str) -> subprocess.CompletedProcess[str]:
    """`python -m <args>` from the repository root in the ci profile, with tests/fixtures importable and no
    TIERCHECK_IMPL from the caller's environment; `env_vars` are set on top."""
    env = {**os.environ, "TIERCHECK_PROFILE": "ci", **env_vars}
    env["PYTHONPATH"] = os.pathsep.join([ROOT, os.path.join(HERE, "fixtures"), env.get("PYTHONPATH", "")])
    env.pop("TIERCHECK_IMPL", None)
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )
