"""The contract of SPEC section 2, as code.

The reference and every suite import this module and nothing else of each other:
suites reach an implementation only through `load_factory` and the `Cache` protocol.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

TIER_NAMES = ("memory", "redis", "disk", "database")
"""The storage tiers, fastest first, as `tiers_holding` names them."""

REQUIRED_STATS = (
    "total_requests",
    "hits",
    "misses",
    "memory_hits",
    "redis_hits",
    "disk_hits",
    "database_hits",
    "evictions",
    "writes",
    "invalidations",
)

DEFAULT_IMPL = "reference:factory"

Metadata = dict[str, Any]
Extractor = Callable[[str, str], Metadata]


@dataclass(frozen=True)
class Env:
    """What the harness hands a factory: fresh resources for one test."""

    cache_dir: str
    redis_url: str | None = None
    database_url: str | None = None
    namespace: str = "tiercheck"
    clock: Callable[[], float] = field(default=lambda: 0.0, repr=False)
    ttl_seconds: float = 3600.0
    max_memory_entries: int = 1000
    max_disk_bytes: int = 256 * 1024 * 1024
    compression_level: int = 3


@runtime_checkable
class Cache(Protocol):
    """The methods every implementation provides (SPEC section 2)."""

    def get(self, file_path: str, tier: str = "premium") -> Metadata | None: ...

    def put(self, file_path: str, metadata: Metadata, tier: str = "premium", extraction_time_ms: float = 0) -> bool: ...

    def invalidate(self, file_path: str, tier: str | None = None) -> bool: ...

    def clear_all(self) -> None: ...

    def cleanup(self) -> None: ...

    def get_stats(self) -> Mapping[str, Any]: ...

    def warm_cache(
        self, paths: Iterable[str], extract: Extractor, tier: str = "premium", max_workers: int = 4
    ) -> dict[str, bool]: ...

    def shutdown(self) -> None: ...


Factory = Callable[[Env], Cache]


class ImplementationError(Exception):
    """The named implementation cannot be loaded or does not provide the contract."""


def load_factory(spec: str = DEFAULT_IMPL) -> Factory:
    """Resolve `package.module:factory` to a callable, with errors that say what to fix."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ImplementationError(f"--impl must look like 'package.module:factory', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImplementationError(f"cannot import {module_name!r} for --impl {spec!r}: {exc}") from exc
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ImplementationError(f"{module_name!r} has no attribute {attr!r} (from --impl {spec!r})") from None
    if not callable(target):
        raise ImplementationError(f"{spec!r} is not callable")
    return target


def missing_methods(cache: object) -> list[str]:
    """Contract methods the object lacks (empty when it conforms)."""
    names = [n for n in dir(Cache) if not n.startswith("_") and callable(getattr(Cache, n, None))]
    return sorted(n for n in names if not callable(getattr(cache, n, None)))


def has_capability(cache: object, name: str) -> bool:
    """Optional capabilities: 'tiers_holding' (introspection), 'legacy' (module API)."""
    if name == "tiers_holding":
        return callable(getattr(cache, "tiers_holding", None))
    if name == "legacy":
        return getattr(cache, "legacy_module", None) is not None
    raise ValueError(f"unknown capability {name!r}")
