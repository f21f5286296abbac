"""Every property test feeds exactly one verdict (a harness self-test).

A `prop` marker on a module's `pytestmark` reaches every test of the module, and the verdicts collect every
`prop` marker a test carries (tiercheck.recording.property_ids). tiercheck/integration/test_multiprocess.py
tagged its module E6, so its P4 test (stats invariants, linearizability across processes) also fed E6: a P4
or P10 finding turned E6 into FAIL. Each test names its own property, once.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from tiercheck import chaos, integration, properties

pytestmark = pytest.mark.selftest


def _marks(obj: object) -> list:
    marks = getattr(obj, "pytestmark", [])
    return marks if isinstance(marks, list) else [marks]


def property_tests():
    for package in (properties, integration, chaos):
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("test_"):
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for name, obj in vars(module).items():
                if name.startswith("test_") and callable(obj):
                    ids = {m.args[0].upper() for m in _marks(module) + _marks(obj) if m.name == "prop" and m.args}
                    yield f"{module.__name__}.{name}", ids


def test_no_property_test_feeds_two_verdicts():
    found = list(property_tests())
    assert len(found) > 50  # the walk reached the suites
    two = {name: sorted(ids) for name, ids in found if len(ids) > 1}
    assert not two, f"tests that feed more than one property's verdict: {two}"


def test_the_process_tests_name_their_own_property():
    ids = dict(property_tests())
    assert ids["tiercheck.integration.test_multiprocess.test_P4_processes_linearizable_per_key"] == {"P4"}
    assert ids["tiercheck.integration.test_multiprocess.test_E6_put_on_one_is_served_by_the_others"] == {"E6"}
    assert ids["tiercheck.integration.test_multiprocess.test_P9_ttl_follows_the_shared_clock_across_processes"] == {
        "P9"
    }
