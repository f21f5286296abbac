"""A child process holding one cache instance, driven command by command over a Pipe (E6, P4).

Started with the `spawn` start method, so it shares nothing with the parent but what it is
given: the --impl spec, a Barrier for starting random workloads together, and a shared clock
value the parent moves (the Env's clock, so TTL decisions stay deterministic across processes).
Coordination is by request/reply on the pipe and by the barrier: never by sleeping. The only
wait on time is `poll`, which reads until the answer is fresh or the staleness window the
implementation declares is over: the bound under test itself, on the monotonic clock.
"""

from __future__ import annotations

import multiprocessing.connection
import time
import traceback
from collections.abc import Mapping
from typing import Any

from tiercheck.contract import CAPABILITIES_ATTRIBUTE, Capabilities, Env, capabilities, load_factory

POLL_PACING_SECONDS = 0.01
"""Pause between two reads of `poll`: bounds its traffic; the verdict is on the monotonic clock."""


class SharedClock:
    """The Env clock: a multiprocessing Value every process reads and only the parent moves."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> float:
        return float(self.value.value)


def staleness_of(cache: object) -> tuple[float, str]:
    """(seconds, where it came from): the declared `staleness_seconds` (tiercheck.contract.capabilities),
    else the documented default."""
    seconds = capabilities(cache).staleness_seconds
    declared = getattr(cache, CAPABILITIES_ATTRIBUTE, None)
    if isinstance(declared, Capabilities) or (isinstance(declared, Mapping) and "staleness_seconds" in declared):
        return seconds, f"declared by the implementation ({CAPABILITIES_ATTRIBUTE})"
    return seconds, f"tiercheck's default (no staleness_seconds in {CAPABILITIES_ATTRIBUTE})"


def poll(cache: Any, done_ns: int, window_ns: int, fresh: Any, get_args: list) -> tuple[int, Any]:
    """Read until the answer is a miss or `fresh`, or until a read invoked after done + window; return
    (invoked, answer) of the last read: stale only if that read began after the window."""
    while True:
        invoked = time.monotonic_ns()
        got = cache.get(*get_args)
        if got is None or got == fresh or invoked > done_ns + window_ns:
            return invoked, got
        time.sleep(POLL_PACING_SECONDS)


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
            elif command == "poll":
                done_ns, window_ns, fresh, *get_args = args
                result = poll(cache, done_ns, window_ns, fresh, get_args)
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
