"""Checks at the door: bad input is stopped before any test runs, with exit 2 and one line saying what to do.

A CI gate reads exit 1 as "a property failed", so nothing that is the caller's mistake may reach the suites:
an `--impl` that does not import (whatever the module raises), a factory that raises, returns None or an
object without the contract's methods, an unreadable `tiercheck_capabilities` declaration, a report directory
that cannot be written, an empty `--only`, an unknown profile. Each check raises `DoorError`, whose message is
one line.
"""

from __future__ import annotations

import contextlib
import importlib.util
import tempfile
import uuid
from pathlib import Path

from .contract import Env, Factory, ImplementationError, capabilities, load_factory, missing_methods

EXIT_USAGE = 2
"""Usage or environment error: the message says what to do."""

PROFILES = ("quick", "ci", "nightly")
PROFILE_ALIASES = {"dev": "quick"}
"""`dev` is the name the pytest plugin's Hypothesis profile had first; both are accepted."""


class DoorError(Exception):
    """Bad input, found before anything ran; str() is the one line to print."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    line = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def profile(name: str) -> str:
    """The canonical profile name (`dev` is `quick`)."""
    canonical = PROFILE_ALIASES.get(name, name)
    if canonical not in PROFILES:
        known = ", ".join([*PROFILES, *PROFILE_ALIASES])
        raise DoorError(f"unknown profile {name!r}; use one of {known}")
    return canonical


def check_only(value: str | None) -> None:
    """`--only ''` (say, an unset CI variable) must not silently mean "every property"."""
    if value is not None and not value.replace(",", "").strip():
        raise DoorError(
            f"--only is empty ({value!r}: an unset CI variable?); name property IDs such as P1,E2, "
            "or leave --only out to check every property"
        )


def check_report_dir(path: str | None) -> None:
    """Create the directory and write a probe file now, rather than fail after a run of several minutes."""
    if not path:
        return
    directory = Path(path)
    probe = directory / f".tiercheck-probe-{uuid.uuid4().hex}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or _first_line(exc)
        raise DoorError(
            f"cannot write reports to {str(directory)!r} ({reason}); choose a writable --report-dir"
        ) from None


def load(spec: str) -> Factory:
    """`load_factory`, with whatever the module raises at import turned into one line."""
    module = spec.partition(":")[0]
    try:
        return load_factory(spec)
    except ImplementationError as exc:
        hint = "; is it installed, or in the current directory?" if "cannot import" in str(exc) else ""
        raise DoorError(f"{exc}{hint}") from None
    except (Exception, SystemExit) as exc:
        raise DoorError(
            f"importing {module!r} for --impl {spec!r} raised {_first_line(exc)}; "
            f"run `python -c 'import {module}'` to see the traceback"
        ) from None


def check_factory(spec: str, factory: Factory, label: str | None = None) -> None:
    """Build one cache on a fresh Env (no Redis, SQLite in a temporary directory), check it, shut it down.

    Messages start with `label` (default: "--impl 'spec'").
    """
    who = label or f"--impl {spec!r}"
    with tempfile.TemporaryDirectory(prefix="tiercheck-door-") as root:
        env = Env(
            cache_dir=str(Path(root) / "cache"),
            redis_url=None,
            database_url=f"sqlite:///{Path(root) / 'cache.sqlite3'}",
            namespace=f"tiercheck-door-{uuid.uuid4().hex[:8]}",
        )
        try:
            cache = factory(env)
        except (Exception, SystemExit) as exc:
            raise DoorError(
                f"{who}: factory(env) raised {_first_line(exc)}; it must build a cache from a "
                "tiercheck.contract.Env (here: no Redis, SQLite in a temporary directory)"
            ) from None
        try:
            if cache is None:
                raise DoorError(
                    f"{who}: factory(env) returned None; it must return the cache object "
                    "(methods of tiercheck.contract.Cache)"
                )
            missing = missing_methods(cache)
            if missing:
                raise DoorError(
                    f"{who}: factory(env) returned a {type(cache).__name__} without the contract "
                    f"methods {', '.join(missing)}; add them (see tiercheck.contract.Cache)"
                )
            try:
                capabilities(cache)
            except ImplementationError as exc:
                raise DoorError(f"{who}: {exc}") from None
        finally:
            if cache is not None and callable(getattr(cache, "shutdown", None)):
                with contextlib.suppress(Exception):  # shutdown is judged by the properties, not here
                    cache.shutdown()


def check_impl(spec: str) -> Factory:
    """Load the factory named by `spec` and check one cache it builds; raise DoorError saying what to fix."""
    factory = load(spec)
    check_factory(spec, factory)
    return factory


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
