"""Worlds and their faults — ADAPTERS until chaos.nemesis (World, Sandbox.world(instances=N), scope,
took_effect, REGISTRY/applicable(world)) and chaos.proxy (hold-one-write and snapshot toxics) land:
then this module goes, and chaos.runner takes the registry's nemeses and the sandbox's worlds.

A world: N live instances sharing cache_dir, the database, the namespace and the clock, each reaching
the shared Redis through its own proxy (so a fault can hit one instance or all). The faults the
harness did not make before: Redis writes held back so they land late (indeterminate writes), Redis
restored from a snapshot taken between two commands of one operation, a partition of one instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiercheck.contract import Env
from tiercheck.integration import servers

from .db_faults import PgKill, PgTerminateBackends, SqliteCorruptPages, SqliteDeleted, SqliteLock
from .disk_faults import CorruptEntries, DirRemoved, DiskFull, DiskIOError, DiskReadOnly
from .history import Fault
from .nemesis import Nemesis
from .proxy import TcpProxy
from .redis_faults import (
    ProxyLatency,
    ProxyPartition,
    ProxyReset,
    RedisKill,
    RedisOldSnapshot,
    RedisPause,
    RedisRestartEmpty,
)
from .sandbox import Sandbox

FAILSAFE_SECONDS = 180.0  # only a failsafe: waiting for held writes to land

# --- worlds --------------------------------------------------------------------------------------
# ADAPTER (remove when chaos.nemesis.World / Sandbox.world(instances=N) land): a world of N instances
# over one sandbox, each with its own proxy to the shared Redis, with the late-write and mid-operation
# snapshot toxics the proxy does not have yet.

_COMMAND = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")
REDIS_WRITES = frozenset(
    b"SET SETEX PSETEX SETNX MSET GETSET GETDEL APPEND HSET HMSET HSETNX HDEL HINCRBY DEL UNLINK EXPIRE PEXPIRE "
    b"EXPIREAT PEXPIREAT PERSIST INCR INCRBY DECR DECRBY EVAL EVALSHA FCALL ZADD ZREM SADD SREM LPUSH RPUSH LREM "
    b"LTRIM XADD PUBLISH SPUBLISH RENAME COPY RESTORE EXEC".split()
)


def write_commands(chunk: bytes) -> int:
    return sum(1 for name in _COMMAND.findall(chunk) if name.upper() in REDIS_WRITES)


class LateProxy(TcpProxy):
    """The chaos proxy plus two toxics on client->server traffic: `hold_writes(p, seconds)` holds a
    chunk carrying a Redis write (with probability p) so that it reaches the server after later
    commands of other connections — the client may time out meanwhile: an indeterminate write that
    lands late; `snapshot_after(n, take)` calls `take()` (an RDB snapshot) just before the n-th write
    from now reaches the server: a snapshot between two commands of one operation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hold_p, self.hold_seconds, self.rng = 0.0, 1.0, random.Random(0)
        self.held = 0
        self.snapshots = 0
        self._in_flight = 0
        self._landed = threading.Condition()
        self._snapshot_in: int | None = None
        self._take: Callable[[], None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="chaos-snapshot")

    def hold_writes(self, probability: float, seconds: float = 1.0, rng: random.Random | None = None) -> None:
        self.hold_p, self.hold_seconds = probability, seconds
        if rng is not None:
            self.rng = rng

    def snapshot_after(self, writes: int, take: Callable[[], None] | None) -> None:
        self._snapshot_in, self._take = (writes, take) if take is not None else (None, None)

    def wait_landed(self, timeout: float = FAILSAFE_SECONDS) -> bool:
        with self._landed:
            return self._landed.wait_for(lambda: self._in_flight == 0, timeout)

    def stop(self) -> None:
        super().stop()
        self._executor.shutdown(wait=True)

    async def _pump(self, reader, writer, pair, downstream: bool) -> None:  # type: ignore[override]
        toxic = None if downstream else _Toxic(self, reader)
        try:
            await super()._pump(toxic or reader, writer, pair, downstream)
        finally:
            if toxic is not None:
                toxic.release()

    def _release(self) -> None:
        with self._landed:
            self._in_flight -= 1
            self._landed.notify_all()

    async def _on_chunk(self, data: bytes) -> bool:
        """Apply the toxics to one client->server chunk; True when it was held (and is now in flight)."""
        writes = write_commands(data)
        if not writes:
            return False
        if self._snapshot_in is not None:
            self._snapshot_in -= writes
            if self._snapshot_in <= 0 and self._take is not None:
                take, self._snapshot_in, self._take = self._take, None, None
                await asyncio.get_running_loop().run_in_executor(self._executor, take)
                self.snapshots += 1
        if self.hold_p and self.rng.random() < self.hold_p:
            self.held += 1
            with self._landed:
                self._in_flight += 1
            await asyncio.sleep(self.hold_seconds)  # the toxic itself: this write arrives late
            return True  # in flight until the pump asks for the next chunk (it has forwarded this one)
        return False


class _Toxic:
    """A reader that applies the proxy's client->server toxics to each chunk before it is forwarded."""

    def __init__(self, proxy: LateProxy, reader: asyncio.StreamReader) -> None:
        self.proxy, self.reader = proxy, reader
        self.holding = False

    def release(self) -> None:
        if self.holding:
            self.holding = False
            self.proxy._release()

    async def read(self, n: int) -> bytes:
        self.release()  # the pump forwarded (and drained) the previous chunk before asking for this one
        data = await self.reader.read(n)
        if data:
            self.holding = await self.proxy._on_chunk(data)
        return data


@dataclass
class World:
    """Live instances over shared backends (the names follow chaos.nemesis.World)."""

    name: str
    envs: list[Env]
    proxies: list[TcpProxy]
    redis: servers.ServerHandle | None
    postgres: servers.ServerHandle | None
    tmpfs: Any
    sqlite_path: str | None
    cache_dir: str
    namespace: str
    threads: int = 1
    owned: list[LateProxy] = field(default_factory=list)  # proxies this world started (stopped by close)

    @classmethod
    def single(cls, sandbox: Sandbox, env: Env) -> World:
        """One instance on the Env the caller built (through the sandbox's own proxy)."""
        db = env.database_url
        return cls(
            "1 instance",
            [env],
            [sandbox.proxy] if sandbox.proxy and env.redis_url else [],
            sandbox.redis,
            sandbox.postgres,
            sandbox.tmpfs,
            db.removeprefix("sqlite://") if db and db.startswith("sqlite:///") else None,
            env.cache_dir,
            env.namespace,
        )

    def close(self) -> None:
        for proxy in self.owned:
            proxy.stop()
        self.owned.clear()


def make_world(
    sandbox: Sandbox,
    instances: int = 1,
    threads: int = 1,
    database: str | None = "sqlite",
    redis: bool = True,
    **env_fields: Any,
) -> World:
    """`instances` Envs sharing cache_dir, the database, the namespace and the clock; each reaches the
    sandbox's Redis through its own LateProxy."""
    base = sandbox.new_env(database=database or "none", redis=redis, **env_fields)
    proxies: list[LateProxy] = []
    envs = []
    for _ in range(instances):
        url = None
        if redis and sandbox.redis is not None:
            port = int(sandbox.redis.url.rsplit(":", 1)[1].split("/")[0])
            proxy = LateProxy("127.0.0.1", port).start()
            proxies.append(proxy)
            url = proxy.url()
        envs.append(dataclasses.replace(base, redis_url=url))
    db = base.database_url
    name = f"{instances} instance{'s' if instances > 1 else ''}" + (f" x {threads} threads" if threads > 1 else "")
    return World(
        name,
        envs,
        list(proxies),
        sandbox.redis if redis else None,
        sandbox.postgres,
        sandbox.tmpfs,
        db.removeprefix("sqlite://") if db and db.startswith("sqlite:///") else None,
        base.cache_dir,
        base.namespace,
        threads,
        owned=proxies,
    )


# --- nemeses -------------------------------------------------------------------------------------
# ADAPTER (remove when chaos.nemesis has scope/took_effect and REGISTRY/applicable(world)).


class Scoped(Nemesis):
    """A nemesis with the coming protocol's `scope`, `instance` and `took_effect()`."""

    def __init__(self, inner: Any, scope: str = "all", instance: int | None = None, kind: str | None = None) -> None:
        self.inner, self.scope, self.instance = inner, scope, instance
        self.kind = kind or inner.kind
        self.tier = inner.tier
        self.real = getattr(inner, "real", True)
        self.instant = getattr(inner, "instant", False)
        self.destroys_data = getattr(inner, "destroys_data", False)
        self.stale_data = getattr(inner, "stale_data", False)
        self.arms = type(inner).arm is not Nemesis.arm

    def arm(self) -> None:
        self.inner.arm()

    def inject(self) -> None:
        self.inner.inject()

    def heal(self) -> None:
        self.inner.heal()

    def still_damaged(self) -> bool:
        return self.inner.still_damaged()

    def took_effect(self) -> bool:
        probe = getattr(self.inner, "took_effect", None)
        return bool(probe()) if probe is not None else True

    def is_stopped(self) -> bool:
        return getattr(self.inner, "is_stopped", lambda: True)()

    def still_corrupt(self) -> list[str]:
        return self.inner.still_corrupt()

    def describe(self) -> str:
        return self.inner.describe() + ("" if self.scope == "all" else f" on instance {self.instance}")

    @property
    def fault(self) -> Fault:
        return Fault(self.kind, self.tier, self.scope, self.instance, self.destroys_data)


class OnEach(Nemesis):
    """The same proxy fault on several proxies at once."""

    def __init__(self, parts: list[Nemesis]) -> None:
        self.parts = parts
        self.kind, self.tier = parts[0].kind, parts[0].tier

    def inject(self) -> None:
        for p in self.parts:
            p.inject()

    def heal(self) -> None:
        for p in self.parts:
            p.heal()


class LateWrite(Nemesis):
    """Redis writes held back in the proxy (probability 0.3 each, 1 s) so they land after later commands;
    took effect when at least one write was held. Heal stops holding and waits until the held ones landed."""

    kind = "redis late write"
    tier = "redis"

    def __init__(self, proxies: list[LateProxy], rng: random.Random) -> None:
        self.proxies, self.rng, self.start = proxies, rng, 0

    def inject(self) -> None:
        self.start = sum(p.held for p in self.proxies)
        for p in self.proxies:
            p.hold_writes(0.3, 1.0, random.Random(self.rng.randrange(2**32)))

    def heal(self) -> None:
        for p in self.proxies:
            p.hold_writes(0.0)
        for p in self.proxies:
            p.wait_landed()

    def held(self) -> int:
        return sum(p.held for p in self.proxies) - self.start

    def took_effect(self) -> bool:
        return self.held() > 0


class SnapshotMidOperation(Nemesis):
    """`arm()`: an RDB snapshot is taken just before the n-th Redis write from now (n random in 1..12),
    i.e. between two commands of whatever operation is running; `inject` stops the server (taking the
    snapshot now if no write came); `heal` restores it from that snapshot."""

    kind = "redis restored from snapshot mid-operation"
    tier = "redis"
    destroys_data = True
    stale_data = True

    def __init__(self, handle: servers.ServerHandle, proxies: list[LateProxy], rng: random.Random) -> None:
        self.handle, self.proxies, self.rng = handle, proxies, rng
        self.snapshot: Path | None = None
        self.mid_op = False
        self.down = False

    def _take(self) -> None:
        if self.snapshot is None:
            self.snapshot = servers.snapshot_redis(self.handle)

    def arm(self) -> None:
        self.snapshot, self.mid_op = None, False
        n = self.rng.randrange(1, 13)
        target = self.rng.choice(self.proxies)

        def take() -> None:
            self._take()
            self.mid_op = True

        target.snapshot_after(n, take)

    def inject(self) -> None:
        for p in self.proxies:
            p.snapshot_after(0, None)
        self._take()
        self.handle.stop()
        self.down = True

    def heal(self) -> None:
        if self.down:
            assert self.snapshot is not None
            servers.restore_redis(self.handle, self.snapshot)
            with contextlib.suppress(OSError):
                os.unlink(self.snapshot)
            self.down = False

    def took_effect(self) -> bool:
        return self.snapshot is not None


def build_nemeses(sandbox: Sandbox, world: World | Env, rng: random.Random) -> list[Scoped]:
    """Every fault that applies to this world's tiers, with its scope."""
    if isinstance(world, Env):
        world = World.single(sandbox, world)
    env = world.envs[0]
    found: list[Scoped] = []
    late = [p for p in world.proxies if isinstance(p, LateProxy)]
    if env.redis_url and world.redis is not None and world.proxies:
        h = world.redis
        found += [
            Scoped(RedisKill(h)),
            Scoped(RedisPause(h)),
            Scoped(RedisRestartEmpty(h)),
            Scoped(RedisOldSnapshot(h)),
        ]
        for make in (ProxyReset, ProxyPartition, lambda p: ProxyLatency(p, 2.0), lambda p: ProxyLatency(p, 0.01)):
            found.append(Scoped(OnEach([make(p) for p in world.proxies])))
        if late and len(late) == len(world.proxies):
            found += [Scoped(LateWrite(late, rng)), Scoped(SnapshotMidOperation(h, late, rng))]
        if len(world.proxies) > 1:
            for i, proxy in enumerate(world.proxies):
                found.append(Scoped(ProxyPartition(proxy), "one", i, kind="redis partition (one instance)"))
                if isinstance(proxy, LateProxy):
                    found.append(Scoped(LateWrite([proxy], rng), "one", i, kind="redis late write (one instance)"))
    tmpfs = world.tmpfs if world.tmpfs is not None and world.tmpfs.mounted else None
    found += [
        Scoped(DiskFull(world.cache_dir, tmpfs)),
        Scoped(DiskReadOnly(world.cache_dir, tmpfs)),
        Scoped(DiskIOError(world.cache_dir)),
        Scoped(DirRemoved(world.cache_dir)),
        Scoped(CorruptEntries(world.cache_dir, "truncate", rng)),
        Scoped(CorruptEntries(world.cache_dir, "bitflip", rng)),
        Scoped(CorruptEntries(world.cache_dir, "swap", rng)),
    ]
    if world.sqlite_path:
        path = world.sqlite_path
        found += [Scoped(SqliteLock(path)), Scoped(SqliteCorruptPages(path, rng)), Scoped(SqliteDeleted(path))]
    elif env.database_url and world.postgres is not None:
        found += [Scoped(PgTerminateBackends(world.postgres.url)), Scoped(PgKill(world.postgres))]
    return found


def as_scoped(nemesis: Any) -> Scoped:
    return nemesis if isinstance(nemesis, Scoped) else Scoped(nemesis)
