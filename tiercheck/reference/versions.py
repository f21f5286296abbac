"""Versions that order every write to one key across instances: a hybrid logical clock.

A version is `microseconds since the epoch << 10 | node`, where `node` tells instances apart, and
never goes backwards in one instance (a later call returns a larger value even if the wall clock
steps back; every version seen in a tier is observed, so later writes follow it). Each tier keeps
the highest version it has seen per key, as an entry or a tombstone, and refuses anything older:
a write delayed past a later removal or put can never land (the late-write fence). Versions are
only for ordering; expiry follows the injected clock, never this one.
"""

from __future__ import annotations

import secrets
import threading
import time

NODE_BITS = 10
WIDTH = 19  # decimal digits of any version below 2**63: zero-padded, strings compare like numbers


class VersionClock:
    def __init__(self, node: int | None = None) -> None:
        self.node = secrets.randbelow(1 << NODE_BITS) if node is None else node
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            wall = (time.time_ns() // 1000) << NODE_BITS
            logical = ((self._last >> NODE_BITS) + 1) << NODE_BITS
            self._last = max(wall, logical) | self.node
            return self._last

    def observe(self, version: int) -> None:
        """A version seen elsewhere: the next one this clock hands out is larger."""
        if version > self._last:
            with self._lock:
                self._last = max(self._last, version)


_DAY_US = 86_400 * 10**6


def ceiling() -> int:
    """Above every version any clock hands out within the next day: a stored version beyond it, or
    not an integer at all, was altered (a hostile row) and orders nothing."""
    return (time.time_ns() // 1000 + _DAY_US) << NODE_BITS


def known(value: object) -> int | None:
    """A stored version, or None when it cannot be one a clock handed out (another SQL type, <= 0,
    beyond the ceiling). A removal whose version is unknown applies as of now: the removal wins."""
    return value if type(value) is int and 0 < value < ceiling() else None


def now() -> int:
    """Above every version handed out so far (on this host's wall clock)."""
    return ((time.time_ns() // 1000) << NODE_BITS) | ((1 << NODE_BITS) - 1)


def padded(version: int) -> str:
    return f"{version:0{WIDTH}d}"
