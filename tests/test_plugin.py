"""The pytest plugin route, as a user's project meets it: no conftest.py, its own `integration/` and
`properties/` packages, tiercheck installed (its `pytest11` entry point loads the plugin)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PYTEST = str(Path(sys.executable).parent / "pytest")  # the console script a user runs

CONFORMANCE = """
import mycache
from tiercheck.conformance import CacheConformance


class TestMyCache(CacheConformance):
    factory = mycache.factory


class TestBroken(CacheConformance):
    factory = "variants.method_outside_class:factory"  # a method dedented out of its class: fails P11
"""


def pytest_in(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # No PYTHONPATH: with the project first on the path its `integration/` would shadow tiercheck's suite of
    # that name (as with `python -m pytest`) until the suites move under the `tiercheck.` namespace.
    env = {**os.environ, "XDG_CACHE_HOME": str(project / "user-cache")}
    for name in ("TIERCHECK_PROFILE", "TIERCHECK_IMPL", "PYTEST_ADDOPTS", "PYTHONPATH"):
        env.pop(name, None)
    return subprocess.run(
        [PYTEST, "-p", "no:cacheprovider", *args], capture_output=True, text=True, timeout=240, cwd=project, env=env
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for package in ("integration", "properties"):  # the generic names a project may well have
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "fixtures.py").write_text("OWNER = 'the user'\n")
    (tmp_path / "mycache.py").write_text(
        "from tiercheck.reference import factory as _reference\n\n\ndef factory(env):\n    return _reference(env)\n"
    )
    (tmp_path / "test_own.py").write_text(
        "from hypothesis import given, strategies as st\n\n\n@given(st.text())\ndef test_own(s):\n    assert s == s\n"
    )
    return tmp_path


def test_installed_but_not_asked_for_it_stays_out_of_the_way(project):
    run = pytest_in(project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert "tiercheck:" not in run.stdout and "tiercheck servers" not in run.stdout


def test_tiercheck_impl_runs_the_suites_against_the_factory(project):
    run = pytest_in(project, "--tiercheck-impl", "mycache:factory", "-m", "tiercheck_P12 or tiercheck_E8")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "tiercheck: impl=mycache:factory hypothesis-profile=ci" in run.stdout
    passed = int(re.search(r"(\d+) passed", run.stdout).group(1))
    assert passed >= 3  # P12's two child-process tests and E8's warming tests
    assert not (project / ".hypothesis").exists()  # Hypothesis's files go to the user's cache directory


def test_tiercheck_only_selects_properties(project):
    run = pytest_in(project, "--tiercheck-impl", "mycache:factory", "--tiercheck-only", "P12", "-v")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    tests = re.findall(r"::(test_\w+)", run.stdout)
    assert tests and all(name.startswith("test_P12") for name in tests), tests


def test_a_bad_impl_is_stopped_before_collection_with_one_line(project):
    (project / "broken.py").write_text("raise ImportError('libfoo.so: cannot open shared object file')\n")
    run = pytest_in(project, "--tiercheck-impl", "broken:factory")
    assert run.returncode == 4, run.stdout + run.stderr  # pytest's usage-error code
    errors = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "cannot import 'broken'" in errors[0] and "libfoo.so" in errors[0], run.stderr


def test_a_conformance_subclass_runs_the_suites_on_its_own_factory(project):
    (project / "test_conformance.py").write_text(CONFORMANCE)
    run = pytest_in(project, "test_conformance.py", "-m", "tiercheck_P11 or tiercheck_P12", "-q")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    failed = re.findall(r"^FAILED (\S+)", run.stdout, re.M)
    # Only the broken class fails, and only where its defect is: P11's check of the implementation's source.
    assert failed == [
        "test_conformance.py::TestBroken::properties/test_p11_static.py::"
        "test_P11_implementation_source_is_structurally_sound"
    ], run.stdout[-3000:]
    assert (
        "TestMyCache::properties/test_p12_instantiation.py"
        in pytest_in(project, "test_conformance.py", "-m", "tiercheck_P12", "--collect-only", "-q").stdout
    )


def test_a_conformance_subclass_without_a_working_factory_is_one_collection_error(project):
    (project / "test_none.py").write_text(
        "from tiercheck.conformance import CacheConformance\n\n\n"
        "class TestNone(CacheConformance):\n    factory = staticmethod(lambda env: None)\n"
    )
    run = pytest_in(project, "test_none.py")
    assert run.returncode == 2, run.stdout + run.stderr  # pytest: interrupted by a collection error
    assert "tiercheck: TestNone.factory: factory(env) returned None" in run.stdout
    assert "Traceback" not in run.stdout
