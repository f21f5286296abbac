"""Redis faults on a real valkey-server process (integration.servers) and through the chaos proxy."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psutil

from integration import servers

from .nemesis import Nemesis, ServerKill
from .proxy import TcpProxy


def process_stopped(handle: servers.ServerHandle) -> bool:
    """True while the server process is SIGSTOPped (read from the process table)."""
    pid = handle.pid
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() == psutil.STATUS_STOPPED
    except psutil.NoSuchProcess:
        return False


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

    def inject(self) -> None:
        self.handle.pause()
        self.paused = True

    def heal(self) -> None:
        if self.paused:
            self.handle.resume()
            self.paused = False

    def is_stopped(self) -> bool:
        return process_stopped(self.handle)


class RedisRestartEmpty(Nemesis):
    """The server goes away and comes back with no data (new run_id)."""

    kind = "redis restart empty"
    tier = "redis"
    destroys_data = True

    def __init__(self, handle: servers.ServerHandle) -> None:
        self.handle = handle
        self.down = False

    def inject(self) -> None:
        self.handle.stop()
        self.down = True

    def heal(self) -> None:
        if self.down:
            self.handle.restart(empty=True)
            self.down = False


class RedisOldSnapshot(Nemesis):
    """`arm()` takes an RDB snapshot; `inject` stops the server; `heal` brings it back from that
    snapshot — with entries that invalidations made since the snapshot had removed (E1)."""

    kind = "redis restart from old RDB"
    tier = "redis"
    destroys_data = True
    stale_data = True

    def __init__(self, handle: servers.ServerHandle) -> None:
        self.handle = handle
        self.snapshot: Path | None = None
        self.down = False

    def arm(self) -> None:
        old = self.snapshot
        self.snapshot = servers.snapshot_redis(self.handle)
        if old is not None:
            with contextlib.suppress(OSError):
                os.unlink(old)

    def inject(self) -> None:
        if self.snapshot is None:
            self.arm()
        self.handle.stop()
        self.down = True

    def heal(self) -> None:
        if self.down:
            assert self.snapshot is not None
            servers.restore_redis(self.handle, self.snapshot)
            self.down = False


class ProxyReset(Nemesis):
    """Every reply is cut mid-way and the connection reset (TCP RST), until healed."""

    kind = "redis reset mid-reply"
    tier = "redis"

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy

    def inject(self) -> None:
        self.proxy.reset_mid_reply(True)

    def heal(self) -> None:
        self.proxy.reset_mid_reply(False)


class ProxyPartition(Nemesis):
    """The network between cache and Redis drops everything: Redis never sees what was sent meanwhile."""

    kind = "redis partition"
    tier = "redis"

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy

    def inject(self) -> None:
        self.proxy.partition(True)

    def heal(self) -> None:
        self.proxy.partition(False)


class ProxyLatency(Nemesis):
    """Every chunk delayed by `seconds` in both directions (above a client timeout: timeouts fire)."""

    tier = "redis"

    def __init__(self, proxy: TcpProxy, seconds: float) -> None:
        self.proxy = proxy
        self.seconds = seconds
        self.kind = f"redis latency {int(seconds * 1000)}ms"

    def inject(self) -> None:
        self.proxy.latency(self.seconds)

    def heal(self) -> None:
        # Replies still held in the proxy arrive late, on connections the client may have reused:
        # a client that reads them as the answer to a later command would serve wrong data.
        self.proxy.latency(0.0)
