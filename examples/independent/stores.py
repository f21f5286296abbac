"""The three shared stores: Redis (plain strings), a directory of files, a SQLite table.

Each store keeps opaque entry bytes (examples.independent.codec) under (epoch, key). An *epoch* is a
name the cache picks for a store's current generation; everything stored under another epoch is
dead and is swept by `cleanup`. Stores raise on backend failure (the cache's breaker handles that)
and return None for anything missing. The disk and SQLite stores also keep the cache's small state
record (its epochs), each as one more durable copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .codec import MAX_ENTRY_BYTES, Key, expiry_of

BACKEND_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError, sqlite3.Error)
"""What a failing tier raises; anything else is a bug and is not swallowed as a tier failure."""

_GLOB = re.compile(r"([*?\[\]\\])")


def epoch_order(epoch: str) -> tuple[int, str]:
    """Epochs are "<number>-<token>" (see cache.new_epoch); anything else sorts first."""
    number, _, token = epoch.split("/")[0].partition("-")
    return (int(number), token) if number.isdigit() else (-1, "")


class RedisStore:
    """`<namespace>:indep:<epoch>:<content>.<tier>` -> entry bytes, with PX as a space hint only."""

    name = "redis"

    def __init__(self, url: str, namespace: str) -> None:
        self.prefix = f"{namespace}:indep:"
        self.pattern = _GLOB.sub(r"\\\1", self.prefix)
        self.client = redis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0), health_check_interval=0
        )  # connects on first command, never at construction

    def server_id(self) -> str | None:
        """The server's run_id (new at every restart), or None when the server does not say (fakeredis)."""
        try:
            run_id = self.client.info("server").get("run_id")
        except redis.ResponseError:
            return None
        return str(run_id) if run_id else None

    def _name(self, epoch: str, key: Key) -> str:
        return f"{self.prefix}{epoch}:{key}"

    def read(self, epoch: str, key: Key) -> bytes | None:
        data = self.client.get(self._name(epoch, key))
        return data if isinstance(data, bytes) else None

    def write(self, epoch: str, key: Key, data: bytes, ttl: float, only_if_absent: bool = False) -> bool:
        return bool(self.client.set(self._name(epoch, key), data, px=max(1, int(ttl * 1000) + 1), nx=only_if_absent))

    def delete(self, epoch: str, key: Key) -> None:
        self.client.delete(self._name(epoch, key))

    def delete_content(self, epoch: str, content: str) -> None:
        names = list(self.client.scan_iter(match=f"{self.pattern}{epoch}:{content}.*", count=1000))
        for start in range(0, len(names), 500):
            self.client.delete(*names[start : start + 500])

    def cleanup(self, epoch: str, now: float) -> None:
        """Delete every key of another epoch, every expired entry and every entry that does not decode."""
        for name in self.client.scan_iter(match=f"{self.pattern}*", count=1000):
            rest = name.decode("utf-8", "replace")[len(self.prefix) :]
            entry_epoch, _, key_text = rest.partition(":")
            key = _parse_key(key_text)
            if entry_epoch != epoch or key is None:
                self.client.delete(name)
                continue
            data = self.client.get(name)
            expires = expiry_of(key, data) if isinstance(data, bytes) else None
            if expires is None or expires <= now:
                self.client.delete(name)

    def close(self) -> None:
        self.client.close()


def _parse_key(text: str) -> Key | None:
    content, dot, tier = text.partition(".")
    if dot and re.fullmatch(r"[0-9a-f]{64}", content) and re.fullmatch(r"[0-9a-f]{32}", tier):
        return Key(content, tier)
    return None


class DiskStore:
    """cache_dir/e-<epoch>/<cc>/<content>/<tier>.meta + <tier>-<digest>.entry, and cache_dir/STATE.

    The `.meta` sidecar names the entry file and its size and digest, and holds the expiry (so cleanup
    reads no entry). A write adds a new entry file, then atomically replaces the sidecar, then removes
    the entry file it superseded: a reader sees the old pair or the new one, never a mix.
    """

    name = "disk"
    STATE = "STATE"

    def __init__(self, root: str, max_bytes: int) -> None:
        self.root = os.path.abspath(root)
        self.max_bytes = max_bytes
        self.sizes: dict[tuple[str, Key], int] = {}  # (epoch, key) -> bytes on disk, oldest write first

    def _dir(self, epoch: str, content: str) -> str:
        return os.path.join(self.root, f"e-{epoch}", content[:2], content)

    def read(self, epoch: str, key: Key) -> bytes | None:
        folder = self._dir(epoch, key.content)
        try:
            with open(os.path.join(folder, f"{key.tier}.meta"), "rb") as f:
                meta = json.loads(f.read(4096))
            name, size, digest = meta["f"], meta["n"], meta["h"]
            if not (isinstance(name, str) and re.fullmatch(rf"{key.tier}-[0-9a-f]{{16}}\.entry", name)):
                raise ValueError("sidecar names no entry of this key")
            if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_ENTRY_BYTES:
                raise ValueError("sidecar gives no plausible size")
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read(size + 1)
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, RecursionError):  # damaged sidecar: this entry is gone
            self.delete(epoch, key)
            return None
        if len(data) != size or hashlib.sha256(data).hexdigest()[:16] != digest:
            self.delete(epoch, key)
            return None
        return data

    def write(self, epoch: str, key: Key, data: bytes, expires: float, only_if_absent: bool = False) -> bool:
        folder = self._dir(epoch, key.content)
        meta_path = os.path.join(folder, f"{key.tier}.meta")
        if only_if_absent and os.path.exists(meta_path):
            return False
        digest = hashlib.sha256(data).hexdigest()[:16]
        name = f"{key.tier}-{digest}.entry"
        meta = json.dumps({"f": name, "n": len(data), "h": digest, "x": expires}).encode()
        size = len(data) + len(meta)
        if not self._make_room(size, (epoch, key)):
            self.delete(epoch, key)  # too big for the budget: an older entry of this key must not stay
            return False
        os.makedirs(folder, exist_ok=True)
        old = [n for n in os.listdir(folder) if n.startswith(f"{key.tier}-") and n != name]
        _atomic_write(os.path.join(folder, name), data)
        _atomic_write(meta_path, meta)
        for stale in old:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, stale))
        self.sizes.pop((epoch, key), None)
        self.sizes[(epoch, key)] = size
        return True

    def _make_room(self, size: int, target: tuple[str, Key]) -> bool:
        """Keep every file under cache_dir within max_bytes: drop the oldest writes first."""
        budget = self.max_bytes - 1024  # the STATE file and slack
        if size > budget:
            return False
        used = sum(s for k, s in self.sizes.items() if k != target)
        for epoch, key in list(self.sizes):
            if used + size <= budget:
                break
            if (epoch, key) != target:
                used -= self.sizes[(epoch, key)]
                self.delete(epoch, key)
        return used + size <= budget

    def delete(self, epoch: str, key: Key) -> None:
        folder = self._dir(epoch, key.content)
        self.sizes.pop((epoch, key), None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, f"{key.tier}.meta"))
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(folder):
                if name.startswith(f"{key.tier}-"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(folder, name))

    def delete_content(self, epoch: str, content: str) -> None:
        for k in [k for k in self.sizes if k[0] == epoch and k[1].content == content]:
            del self.sizes[k]
        _remove_tree(self._dir(epoch, content))

    def cleanup(self, epoch: str, now: float) -> None:
        """Remove other epochs, expired or damaged entries, orphans and stale temporary files; recount."""
        self.drop_older_epochs(epoch)
        self.sizes = {}
        for folder, key in self._folders(epoch):
            for name in os.listdir(folder):
                path = os.path.join(folder, name)
                if name.startswith(".tmp-") and time.time() - os.stat(path).st_mtime > 60:
                    os.unlink(path)
            for tier in {n.split("-")[0].split(".")[0] for n in os.listdir(folder) if not n.startswith(".")}:
                k = Key(key, tier)
                data = self.read(epoch, k) if re.fullmatch(r"[0-9a-f]{32}", tier) else None
                expires = None if data is None else expiry_of(k, data)
                if data is None or expires is None or expires <= now:
                    self.delete(epoch, k)
                else:
                    self.sizes[(epoch, k)] = len(data) + os.stat(os.path.join(folder, f"{tier}.meta")).st_size

    def drop_older_epochs(self, epoch: str) -> None:
        """Remove the directories of epochs before `epoch` (a newer one may be another instance's)."""
        for name in os.listdir(self.root) if os.path.isdir(self.root) else ():
            if name.startswith("e-") and epoch_order(name[2:]) < epoch_order(epoch):
                _remove_tree(os.path.join(self.root, name))
        for key in [k for k in self.sizes if epoch_order(k[0]) < epoch_order(epoch)]:
            del self.sizes[key]

    def recount(self, epoch: str) -> None:
        """Rebuild the byte count of the current epoch (at start: other instances may have written)."""
        found = []
        for folder, content in self._folders(epoch):
            for name in os.listdir(folder):
                if name.endswith(".meta"):
                    meta = os.stat(os.path.join(folder, name))
                    entries = [n for n in os.listdir(folder) if n.startswith(name[:-5] + "-")]
                    size = meta.st_size + sum(os.stat(os.path.join(folder, n)).st_size for n in entries)
                    found.append((meta.st_mtime, (epoch, Key(content, name[:-5])), size))
        self.sizes = {k: s for _, k, s in sorted(found, key=lambda item: item[0])}

    def _folders(self, epoch: str) -> Iterator[tuple[str, str]]:
        base = os.path.join(self.root, f"e-{epoch}")
        if not os.path.isdir(base):
            return
        for prefix in os.listdir(base):
            if not os.path.isdir(os.path.join(base, prefix)):
                continue
            for content in os.listdir(os.path.join(base, prefix)):
                if re.fullmatch(r"[0-9a-f]{64}", content) and os.path.isdir(os.path.join(base, prefix, content)):
                    yield os.path.join(base, prefix, content), content

    def read_state(self) -> bytes | None:
        try:
            with open(os.path.join(self.root, self.STATE), "rb") as f:
                return f.read(4096)
        except FileNotFoundError:
            return None

    def write_state(self, data: bytes) -> None:
        os.makedirs(self.root, exist_ok=True)
        _atomic_write(os.path.join(self.root, self.STATE), data)

    def forget_state(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.root, self.STATE))

    def close(self) -> None:
        pass


def _atomic_write(path: str, data: bytes) -> None:
    temp = os.path.join(os.path.dirname(path), f".tmp-{uuid.uuid4().hex}")
    try:
        with open(temp, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _remove_tree(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):  # already gone (another instance, or never written)
        shutil.rmtree(path)


class SqliteStore:
    """One table of (namespace, epoch, content, tier, expires, body) rows, and one row of state."""

    name = "database"

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS indep_entries (ns TEXT NOT NULL, epoch TEXT NOT NULL, content TEXT NOT NULL,"
        " tier TEXT NOT NULL, expires REAL NOT NULL, body BLOB NOT NULL, PRIMARY KEY (ns, epoch, content, tier))",
        "CREATE INDEX IF NOT EXISTS indep_entries_expiry ON indep_entries (ns, expires)",
        "CREATE TABLE IF NOT EXISTS indep_state (ns TEXT PRIMARY KEY, body TEXT NOT NULL)",
    )

    def __init__(self, url: str, namespace: str) -> None:
        if not url.startswith("sqlite:///"):
            raise ValueError(f"examples.independent supports only sqlite:/// database URLs, got {url.split(':')[0]}")
        self.path = url.removeprefix("sqlite://")
        self.ns = namespace
        self.conn: sqlite3.Connection | None = None
        self.inode: int | None = None

    def _db(self) -> sqlite3.Connection:
        """The connection, reopened when the file was replaced or removed under us."""
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            inode = None
        if self.conn is not None and inode != self.inode:
            self.close()
        if self.conn is None:
            # 3 s busy timeout: with 1 s, several instances writing on a loaded machine (2 cores, a parallel test
            # run) saw "database is locked" with no fault injected, and reported the tier failed (an L1 finding)
            conn = sqlite3.connect(self.path, timeout=3.0, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
                for statement in self.SCHEMA:
                    conn.execute(statement)
            except BaseException:
                conn.close()
                raise
            self.conn, self.inode = conn, os.stat(self.path).st_ino
        return self.conn

    def read(self, epoch: str, key: Key) -> bytes | None:
        row = (
            self._db()
            .execute(
                "SELECT body FROM indep_entries WHERE ns = ? AND epoch = ? AND content = ? AND tier = ?",
                (self.ns, epoch, key.content, key.tier),
            )
            .fetchone()
        )
        return None if row is None or not isinstance(row[0], bytes) else row[0]

    def write(self, epoch: str, key: Key, data: bytes, expires: float, only_if_absent: bool = False) -> bool:
        verb = "INSERT OR IGNORE" if only_if_absent else "INSERT OR REPLACE"
        cursor = self._db().execute(
            f"{verb} INTO indep_entries VALUES (?, ?, ?, ?, ?, ?)",
            (self.ns, epoch, key.content, key.tier, expires, data),
        )
        return cursor.rowcount > 0

    def delete(self, epoch: str, key: Key) -> None:
        self._db().execute(
            "DELETE FROM indep_entries WHERE ns = ? AND epoch = ? AND content = ? AND tier = ?",
            (self.ns, epoch, key.content, key.tier),
        )

    def delete_content(self, epoch: str, content: str) -> None:
        self._db().execute(
            "DELETE FROM indep_entries WHERE ns = ? AND epoch = ? AND content = ?", (self.ns, epoch, content)
        )

    def cleanup(self, epoch: str, now: float) -> None:
        self._db().execute(
            "DELETE FROM indep_entries WHERE ns = ? AND (epoch != ? OR expires <= ?)", (self.ns, epoch, now)
        )

    def read_state(self) -> bytes | None:
        row = self._db().execute("SELECT body FROM indep_state WHERE ns = ?", (self.ns,)).fetchone()
        return None if row is None else str(row[0]).encode()

    def write_state(self, data: bytes) -> None:
        self._db().execute("INSERT OR REPLACE INTO indep_state VALUES (?, ?)", (self.ns, data.decode()))

    def forget_state(self) -> None:
        self._db().execute("DELETE FROM indep_state WHERE ns = ?", (self.ns,))

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()
