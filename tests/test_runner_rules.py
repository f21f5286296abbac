"""Self-tests of the chaos runner's own machinery (no implementation under test): the schedule's fault
scopes. (The late-write and mid-operation snapshot faults are tested in tests/test_fault_mechanics.py.)"""

from __future__ import annotations

import pytest

from tiercheck.chaos.history import Fault

pytestmark = pytest.mark.selftest


def test_fault_scope():
    one = Fault("redis partition (one instance)", "redis", "one", 1)
    assert one.hits(1) and not one.hits(0)
    assert Fault("redis SIGKILL", "redis").hits(0)
