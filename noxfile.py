"""nox sessions: the default fast suite, and the longer campaigns that do not belong in it.

Every session installs what it needs from pyproject.toml into its own virtualenv.
Run `nox -l` for the list, `nox -s NAME` for one.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

TEST = ".[test]"


@nox.session
def tests(session: nox.Session) -> None:
    """The default suite (what CI runs): unit, CI-profile properties, integration on local binaries."""
    session.install("-e", TEST)
    session.run("pytest", "-n", "2", *session.posargs)


@nox.session
def properties(session: nox.Session) -> None:
    """The property suites alone; TIERCHECK_PROFILE=nightly for the long run."""
    session.install("-e", TEST)
    session.run(
        "pytest",
        "-n",
        "2",
        "properties",
        *session.posargs,
        env={"TIERCHECK_PROFILE": os.environ.get("TIERCHECK_PROFILE", "ci")},
    )


@nox.session
def conformance(session: nox.Session) -> None:
    """`tiercheck verify` on an implementation: nox -s conformance -- --impl pkg.mod:factory"""
    session.install("-e", TEST)
    session.run("tiercheck", "verify", "--report-dir", "reports", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """Suites against real Redis-protocol and PostgreSQL servers (Docker, local binaries or env URLs)."""
    session.install("-e", TEST)
    session.run("pytest", "integration", *session.posargs)


@nox.session
def chaos(session: nox.Session) -> None:
    """Fault injection against real server processes."""
    session.install("-e", TEST)
    session.run("pytest", "chaos", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("ruff", "check", "tiercheck", "reference", "properties", "chaos", "integration", "tests")
    session.run("mypy", "tiercheck", "reference")


@nox.session
def coverage(session: nox.Session) -> None:
    """Line and branch coverage of reference/ and tiercheck/ across the default suite."""
    session.install("-e", TEST, "coverage[toml]>=7.5", "pytest-cov>=5")
    session.run(
        "pytest",
        "-n",
        "2",
        "--cov=reference",
        "--cov=tiercheck",
        "--cov-branch",
        "--cov-report=term-missing:skip-covered",
        "--cov-fail-under=85",
        *session.posargs,
    )
