"""Per-tier health: stop calling a failing tier, try it again after an exponential backoff.

The backoff is counted both in operations and in seconds, whichever ends first: in
seconds so a busy service re-admits a healed tier quickly, in operations so that the
re-admission bound does not depend on the wall clock (tests can then be deterministic).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("reference.health")


class TierHealth:
    """Circuit breaker for one tier: closed (healthy) → open after failures → half-open trial."""

    def __init__(
        self,
        name: str,
        failure_threshold: int = 1,
        max_ops: int = 32,
        max_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.max_ops = max_ops
        self.max_seconds = max_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._failures = 0  # consecutive
        self._open = False
        self.clean = True  # closed, and no failure since the last success: callers may skip allow/record_success
        self._backoff_level = 1
        self._skipped = 0
        self._retry_at = 0.0
        self.total_failures = 0
        self.last_error: str | None = None
        self.readmissions = 0

    @property
    def healthy(self) -> bool:
        return not self._open

    def allow(self) -> bool:
        """May the caller use the tier now? While open, every call counts as a skipped operation."""
        if not self._open:
            return True
        with self._lock:
            if not self._open:
                return True
            self._skipped += 1
            ops_due = self._skipped >= min(self.max_ops, 2**self._backoff_level)
            return ops_due or self._monotonic() >= self._retry_at

    def record_success(self) -> None:
        if self.clean:
            return
        with self._lock:
            if self._open:
                self.readmissions += 1
                log.info("tier %s re-admitted after %d skipped operations", self.name, self._skipped)
            self._failures = 0
            self._open = False
            self._backoff_level = 0
            self._skipped = 0
            self.clean = True

    def record_failure(self, operation: str, error: BaseException) -> None:
        with self._lock:
            self.total_failures += 1
            self._failures += 1
            self.clean = False
            self.last_error = f"{operation}: {type(error).__name__}: {error}"
            if self._open:  # a failed trial: back off further
                self._backoff_level = min(self._backoff_level + 1, 16)
            elif self._failures >= self.failure_threshold:
                self._open = True
                self._backoff_level = 1  # skip at least one operation before the first trial
                log.warning("tier %s unhealthy after %s failed: %s", self.name, operation, self.last_error)
            else:
                return
            self._skipped = 0
            delay = min(self.max_seconds, 0.01 * 2**self._backoff_level)
            self._retry_at = self._monotonic() + delay

    def snapshot(self) -> dict[str, object]:
        return {
            "healthy": not self._open,
            "consecutive_failures": self._failures,
            "total_failures": self.total_failures,
            "readmissions": self.readmissions,
            "last_error": self.last_error,
        }
