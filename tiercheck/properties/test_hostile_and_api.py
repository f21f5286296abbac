"""E4 safe decoding, E5 containment, E8 warming, E9 legacy API — through the contract only."""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import resource
import sqlite3
import threading
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import zstandard

from tiercheck.pytest_plugin import require

from .backend_probe import BackendState, Targets, capture, changed, everything, rewrite
from .machine import (
    accepted_database,  # noqa: F401 - a fixture, used below
    skip_unless_accepted,
)

pytestmark = pytest.mark.usefixtures("accepted_database")


class _Sentinel:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def bomb() -> bytes:
    out = zstandard.ZstdCompressor(level=3).compressobj()
    chunk = b"\0" * (1 << 20)
    return b"".join([out.compress(chunk) for _ in range(1024)] + [out.flush()])  # 1 GiB of zeros


DEEP = b"[" * 100_000 + b"]" * 100_000
# kind -> (bytes planted in files and Redis values, value planted in database cells: same bytes, or
# a hostile value of another SQL type: TEXT, INTEGER, REAL, NULL)
PAYLOADS: dict[str, Callable[[str], tuple[bytes, Any]]] = {
    "pickle": lambda sentinel: (p := pickle.dumps(_Sentinel(sentinel)), p),
    "zstd bomb": lambda _: (b := bomb(), b),
    "deep json": lambda _: (DEEP, DEEP),
    "deep json compressed": lambda _: (c := zstandard.ZstdCompressor().compress(DEEP), c),
    "sql text": lambda _: ("not an entry \u2603".encode(), "not an entry \u2603"),
    "sql integer": lambda _: (b"42", 42),
    "sql real": lambda _: (b"1.5", 1.5),
    "sql null": lambda _: (b"", None),
}


Picker = Callable[[BackendState, Targets], Targets]


def only_column(table: str, column: str) -> Picker:
    """The put's files and keys, and of its database cells only those of one column."""

    def pick(state: BackendState, put: Targets) -> Targets:
        return Targets(put.files, put.keys, [c for c in put.cells if (c[0], c[2]) == (table, column)])

    return pick


@pytest.mark.prop("E4")
@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_E4_planted_payloads_are_misses(impl_factory, make_env, fake_redis_url, tmp_path, kind):
    """Plant the payload over the stored copies of an entry, read it with a new instance: never executed,
    never a large expansion, never served. Rounds, each over fresh backends: every copy the put wrote
    (found by comparing the backends before and after it, whatever the layout); the same with the database
    cells one column at a time (planting a key column only hides a row, so the value column gets a round of
    its own); each file and each Redis key the put wrote alone (a reader may meet that copy first); and
    everything the harness can reach (every file, every key of the namespace whatever its
    type, every row and column). A round where the valid value put is served again reached no copy of it:
    it did not take effect and is reported, never failed; the test is skipped only if no round took effect."""
    sentinel = tmp_path / "pwned"
    raw, cell = PAYLOADS[kind](str(sentinel))
    value = {"v": 1, "pad": "p" * 64}
    namespace = make_env().namespace

    def one_round(index: int, pick: Picker) -> tuple[bool, str, Targets]:
        root = tmp_path / f"round{index}"
        root.mkdir()
        env = make_env(
            redis_url=fake_redis_url,
            cache_dir=str(root / "cache"),
            database_url=f"sqlite:///{root / 'db.sqlite3'}",
            namespace=f"{namespace}-{index}",
        )
        skip_unless_accepted(impl_factory, env)
        src = root / "f"
        src.write_bytes(b"content")
        cache = impl_factory(env)
        try:
            before = capture(env)
            assert cache.put(str(src), dict(value))
        finally:
            cache.shutdown()
        after = capture(env)
        put = changed(before, after)
        planted = rewrite(env, pick(after, put), lambda _: raw, lambda _: cell)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cache = impl_factory(env)
        try:
            got = cache.get(str(src))
        finally:
            cache.shutdown()
        grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
        assert not sentinel.exists(), "a planted pickle was executed"
        assert grown_mib < 512, f"decoding a planted {kind} grew the process by {grown_mib:.0f} MiB"
        assert got is None or got == value, f"a planted {kind} payload was served as {got!r} ({planted.describe()})"
        outcome = "a miss" if got is None else "the value put was served: a copy was not reached"
        return got is None and planted.done > 0, f"{outcome} ({planted.describe()})", put

    took, outcome, put = one_round(0, lambda state, put: put)
    outcomes = [(took, f"what the put wrote: {outcome}")]
    for index, (table, column) in enumerate(sorted({(t, c) for t, _, c in put.cells}), start=1):
        took, outcome, _ = one_round(index, only_column(table, column))
        outcomes.append((took, f"what the put wrote, database column {table}.{column} only: {outcome}"))
    # one stored thing alone (a reader may meet that copy first); each round has fresh backends, so the thing
    # is named by its place among what that round's put wrote (the same layout, other directories and names)
    singles: list[Picker] = [
        *(lambda state, put, i=i: Targets(files=sorted(put.files)[i : i + 1]) for i in range(len(put.files))),
        *(lambda state, put, i=i: Targets(keys=sorted(put.keys)[i : i + 1]) for i in range(len(put.keys))),
    ]
    for single in singles:
        took, outcome, _ = one_round(len(outcomes), single)
        outcomes.append((took, f"one of what the put wrote: {outcome}"))
    took, outcome, _ = one_round(len(outcomes), lambda state, put: everything(state))
    outcomes.append((took, f"every file, key, row and column: {outcome}"))
    print(f"E4 {kind}:\n  " + "\n  ".join(text for _, text in outcomes))
    if not any(took for took, _ in outcomes):
        pytest.skip(
            f"fault did not take effect: in none of {len(outcomes)} rounds did a plant of {kind} reach every "
            f"copy of the entry (e.g. {outcomes[0][1]})"
        )


HOSTILE_TIERS = ["../../escape", "..", "/etc/passwd", "a\0b", "new\nline", "'; DROP TABLE x; --", "%s%n", "t" * 10_000]


def database_file(env) -> str:
    """The SQLite file of the Env as a plain absolute path: `sqlite:////abs` leaves "//abs" after the scheme,
    which names the same file but never prefixes a path os.walk reports."""
    return "/" + env.database_url.removeprefix("sqlite://").lstrip("/")


def snapshot_tree(root) -> dict[str, tuple[int, int]]:
    """Every file and directory under root, with size and mtime: what a stray write would change."""
    found = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            st = os.stat(os.path.join(d, name))
            found[os.path.join(d, name)] = (st.st_size if name in files else -1, st.st_mtime_ns)
    return found


def snapshot_outside(root, env) -> dict[str, tuple[int, int]]:
    """snapshot_tree(root) without what the cache may change: cache_dir and the database file."""
    db_path = database_file(env)
    return {p: v for p, v in snapshot_tree(root).items() if not p.startswith((env.cache_dir, db_path))}


@pytest.mark.prop("E5")
@pytest.mark.parametrize("tier", HOSTILE_TIERS)
def test_E5_hostile_tiers_stay_inside_cache_dir(open_cache, make_env, tmp_path, tier):
    (tmp_path / "canary").mkdir()
    (tmp_path / "canary" / "keep").write_bytes(b"keep")
    env = make_env()
    src = tmp_path / "src"
    src.write_bytes(b"content")
    cache = open_cache(env)
    cache.put(str(src), {"warm": True})
    db_path = database_file(env)
    schema = sqlite3.connect(db_path).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    before = snapshot_outside(tmp_path, env)
    assert cache.put(str(src), {"tier": tier[:20]}, tier) in (True, False)
    got = cache.get(str(src), tier)
    assert got is None or got == {"tier": tier[:20]}
    after = snapshot_outside(tmp_path, env)
    assert after == before, f"put/get wrote outside cache_dir: {sorted(set(after) ^ set(before))}"
    cache.invalidate(str(src), tier)
    cache.cleanup()
    after = snapshot_outside(tmp_path, env)
    assert after == before, f"invalidate/cleanup changed files outside cache_dir: {set(after) ^ set(before)}"
    assert sqlite3.connect(db_path).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema


ODD_NAMES = ["../outside", "a\nb", "x" * 250, "-rf", "quote'\""]


def odd_file(tmp_path, name: str) -> str:
    path = tmp_path / "files" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"odd")
    return str(path)


@pytest.mark.prop("P6")
@pytest.mark.parametrize("name", ODD_NAMES)
def test_P6_odd_paths_work(open_cache, tmp_path, name):
    """SPEC P6: paths with any characters work (this was tagged E5, whose subject is containment)."""
    path = odd_file(tmp_path, name)
    cache = open_cache()
    assert cache.put(path, {"odd": name})
    assert cache.get(path) == {"odd": name}
    nul = path + "\0tail"
    with contextlib.suppress(TypeError, ValueError):  # a clear error for a NUL in a path is allowed
        assert cache.get(nul) is None


@pytest.mark.prop("E5")
@pytest.mark.parametrize("name", ODD_NAMES)
def test_E5_odd_paths_stay_inside_cache_dir(open_cache, make_env, tmp_path, name):
    """File paths with ../, NUL, newlines or great length touch nothing outside cache_dir (and the database
    file). Whether such a path works at all is P6's (test_P6_odd_paths_work): here put may return False."""
    env = make_env()
    path = odd_file(tmp_path, name)
    cache = open_cache(env)
    before = snapshot_outside(tmp_path, env)
    assert cache.put(path, {"odd": name}) in (True, False)
    assert cache.get(path) in (None, {"odd": name})
    with contextlib.suppress(TypeError, ValueError):  # a clear error for a NUL in a path is allowed
        assert cache.get(path + "\0tail") is None
    cache.invalidate(path)
    cache.cleanup()
    after = snapshot_outside(tmp_path, env)
    assert after == before, f"odd path {name!r}: files outside cache_dir changed: {set(after) ^ set(before)}"


@pytest.mark.prop("E8")
def test_E8_warming_bounded_no_reextraction_failures_reported(open_cache, tmp_path):
    cache = open_cache()
    paths = []
    for i in range(10):
        f = tmp_path / f"w{i}"
        f.write_bytes(b"w%d" % i)
        paths.append(str(f))
    assert cache.put(paths[0], {"pre": True})
    lock, active, peak, calls = threading.Lock(), [0], [0], []
    over_the_limit = threading.Event()

    def extract(path, tier):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            calls.append(path)
            first_three = len(calls) <= 3
            if active[0] > 3:
                over_the_limit.set()
        try:
            if first_three:
                # Hold the first three workers: a bounded pool cannot start a fourth extraction, an
                # unbounded one does at once. Only a bug sets the event; the timeout ends the wait.
                over_the_limit.wait(timeout=1.0)
            if path.endswith("w7"):
                raise RuntimeError("unreadable image")
            return {"name": os.path.basename(path)}
        finally:
            with lock:
                active[0] -= 1

    result = cache.warm_cache(paths, extract, max_workers=3)
    assert peak[0] <= 3, f"{peak[0]} extractions ran at once with max_workers=3"
    assert paths[0] not in calls, "a cached file was extracted again"
    assert result == {p: not p.endswith("w7") for p in paths}
    # Whether warming's look-ups count as caller requests is P10's (test_P10_warming_lookups_are_not_caller_requests).
    assert cache.get(paths[3]) == {"name": "w3"}


LEGACY_FUNCTIONS = (
    "set_cache",
    "get_from_cache",
    "get_file_hash_quick",
    "get_cache",
    "get_cache_stats",
    "get_cache_info",
    "clear_cache_pattern",
    "clear_cache",
    "shutdown_cache",
)


@pytest.mark.prop("E9")
def test_E9_legacy_functions_work_warn_once_and_agree(open_cache, tmp_path):
    """Each legacy function works and warns once: over all its calls, exactly one DeprecationWarning naming it
    is raised while it runs (whatever the message's wording, and whichever other legacy function it calls)."""
    cache = open_cache()
    require(cache, "legacy")
    legacy = cache.legacy_module
    if hasattr(legacy, "install"):
        legacy.install(cache)
    if hasattr(legacy, "reset_warnings"):
        legacy.reset_warnings()
    warned: dict[str, int] = dict.fromkeys(LEGACY_FUNCTIONS, 0)

    def call(name: str, *args):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = getattr(legacy, name)(*args)
        naming = re.compile(rf"\b{re.escape(name)}\b")
        warned[name] += sum(
            issubclass(w.category, DeprecationWarning) and bool(naming.search(str(w.message))) for w in caught
        )
        return result

    src, other = tmp_path / "f.tif", tmp_path / "g.tif"
    src.write_bytes(b"tiff")
    other.write_bytes(b"another tiff")
    assert call("set_cache", str(src), {"dpi": 300}) is True
    assert call("set_cache", str(src), {"dpi": 300}) is True
    assert cache.get(str(src)) == {"dpi": 300}
    cache.put(str(src), {"dpi": 600}, "free")
    assert call("get_from_cache", str(src), "free") == {"dpi": 600}
    digest = call("get_file_hash_quick", str(src))
    assert isinstance(digest, str) and digest, f"get_file_hash_quick returned {digest!r}"
    assert call("get_file_hash_quick", str(src)) == digest, "the same file hashed differently"
    assert call("get_file_hash_quick", str(other)) != digest, "two different files hashed alike"
    assert call("get_cache") is cache
    assert call("get_cache_stats")["writes"] >= 2
    info = call("get_cache_info")
    assert isinstance(info, dict) and info
    assert call("clear_cache_pattern", "*") >= 1
    assert cache.get(str(src), "free") is None
    cache.put(str(src), {"dpi": 1})
    call("clear_cache")
    assert cache.get(str(src)) is None
    call("shutdown_cache")
    wrong = {name: n for name, n in warned.items() if n != 1}
    assert not wrong, f"legacy functions must warn exactly once with a DeprecationWarning naming them: {wrong}"
