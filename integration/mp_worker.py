"""A child process holding one cache instance, driven command by command over a Pipe (E6, P4).

Started with the `spawn` start method, so it shares nothing with the parent but what it is
given: the --impl spec, a Barrier for starting random workloads together, and a shared clock
value the parent moves (the Env's clock, so TTL decisions stay deterministic across processes).
Coordination is by request/reply on the pipe and by the barrier: never by sleeping. The only
wait on time is `get_at`, which waits out the staleness window an implementation declares —
the bound under test itself, not a synchronisation.
"""

from __future__ import annotations

import multiprocessing.connection
import time
import traceback
from typing import Any

from tiercheck.contract import Env, load_factory

DEFAULT_STALENESS_SECONDS = 1.0
"""Used when an implementation declares no `staleness_window_seconds` attribute: the window the
project's README documents for several instances sharing Redis and a database."""


class SharedClock:
    """The Env clock: a multiprocessing Value every process reads and only the parent moves."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> float:
        return float(self.value.value)


def staleness_of(cache: object) -> tuple[float, str]:
    """(seconds, where it came from): the implementation's declared window, else the default."""
    declared = getattr(cache, "staleness_window_seconds", None)
    if isinstance(declared, int | float) and not isinstance(declared, bool) and declared >= 0:
        return float(declared), "declared by the implementation (staleness_window_seconds)"
    return DEFAULT_STALENESS_SECONDS, "tiercheck's default (the implementation declares no staleness_window_seconds)"


def run_plan(cache: Any, proc: int, plan: list[tuple[str, int]], paths: list[str], barrier: Any) -> list[dict]:
    """Run random operations after every process reached the barrier; record a timed history."""
    history = []
    barrier.wait(timeout=60)
    for seq, (kind, k) in enumerate(plan):
        value = {"key": k, "proc": proc, "seq": seq} if kind == "put" else None
        invoked = time.monotonic_ns()  # CLOCK_MONOTONIC is system-wide on Linux: comparable across processes
        error = None
        result: Any = None
        try:
            if kind == "put":
                result = cache.put(paths[k], dict(value))  # type: ignore[arg-type]
            elif kind == "get":
                result = cache.get(paths[k])
            else:
                result = cache.invalidate(paths[k])
        except BaseException as exc:  # noqa: BLE001 - an escaping exception is the finding
            error = f"{type(exc).__name__}: {exc}"
        completed = time.monotonic_ns()
        history.append(
            {
                "proc": proc,
                "key": str(k),
                "kind": kind,
                "value": value,
                "result": result,
                "invoked": invoked,
                "completed": None if error else completed,
                "error": error,
            }
        )
    return history


def serve(conn: multiprocessing.connection.Connection, impl: str, barrier: Any, clock_value: Any) -> None:
    factory = load_factory(impl)
    cache: Any = None
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent went away
            break
        command, args = message[0], message[1:]
        try:
            if command == "exit":
                if cache is not None:
                    cache.shutdown()
                conn.send(("ok", None))
                break
            if command == "open":
                if cache is not None:
                    cache.shutdown()
                cache = factory(Env(clock=SharedClock(clock_value), **args[0]))
                result: Any = None
            elif command == "close":
                if cache is not None:
                    cache.shutdown()
                cache, result = None, None
            elif command == "staleness":
                result = staleness_of(cache)
            elif command == "put":
                result = (cache.put(*args), time.monotonic_ns())
            elif command == "invalidate":
                result = (cache.invalidate(*args), time.monotonic_ns())
            elif command == "clear_all":
                cache.clear_all()
                result = time.monotonic_ns()
            elif command == "get":
                result = cache.get(*args)
            elif command == "get_at":
                not_before_ns, *get_args = args
                remaining = (not_before_ns - time.monotonic_ns()) / 1e9
                if remaining > 0:
                    time.sleep(remaining)  # waiting out the declared staleness window: the bound under test
                invoked = time.monotonic_ns()
                result = (invoked, cache.get(*get_args))
            elif command == "stats":
                result = dict(cache.get_stats())
            elif command == "plan":
                result = run_plan(cache, *args, barrier=barrier)
            else:
                raise ValueError(f"unknown command {command!r}")
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
            conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
            continue
        conn.send(("ok", result))
    conn.close()
