"""What every tier below memory provides; the cache talks to Redis, disk and database only through this."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import NamedTuple, Protocol

from .keys import CacheKey

ALL = "*"
"""In a repair journal: every variant of a content (as variant) or every entry (as content)."""

IsDead = Callable[[CacheKey, bytes], bool]

REPAIR_MARK_SECONDS = 86_400.0
"""How long a tier remembers an applied repair: longer than any instance keeps a record it loaded
from a journal before another instance applied it."""


class TierError(Exception):
    """A tier could not do what was asked (down, hung, full, corrupt). Never reaches the caller."""


class Repair(NamedTuple):
    """A removal a tier owes (its journal record); `rid` tells two records of the same removal apart."""

    content: str  # ALL: every entry
    variant: str  # ALL: every variant of the content
    rid: str


class StoreTier(Protocol):
    name: str

    def get(self, key: CacheKey) -> bytes | None: ...

    def put(self, key: CacheKey, blob: bytes, expires_at: float, now: float) -> None: ...

    def remove(self, content: str, variant: str | None = None) -> None: ...

    def clear(self) -> None: ...

    def purge(self, is_dead: IsDead) -> int:
        """Remove entries for which is_dead(key, blob) holds (expired, corrupt); return the count."""
        ...

    def keys(self) -> Iterator[CacheKey]: ...

    def usage(self) -> dict[str, object]: ...

    def repairs_applied(self, rids: Collection[str]) -> set[str]:
        """Which of these journal records this tier has applied already (see `mark_repaired`)."""
        ...

    def mark_repaired(self, rids: Collection[str], now: float) -> None:
        """Remember, in the tier itself, that these records were applied: a journal that could not
        forget them (read-only, down) must not replay them later over newer data. Marks older than
        `now - REPAIR_MARK_SECONDS` are dropped."""
        ...

    def close(self) -> None: ...


class Journal(Protocol):
    """A durable tier that can also keep other tiers' pending repairs (disk, database)."""

    def journal_add(self, tier: str, repair: Repair) -> None: ...

    def journal_load(self) -> list[tuple[str, Repair]]: ...

    def journal_discard(self, tier: str, repairs: Collection[Repair]) -> None: ...

    def floor_get(self) -> int:
        """The Redis change counter below which a Redis has lost removals made here (0: none)."""
        ...

    def floor_raise(self, value: int) -> None: ...


class Coordinator(Protocol):
    """A shared tier that carries the invalidation generation between instances (Redis, database)."""

    def bump_generation(self) -> str:
        """Announce a change (put, invalidation); return the new counter, as a decimal string."""
        ...

    def read_generation(self) -> str:
        """The counter, moved by every change anywhere ("" when never set)."""
        ...
