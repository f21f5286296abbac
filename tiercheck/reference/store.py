"""What every tier below memory provides (the cache talks to Redis, disk and database only through this),
and `default_stores`, the tiers a config asks for.

Every write carries a version (see versions.py). A tier keeps, per key, the newest version it has
seen — an entry, or a tombstone left by a removal — and applies a write only when it is newer, so
applying a write late, twice, or after a later removal is harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

from .keys import CacheKey

if TYPE_CHECKING:
    from .config import CacheConfig

ALL = "*"
"""As a variant: every variant of a content; as content and variant: the whole namespace."""

IsDead = Callable[[CacheKey, bytes], bool]

TOMBSTONE_SECONDS = 600.0
"""How long a tier keeps a tombstone: far longer than any write can be in flight (timeouts are
fractions of a second). Removals a tier missed while down are kept in a journal until applied."""


class TierError(Exception):
    """A tier could not do what was asked (down, hung, full, corrupt). Never reaches the caller."""


class Removal(NamedTuple):
    """A removal a tier owes (a journal record): entries of (content, variant) older than `version`."""

    content: str  # ALL: every entry
    variant: str  # ALL: every variant of the content
    version: int


class StoreTier(Protocol):
    name: str

    def get(self, key: CacheKey) -> bytes | None: ...

    def put(self, key: CacheKey, blob: bytes, version: int, expires_at: float, now: float) -> bool | int:
        """Store unless the tier holds a newer version or tombstone of the key; false when refused
        (Redis returns its counter after the write, like remove)."""
        ...

    def remove(self, content: str, variant: str | None, version: int) -> int | None:
        """Remove entries older than `version` (every variant when None) and leave a tombstone.
        Redis returns its removal counter after it (the floor); the others None."""
        ...

    def discard(self, key: CacheKey, version: int | None, held: bytes | None = None) -> None:
        """Drop the entry if it still has this version (None: any) or still is exactly `held` (corrupt): a put
        that replaced it meanwhile stays, else a late older write (a promotion) could land in its place."""
        ...

    def clear(self, version: int) -> int | None: ...

    def purge(self, is_dead: IsDead) -> int:
        """Remove entries for which is_dead(key, blob) holds (expired, corrupt); return the count."""
        ...

    def keys(self) -> Iterator[CacheKey]: ...

    def usage(self) -> dict[str, object]: ...

    def close(self) -> None: ...


class SharedTier(StoreTier, Protocol):
    """A tier instances share (Redis, database): memory entries are checked against it."""

    def version_of(self, key: CacheKey) -> int | None: ...


@runtime_checkable
class Journal(Protocol):
    """A durable tier that also keeps the removals other tiers owe (disk, database)."""

    name: str

    def journal_add(self, tier: str, removal: Removal) -> None: ...

    def journal_load(self) -> list[tuple[str, Removal]]: ...

    def journal_discard(self, tier: str, removals: list[Removal]) -> None:
        """Forget these records, and older ones of the same keys; newer ones stay."""
        ...

    def floor_get(self) -> int:
        """The Redis removal counter below which a Redis has lost removals made here (0: none)."""
        ...

    def floor_raise(self, value: int) -> None: ...


def default_stores(cfg: CacheConfig) -> list[tuple[str, StoreTier | Exception]]:
    """The default `stores=` of MetadataCache: (name, tier) per enabled tier, slowest last; a tier that
    cannot be set up (e.g. a malformed URL) comes as its error."""
    from .database_tier import DatabaseTier  # imported here: the tiers import this module
    from .disk_tier import DiskTier
    from .redis_tier import RedisTier

    builders: list[tuple[str, Callable[[], StoreTier]]] = []
    if cfg.redis_url:
        url = cfg.redis_url
        builders.append(
            ("redis", lambda: RedisTier(url, cfg.namespace, cfg.redis_socket_timeout, cfg.redis_connect_timeout))
        )
    if cfg.enable_disk:
        builders.append(("disk", lambda: DiskTier(cfg.cache_dir, cfg.max_disk_bytes, cfg.disk_fsync)))
    if cfg.database_url:
        db = cfg.database_url
        builders.append(("database", lambda: DatabaseTier(db, cfg.namespace, cfg.sqlite_path, cfg.database_timeout)))
    built: list[tuple[str, StoreTier | Exception]] = []
    for name, build in builders:
        try:
            built.append((name, build()))
        except Exception as exc:
            built.append((name, exc))
    return built
