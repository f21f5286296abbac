"""The model every chaos check compares against: per (file content, tier), the values that may be served.

A put that returned True makes its value the only one allowed; one that returned False adds it to
the allowed set (the old values stay possible). An invalidate that returned True, and any
clear_all, empty the set: from then on only a miss is right, through every outage, restart and
old snapshot (E1). A miss is always allowed. A value is allowed only while `clock() < put time +
TTL`. Anything else served is a violation, classified for the report:
resurrection (a value once allowed for this key, since removed), another key's value, expired,
or unknown bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tiercheck.properties.machine import canonical

Key = tuple[bytes, str]  # (file content, tier)


@dataclass
class Violation:
    check: str
    detail: str
    step: int = 0
    fault: str = "none"
    prop: str = ""  # the property it breaks (E1, P5, ...), when a checker knows it
    key: str = ""  # what makes two reports of it the same one (a checker re-run over a longer history)

    def __str__(self) -> str:
        prop = f" {self.prop}" if self.prop else ""
        return f"[step {self.step}, fault: {self.fault}]{prop} {self.check}: {self.detail}"


@dataclass
class Model:
    ttl: float
    allowed: dict[Key, dict[str, float]] = field(default_factory=dict)  # canonical value -> expires_at
    ever: dict[str, Key] = field(default_factory=dict)  # every value ever put -> its key
    removed: dict[Key, set[str]] = field(default_factory=dict)  # values an invalidate/clear_all removed

    def put(self, key: Key, value: dict[str, Any], ok: bool, now: float) -> None:
        c = canonical(value)
        self.ever[c] = key
        if ok:
            self.allowed[key] = {c: now + self.ttl}
        else:
            self.allowed.setdefault(key, {})[c] = now + self.ttl

    def uncertain(self, key: Key, value: dict[str, Any], now: float) -> None:
        """An operation whose outcome is unknown (a crash mid-put): the new value becomes possible."""
        self.put(key, value, ok=False, now=now)

    def invalidate(self, content: bytes, tiers: list[str], ok: bool) -> None:
        if not ok:
            return  # old values and a miss stay possible: nothing to change
        for tier in tiers:
            key = (content, tier)
            self.removed.setdefault(key, set()).update(self.allowed.pop(key, {}))

    def clear_all(self) -> None:
        for key, values in self.allowed.items():
            self.removed.setdefault(key, set()).update(values)
        self.allowed = {}

    def live(self, key: Key, now: float) -> dict[str, float]:
        return {c: exp for c, exp in self.allowed.get(key, {}).items() if now < exp}

    def check_get(self, key: Key, got: Any, now: float) -> tuple[str, str] | None:
        """None if `got` may be served for `key` at `now`; else (check name, detail)."""
        if got is None:
            return None
        try:
            c = canonical(got)
        except (TypeError, ValueError):
            return "wrong value", f"served a value that is not JSON-like: {got!r:.200}"
        exp = self.allowed.get(key, {}).get(c)
        if exp is not None:
            if now < exp:
                return None
            return "expired value", f"served {c:.120} at {now}, expired at {exp}"
        if c in self.removed.get(key, set()):
            return "resurrection", f"served {c:.120}, which an invalidate/clear_all had removed"
        owner = self.ever.get(c)
        if owner is not None and owner != key:
            return "wrong value", f"served another key's value {c:.120} (tier {owner[1]!r})"
        if owner == key:
            return "wrong value", f"served an overwritten value {c:.120}; allowed: {sorted(self.allowed.get(key, {}))}"
        return "wrong value", f"served {c:.120}, never put for any key"
