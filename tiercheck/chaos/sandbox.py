"""A sandbox for chaos runs: real servers, the proxy, a tmpfs for the disk tier, contract Envs.

Layout under `root`:
    disk/            a small tmpfs when mountable (else a plain directory)
    disk/cache-N/    the cache_dir of one Env, or of every instance of one World
    db-N.sqlite3     the SQLite database of one Env or World (outside cache_dir: disk faults leave it alone)
    files/           the source files whose content the keys are made of

`world(instances=...)` builds what faults act on for one round (`chaos.nemesis.World`): several
instances sharing Redis, the database and cache_dir, each reaching Redis through its own proxy
(instance 0 through the sandbox's main `proxy`, so code that waits on `sandbox.proxy` still works).

Everything started here is stopped in `close()` (also on error); `children_left()` lists any child
process still alive afterwards, which the tests require to be empty.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import tempfile
from pathlib import Path

import psutil

from tiercheck.backends import FakeClock, unique_namespace
from tiercheck.contract import Env
from tiercheck.integration import servers

from .disk_faults import Tmpfs
from .nemesis import World
from .proxy import TcpProxy


class Sandbox:
    def __init__(
        self,
        *,
        redis: bool = True,
        postgres: bool = False,
        tmpfs: bool = True,
        tmpfs_size: str = "1m",
        root: str | None = None,
    ) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="tiercheck-chaos-"))
        self.want_redis, self.want_postgres, self.want_tmpfs = redis, postgres, tmpfs
        self.tmpfs = Tmpfs(self.root / "disk", tmpfs_size)
        self.redis: servers.ServerHandle | None = None
        self.postgres: servers.ServerHandle | None = None
        self.proxy: TcpProxy | None = None
        self.pids: list[int] = []
        self._count = 0
        self._worlds: list[World] = []

    def start(self) -> Sandbox:
        try:
            (self.root / "files").mkdir(parents=True, exist_ok=True)
            if self.want_tmpfs:
                self.tmpfs.mount()
            else:
                (self.root / "disk").mkdir(exist_ok=True)
                self.tmpfs.reason = "tmpfs not requested"
            if self.want_redis:
                self.redis = servers.start_redis(str(self.root))
                if not self.redis.controllable:
                    raise servers.Unavailable("the Redis server from the environment cannot be killed by chaos runs")
                self.pids.append(self.redis.process.pid)  # type: ignore[union-attr]
                port = int(self.redis.url.rsplit(":", 1)[1].split("/")[0])
                self.proxy = TcpProxy("127.0.0.1", port).start()
            if self.want_postgres:
                self.postgres = servers.start_postgres()
                if not self.postgres.controllable:
                    raise servers.Unavailable("the PostgreSQL server from the environment cannot be killed")
                self.pids.append(self.postgres.process.pid)  # type: ignore[union-attr]
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def redis_url(self) -> str | None:
        return self.proxy.url() if self.proxy else None

    def new_env(self, *, database: str = "sqlite", redis: bool = True, clock: FakeClock | None = None, **fields) -> Env:
        """A fresh Env: new cache_dir on the tmpfs, new namespace, database "sqlite" | "postgres" | None."""
        self._count += 1
        cache_dir = self.root / "disk" / f"cache-{self._count}"
        if database == "sqlite":
            db_url: str | None = f"sqlite:///{self.root / f'db-{self._count}.sqlite3'}"
        elif database == "postgres":
            assert self.postgres is not None, "the sandbox was started without PostgreSQL"
            db_url = self.postgres.url
        else:
            db_url = None
        return Env(
            cache_dir=str(cache_dir),
            redis_url=self.redis_url if redis else None,
            database_url=db_url,
            namespace=unique_namespace("chaos"),
            clock=clock or FakeClock(),
            **fields,
        )

    def _redis_port(self) -> int:
        assert self.redis is not None
        return int(self.redis.url.rsplit(":", 1)[1].split("/")[0])

    def world(
        self,
        instances: int = 1,
        database: str | None = "sqlite",
        redis: bool = True,
        *,
        rng: random.Random | None = None,
        clock: FakeClock | None = None,
        **env_fields,
    ) -> World:
        """A fresh world of `instances` Envs sharing one cache_dir, namespace, database ("sqlite": a new
        file; "postgres": a new database on the sandbox's server; None) and clock; instance i reaches
        Redis through `world.proxies[i]`. Close it with `world.close()` (stops the proxies it started;
        the sandbox's close does it too)."""
        if instances < 1:
            raise ValueError("a world has at least one instance")
        self._count += 1
        cache_dir = self.root / "disk" / f"cache-{self._count}"
        sqlite_path = None
        if database == "sqlite":
            sqlite_path = str(self.root / f"db-{self._count}.sqlite3")
            db_url: str | None = f"sqlite:///{sqlite_path}"
        elif database == "postgres":
            assert self.postgres is not None, "the sandbox was started without PostgreSQL"
            db_url = servers.create_database(self.postgres, f"world_{self._count}")  # rows of this world only
        elif database is None:
            db_url = None
        else:
            raise ValueError(f"database must be 'sqlite', 'postgres' or None, not {database!r}")
        use_redis = redis and self.redis is not None and self.proxy is not None
        proxies: list[TcpProxy] = []
        owned: list[TcpProxy] = []
        if use_redis:
            assert self.proxy is not None
            self.proxy.heal()  # shared with earlier rounds: no toxic carries over
            proxies.append(self.proxy)
            for _ in range(instances - 1):
                extra = TcpProxy("127.0.0.1", self._redis_port()).start()
                proxies.append(extra)
                owned.append(extra)
        namespace = unique_namespace("chaos")
        clock = clock or FakeClock()
        envs = [
            Env(
                cache_dir=str(cache_dir),
                redis_url=proxies[i].url() if use_redis else None,
                database_url=db_url,
                namespace=namespace,
                clock=clock,
                **env_fields,
            )
            for i in range(instances)
        ]
        world = World(
            envs=envs,
            cache_dir=str(cache_dir),
            namespace=namespace,
            rng=rng or random.Random(self._count),
            redis=self.redis if use_redis else None,
            proxies=proxies,
            postgres=self.postgres if database == "postgres" else None,
            tmpfs=self.tmpfs if self.tmpfs.mounted else None,
            sqlite_path=sqlite_path,
            database_url=db_url,
            root=self.root,
            owned=owned,
        )
        self._worlds.append(world)
        return world

    def reset_disk(self) -> None:
        """Empty the tmpfs between rounds (1 MiB fills up over a long campaign)."""
        base = self.root / "disk"
        for child in base.iterdir() if base.exists() else ():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    child.unlink()

    def close(self) -> None:
        for world in self._worlds:
            world.close()
        self._worlds.clear()
        if self.proxy is not None:
            self.proxy.stop()
        for handle in (self.redis, self.postgres):
            if handle is not None:
                if handle.process is not None:
                    self.pids.append(handle.process.pid)  # the latest one, after any restarts
                handle.close()
        self.tmpfs.umount()
        shutil.rmtree(self.root, ignore_errors=True)

    def children_left(self) -> list[str]:
        """Processes this sandbox started that are still alive (zombies count as gone)."""
        alive = []
        for pid in self.pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc = psutil.Process(pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{pid} {proc.name()}")
        root = str(self.root)
        for child in psutil.Process(os.getpid()).children(recursive=True):  # anything else started under root
            with contextlib.suppress(psutil.NoSuchProcess):
                if child.status() != psutil.STATUS_ZOMBIE and any(root in arg for arg in child.cmdline()):
                    alive.append(f"{child.pid} {child.name()}")
        return sorted(set(alive))
