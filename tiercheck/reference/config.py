"""Settings of the reference cache: one validated dataclass, from code, the contract env or the OS env."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tiercheck-reference")


_POSITIVE = ("ttl_seconds", "max_memory_entries", "max_memory_bytes", "max_disk_bytes", "max_entry_bytes",
             "redis_socket_timeout", "redis_connect_timeout", "database_timeout",
             "failure_threshold", "retry_max_ops", "retry_max_seconds")  # fmt: skip
_NON_NEGATIVE = ("staleness_seconds", "racy_window_seconds")
_FROM_CONTRACT_ENV = ("cache_dir", "redis_url", "database_url", "namespace", "clock",
                      "ttl_seconds", "max_memory_entries", "max_disk_bytes", "compression_level")  # fmt: skip


@dataclass
class CacheConfig:
    """Everything the cache needs to know; the cache validates it, `MetadataCache.configure` changes some."""

    cache_dir: str = field(default_factory=_default_cache_dir)
    redis_url: str | None = None
    database_url: str | None = "sqlite"  # "sqlite": a file in cache_dir; None: no database tier
    namespace: str = "tiercheck"
    clock: Callable[[], float] = field(default=time.time, repr=False)
    ttl_seconds: float = 7 * 24 * 3600.0
    max_memory_entries: int = 10_000
    max_memory_bytes: int | None = 256 * 1024 * 1024
    max_disk_bytes: int = 1024 * 1024 * 1024
    compression_level: int = 3  # 0 turns compression off
    max_entry_bytes: int = 64 * 1024 * 1024  # refuse to store or decompress more than this
    enable_disk: bool = True
    disk_fsync: bool = True
    redis_socket_timeout: float = 0.25
    redis_connect_timeout: float = 1.0  # a connect only: a busy process (GIL) or host can take 0.25 s; hangs are reads
    database_timeout: float = 0.25  # SQLite busy timeout / PostgreSQL connect and statement timeout
    failure_threshold: int = 1  # consecutive failures before a tier is skipped
    retry_max_ops: int = 32  # a skipped tier is retried after at most this many operations ...
    retry_max_seconds: float = 2.0  # ... or this many seconds, whichever comes first
    staleness_seconds: float = 1.0  # how stale another instance's invalidation may look here
    racy_window_seconds: float = 2.0  # files touched this recently are always re-hashed

    def validate(self) -> CacheConfig:
        """Raise ValueError naming the bad setting; return self so calls chain."""
        for name in (*_POSITIVE, *_NON_NEGATIVE):
            value, zero_ok = getattr(self, name), name in _NON_NEGATIVE
            if value is None and name == "max_memory_bytes":  # no byte budget
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not (value >= 0 if zero_ok else value > 0):
                raise ValueError(f"{name} must be a number {'>= 0' if zero_ok else '> 0'}, got {value!r}")
        if not isinstance(self.compression_level, int) or not 0 <= self.compression_level <= 22:
            raise ValueError(f"compression_level must be an int from 0 (off) to 22, got {self.compression_level!r}")
        if not isinstance(self.namespace, str) or not self.namespace or "\0" in self.namespace:
            raise ValueError(f"namespace must be a non-empty string without NUL, got {self.namespace!r}")
        if not callable(self.clock):
            raise ValueError("clock must be a zero-argument callable returning seconds")
        if not self.cache_dir:
            raise ValueError("cache_dir must be set")
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"redis_url must start with redis://, rediss:// or unix://, got {self.redis_url!r}")
        url = self.database_url
        if url is not None and url != "sqlite" and not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError(f"database_url must be 'sqlite', sqlite:///path or postgresql://…, got {url!r}")
        return self

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite file, or None when the database tier is off or PostgreSQL."""
        if self.database_url == "sqlite":
            return str(Path(self.cache_dir) / "metadata.sqlite3")
        if self.database_url and self.database_url.startswith("sqlite:///"):
            return self.database_url[len("sqlite://") :]
        return None

    def with_changes(self, **changes: Any) -> CacheConfig:
        return replace(self, **changes).validate()

    @classmethod
    def from_contract_env(cls, env: Any) -> CacheConfig:
        """Build from the harness's `tiercheck.contract.Env` (duck-typed: any object with its fields)."""
        return cls(**{name: getattr(env, name) for name in _FROM_CONTRACT_ENV}).validate()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, prefix: str = "TIERCHECK_") -> CacheConfig:
        """Read `TIERCHECK_<FIELD>` variables; an empty or "none" REDIS_URL or DATABASE_URL turns that tier off."""
        environ = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(prefix + f.name.upper())
            if raw is None or f.name == "clock":
                continue
            word = raw.strip().lower()
            if f.name in ("redis_url", "database_url"):
                changes[f.name] = None if word in ("", "none", "off") else raw
            elif f.type == "bool":
                changes[f.name] = word in ("1", "true", "yes", "on")
            elif f.type in ("int", "int | None", "float"):
                changes[f.name] = None if word == "none" else _parse(float if f.type == "float" else int, f.name, raw)
            else:
                changes[f.name] = raw
        return cls(**changes).validate()


def _parse(kind: type, name: str, raw: str) -> Any:
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} from the environment must be {kind.__name__}, got {raw!r}") from None
