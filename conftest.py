"""tiercheck's own test run. Its pytest plugin loads itself (the `pytest11` entry point
`tiercheck.pytest_plugin`), so nothing here lists it: a `pytest_plugins` in this file would also break runs
from other directories that collect the suites of this checkout (pytest refuses it in a non-root conftest).

`--impl` is a short alias of `--tiercheck-impl` that only this checkout defines: an installed plugin must not
claim an option name a user's project may already use.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--impl", dest="impl", default=None, help="tiercheck's own checkout: the same as --tiercheck-impl")
