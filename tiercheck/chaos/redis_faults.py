"""Redis faults on a real valkey-server process (integration.servers) and through the chaos proxies.

Server faults (kill, pause, restart empty, restart from a snapshot: taken at arm, mid-operation, or just
before the last removal) hit every instance; proxy faults
hit the instances whose proxies they are given: all of them ("redis partition"), or one ("redis
partition (one instance)", "redis late write", "redis tracking connection cut").
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import time
from collections.abc import Callable
from typing import Any

import psutil
import redis as redis_client

from tiercheck.integration import servers

from .nemesis import Nemesis, ServerKill, World, register
from .proxy import Command, Hold, ProxyStats, TcpProxy, _Countdown

STATE_DEADLINE = 10.0  # failsafe for a process state change to show in the process table


def _within(seconds: float, check: Callable[[], bool]) -> bool:
    """Poll `check` until true or the deadline (a readiness poll: the state change is asynchronous)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def process_stopped(handle: servers.ServerHandle) -> bool:
    """True while the server process is SIGSTOPped (read from the process table)."""
    pid = handle.pid
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() == psutil.STATUS_STOPPED
    except psutil.NoSuchProcess:
        return False


def refuses_connections(url: str) -> bool:
    """Nothing accepts a TCP connection at the URL's port now."""
    host_port = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, port = host_port.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


def dbsize(url: str) -> int | None:
    client = redis_client.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return int(client.dbsize())
    except redis_client.RedisError:
        return None
    finally:
        client.close()


class RedisKill(ServerKill):
    """SIGKILL the server; heal restarts it on the same port from whatever RDB it last saved
    (possibly one taken before later invalidations: the old-data case comes for free)."""

    kind = "redis SIGKILL"
    tier = "redis"
    destroys_data = True
    stale_data = True  # comes back from the last RDB saved, which may predate invalidations


class RedisPause(Nemesis):
    """SIGSTOP: connections stay open, nothing answers, client timeouts must fire. Heal: SIGCONT."""

    kind = "redis SIGSTOP"
    tier = "redis"

    def __init__(self, handle: servers.ServerHandle) -> None:
        self.handle = handle
        self.paused = False

    def _inject(self) -> None:
        self.handle.pause()
        self.paused = True
        if _within(STATE_DEADLINE, self.is_stopped):  # a signal is delivered asynchronously
            self.effect(f"pid {self.handle.pid} stopped (process state T)")

    def heal(self) -> None:
        if self.paused:
            self.handle.resume()
            self.paused = False

    def is_stopped(self) -> bool:
        return process_stopped(self.handle)

    def still_holding(self) -> bool:
        return not self.paused or self.is_stopped()


class RedisRestartEmpty(Nemesis):
    """The server goes away and comes back with no data (new run_id)."""

    kind = "redis restart empty"
    tier = "redis"
    destroys_data = True

    def __init__(self, handle: servers.ServerHandle) -> None:
        self.handle = handle
        self.down = False

    def _inject(self) -> None:
        self.handle.stop()
        self.down = True
        if refuses_connections(self.handle.url):
            self.effect("server stopped: connections refused")

    def heal(self) -> None:
        if self.down:
            self.handle.restart(empty=True)
            self.down = False
            self.effect(f"back with {dbsize(self.handle.url)} keys")


class RedisOldSnapshot(Nemesis):
    """`arm()` takes an RDB snapshot; `inject` stops the server; `heal` brings it back from that
    snapshot — with entries that invalidations made since the snapshot had removed (E1)."""

    kind = "redis restart from old RDB"
    tier = "redis"
    destroys_data = True
    stale_data = True

    def __init__(self, handle: servers.ServerHandle) -> None:
        self.handle = handle
        self.snapshot: Any = None  # an RDB file (Path), or what `_save` returns
        self.down = False

    def _take_snapshot(self) -> None:
        old = self.snapshot
        self.snapshot = self._save()
        if old is not None:
            self._discard(old)

    # how a snapshot is kept: an RDB file of the real server (the in-process server overrides these)
    def _save(self) -> Any:
        return servers.snapshot_redis(self.handle)

    def _discard(self, snapshot: Any) -> None:
        with contextlib.suppress(OSError):
            os.unlink(snapshot)

    def _restore(self, snapshot: Any) -> None:
        servers.restore_redis(self.handle, snapshot)

    def arm(self) -> None:
        self._take_snapshot()

    def _inject(self) -> None:
        if self.snapshot is None:
            self.arm()
        self.handle.stop()
        self.down = True
        if refuses_connections(self.handle.url):
            self.effect(f"server stopped; snapshot {getattr(self.snapshot, 'name', 'in memory')} kept")

    def heal(self) -> None:
        if self.down:
            assert self.snapshot is not None
            self._restore(self.snapshot)
            self.down = False
            self.effect(f"restarted from the snapshot ({dbsize(self.handle.url)} keys)")


class RedisSnapshotMidOperation(RedisOldSnapshot):
    """A snapshot taken between two commands of one operation: `arm()` asks the proxy of one instance
    to SAVE just before the n-th command from then on (n drawn from 1..`within`), after the commands
    before it were answered; `inject` stops the server, `heal` restarts it from that snapshot. So Redis
    comes back exactly as it was half-way through an invalidate, a put or a promotion. When fewer than
    n commands were sent before `inject`, no snapshot exists and the fault does not take effect."""

    kind = "redis restored from snapshot mid-operation"

    def __init__(self, handle: servers.ServerHandle, proxy: TcpProxy, rng: random.Random, within: int = 12) -> None:
        super().__init__(handle)
        self.proxy, self.rng, self.within = proxy, rng, within
        self.countdown: _Countdown | None = None
        self.at = 0
        self.skipped = ""

    def evidence(self) -> str:
        return super().evidence() if self.effects or not self.skipped else self.skipped

    def ready(self) -> bool:
        return self.countdown is None or self.countdown.done.is_set()

    def arm(self) -> None:
        old, self.snapshot = self.snapshot, None
        if old is not None:
            self._discard(old)
        self.at = self.rng.randint(1, self.within)
        self.countdown = self.proxy.before_command(self.at, self._take_snapshot)

    def _inject(self) -> None:
        self.skipped = ""
        self.proxy.cancel_countdown()
        countdown = self.countdown
        if countdown is None or not countdown.done.is_set() or self.snapshot is None:
            error = f": {countdown.error}" if countdown is not None and countdown.error else ""
            self.skipped = f"no snapshot: fewer than {self.at} commands after arm{error}"
            return
        self.handle.stop()
        self.down = True
        if refuses_connections(self.handle.url):
            self.effect(f"snapshot taken before command #{self.at} ({countdown.before}); server stopped")


REMOVALS = frozenset(b"DEL UNLINK HDEL GETDEL SREM ZREM LREM XDEL FLUSHDB FLUSHALL EVAL EVALSHA FCALL".split())
"""Commands that may remove data (a script or a transaction may too): where the removal-lost fault snapshots."""


class RedisSnapshotBeforeRemoval(RedisOldSnapshot):
    """Redis restored from a snapshot taken just before one of the last removals: from `arm()` on, every
    proxy snapshots the server before each command that may remove data (`REMOVALS`; the commands before
    it answered), keeping the last `keep` (default 1: a removal lost a little later, e.g. another
    invalidate, moves the counter past it, and the journals' floor alone then shows the loss); `inject`
    stops the server; `heal` brings it back from the snapshot before the k-th last of them (k drawn
    from 1..`keep`). So Redis comes back as it was just
    before a removal, whatever came before it in the same operation (a counter moved, a journal
    written) kept: what a crash losing its last second of AOF, or a SAVE at that instant, leaves.
    When no such command was sent after `arm`, the fault does not take effect."""

    kind = "redis restored from snapshot before a removal"

    def __init__(self, handle: Any, proxies: list[TcpProxy], rng: random.Random, keep: int = 1) -> None:
        super().__init__(handle)
        self.proxies, self.rng, self.keep = proxies, rng, keep
        self.taken: list[tuple[str, Any]] = []  # (the removal it preceded, the snapshot), oldest first
        self.armed: dict[int, _Countdown] = {}
        self.recording = False

    def arm(self) -> None:
        self.taken.clear()
        self.recording = True
        for i, proxy in enumerate(self.proxies):
            self._watch(i, proxy)

    def _watch(self, i: int, proxy: TcpProxy) -> None:
        def before_next() -> None:
            fired = self.armed.get(i)
            if not self.recording:
                return
            self.armed[i] = proxy.before_command(1, before_next)  # every command, as long as it records
            command = fired.before if fired is not None else None
            if command is not None and command.name in REMOVALS:
                self.taken.append((str(command), self._save()))
                for _, old in self.taken[: -self.keep]:
                    self._discard(old)
                del self.taken[: -self.keep]

        self.armed[i] = proxy.before_command(1, before_next)

    def _stop_watching(self) -> None:
        self.recording = False
        for proxy in self.proxies:
            proxy.cancel_countdown()
        self.armed.clear()

    def ready(self) -> bool:
        return bool(self.taken)

    def _inject(self) -> None:
        self._stop_watching()
        if not self.taken:
            return
        k = self.rng.randint(1, len(self.taken))
        before, self.snapshot = self.taken[-k]
        self.handle.stop()
        self.down = True
        if refuses_connections(self.handle.url):
            self.effect(f"snapshot before removal {k} from the end ({before}); server stopped")

    def close(self) -> None:
        self._stop_watching()
        super().close()


class _ProxyFault(Nemesis):
    """A toxic on some instances' proxies; effective only when traffic was really affected (counters)."""

    tier = "redis"

    def __init__(self, proxy: TcpProxy | list[TcpProxy]) -> None:
        self.proxies = list(proxy) if isinstance(proxy, list | tuple) else [proxy]
        self._before: list[ProxyStats] = []

    @property
    def proxy(self) -> TcpProxy:
        return self.proxies[0]

    def _mark(self) -> None:
        self._before = [ProxyStats(**vars(p.stats)) for p in self.proxies]

    def _delta(self, counter: str) -> int:
        pairs = zip(self.proxies, self._before, strict=True)
        return sum(getattr(p.stats, counter) - getattr(b, counter) for p, b in pairs)

    def _observe(self, counters: tuple[str, ...], what: str) -> None:
        if not self._before:
            return
        seen = {c: self._delta(c) for c in counters}
        if any(seen.values()):
            self.effects[:] = [e for e in self.effects if not e.startswith(what)]
            self.effect(f"{what}: " + ", ".join(f"{c} {n}" for c, n in seen.items()))

    def took_effect(self) -> bool:
        self._record()
        return super().took_effect()

    def _record(self) -> None:
        """Turn the counters into effects (called on heal and when asked)."""


class ProxyReset(_ProxyFault):
    """Every reply is cut mid-way and the connection reset (TCP RST), until healed."""

    kind = "redis reset mid-reply"

    def _inject(self) -> None:
        self._mark()
        for p in self.proxies:
            p.reset_mid_reply(True)

    def heal(self) -> None:
        for p in self.proxies:
            p.reset_mid_reply(False)
        self._record()

    def _record(self) -> None:
        self._observe(("resets",), "replies cut")


class ProxyPartition(_ProxyFault):
    """The network between cache and Redis drops everything: Redis never sees what was sent meanwhile.
    Effective once a connection was reset or refused, or bytes were dropped."""

    kind = "redis partition"

    def _inject(self) -> None:
        self._mark()
        for p in self.proxies:
            p.partition(True)
        self._record()

    def heal(self) -> None:
        self._record()
        for p in self.proxies:
            p.partition(False)

    def _record(self) -> None:
        self._observe(("resets", "refused", "dropped"), "cut off")


class ProxyPartitionOne(ProxyPartition):
    """One instance's proxy is partitioned; every other instance still reaches the server."""

    kind = "redis partition (one instance)"
    scope = "one"

    def __init__(self, proxy: TcpProxy, instance: int = 0) -> None:
        super().__init__(proxy)
        self.instance = instance


class ProxyLatency(_ProxyFault):
    """Every chunk delayed by `seconds` in both directions (above a client timeout: timeouts fire)."""

    def __init__(self, proxy: TcpProxy | list[TcpProxy], seconds: float) -> None:
        super().__init__(proxy)
        self.seconds = seconds
        self.kind = f"redis latency {int(seconds * 1000)}ms"

    def _inject(self) -> None:
        self._mark()
        for p in self.proxies:
            p.latency(self.seconds)

    def heal(self) -> None:
        # Replies still held in the proxy arrive late, on connections the client may have reused:
        # a client that reads them as the answer to a later command would serve wrong data.
        for p in self.proxies:
            p.latency(0.0)
        self._record()

    def _record(self) -> None:
        self._observe(("delayed",), "chunks delayed")


class RedisLateWrite(Nemesis):
    """An indeterminate write: the proxy of one instance holds back its `nth` write command from the
    injection on (a put's, a promotion's, an invalidation's; a MULTI block waits with it), the client
    times out on it while later commands pass, and `heal` releases it, so it lands after them.
    Effective once a command was held (and not dropped by a reset); `evidence()` names it and how many
    later commands passed it."""

    kind = "redis late write"
    tier = "redis"
    scope = "one"

    def __init__(
        self, proxy: TcpProxy, instance: int = 0, nth: int = 1, match: Callable[[Command], bool] | None = None
    ) -> None:
        self.proxy, self.instance, self.nth = proxy, instance, nth
        self.match = match or (lambda command: command.is_write)
        self.hold: Hold | None = None  # of the current injection, until healed
        self.last: Hold | None = None  # of the last injection

    def _inject(self) -> None:
        seen = [0]

        def nth_match(command: Command) -> bool:
            if not self.match(command):
                return False
            seen[0] += 1
            return seen[0] >= self.nth

        self.hold = self.last = self.proxy.hold_next(nth_match)

    def heal(self) -> None:
        hold, self.hold = self.hold, None
        if hold is None:
            return
        self.proxy.release()
        if hold.held:
            self.effect(hold.describe())

    def took_effect(self) -> bool:
        hold = self.last
        return hold is not None and hold.held and not hold.dropped


class RedisChannelCut(Nemesis):
    """The tracking or announcement connection cut: only the long-lived connections of one instance
    (those that subscribed, turned client tracking on or block on a read) are reset; its command
    connections stay up. An implementation without such connections: no effect."""

    kind = "redis tracking connection cut"
    tier = "redis"
    scope = "one"
    instant = True

    def __init__(self, proxy: TcpProxy, instance: int = 0) -> None:
        self.proxy, self.instance = proxy, instance

    def _inject(self) -> None:
        cut = self.proxy.cut_long_lived()
        if cut:
            self.effect(f"{cut} long-lived connection(s) reset, {self.proxy.open_connections} left open")


# --- the registry ---------------------------------------------------------------------------------


def _real(world: World) -> bool:
    """Server faults: a real server this run may signal, stop and restart."""
    return world.controls_redis


def _proxied(world: World) -> bool:
    """Proxy faults: every instance reaches Redis (real or in-process) through its own proxy."""
    return world.has_proxies


@register("redis SIGKILL")
def _kill(world: World) -> Nemesis | None:
    return RedisKill(world.redis) if _real(world) else None


@register("redis SIGSTOP")
def _pause(world: World) -> Nemesis | None:
    return RedisPause(world.redis) if _real(world) else None


@register("redis restart empty")
def _restart_empty(world: World) -> Nemesis | None:
    if _real(world):
        return RedisRestartEmpty(world.redis)
    if world.fake_redis is not None and world.uses_redis:
        from tiercheck.properties.faults import RedisOutage

        return RedisOutage(world.fake_redis, empty_on_heal=True)
    return None


@register("redis restart from old RDB")
def _old_rdb(world: World) -> Nemesis | None:
    return RedisOldSnapshot(world.redis) if _real(world) else None


@register("redis restored from snapshot mid-operation")
def _mid_operation(world: World) -> Nemesis | None:
    if not _real(world):
        return None
    i = world.pick_instance()
    return RedisSnapshotMidOperation(world.redis, world.proxies[i], world.rng)


@register("redis restored from snapshot before a removal")
def _before_removal(world: World) -> Nemesis | None:
    # A real server only: fakeredis has no INFO, so a restored in-process server would hide the new run_id
    # every real restart shows (an implementation may rely on it). One thread per instance: a SAVE per
    # removal in the campaign's threaded worlds is not measured yet.
    if _real(world) and world.threads == 1:
        return RedisSnapshotBeforeRemoval(world.redis, list(world.proxies), world.rng)
    return None


@register("redis reset mid-reply")
def _reset(world: World) -> Nemesis | None:
    return ProxyReset(list(world.proxies)) if _proxied(world) else None


@register("redis partition")
def _partition(world: World) -> Nemesis | None:
    return ProxyPartition(list(world.proxies)) if _proxied(world) else None


@register("redis partition (one instance)")
def _partition_one(world: World) -> Nemesis | None:
    if not _proxied(world) or world.instances < 2:
        return None  # with one instance, that is "redis partition"
    i = world.pick_instance()
    return ProxyPartitionOne(world.proxies[i], i)


@register("redis latency 2000ms")
def _latency_high(world: World) -> Nemesis | None:
    return ProxyLatency(list(world.proxies), 2.0) if _proxied(world) else None  # far above a sane client timeout


@register("redis latency 10ms")
def _latency_low(world: World) -> Nemesis | None:
    return ProxyLatency(list(world.proxies), 0.01) if _proxied(world) else None  # below it: all must still work


@register("redis late write")
def _late_write(world: World) -> Nemesis | None:
    if not _proxied(world):
        return None
    i = world.pick_instance()
    return RedisLateWrite(world.proxies[i], i, nth=world.rng.randint(1, 3))


@register("redis tracking connection cut")
def _channel_cut(world: World) -> Nemesis | None:
    if not _proxied(world):
        return None
    i = world.pick_instance()
    return RedisChannelCut(world.proxies[i], i)
