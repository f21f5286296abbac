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

DEFAULT_IMPL = "tiercheck.reference:factory"

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


DATABASE_KINDS = ("sqlite", "postgresql")

DEFAULT_READMISSION_SECONDS = 5.0
"""How long after a healed fault a tier must be used again, when the implementation declares nothing (P5)."""

DEFAULT_STALENESS_SECONDS = 1.0
"""How long another instance may still serve an invalidated entry, when nothing is declared (E6)."""

CAPABILITIES_ATTRIBUTE = "tiercheck_capabilities"
"""The optional attribute of a cache object that declares its capabilities and bounds (docs/contract.md)."""


@dataclass(frozen=True)
class Capabilities:
    """What an implementation supports and the bounds it promises (SPEC section 2, "Declared capabilities").

    A cache object may carry this, or a plain mapping with the same keys (so an implementation need not
    import tiercheck), as its `tiercheck_capabilities` attribute. Anything left out takes the documented
    default; the defaults for `introspection` and `legacy_api` are read from the contract's own methods
    (`tiers_holding`, `legacy_module`), never from how an implementation stores its data.
    """

    tiers: tuple[str, ...] = TIER_NAMES
    database_kinds: tuple[str, ...] = DATABASE_KINDS
    introspection: bool = False
    legacy_api: bool = False
    readmission_seconds: float = DEFAULT_READMISSION_SECONDS
    staleness_seconds: float = DEFAULT_STALENESS_SECONDS

    def has_tier(self, name: str) -> bool:
        return name in self.tiers

    def accepts_database(self, database_url: str | None) -> bool:
        """Whether a `database_url` of this kind can back the database tier (None: no database tier, fine)."""
        if database_url is None:
            return True
        kind = "postgresql" if database_url.startswith(("postgresql://", "postgres://")) else "sqlite"
        return self.has_tier("database") and kind in self.database_kinds


_FIELDS = {f for f in Capabilities.__dataclass_fields__}


def capabilities(cache: object) -> Capabilities:
    """The capabilities `cache` declares, with the documented defaults filled in.

    Raises ImplementationError for a declaration that cannot be read (unknown keys, unknown tier or database
    names, bounds that are not positive numbers), naming what to fix.
    """
    declared: Any = getattr(cache, CAPABILITIES_ATTRIBUTE, None)
    inferred: dict[str, Any] = {
        "introspection": callable(getattr(cache, "tiers_holding", None)),
        "legacy_api": getattr(cache, "legacy_module", None) is not None,
    }
    if declared is None:
        return Capabilities(**inferred)
    if isinstance(declared, Capabilities):
        fields = {name: getattr(declared, name) for name in _FIELDS}
    elif isinstance(declared, Mapping):
        unknown = sorted(set(declared) - _FIELDS)
        if unknown:
            raise ImplementationError(
                f"{CAPABILITIES_ATTRIBUTE} has unknown keys {unknown}; known: {', '.join(sorted(_FIELDS))}"
            )
        fields = {**inferred, **dict(declared)}
    else:
        raise ImplementationError(
            f"{CAPABILITIES_ATTRIBUTE} must be a mapping or tiercheck.contract.Capabilities, "
            f"got {type(declared).__name__}"
        )
    fields["tiers"] = tuple(fields.get("tiers", TIER_NAMES))
    fields["database_kinds"] = tuple(fields.get("database_kinds", DATABASE_KINDS))
    bad_tiers = [t for t in fields["tiers"] if t not in TIER_NAMES]
    bad_kinds = [k for k in fields["database_kinds"] if k not in DATABASE_KINDS]
    if bad_tiers or bad_kinds:
        raise ImplementationError(
            f"{CAPABILITIES_ATTRIBUTE}: unknown tiers {bad_tiers} or database kinds {bad_kinds}; "
            f"tiers are {', '.join(TIER_NAMES)}, database kinds {', '.join(DATABASE_KINDS)}"
        )
    for bound in ("readmission_seconds", "staleness_seconds"):
        value = fields.get(bound, getattr(Capabilities, bound))
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
            raise ImplementationError(f"{CAPABILITIES_ATTRIBUTE}: {bound} must be a number of seconds >= 0")
    return Capabilities(**fields)


def has_capability(cache: object, name: str) -> bool:
    """'tiers_holding' (introspection), 'legacy' (module API), a tier name, or a database kind."""
    caps = capabilities(cache)
    if name in ("tiers_holding", "introspection"):
        return caps.introspection and callable(getattr(cache, "tiers_holding", None))
    if name in ("legacy", "legacy_api"):
        return caps.legacy_api and getattr(cache, "legacy_module", None) is not None
    if name in TIER_NAMES:
        return caps.has_tier(name)
    if name in DATABASE_KINDS:
        return caps.has_tier("database") and name in caps.database_kinds
    raise ValueError(f"unknown capability {name!r}")
