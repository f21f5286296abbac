"""The nemesis interface: one fault, injected and healed on command, described for the report.

A nemesis knows nothing of the implementation under test: it acts on what the harness handed out
(a server process, a TCP proxy, the cache directory, the database file or server). The same object
serves a standalone campaign (`chaos.campaign`) and a Hypothesis stateful machine
(`chaos.machine`), where `inject` and `heal` are rules. `properties.faults.Nemesis` objects (the
in-process fault machine's) have the same shape and can be used here unchanged.

- `tier`: the tier the fault hits ("redis", "disk", "database"), so checks know which tiers must
  stay healthy and which one must come back after `heal`.
- `kind`: a stable name for the summary table ("redis SIGSTOP", "disk ENOSPC", ...).
- `real`: True when the fault is the real thing (a signal, a full filesystem), False when it fell
  back to an injected OSError; `describe()` says which.
- `instant`: the fault happens at `inject` and has nothing to undo (corruption, a deleted file, a
  terminated backend); `heal` is then a no-op, and the tier is expected back right away.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class NemesisLike(Protocol):
    tier: str

    def inject(self) -> None: ...

    def heal(self) -> None: ...

    def describe(self) -> str: ...


class Nemesis:
    """Base class: subclasses set `kind` and `tier` and override `inject`/`heal`."""

    kind = "nemesis"
    tier = ""
    real = True
    instant = False
    # the tier may lose its data (restart empty, directory removed, database deleted): healthy-tier
    # data checks then skip it, and so does the check that its data survives
    destroys_data = False

    @property
    def name(self) -> str:  # properties.faults.Nemesis compatibility
        return self.kind

    def arm(self) -> None:
        """Called while everything is healthy, some operations before a later `inject` (snapshots)."""

    def inject(self) -> None:
        raise NotImplementedError

    def heal(self) -> None:
        """Undo the fault; idempotent."""

    def close(self) -> None:
        """Release what the nemesis holds (heals first)."""
        self.heal()

    def still_damaged(self) -> bool:
        """After heal: whether damage the fault left in the backend is still there, waiting for the
        implementation to find it (a corrupted SQLite file still in use). While it is, the tier may still
        lose its data to that damage, and checks that other faults leave its data alone skip it."""
        return False

    def describe(self) -> str:
        return f"{self.kind} ({'real' if self.real else 'injected OSError fallback'})"


class Wrapped(Nemesis):
    """Adapt a `properties.faults` nemesis (name, tier, inject, heal) to this interface."""

    def __init__(self, inner: NemesisLike, kind: str | None = None, real: bool = False) -> None:
        self.inner = inner
        self.kind = kind or getattr(inner, "name", type(inner).__name__)
        self.tier = inner.tier
        self.real = real

    def inject(self) -> None:
        self.inner.inject()

    def heal(self) -> None:
        self.inner.heal()


class ServerKill(Nemesis):
    """SIGKILL a server the run started (a `integration.servers.ServerHandle`); heal restarts it."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.down = False

    def inject(self) -> None:
        self.handle.kill()
        self.down = True

    def heal(self) -> None:
        if self.down:
            self.handle.restart()
            self.down = False
