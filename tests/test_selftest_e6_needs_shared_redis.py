"""E6 is judged where SPEC puts it: two instances sharing Redis and a database (a harness self-test).

docs/contract.md section 5 also asks instances that share only a database to honour removals within the
window; SPEC's E6 does not. `test_measure_observed_staleness[database-disk]` failed a cache that keeps
instances coherent only through Redis (tests/fixtures/coherent_only_through_redis.py), correct by SPEC. It
now measures that case (trials served past the window are counted) and judges only wrong values.
"""

from __future__ import annotations

import pytest
from fixture_runs import run_child

pytestmark = pytest.mark.selftest


def test_database_only_staleness_is_measured_not_judged():
    run = run_child(
        "pytest", "tiercheck/properties/test_effectiveness.py",
        "-k", "observed_staleness and database-disk and not valkey",
        "--tiercheck-impl", "coherent_only_through_redis:factory", "-p", "no:cacheprovider", "-p", "no:xdist",
        "-q", "-s",
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "1 passed" in out and "inf" in out, out[-3000:]  # it ran, and B served past the window
