"""The circuit breaker: skip a failing tier, retry after an exponential backoff in ops or seconds."""

from __future__ import annotations

from tiercheck.reference.health import TierHealth


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_opens_after_threshold_and_closes_on_success():
    h = TierHealth("redis", failure_threshold=2, max_ops=8, max_seconds=100, monotonic=Clock())
    h.record_failure("get", OSError("x"))
    assert h.healthy and h.allow()
    h.record_failure("get", OSError("x"))
    assert not h.healthy
    h.record_success()
    assert h.healthy and h.snapshot()["readmissions"] == 1


def test_backoff_in_operations_doubles_and_is_capped():
    h = TierHealth("disk", max_ops=4, max_seconds=1e9, monotonic=Clock())
    h.record_failure("put", OSError("full"))
    gaps = []
    for _ in range(5):
        skipped = 0
        while not h.allow():
            skipped += 1
        gaps.append(skipped + 1)
        h.record_failure("trial", OSError("still full"))
    assert gaps == [2, 4, 4, 4, 4]  # 2**1, 2**2, then capped at max_ops


def test_backoff_in_seconds():
    clock = Clock()
    h = TierHealth("database", max_ops=10**9, max_seconds=0.5, monotonic=clock)
    h.record_failure("get", OSError("locked"))
    assert not h.allow()
    clock.t += 0.021
    assert h.allow()  # first delay: 20 ms
    for _ in range(10):
        h.record_failure("trial", OSError("locked"))
    clock.t += 0.49
    assert not h.allow()
    clock.t += 0.02
    assert h.allow()  # capped at max_seconds


def test_snapshot_reports_last_error():
    h = TierHealth("redis")
    h.record_failure("put", ConnectionError("refused"))
    snap = h.snapshot()
    assert snap["healthy"] is False and "refused" in snap["last_error"] and snap["total_failures"] == 1


def test_backoff_doubles_step_by_step_before_the_cap():
    """Mutation testing: a backoff that grew by 4x per failed trial went unnoticed with max_ops=4."""
    h = TierHealth("disk", max_ops=64, max_seconds=1e9, monotonic=Clock())
    h.record_failure("put", OSError("full"))
    gaps = []
    for _ in range(6):
        skipped = 0
        while not h.allow():
            skipped += 1
        gaps.append(skipped + 1)
        h.record_failure("trial", OSError("still full"))
    assert gaps == [2, 4, 8, 16, 32, 64]


def test_snapshot_counts_every_failure_and_names_the_error_type():
    h = TierHealth("redis", failure_threshold=3)
    h.record_failure("get", TimeoutError("slow"))
    h.record_failure("put", ConnectionError("refused"))
    assert h.snapshot() == {
        "healthy": True,
        "consecutive_failures": 2,
        "total_failures": 2,
        "readmissions": 0,
        "last_error": "put: ConnectionError: refused",
    }
    h.record_success()
    h.record_failure("get", OSError("again"))
    assert h.snapshot()["total_failures"] == 3 and h.snapshot()["consecutive_failures"] == 1


def test_the_first_delay_in_seconds_alone_readmits():
    """One call after the delay must be let through by the clock, before any op-count backoff is due."""
    clock = Clock()
    h = TierHealth("database", max_ops=10**9, max_seconds=0.5, monotonic=clock)
    h.record_failure("get", OSError("locked"))
    clock.t += 0.019
    assert not h.allow()
    h = TierHealth("database", max_ops=10**9, max_seconds=0.5, monotonic=clock)
    h.record_failure("get", OSError("locked"))
    clock.t += 0.021
    assert h.allow()  # the first call after 20 ms: the op count (2) is not due yet


def test_a_tier_turning_unhealthy_is_logged_with_tier_operation_and_error(caplog):
    h = TierHealth("redis")
    with caplog.at_level("WARNING", logger="reference.health"):
        h.record_failure("put", ConnectionError("refused"))
    (record,) = caplog.records
    assert record.name == "reference.health"
    assert record.getMessage() == "tier redis unhealthy after put failed: put: ConnectionError: refused"
