"""Where tiercheck's suites live: the one place that names their packages.

The property, chaos and integration suites are subpackages of `tiercheck` (nothing generic is installed).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

SUITE_PACKAGES = ("tiercheck.properties", "tiercheck.chaos", "tiercheck.integration")
"""The packages whose tests exercise an implementation (chaos and integration start real servers)."""

FIXTURES_PLUGIN = "tiercheck.integration.fixtures"
"""The pytest plugin module with the real-server fixtures (redis_server, postgres_server, real_env)."""

SERVER_SUITES = ("chaos", "integration")
"""The suites (by directory name) whose tests start real Redis and PostgreSQL servers."""


def fixtures_module() -> ModuleType:
    """The real-server fixtures module (its provider plan, server log and error marker), imported by name."""
    return importlib.import_module(FIXTURES_PLUGIN)


def package_dir(name: str) -> Path:
    """The directory of a suite package, found from tiercheck's own location, never from sys.path.

    A user's project may have its own `properties/` or `integration/` package first on the import path.
    """
    parts = name.split(".")
    here = Path(__file__).resolve().parent
    if parts[0] == "tiercheck":
        return here.joinpath(*parts[1:])
    return here.parent.joinpath(*parts)


def suite_dirs() -> list[Path]:
    """The suite directories that exist (checkout or installed wheel)."""
    return [path for path in map(package_dir, SUITE_PACKAGES) if path.is_dir()]
