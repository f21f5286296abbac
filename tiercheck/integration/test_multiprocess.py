"""E6 multi-instance coherence and P4 across processes: three spawned processes, one cache instance
each, sharing the real Redis-protocol server, the database (PostgreSQL, or one SQLite file) and
`cache_dir` (as the README asks of instances sharing backends).

The parent drives the processes step by step over pipes (integration/mp_worker.py); the random
workload starts on a shared Barrier. The Env clock is a shared value only the parent moves.
Nothing sleeps to synchronise; the one wait on time is a worker reading until an invalidation is
honoured, for at most the staleness window the implementation declares (`staleness_seconds` of
tiercheck.contract.capabilities, default 1 s) — that window is the bound under test, measured on the
monotonic clock; the staleness observed is reported (`measure("staleness_seconds", ...)`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
from pathlib import Path

import pytest

from tiercheck.backends import unique_namespace
from tiercheck.properties.linearizability import Op, check_history
from tiercheck.properties.machine import declared

from . import mp_worker

pytestmark = [pytest.mark.real_redis]  # each test names its own property: one test feeds one verdict

PROCESSES = 3
KEYS = 3
OPS_PER_PROCESS = 40
START_CLOCK = 1_000_000.0
TTL = 3600.0


class Worker:
    def __init__(self, ctx, impl: str, barrier, clock, index: int) -> None:
        parent, child = ctx.Pipe()
        self.process = ctx.Process(
            target=mp_worker.serve, args=(child, impl, barrier, clock), name=f"tiercheck-mp-{index}", daemon=True
        )
        self.process.start()
        child.close()
        self.conn = parent
        self.index = index

    def send(self, command: str, *args) -> None:
        self.conn.send((command, *args))

    def recv(self, command: str, timeout: float = 120.0):
        if not self.conn.poll(timeout):  # a deadline against a hung child, not a timing assertion
            raise AssertionError(f"process {self.index} (pid {self.process.pid}) did not answer {command!r}")
        status, result = self.conn.recv()
        if status != "ok":
            raise AssertionError(f"process {self.index} failed on {command!r}: {result}")
        return result

    def __call__(self, command: str, *args):
        self.send(command, *args)
        return self.recv(command)

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(AssertionError, OSError, EOFError):
                self("exit")
            self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=30)
        self.conn.close()


@pytest.fixture(scope="module")
def mp_shared(impl_spec):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    clock = ctx.Value("d", START_CLOCK)
    impl = impl_spec
    workers = [Worker(ctx, impl, barrier, clock, i) for i in range(PROCESSES)]
    yield workers, clock
    for worker in workers:
        worker.stop()
    assert not any(w.process.is_alive() for w in workers)


@pytest.fixture
def procs(mp_shared, redis_server, real_database_url, impl_factory, tmp_path):
    """Three processes, each with a fresh instance over the same backends and cache_dir."""
    caps = declared(impl_factory)
    if not caps.accepts_database(real_database_url):
        pytest.skip(f"not applicable: the implementation does not declare a {real_database_url.split(':')[0]} database")
    if not (caps.has_tier("redis") or caps.has_tier("database")):
        pytest.skip("not applicable: the implementation declares no tier shared between processes (Redis, database)")
    workers, clock = mp_shared
    clock.value = START_CLOCK
    env = {
        "cache_dir": str(tmp_path / "cache"),
        "redis_url": redis_server.url,
        "database_url": real_database_url,
        "namespace": unique_namespace("mp"),
        "ttl_seconds": TTL,
    }
    for w in workers:
        w("open", env)
    yield workers
    for w in workers:
        w("close")


@pytest.fixture
def files(tmp_path):
    def make(count: int) -> list[str]:
        paths = []
        for i in range(count):
            path = Path(tmp_path / f"file{i}")
            path.write_bytes(b"shared content %d" % i)
            paths.append(str(path))
        return paths

    return make


def window_ns(worker: Worker) -> tuple[int, str]:
    seconds, source = worker("staleness")
    return int(seconds * 1e9), f"{seconds}s, {source}"


@pytest.mark.prop("E6")
def test_E6_put_on_one_is_served_by_the_others(procs, files):
    a, b, c = procs
    f, g = files(2)
    assert a("put", f, {"from": "a"})[0] is True
    assert b("get", f) == {"from": "a"}
    assert c("get", f) == {"from": "a"}
    assert c("put", g, {"from": "c"}, "free")[0] is True
    assert a("get", g, "free") == {"from": "c"}
    assert b("get", g) is None, "another tier name is another entry"
    # The stats invariants across processes are P4's (test_P4_processes_linearizable_per_key), not E6's.


def honoured(worker: Worker, done: int, window: int, path: str, fresh=None) -> tuple[float, object]:
    """(seconds from `done` to the first read that was a miss or `fresh`, the last answer): the worker reads
    until then, or until a read begun after the window (whose answer is then judged)."""
    invoked, got = worker("poll", done, window, fresh, path)
    return max(0.0, (invoked - done) / 1e9), got


@pytest.mark.prop("E6")
def test_E6_invalidate_on_one_is_honoured_by_the_others_within_the_window(procs, files, measure):
    a, b, c = procs
    f, h = files(2)
    window, described = window_ns(b)
    assert a("put", f, {"v": 1})[0] is True
    assert b("get", f) == {"v": 1}  # now in b's memory tier
    assert c("get", f) == {"v": 1}
    ok, done = a("invalidate", f)
    assert ok is True
    observed = []
    for name, worker in (("b", b), ("c", c)):
        seconds, got = honoured(worker, done, window, f)
        assert got is None, f"process {name} served an invalidated entry after the staleness window ({described})"
        observed.append(seconds)
    assert a("get", f) is None

    # clear_all on one is honoured by the others the same way
    assert a("put", h, {"h": 1})[0] is True
    assert c("get", h) == {"h": 1}
    done = b("clear_all")
    for name, worker in (("c", c), ("a", a)):
        seconds, got = honoured(worker, done, window, h)
        assert got is None, f"clear_all not honoured by process {name} after the window ({described})"
        observed.append(seconds)
    measure("staleness_seconds", round(max(observed), 3), "s")
    print(f"E6: staleness observed {max(observed):.3f}s, declared window {described}")


@pytest.mark.prop("E6")
def test_E6_overwrite_on_one_is_honoured_by_the_others_within_the_window(procs, files, measure):
    """A put of new metadata for the same content supersedes the old entry for every instance."""
    a, b, _ = procs
    (f,) = files(1)
    window, described = window_ns(b)
    assert a("put", f, {"v": 1})[0] is True
    assert b("get", f) == {"v": 1}
    ok, done = a("put", f, {"v": 2})
    assert ok is True
    seconds, got = honoured(b, done, window, f, {"v": 2})
    assert got in (None, {"v": 2}), (
        f"process b still serves the superseded value {got!r} after the staleness window ({described})"
    )
    measure("staleness_seconds[overwrite]", round(seconds, 3), "s")


@pytest.mark.prop("P9")
def test_P9_ttl_follows_the_shared_clock_across_processes(procs, files, mp_shared):
    a, b, _ = procs
    _, clock = mp_shared
    (f,) = files(1)
    assert a("put", f, {"ttl": True})[0] is True
    assert b("get", f) == {"ttl": True}
    clock.value = START_CLOCK + TTL - 1
    assert b("get", f) == {"ttl": True}
    clock.value = START_CLOCK + TTL
    assert b("get", f) is None and a("get", f) is None


@pytest.mark.prop("P4")
def test_P4_processes_linearizable_per_key(procs, files):
    seed = int(os.environ.get("TIERCHECK_SEED") or random.SystemRandom().randrange(2**32))
    print(f"P4 processes: seed={seed} (replay with TIERCHECK_SEED={seed})")
    rng = random.Random(seed)
    paths = files(KEYS)
    window, described = window_ns(procs[0])
    plans = [
        [(rng.choice(["put", "get", "get", "invalidate"]), rng.randrange(KEYS)) for _ in range(OPS_PER_PROCESS)]
        for _ in procs
    ]
    for i, (w, plan) in enumerate(zip(procs, plans, strict=True)):
        w.send("plan", i, plan, paths)
    histories = [w.recv("plan") for w in procs]

    ops, errors = [], []
    for history in histories:
        for r in history:
            if r["error"]:
                errors.append(r["error"])
            # A get may be served by a memory tier up to the staleness window behind: it may take
            # effect at any point from `window` before it was invoked (bounded staleness).
            invoked = r["invoked"] - window if r["kind"] == "get" else r["invoked"]
            ops.append(Op(r["proc"], r["key"], r["kind"], r["value"], r["result"], invoked, r["completed"]))
    assert not errors, f"seed={seed}: exceptions escaped: {errors[:3]}"
    verdict = check_history(ops)
    assert verdict.ok, f"seed={seed}, staleness window {described}: {verdict.message}"

    for w, history in zip(procs, histories, strict=True):
        stats = w("stats")
        gets = sum(r["kind"] == "get" for r in history)
        writes = sum(r["kind"] == "put" and r["result"] is True for r in history)
        invalidations = sum(r["kind"] == "invalidate" and r["result"] is True for r in history)
        assert stats["total_requests"] == gets, f"seed={seed}"
        assert stats["hits"] + stats["misses"] == stats["total_requests"]
        assert stats["hits"] == sum(stats[f"{t}_hits"] for t in ("memory", "redis", "disk", "database"))
        assert (stats["writes"], stats["invalidations"]) == (writes, invalidations), f"seed={seed}"
