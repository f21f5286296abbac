"""What every tier below memory provides; the cache talks to Redis, disk and database only through this."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from .keys import CacheKey

ALL = "*"
"""In a repair journal: every variant of a content (as variant) or every entry (as content)."""

IsDead = Callable[[CacheKey, bytes], bool]


class TierError(Exception):
    """A tier could not do what was asked (down, hung, full, corrupt). Never reaches the caller."""


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

    def close(self) -> None: ...


class Journal(Protocol):
    """A durable tier that can also keep other tiers' pending repairs (disk, database)."""

    def journal_add(self, tier: str, content: str, variant: str) -> None: ...

    def journal_load(self) -> list[tuple[str, str, str]]: ...

    def journal_discard(self, tier: str) -> None: ...

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
