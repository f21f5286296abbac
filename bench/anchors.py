"""What a plain library does for the same job, on the same data, in the same run: the yardsticks.

Each anchor is the least work that job needs: cachetools LRUCache get plus the os.stat that
detects a changed file; diskcache get/set; redis-py GET plus the decode the reference must do
(zstd decompress, orjson.loads); a primary-key SELECT on SQLite in WAL mode plus that decode;
and the raw writes a put performs (Redis SET with expiry, an fsync'd atomic file write, a SQLite
upsert), each of the same bytes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import cachetools
import diskcache
import numpy as np
import orjson
import redis
import zstandard

from tiercheck.reference.keys import ContentHasher

from . import timing
from .services import Services
from .workload import Workload

Measure = Callable[[Callable[[int], object], Callable[[int], object] | None], np.ndarray]


def _payloads(wl: Workload) -> tuple[list[str], list[bytes]]:
    hasher = ContentHasher()
    keys = [hasher.content_id(p) for p in wl.files]
    cctx = zstandard.ZstdCompressor(level=3)  # the reference's default level
    return keys, [cctx.compress(orjson.dumps(md)) for md in wl.metadata]


def measure_all(svc: Services, wl: Workload, workdir: Path, n: int) -> dict[str, np.ndarray]:
    """Every anchor, n timed operations each; keys cycle over the workload's files."""
    keys, blobs = _payloads(wl)
    nf = len(keys)
    dctx = zstandard.ZstdDecompressor()
    out: dict[str, np.ndarray] = {}

    # memory: cachetools + the stat that tells an unchanged file
    lru: cachetools.LRUCache = cachetools.LRUCache(maxsize=max(10_000, 2 * nf))
    for path, md in zip(wl.files, wl.metadata, strict=True):
        st = os.stat(path)
        lru[(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns)] = md

    def lru_get(i: int) -> object:
        path = wl.files[i % nf]
        st = os.stat(path)
        return lru.get((path, st.st_size, st.st_mtime_ns, st.st_ctime_ns))

    out["cachetools get+stat"] = timing.run(lru_get, n)
    # context, no target: the same plus the fresh copy that P1 obliges a cache to hand out
    copies: cachetools.LRUCache = cachetools.LRUCache(maxsize=lru.maxsize)
    for k, v in lru.items():
        copies[k] = orjson.dumps(v)

    def lru_get_copy(i: int) -> object:
        path = wl.files[i % nf]
        st = os.stat(path)
        return orjson.loads(copies.get((path, st.st_size, st.st_mtime_ns, st.st_ctime_ns)))

    out["cachetools get+stat+orjson.loads"] = timing.run(lru_get_copy, n)

    # disk: diskcache
    dc_dir = tempfile.mkdtemp(prefix="diskcache-", dir=workdir)
    with diskcache.Cache(dc_dir) as dc:
        for key, md in zip(keys, wl.metadata, strict=True):
            dc.set(key, md)
        out["diskcache get"] = timing.run(lambda i: dc.get(keys[i % nf]), n)
        out["diskcache set"] = timing.run(lambda i: dc.set(keys[i % nf], wl.metadata[i % nf]), n)
    shutil.rmtree(dc_dir, ignore_errors=True)

    # Redis: GET + decode, and SET with expiry (one of the raw writes of a put)
    client = redis.Redis.from_url(svc.redis_url)
    prefix = f"anchor-{uuid.uuid4().hex[:8]}:"
    with client.pipeline(transaction=False) as pipe:
        for key, blob in zip(keys, blobs, strict=True):
            pipe.set(prefix + key, blob)
        pipe.execute()
    out["redis GET+decode"] = timing.run(lambda i: orjson.loads(dctx.decompress(client.get(prefix + keys[i % nf]))), n)
    out["redis SET"] = timing.run(lambda i: client.set(prefix + keys[i % nf], blobs[i % nf], px=86_400_000), n)
    for batch in range(0, nf, 1000):
        client.delete(*[prefix + k for k in keys[batch : batch + 1000]])
    client.close()

    # SQLite: primary-key SELECT in WAL mode + decode, and the upsert
    with _sqlite(workdir) as con:
        con.executemany("INSERT INTO t VALUES (?, ?)", zip(keys, blobs, strict=True))
        select = "SELECT v FROM t WHERE k = ?"
        out["sqlite SELECT+decode"] = timing.run(
            lambda i: orjson.loads(dctx.decompress(con.execute(select, (keys[i % nf],)).fetchone()[0])), n
        )
        upsert = "INSERT INTO t VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
        out["sqlite upsert"] = timing.run(lambda i: con.execute(upsert, (keys[i % nf], blobs[i % nf])), n)

    # PostgreSQL: primary-key SELECT + decode (no target; context for the postgres hit)
    if svc.postgres_url:
        out["postgres SELECT+decode"] = _postgres_select(svc.postgres_url, keys, blobs, n, dctx)

    # disk: the atomic, fsync'd write of the same bytes
    file_dir = Path(tempfile.mkdtemp(prefix="rawfiles-", dir=workdir))

    def file_write(i: int) -> None:
        path = file_dir / keys[i % nf]
        temp = file_dir / f".tmp-{i}"
        with open(temp, "wb") as f:
            f.write(blobs[i % nf])
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)

    out["file write+fsync"] = timing.run(file_write, n)
    shutil.rmtree(file_dir, ignore_errors=True)
    return out


@contextlib.contextmanager
def _sqlite(workdir: Path) -> Iterator[sqlite3.Connection]:
    path = Path(tempfile.mkdtemp(prefix="rawsqlite-", dir=workdir)) / "anchor.sqlite3"
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")  # as the reference
    con.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
    try:
        yield con
    finally:
        con.close()
        shutil.rmtree(path.parent, ignore_errors=True)


def _postgres_select(url: str, keys: list[str], blobs: list[bytes], n: int, dctx) -> np.ndarray:
    import psycopg

    table = f"anchor_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (k TEXT PRIMARY KEY, v BYTEA NOT NULL)")
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", list(zip(keys, blobs, strict=True)))
        sql = f"SELECT v FROM {table} WHERE k = %s"
        nf = len(keys)
        samples = timing.run(
            lambda i: orjson.loads(dctx.decompress(conn.execute(sql, (keys[i % nf],)).fetchone()[0])), n
        )
        conn.execute(f"DROP TABLE {table}")
    return samples
