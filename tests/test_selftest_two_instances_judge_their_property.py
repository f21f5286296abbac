"""The two-instance machines judge their own property (a harness self-test).

test_multi_instance's E1 and E6 tests raised on every checker finding, so an exception that escaped under a
fault (P5's "operations never raise") or a put returning something other than a bool (P1's contract types)
turned E1 or E6 into FAIL although no invalidation was undone and no read was stale. Each machine now judges
its property's findings and wrong data (tiercheck.chaos.judging), the rest is printed as not judged here.
"""

from __future__ import annotations

import pytest

from tiercheck.chaos.model import Violation
from tiercheck.properties.test_multi_instance import TwoInstances

pytestmark = pytest.mark.selftest

RAISED = Violation("exception escaped", "get raised ConnectionError", fault="redis refused", prop="P5", key="exc 3")
TYPES = Violation("contract", "put returned 1", prop="P1", key="type 4")
UNDONE = Violation("resurrection", "instance 1 got {'seq': 2} after instance 0's invalidate", prop="E1", key="lin a")
STALE = Violation("stale read", "key a: read 2 s after the invalidate", prop="E6", key="lin a")
WRONG = Violation("wrong value", "key a: a value never put", prop="P1", key="lin b")


class Reports:
    def __init__(self, *found: Violation) -> None:
        self.found = list(found)

    def check(self, history, contract) -> list[Violation]:
        return self.found


def machine(judges: str, *found: Violation) -> TwoInstances:
    """The machine's invariant alone, over checkers that report `found` (no servers, no instances)."""
    m = object.__new__(TwoInstances)
    m.judges, m.history, m.contract, m.checkers = judges, None, None, [Reports(*found)]
    return m


@pytest.mark.parametrize("judges", ["E1", "E6"])
def test_an_exception_or_a_return_type_does_not_fail_e1_or_e6(judges, capsys):
    machine(judges, RAISED, TYPES).history_is_correct()
    out = capsys.readouterr().out
    assert "not judged here (P5's business)" in out and "not judged here (P1's business)" in out


@pytest.mark.parametrize(
    "judges, finding",
    [("E1", UNDONE), ("E1", WRONG), ("E1", STALE), ("E6", STALE), ("E6", WRONG), ("E6", UNDONE)],
)
def test_own_findings_and_wrong_data_fail(judges, finding):
    with pytest.raises(AssertionError, match=finding.check):
        machine(judges, RAISED, finding).history_is_correct()
