"""The store tiers a config asks for, slowest last: the default `stores=` of MetadataCache."""

from __future__ import annotations

from collections.abc import Callable

from .config import CacheConfig
from .database_tier import DatabaseTier
from .disk_tier import DiskTier
from .redis_tier import RedisTier
from .store import StoreTier


def default_stores(cfg: CacheConfig) -> list[tuple[str, StoreTier | Exception]]:
    """(name, tier) per enabled tier; a tier that cannot be set up (e.g. a malformed URL) comes as its error."""
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
