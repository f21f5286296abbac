"""Bad input is stopped at the door: exit 2 and one line saying what to do, before any test runs.

Each case runs `tiercheck verify` as a user would, from a directory of their own holding their module.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = """
from tiercheck.reference import factory as reference_factory


def returns_none(env):
    return None


def raises(env):
    raise ConnectionError("cannot reach redis://cache:6379")


class Half:
    def get(self, file_path, tier="premium"):
        return None

    def shutdown(self):
        pass


def half(env):
    return Half()


def bad_capabilities(env):
    cache = reference_factory(env)
    cache.tiercheck_capabilities = {"tiers": ["memory", "ssd"]}
    return cache


def no_legacy(env):
    cache = reference_factory(env)
    cache.tiercheck_capabilities = {"legacy_api": False}
    return cache


not_callable = 42
"""


def verify(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120", "TERM": "dumb"}
    env.pop("TIERCHECK_PROFILE", None)
    return subprocess.run(
        [sys.executable, "-m", "tiercheck.cli", "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "mine.py").write_text(MODULE)
    (tmp_path / "boom.py").write_text("import json\nraise RuntimeError('settings.yaml not found')\n")
    (tmp_path / "exits.py").write_text("import sys\nsys.exit('no config')\n")
    (tmp_path / "a_file").write_text("")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--impl", "nosuch:factory"], "cannot import 'nosuch' for --impl 'nosuch:factory'"),
        (["--impl", "nocolon"], "--impl must look like 'package.module:factory'"),
        (["--impl", "mine:nothing"], "'mine' has no attribute 'nothing'"),
        (["--impl", "mine:not_callable"], "'mine:not_callable' is not callable"),
        (["--impl", "boom:factory"], "importing 'boom' for --impl 'boom:factory' raised RuntimeError: settings.yaml"),
        (["--impl", "exits:factory"], "raised SystemExit: no config"),
        (["--impl", "mine:raises"], "factory(env) raised ConnectionError: cannot reach redis://cache:6379"),
        (["--impl", "mine:returns_none"], "factory(env) returned None"),
        (["--impl", "mine:half"], "without the contract methods cleanup, clear_all, get_stats, invalidate, put"),
        (["--impl", "mine:bad_capabilities"], "tiercheck_capabilities: unknown tiers ['ssd']"),
        (["--only", ""], "--only is empty"),
        (["--only", " , "], "--only is empty"),
        (["--only", "P1,Q7"], "unknown property IDs ['Q7']"),
        (["--report-dir", "a_file/reports"], "cannot write reports to 'a_file/reports'"),
        (["--profile", "fast"], "unknown profile 'fast'; use one of quick, ci, nightly, dev"),
        (["--baseline", "/nonexistent/tiercheck.json"], "cannot read report"),
    ],
)
def test_bad_input_exits_2_with_one_line_before_any_test_runs(project, args, message):
    run = verify(*args, cwd=project)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stdout == ""  # nothing ran: no progress line, no table
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tiercheck: "), run.stderr
    assert message in lines[0], lines[0]
    assert not list(project.glob("a_file*/**/tiercheck.json"))


def test_the_profile_alias_dev_is_quick(project):
    run = verify("--impl", "mine:no_legacy", "--profile", "dev", "--only", "E9", "--seed", "7", cwd=project)
    assert "profile quick" in run.stdout, run.stdout + run.stderr


def test_a_run_where_every_property_is_not_applicable_exits_3_and_says_so(project):
    run = verify("--impl", "mine:no_legacy", "--only", "E9", cwd=project)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "not applicable" in run.stdout
    assert "nothing was checked" in run.stderr and "exit 3" in run.stderr
    # The integration suite's E9 tests started real servers: the run says which, from which provider.
    assert re.search(r"^servers \(tried in order: TIERCHECK_REDIS_URL .*Docker.*local binaries\)", run.stdout, re.M)
    assert re.search(r"^served by: redis \S+ \S+ from ", run.stdout, re.M), run.stdout
    assert re.search(r"^served by: postgres PostgreSQL \S+ from ", run.stdout, re.M), run.stdout
