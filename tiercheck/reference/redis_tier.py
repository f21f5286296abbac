"""The Redis tier: one hash per content (field = tier variant), pooled, with timeouts and retry.

Per content hash `<ns>:e:<content>`: `<variant>` → entry bytes, `v:<variant>` → its version,
`t:<variant>` / `t:*` → tombstones (versions are zero-padded decimals, so strings compare like
numbers). Writes are conditional, in one Lua script (EVAL) or, on servers without Lua (fakeredis),
a WATCH/MULTI transaction doing the same: a put lands only if newer than the key's version and
tombstones and than `<ns>:cleared` (clear_all), so a late write can never bring back what a later
removal took away.

Every removal and every put moves `<ns>:removals` in the same atomic step. The cache records the value durably
(the floor, in the disk/database journals): a Redis that shows a lower counter — restarted empty,
or restored from a snapshot taken before that removal — has lost removals and is purged before
it serves (`check_floor`). Each new connection compares the counter with the floor it knows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .keys import CacheKey
from .store import ALL, TOMBSTONE_SECONDS, IsDead, TierError
from .versions import padded

_BACKSTOP_FACTOR = 2.0  # native expiry only as a backstop: well after the entry's own expiry
_BACKSTOP_SLACK_MS = 60_000
_TOMBSTONE_MS = int(TOMBSTONE_SECONDS * 1000)

_PUT = """
local c = redis.call('GET', KEYS[2])
if c and c >= ARGV[3] then return 0 end
local f = redis.call('HMGET', KEYS[1], 't:*', 't:' .. ARGV[1], 'v:' .. ARGV[1])
if (f[1] and f[1] >= ARGV[3]) or (f[2] and f[2] >= ARGV[3]) or (f[3] and f[3] > ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], 'v:' .. ARGV[1], ARGV[3])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return redis.call('INCR', KEYS[3])
"""

_REMOVE = """
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local f = fields[i]
  if string.sub(f, 1, 2) == 'v:' and (ARGV[1] == '*' or f == 'v:' .. ARGV[1]) and fields[i + 1] < ARGV[2] then
    redis.call('HDEL', KEYS[1], f, string.sub(f, 3))
  end
end
local t = redis.call('HGET', KEYS[1], 't:' .. ARGV[1])
if (not t) or t < ARGV[2] then redis.call('HSET', KEYS[1], 't:' .. ARGV[1], ARGV[2]) end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return redis.call('INCR', KEYS[2])
"""

_CLEAR = """
local c = redis.call('GET', KEYS[1])
if (not c) or c < ARGV[1] then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[2])
"""


class _FloorCheckedConnection:
    """Mixin for redis-py connections: on every (re)connect, compare the removal counter with the
    floor; a server behind it has lost removals, and the tier refuses it until purged."""

    tier: RedisTier
    send_command: Callable[..., None]
    read_response: Callable[..., Any]

    def on_connect_check_health(self, *args: Any, **kwargs: Any) -> None:  # redis-py >= 6
        super().on_connect_check_health(*args, **kwargs)  # type: ignore[misc]
        self._check_floor()

    def on_connect(self) -> None:  # older redis-py calls only this
        super().on_connect()  # type: ignore[misc]
        if not hasattr(super(), "on_connect_check_health"):
            self._check_floor()

    def _check_floor(self) -> None:
        floor = self.tier.floor  # before the GET: puts on other connections raise it meanwhile
        self.send_command("GET", self.tier.counter_key)
        if _int(self.read_response()) < floor:
            self.tier.floor_unchecked = True
            raise redis.ConnectionError("the server's removal counter is below the floor: purge first")


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisTier:
    name = "redis"

    def __init__(self, url: str, namespace: str, socket_timeout: float, connect_timeout: float) -> None:
        self.url = url
        self.prefix = f"{namespace}:e:"
        self.counter_key = f"{namespace}:removals"
        self.cleared_key = f"{namespace}:cleared"
        self._match = _escape_glob(self.prefix) + "*"
        self.floor = 0  # the highest removal counter the journals recorded
        self.floor_unchecked = True  # check_floor before the tier serves
        pool = redis.ConnectionPool.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.005), retries=1),
            max_connections=64,
        )
        base = pool.connection_class
        pool.connection_class = type("Floor" + base.__name__, (_FloorCheckedConnection, base), {"tier": self})
        self._pool = pool
        self._client = redis.Redis(connection_pool=pool)
        # check_floor and its purge go through a connection that is not refused for being behind the floor
        self._admin = redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout)
        self._scripts = {name: self._client.register_script(src) for name, src in _SCRIPTS.items()}
        self.lua = True  # until the server says it has no EVAL (fakeredis without lupa)
        self._purge_lock = threading.Lock()

    def _call(self, operation: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except redis.RedisError as exc:
            raise TierError(f"redis {operation}: {exc}") from exc

    def _script(self, name: str, keys: list[str], args: list[Any], fallback: Callable[[Any], Any]) -> Any:
        if self.lua and name in self._scripts:
            try:
                return self._scripts[name](keys=keys, args=args)
            except redis.ResponseError as exc:
                if "unknown command" not in str(exc).lower():
                    raise
                self.lua = False
        with self._client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(*keys)
                    early = fallback(pipe)  # reads run at once while watching; None: it queued a MULTI
                    if early is not None:
                        pipe.reset()
                        return early
                    results = pipe.execute()
                    return results[-1] if results else None
                except redis.WatchError:
                    continue

    # --- entries --------------------------------------------------------------------------

    def get(self, key: CacheKey) -> bytes | None:
        return self._read("get", key, key.variant)

    def version_of(self, key: CacheKey) -> int | None:
        value = self._read("version", key, "v:" + key.variant)
        return None if value is None else _int(value)

    def _read(self, operation: str, key: CacheKey, field: str) -> bytes | None:
        """A field of the entry, unless a clear_all covers the entry: a clear records its version first,
        then removes older entries content by content, and one it has not reached yet is already gone
        (a put it refused may have completed since). Read in the same round trip."""

        def read() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            pipe.hmget(self.prefix + key.content, field, "v:" + key.variant)
            pipe.get(self.cleared_key)
            return pipe.execute()

        (value, version), cleared = self._call(operation, read)
        if value is not None and cleared is not None and version is not None and version <= cleared:
            return None  # both zero-padded decimals: the bytes compare like the numbers
        return value

    def fences(self, content: str, variants: list[str]) -> dict[str, int]:
        """Per variant, the lowest version this tier would still accept: coherence keeps a memory entry
        at least that new (a missing entry without a tombstone refuses nothing)."""

        def read() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            pipe.hmget(self.prefix + content, [f for v in variants for f in ("v:" + v, "t:" + v)] + ["t:*"])
            pipe.get(self.cleared_key)
            return pipe.execute()

        fields, cleared = self._call("fences", read)
        values = [_int(x) for x in fields]
        floor = max(values[-1], _int(cleared))
        return {v: max(values[2 * i], values[2 * i + 1] + 1, floor + 1) for i, v in enumerate(variants)}

    def cleared_version(self) -> int:
        """The version of the last clear_all (entries up to it are gone)."""
        return _int(self._call("clear", self._client.get, self.cleared_key))

    def put(self, key: CacheKey, blob: bytes, version: int, expires_at: float, now: float) -> int:
        """The counter after the write (the cache raises the floor with it), or 0 when refused."""
        name, v = self.prefix + key.content, padded(version)
        backstop = max(int(max(expires_at - now, 0) * 1000 * _BACKSTOP_FACTOR) + _BACKSTOP_SLACK_MS, _TOMBSTONE_MS)

        def watched(pipe: Any) -> Any:
            cleared = pipe.get(self.cleared_key)
            tomb_all, tomb, current = pipe.hmget(name, "t:*", "t:" + key.variant, "v:" + key.variant)
            if any(x is not None and x.decode() >= v for x in (cleared, tomb_all, tomb)) or (
                current is not None and current.decode() > v
            ):
                return 0
            ttl = pipe.pttl(name)
            pipe.multi()
            pipe.hset(name, mapping={key.variant: blob, "v:" + key.variant: v})
            if ttl < backstop:
                pipe.pexpire(name, backstop)
            pipe.incr(self.counter_key)
            return None

        args = [key.variant, blob, v, backstop]
        keys = [name, self.cleared_key, self.counter_key]
        counter = _int(self._call("put", self._script, "put", keys, args, watched))
        self.floor = max(self.floor, counter)  # a server that shows less later lost this write
        return counter

    def remove(self, content: str, variant: str | None, version: int) -> int:
        """Remove and leave a tombstone; return the removal counter after it (the cache records the floor)."""
        name, v, field = self.prefix + content, padded(version), variant or ALL

        def watched(pipe: Any) -> Any:
            fields = {
                k.decode(): x.decode()
                for k, x in pipe.hgetall(name).items()
                if k.startswith(b"v:") or k.startswith(b"t:")
            }
            doomed = [
                f for f, x in fields.items() if f.startswith("v:") and (field == ALL or f == "v:" + field) and x < v
            ]
            ttl = pipe.pttl(name)
            pipe.multi()
            for f in doomed:
                pipe.hdel(name, f, f[2:])
            if fields.get("t:" + field, "") < v:
                pipe.hset(name, "t:" + field, v)
            if ttl < _TOMBSTONE_MS:
                pipe.pexpire(name, _TOMBSTONE_MS)
            pipe.incr(self.counter_key)
            return None

        return _int(
            self._call("remove", self._script, "remove", [name, self.counter_key], [field, v, _TOMBSTONE_MS], watched)
        )

    def discard(self, key: CacheKey, version: int | None, held: bytes | None = None) -> None:
        name = self.prefix + key.content

        def watched(pipe: Any) -> None:
            value, current = pipe.hmget(name, key.variant, "v:" + key.variant)
            doomed = value == held if held is not None else version in (None, _int(current))
            pipe.multi()
            if doomed:
                pipe.hdel(name, key.variant, "v:" + key.variant)

        self._call("discard", self._script, "discard", [name], [], watched)

    def clear(self, version: int) -> int:
        def watched(pipe: Any) -> Any:
            current = pipe.get(self.cleared_key)
            pipe.multi()
            if current is None or current.decode() < padded(version):
                pipe.set(self.cleared_key, padded(version))
            pipe.incr(self.counter_key)
            return None

        counter = _int(
            self._call("clear", self._script, "clear", [self.cleared_key, self.counter_key], [padded(version)], watched)
        )
        # like a removal of every content: only entries older than the clear go (a clear applied late,
        # from a repair journal, never takes entries put after it)
        for _, content in self._call("clear", lambda: list(self._scan())):
            counter = max(counter, self.remove(content, None, version))
        return counter

    # --- the removal counter and its floor --------------------------------------------------

    def check_floor(self) -> bool:
        """If the server's removal counter is below the floor, purge the namespace and lift the counter.
        True when it purged. Concurrent checks purge at most once per lost state."""
        with self._purge_lock:
            self.floor_unchecked = False  # first: a failure meanwhile sets it again (the cache does on any error)
            floor = self.floor
            current = _int(self._call("floor check", self._admin.get, self.counter_key))
            purged = False
            if current < floor:
                self._call("purge", self._delete_namespace, self._admin)
                self._call("purge", self._admin.incrby, self.counter_key, floor - current)  # concurrent INCRs only add
                purged = True
            return purged

    def _delete_namespace(self, client: redis.Redis | None = None) -> None:
        client = client or self._client
        batch: list[bytes] = []
        for name in client.scan_iter(match=self._match, count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)

    # --- scans ----------------------------------------------------------------------------

    def _scan(self) -> Iterator[tuple[bytes, str]]:
        for name in self._client.scan_iter(match=self._match, count=1000):
            yield name, name.decode()[len(self.prefix) :]

    def keys(self) -> Iterator[CacheKey]:
        def collect() -> list[CacheKey]:
            found: list[CacheKey] = []
            for name, content in self._scan():
                fields = [f.decode() for f in self._client.hkeys(name)]  # type: ignore[union-attr]
                found.extend(CacheKey(content, f) for f in fields if ":" not in f)
            return found

        return iter(self._call("scan", collect))

    def purge(self, is_dead: IsDead) -> int:
        def sweep() -> int:
            removed = 0
            for name, content in self._scan():
                fields = {k.decode(): x for k, x in self._client.hgetall(name).items()}  # type: ignore[union-attr]
                for variant, blob in fields.items():
                    if ":" not in variant and is_dead(
                        CacheKey(content, variant), blob if isinstance(blob, bytes) else b""
                    ):
                        removed += min(1, self._client.hdel(name, variant, "v:" + variant))
            return removed

        return self._call("purge", sweep)

    def usage(self) -> dict[str, object]:
        info: dict[str, object] = {"lua": self.lua, "floor": self.floor}
        try:
            info["used_memory"] = self._client.info("memory").get("used_memory")
        except redis.RedisError as exc:
            info["error"] = str(exc)
        return info

    def close(self) -> None:
        self._client.close()
        self._pool.disconnect()
        self._admin.close()
        self._admin.connection_pool.disconnect()


_SCRIPTS = {"put": _PUT, "remove": _REMOVE, "clear": _CLEAR}
