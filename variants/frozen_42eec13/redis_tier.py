"""The Redis tier: one hash per content (field = tier variant), pooled, with timeouts and retry.

A restarted server may come back with data older than invalidations this cache made (an RDB
or AOF taken earlier). Every (re)connection reads the server's run_id and the namespace's
invalidation-generation token: a new run_id, or a token other than the last one this instance
wrote or read, means the server may have lost invalidations. The tier then answers nothing
until it has purged this namespace, so old entries cannot resurrect. (A token changed by
another instance's invalidation causes a needless purge on a new connection: a cost, never
wrong data; pooled connections are long-lived, so it is rare.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .keys import CacheKey
from .store import REPAIR_MARK_SECONDS, IsDead, TierError

_BACKSTOP_FACTOR = 2.0  # native expiry only as a backstop: well after the entry's own expiry
_BACKSTOP_SLACK_MS = 60_000


_SERVERS_WITHOUT_INFO: set[str] = set()  # URLs, so each new instance does not learn it again


class _RestartWatcher:
    """Shared by every connection of one pool: what this instance last knew of the server."""

    def __init__(self, generation_key: str, url: str) -> None:
        self.generation_key = generation_key
        self.url = url
        self.run_id: str | None = None
        self.generation: str | None = None  # None: nothing known yet
        self.restarted = threading.Event()

    def saw_run_id(self, run_id: str) -> None:
        if self.run_id is not None and run_id != self.run_id:
            self.restarted.set()
        self.run_id = run_id

    def saw_generation_on_connect(self, token: str) -> None:
        if self.generation is not None and token != self.generation:
            self.restarted.set()
        self.generation = token


class _WatchedConnection:
    """Mixin for redis-py connections: check run_id and generation after every (re)connect."""

    watcher: _RestartWatcher
    send_command: Callable[..., None]  # provided by the redis-py connection class it is mixed into
    read_response: Callable[..., Any]

    def on_connect_check_health(self, *args, **kwargs) -> None:  # redis-py >= 6 calls this on connect
        super().on_connect_check_health(*args, **kwargs)  # type: ignore[misc]
        self._check_server()

    def on_connect(self) -> None:  # older redis-py calls only this
        super().on_connect()  # type: ignore[misc]
        if not hasattr(super(), "on_connect_check_health"):
            self._check_server()

    def _check_server(self) -> None:
        if self.watcher.url not in _SERVERS_WITHOUT_INFO:
            self.send_command("INFO", "server")  # type: ignore[attr-defined]
            try:
                info = self.read_response()  # type: ignore[attr-defined]
            except redis.ResponseError as exc:
                # A server without INFO (fakeredis) also drops the connection: fail this connect,
                # redis-py's retry reconnects without INFO, and the generation check remains.
                _SERVERS_WITHOUT_INFO.add(self.watcher.url)
                raise redis.ConnectionError(f"server has no INFO: {exc}") from exc
            text = info.decode() if isinstance(info, bytes) else str(info)
            for line in text.splitlines():
                if line.startswith("run_id:"):
                    self.watcher.saw_run_id(line.split(":", 1)[1].strip())
                    break
        self.send_command("GET", self.watcher.generation_key)  # type: ignore[attr-defined]
        token = self.read_response()  # type: ignore[attr-defined]
        self.watcher.saw_generation_on_connect(token.decode() if token else "")


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisTier:
    name = "redis"

    def __init__(self, url: str, namespace: str, socket_timeout: float, connect_timeout: float) -> None:
        self.watcher = _RestartWatcher(f"{namespace}:changes", url)  # a counter (INCR); ":generation" held tokens
        pool = redis.ConnectionPool.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.005), retries=1),
            max_connections=64,
        )
        base = pool.connection_class
        pool.connection_class = type("Watched" + base.__name__, (_WatchedConnection, base), {"watcher": self.watcher})
        self._pool = pool
        self._client = redis.Redis(connection_pool=pool)
        self._prefix = f"{namespace}:e:"
        self._match = _escape_glob(self._prefix) + "*"
        self._generation_key = self.watcher.generation_key
        self._repaired_key = f"{namespace}:repaired"  # journal records applied here: see StoreTier.mark_repaired
        self._purge_lock = threading.Lock()
        self.floor = 0  # the highest change counter the cache's journals recorded (see catch_up)

    def _hash_key(self, content: str) -> str:
        return self._prefix + content

    def _call(self, operation: str, fn, *args):
        """Run one command; raise TierError on failure, or when the server restarted under us."""
        try:
            result = fn(*args)
        except redis.RedisError as exc:
            raise TierError(f"redis {operation}: {exc}") from exc
        if self.watcher.restarted.is_set():
            self._purge_after_restart()
            raise TierError(f"redis {operation}: server restarted; namespace purged, result discarded")
        return result

    def _purge_after_restart(self) -> None:
        with self._purge_lock:
            if not self.watcher.restarted.is_set():
                return
            try:
                self._delete_namespace()
                self._lift_counter(self.floor, self._counter())  # else a later instance takes it for an old one
                token = self._client.get(self._generation_key)
            except redis.RedisError as exc:
                raise TierError(f"redis purge after restart: {exc}") from exc
            self.watcher.generation = token.decode() if token else ""  # type: ignore[union-attr]  # bytes
            self.watcher.restarted.clear()

    def catch_up(self, floor: int) -> bool:
        """A server whose change counter is below `floor` has lost removals made before (it came back
        from an older snapshot, or empty, while no instance was watching it): purge the namespace and
        lift the counter. True if it purged."""

        def check() -> bool:
            current = self._counter()
            if current >= floor:
                return False
            self._delete_namespace()
            self._lift_counter(floor, current)
            return True

        return self._call("catch up", check)

    def _counter(self) -> int:
        """The change counter on the server; -1 when it has none."""
        value = self._client.get(self._generation_key)
        return int(value) if value is not None and value.isdigit() else -1

    def _lift_counter(self, floor: int, current: int) -> None:
        if current >= floor:
            return
        if current < 0:
            self._client.set(self._generation_key, floor)
        else:
            self._client.incrby(self._generation_key, floor - current)  # concurrent INCRs only add

    def _delete_namespace(self) -> None:
        batch: list[bytes] = []
        for name in self._client.scan_iter(match=self._match, count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                self._client.unlink(*batch)
                batch.clear()
        if batch:
            self._client.unlink(*batch)

    def get(self, key: CacheKey) -> bytes | None:
        return self._call("get", self._client.hget, self._hash_key(key.content), key.variant)

    def put(self, key: CacheKey, blob: bytes, expires_at: float, now: float) -> None:
        self._write(key, blob, expires_at, now, announce=False)

    def put_and_announce(self, key: CacheKey, blob: bytes, expires_at: float, now: float) -> str:
        """put() and bump_generation() in one round trip (one MULTI): a put's announcement costs nothing extra."""
        token = self._write(key, blob, expires_at, now, announce=True)
        self.watcher.generation = token
        return token

    def _write(self, key: CacheKey, blob: bytes, expires_at: float, now: float, announce: bool) -> str:
        backstop_ms = int(max(expires_at - now, 0) * 1000 * _BACKSTOP_FACTOR) + _BACKSTOP_SLACK_MS
        name = self._hash_key(key.content)

        def write() -> str:
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(name, key.variant, blob)
            pipe.pexpire(name, backstop_ms)
            if announce:
                pipe.incr(self._generation_key)
            return str(pipe.execute()[-1])

        return self._call("put", write)

    def remove(self, content: str, variant: str | None = None) -> None:
        name = self._hash_key(content)
        if variant is None:
            self._call("remove", self._client.delete, name)
        else:
            self._call("remove", self._client.hdel, name, variant)

    def clear(self) -> None:
        self._call("clear", self._delete_namespace)

    def repairs_applied(self, rids: Collection[str]) -> set[str]:
        ordered = list(rids)

        def look() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for rid in ordered:
                pipe.zscore(self._repaired_key, rid)
            return pipe.execute()

        scores = self._call("repair marks", look) if ordered else []
        return {rid for rid, score in zip(ordered, scores, strict=True) if score is not None}

    def mark_repaired(self, rids: Collection[str], now: float) -> None:
        def mark() -> None:
            pipe = self._client.pipeline(transaction=False)
            pipe.zremrangebyscore(self._repaired_key, "-inf", f"({now - REPAIR_MARK_SECONDS}")
            if rids:
                pipe.zadd(self._repaired_key, dict.fromkeys(rids, now))
            pipe.execute()

        self._call("repair marks", mark)

    def keys(self) -> Iterator[CacheKey]:
        def collect() -> list[CacheKey]:
            found: list[CacheKey] = []
            for name in self._client.scan_iter(match=self._match, count=1000):
                content = name.decode()[len(self._prefix) :]
                found.extend(CacheKey(content, v.decode()) for v in self._client.hkeys(name))  # type: ignore[union-attr]
            return found

        return iter(self._call("scan", collect))

    def purge(self, is_dead: IsDead) -> int:
        def sweep() -> int:
            removed = 0
            for name in self._client.scan_iter(match=self._match, count=1000):
                content = name.decode()[len(self._prefix) :]
                for variant, blob in self._client.hgetall(name).items():
                    if is_dead(CacheKey(content, variant.decode()), blob):  # type: ignore[union-attr,arg-type]
                        removed += self._client.hdel(name, variant)
            return removed

        return self._call("purge", sweep)

    def bump_generation(self) -> str:
        token = str(self._call("bump_generation", self._client.incr, self._generation_key))
        self.watcher.generation = token
        return token

    def read_generation(self) -> str:
        value = self._call("read_generation", self._client.get, self._generation_key)
        token = value.decode() if value else ""
        self.watcher.generation = token
        return token

    def usage(self) -> dict[str, object]:
        info: dict[str, object] = {"run_id": self.watcher.run_id}
        try:
            info["used_memory"] = self._client.info("memory").get("used_memory")
        except redis.RedisError as exc:
            info["error"] = str(exc)
        return info

    def close(self) -> None:
        self._client.close()
        self._pool.disconnect()
