"""What a plain library does for the same job, on the same data, in the same run: the yardsticks.

Each anchor is the least work that job needs: cachetools LRUCache get plus the os.stat that
detects a changed file, with and without the orjson.loads that hands the caller a fresh dict (P1
forbids handing out the cached object itself); diskcache get/set; redis-py GET plus the decode a
cache must do (zstd decompress, orjson.loads); a primary-key SELECT on SQLite in WAL mode plus that
decode; the raw writes a put performs (Redis SET with expiry, an fsync'd atomic file write, a SQLite
upsert) and the raw deletes an invalidate performs (Redis DEL, file unlink, SQLite DELETE), each of
the same bytes, each delete of what the raw write left (a file written and fsync'd); and the same raw writes, and raw
deletes, back to back in one op (as a put or an invalidate performs them). Keys are the
anchors' own (blake3 of the file's bytes): nothing here reads the reference's code.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import blake3
import cachetools
import diskcache
import numpy as np
import orjson
import redis
import zstandard

from .services import Services
from .workload import Workload


def _payloads(wl: Workload) -> tuple[list[str], list[bytes]]:
    keys = [blake3.blake3(Path(p).read_bytes()).hexdigest() for p in wl.files]
    cctx = zstandard.ZstdCompressor(level=3)  # the contract's default compression_level (Env)
    return keys, [cctx.compress(orjson.dumps(md)) for md in wl.metadata]


Anchor = tuple[Callable[[int], object], Callable[[int], object] | None]  # (timed op(i), untimed before(i))

# which anchors are timed interleaved with which reference path (timing.interleaved)
PAIRS: dict[str, list[str]] = {
    "memory hit": ["cachetools get+stat+orjson.loads", "cachetools get+stat"],
    "redis hit": ["redis GET+decode"],
    "disk hit": ["diskcache get"],
    "sqlite hit": ["sqlite SELECT+decode"],
    "postgres hit": ["postgres SELECT+decode"],
    "put": ["redis SET", "file write+fsync", "sqlite upsert", "raw writes (in sequence)", "diskcache set"],
    "invalidate": ["redis DEL", "file unlink", "sqlite DELETE", "raw deletes (in sequence)"],
}


def add_sums(latency: dict[str, np.ndarray]) -> None:
    """Per op, the sums of the raw writes a full-stack put performs and of the raw deletes of an invalidate
    (op i of each part was timed in the same interleaving round)."""
    if all(k in latency for k in ("redis SET", "file write+fsync", "sqlite upsert")):
        latency["raw writes (sum)"] = latency["redis SET"] + latency["file write+fsync"] + latency["sqlite upsert"]
    if all(k in latency for k in ("redis DEL", "file unlink", "sqlite DELETE")):
        latency["raw deletes (sum)"] = latency["redis DEL"] + latency["file unlink"] + latency["sqlite DELETE"]


@contextlib.contextmanager
def opened(svc: Services, wl: Workload, workdir: Path) -> Iterator[dict[str, Anchor]]:
    """Every anchor, set up and ready to time; keys cycle over the workload's files. The delete anchors
    use keys, a table and a directory of their own, so the order in which anchors run does not matter."""
    keys, blobs = _payloads(wl)
    nf = len(keys)
    dctx = zstandard.ZstdDecompressor()
    out: dict[str, Anchor] = {}
    with contextlib.ExitStack() as stack:
        # memory: cachetools + the stat that tells an unchanged file
        lru: cachetools.LRUCache[tuple, dict] = cachetools.LRUCache(maxsize=max(10_000, 2 * nf))
        for path, md in zip(wl.files, wl.metadata, strict=True):
            st = os.stat(path)
            lru[(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns)] = md

        def lru_get(i: int) -> object:
            path = wl.files[i % nf]
            st = os.stat(path)
            return lru.get((path, st.st_size, st.st_mtime_ns, st.st_ctime_ns))

        out["cachetools get+stat"] = (lru_get, None)
        # the memory-hit target's anchor: the same plus the fresh copy that P1 obliges a cache to hand out
        out["cachetools get+stat+orjson.loads"] = (fresh_copy_lru(wl), None)

        # disk: diskcache
        dc_dir = tempfile.mkdtemp(prefix="diskcache-", dir=workdir)
        stack.callback(shutil.rmtree, dc_dir, ignore_errors=True)
        dc = stack.enter_context(diskcache.Cache(dc_dir))
        for key, md in zip(keys, wl.metadata, strict=True):
            dc.set(key, md)
        out["diskcache get"] = (lambda i: dc.get(keys[i % nf]), None)
        out["diskcache set"] = (lambda i: dc.set(keys[i % nf], wl.metadata[i % nf]), None)

        # Redis: GET + decode, SET with expiry (a raw write of a put), DEL (a raw delete of an invalidate)
        client = redis.Redis.from_url(svc.redis_url)
        prefix = f"anchor-{uuid.uuid4().hex[:8]}:"
        stack.callback(_drop_redis, client, prefix, keys)
        with client.pipeline(transaction=False) as pipe:
            for key, blob in zip(keys, blobs, strict=True):
                pipe.set(prefix + key, blob)
            pipe.execute()
        out["redis GET+decode"] = (lambda i: orjson.loads(dctx.decompress(client.get(prefix + keys[i % nf]))), None)
        out["redis SET"] = (lambda i: client.set(prefix + keys[i % nf], blobs[i % nf], px=86_400_000), None)
        out["redis DEL"] = (  # each key is written back (untimed) before its timed DEL
            lambda i: client.delete(prefix + "del:" + keys[i % nf]),
            lambda i: client.set(prefix + "del:" + keys[i % nf], blobs[i % nf], px=86_400_000),
        )

        # SQLite: primary-key SELECT in WAL mode + decode, the upsert, the DELETE (its own table)
        con = stack.enter_context(_sqlite(workdir))
        con.executemany("INSERT INTO t VALUES (?, ?)", zip(keys, blobs, strict=True))
        select = "SELECT v FROM t WHERE k = ?"
        out["sqlite SELECT+decode"] = (
            lambda i: orjson.loads(dctx.decompress(con.execute(select, (keys[i % nf],)).fetchone()[0])),
            None,
        )
        upsert = "INSERT INTO {} VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
        out["sqlite upsert"] = (lambda i: con.execute(upsert.format("t"), (keys[i % nf], blobs[i % nf])), None)
        out["sqlite DELETE"] = (
            lambda i: con.execute("DELETE FROM d WHERE k = ?", (keys[i % nf],)),
            lambda i: con.execute(upsert.format("d"), (keys[i % nf], blobs[i % nf])),
        )

        # PostgreSQL: primary-key SELECT + decode (no target; context for the postgres hit)
        if svc.postgres_url:
            out["postgres SELECT+decode"] = (stack.enter_context(_postgres_select(svc.postgres_url, keys, blobs)), None)

        # files: the atomic, fsync'd write of the same bytes; the unlink (its own directory)
        file_dir = Path(tempfile.mkdtemp(prefix="rawfiles-", dir=workdir))
        stack.callback(shutil.rmtree, file_dir, ignore_errors=True)
        (file_dir / "del").mkdir()

        def file_write(i: int, where: Path = file_dir) -> None:
            path = where / keys[i % nf]
            temp = where / f".tmp-{i}"
            with open(temp, "wb") as f:
                f.write(blobs[i % nf])
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)

        out["file write+fsync"] = (file_write, None)
        # the unlink of a file the raw write left (fsync'd), as a put leaves the entry an invalidate removes
        out["file unlink"] = (
            lambda i: os.unlink(file_dir / "del" / keys[i % nf]),
            lambda i: file_write(i, file_dir / "del"),
        )

        # The same raw ops back to back in one op, as a put or an invalidate performs them: each part then runs
        # after the others' I/O (an fsync's sleep, another server's round trip), not in a hot loop of its own
        # kind, so this costs more than the sum of the parts timed apart. Reported beside the sums.
        def in_sequence(*names: str) -> Anchor:
            parts = [out[name] for name in names]

            def op(i: int) -> None:
                for timed, _ in parts:
                    timed(i)

            def before(i: int) -> None:
                for _, untimed in parts:
                    if untimed is not None:
                        untimed(i)

            return op, before if any(untimed for _, untimed in parts) else None

        out["raw writes (in sequence)"] = in_sequence("redis SET", "file write+fsync", "sqlite upsert")
        out["raw deletes (in sequence)"] = in_sequence("redis DEL", "file unlink", "sqlite DELETE")
        yield out


def _drop_redis(client: redis.Redis, prefix: str, keys: list[str]) -> None:
    for batch in range(0, len(keys), 500):
        part = keys[batch : batch + 500]
        client.delete(*[prefix + k for k in part], *[prefix + "del:" + k for k in part])
    client.close()


def fresh_copy_lru(wl: Workload, lock: threading.Lock | None = None) -> Callable[[int], object]:
    """op(i): cachetools LRUCache get keyed by (path, stat) + orjson.loads of the stored JSON bytes, so
    the caller gets a fresh dict as P1 requires; behind `lock` when given (the threads anchor)."""
    nf = len(wl.files)
    copies: cachetools.LRUCache[tuple, bytes] = cachetools.LRUCache(maxsize=max(10_000, 2 * nf))
    for path, md in zip(wl.files, wl.metadata, strict=True):
        st = os.stat(path)
        copies[(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns)] = orjson.dumps(md)

    def op(i: int) -> object:
        path = wl.files[i % nf]
        st = os.stat(path)
        return orjson.loads(copies[(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns)])

    if lock is None:
        return op
    guard = lock

    def locked_op(i: int) -> object:
        path = wl.files[i % nf]
        st = os.stat(path)
        with guard:  # an LRU get reorders the cache: it must hold the lock
            raw = copies[(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns)]
        return orjson.loads(raw)

    return locked_op


@contextlib.contextmanager
def _sqlite(workdir: Path) -> Iterator[sqlite3.Connection]:
    path = Path(tempfile.mkdtemp(prefix="rawsqlite-", dir=workdir)) / "anchor.sqlite3"
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")  # survives a process crash, as a cache's database tier must
    for table in ("t", "d"):
        con.execute(f"CREATE TABLE {table} (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
    try:
        yield con
    finally:
        con.close()
        shutil.rmtree(path.parent, ignore_errors=True)


@contextlib.contextmanager
def _postgres_select(url: str, keys: list[str], blobs: list[bytes]) -> Iterator[Callable[[int], object]]:
    import psycopg

    table = f"anchor_{uuid.uuid4().hex[:8]}"
    dctx = zstandard.ZstdDecompressor()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (k TEXT PRIMARY KEY, v BYTEA NOT NULL)")
        try:
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", list(zip(keys, blobs, strict=True)))
            sql = f"SELECT v FROM {table} WHERE k = %s"
            nf = len(keys)
            yield lambda i: orjson.loads(dctx.decompress(conn.execute(sql, (keys[i % nf],)).fetchone()[0]))
        finally:
            conn.execute(f"DROP TABLE {table}")
