"""The nemesis protocol, the worlds faults act on, and the one registry of faults.

After Jepsen's nemesis: a fault is an object the harness arms, injects and heals on command, that
knows nothing of the implementation under test. It acts only on what the harness handed out: a
server process, the TCP proxy in front of each instance, the cache directory, the database file
or server. The same objects serve the campaign (`tiercheck.chaos.campaign`), both Hypothesis state machines
(`chaos.machine`, `properties/test_fault_properties.py`) and the short scenarios.

Protocol (`Nemesis`), class attributes:
- `kind`: the stable name of the fault for tables and reports ("redis SIGSTOP"); also its registry key.
- `tier`: the tier it hits ("redis", "disk", "database"): the other tiers are expected to stay healthy,
  and this one to come back after `heal`.
- `real`: True when the fault is the real thing (a signal, a full filesystem), False when it fell back
  to an injected OSError; `describe()` says which.
- `instant`: the fault happens at `inject` (corruption, a deleted file, a terminated backend, a cut
  connection); `heal` then only undoes what can be undone, and the tier is expected back right away.
- `destroys_data`: the tier may lose (or have replaced) its data: checks that a faulted tier keeps
  its data skip it.
- `scope`: "all" instances of the world are hit (the server, the shared directory), or "one": only
  instance number `instance` (its proxy); the others must go on unaffected.

Methods: `arm()` (while healthy, some operations before `inject`: snapshots), `inject()`, `heal()`
(idempotent), `close()` (heals, releases what it holds), `still_damaged()` (after heal: damage the
fault left that the implementation has not dealt with yet), `took_effect()` (did the fault really
happen: the server really down, bytes really changed, the held command really held; a fault that did
not is reported as "fault did not take effect", never counted), `describe()`.

Subclasses implement `_inject()` (the base `inject()` clears `effects` first) and record what really
happened with `self.effect("...")`: `took_effect()` is True once something was recorded, and
`evidence()` lists it. Faults whose effect depends on traffic (a latency toxic, a held command) only
record an effect when traffic was really affected.

Two optional hooks, with defaults that suit most faults: `ready()` (after `arm`: whether what it
prepared has happened, e.g. a snapshot due before a later command; a runner runs operations until it
is) and `still_holding()` (during the window: whether the fault still holds, e.g. a process still
stopped). The runner never asks a fault anything else and never tests its class.

The registry: `@register("kind")` on a builder `World -> Nemesis | None` (None: not applicable to this
world), or on a Nemesis class with a classmethod `for_world(world)`. `applicable(world)` builds every
fault that applies.

Adding a fault is one class plus one registry line, and nothing else: every user takes its faults
from here. The campaign (`chaos.campaign`: `applicable(world)` for each round's world from
`Sandbox.world`, and its table lists every registered kind), the chaos machine (`chaos.machine`:
every registered kind less its stated exclusions), the scenarios (`chaos.scenarios`: `build(kind)`),
the in-process fault machine (`properties/test_fault_properties.py`: `applicable(World.in_process(...))`)
and the two-instance machine (`properties/test_multi_instance.py`: `build(kind)` over its proxied
in-process world). A new module of faults adds its name to `BUILTIN_MODULES`; a fault in an existing
module needs only the class and `@register`. `tests/test_fault_mechanics.py` proves it with a fault
defined inside the test (`test_a_new_fault_is_one_class_and_one_registry_line`).

One fault cycle, as a runner drives it: `arm()` while healthy (only if the class overrides it),
some operations, `inject()`, the operations of the fault window, `heal()`, then: `took_effect()`
False -> report "fault did not take effect" and count nothing; `still_damaged()` True -> the tier
carries the harness's own damage and is not held to "healthy" yet; otherwise the tier must be used
again within the declared re-admission bound. `record()` is what a history keeps of the cycle.
`close()` at the end of a round.

A `World` is what faults may act on during one round: built by `chaos.sandbox.Sandbox.world()` on
real servers, or by hand over an in-process `FakeRedisServer` (`World.fake_redis`).
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tiercheck.backends import FakeRedisServer
    from tiercheck.contract import Env
    from tiercheck.integration.servers import ServerHandle

    from .disk_faults import Tmpfs
    from .proxy import TcpProxy


@runtime_checkable
class NemesisLike(Protocol):
    tier: str

    def inject(self) -> None: ...

    def heal(self) -> None: ...

    def describe(self) -> str: ...


class Nemesis:
    """Base class of every fault, in-process and real (see the module docstring)."""

    kind = "nemesis"
    tier = ""
    real = True
    instant = False
    destroys_data = False
    scope = "all"
    instance: int | None = None  # with scope "one": the index in World.envs of the instance hit
    stale_data = False  # the tier may come back with data older than removals made since (a snapshot)

    @property
    def name(self) -> str:
        """Old spelling of `kind` (tiercheck.properties.faults before the registry); kept for old callers."""
        return self.kind

    @name.setter
    def name(self, value: str) -> None:
        self.kind = value

    @property
    def effects(self) -> list[str]:
        """What the last injection really did, as observed (a process state, bytes read back, counters)."""
        return self.__dict__.setdefault("_effects", [])

    def effect(self, what: str) -> None:
        self.effects.append(what)

    def arm(self) -> None:
        """Called while everything is healthy, some operations before a later `inject` (snapshots)."""

    def inject(self) -> None:
        self.__dict__["_effects"] = []
        self._inject()

    def _inject(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement _inject")

    def heal(self) -> None:
        """Undo the fault; idempotent."""

    def close(self) -> None:
        """Release what the nemesis holds (heals first)."""
        self.heal()

    def ready(self) -> bool:
        """After `arm()`: whether what it prepared has happened yet (a snapshot due at a later command
        was taken). A runner may run operations until it is; `inject` copes either way."""
        return True

    def still_holding(self) -> bool:
        """During the fault window: whether the fault still holds (a stopped process still stopped), so a
        runner can tell operations that outlasted the fault from operations that ran through it."""
        return True

    def still_damaged(self) -> bool:
        """After heal: whether damage the fault left in the backend is still there, waiting for the
        implementation to find it. While it is, the tier may still lose its data to that damage, and
        checks that other faults leave its data alone skip it."""
        return False

    def took_effect(self) -> bool:
        """Whether the last injection really happened (ask after the fault window, before or after heal)."""
        return bool(self.effects)

    def evidence(self) -> str:
        return "; ".join(self.effects) if self.effects else "no effect observed"

    def record(self) -> dict[str, Any]:
        """What a history or a report keeps of this fault after a cycle (plain data, JSON-ready)."""
        return {
            "kind": self.kind,
            "tier": self.tier,
            "scope": self.scope,
            "instance": self.instance,
            "real": self.real,
            "instant": self.instant,
            "destroys_data": self.destroys_data,
            "took_effect": self.took_effect(),
            "evidence": self.evidence(),
        }

    def describe(self) -> str:
        where = f", instance {self.instance}" if self.scope == "one" and self.instance is not None else ""
        return f"{self.kind} ({'real' if self.real else 'injected OSError fallback'}{where})"


class Wrapped(Nemesis):
    """Adapt an object with `tier`, `inject`, `heal` (and maybe `name`, `took_effect`) to this protocol."""

    def __init__(self, inner: NemesisLike, kind: str | None = None, real: bool = False) -> None:
        self.inner = inner
        self.kind = kind or getattr(inner, "kind", None) or getattr(inner, "name", type(inner).__name__)
        self.tier = inner.tier
        self.real = real

    def _inject(self) -> None:
        self.inner.inject()
        took = getattr(self.inner, "took_effect", None)
        if took is None or took():
            self.effect(f"{self.kind} injected" if took is None else getattr(self.inner, "evidence", str)())

    def heal(self) -> None:
        self.inner.heal()

    def still_damaged(self) -> bool:
        return bool(getattr(self.inner, "still_damaged", lambda: False)())


class ServerKill(Nemesis):
    """SIGKILL a server the run started (a `integration.servers.ServerHandle`); heal restarts it."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.down = False

    def _inject(self) -> None:
        pid = self.handle.pid
        self.handle.kill()
        self.down = True
        if pid is not None and self.handle.process is not None and self.handle.process.poll() is not None:
            self.effect(f"pid {pid} killed (exit {self.handle.process.returncode})")

    def heal(self) -> None:
        if self.down:
            self.handle.restart()
            self.down = False


# --- worlds ---------------------------------------------------------------------------------------


@dataclass
class World:
    """What faults may act on during one round: every live instance's Env (they share Redis, the
    database and cache_dir), the servers, one proxy per instance (instance i's `env.redis_url` goes
    through `proxies[i]`, so one instance can be cut off alone), the tmpfs, the SQLite file."""

    envs: list[Env]
    cache_dir: str
    namespace: str
    rng: random.Random
    redis: ServerHandle | None = None  # a real server the run controls
    proxies: list[TcpProxy] = field(default_factory=list)
    postgres: ServerHandle | None = None
    tmpfs: Tmpfs | None = None  # only when really mounted
    sqlite_path: str | None = None
    database_url: str | None = None
    fake_redis: FakeRedisServer | None = None  # an in-process world's Redis
    root: Path | None = None
    owned: list[Any] = field(default_factory=list, repr=False)  # proxies this world started; close() stops them
    threads: int = 1  # client threads per instance (the runner's business; faults do not look at it)

    @property
    def instances(self) -> int:
        return len(self.envs)

    @property
    def name(self) -> str:
        """For tables: "1 instance", "2 instances", "2 instances x 3 threads"."""
        plural = "s" if self.instances > 1 else ""
        return f"{self.instances} instance{plural}" + (f" x {self.threads} threads" if self.threads > 1 else "")

    @property
    def redis_url(self) -> str | None:
        """The server itself, not through a proxy: for faults that plant or snapshot data."""
        if self.redis is not None:
            return self.redis.url
        if self.fake_redis is not None:
            return self.fake_redis.url
        return None

    @property
    def uses_redis(self) -> bool:
        return any(env.redis_url for env in self.envs)

    @property
    def has_proxies(self) -> bool:
        """Every instance reaches Redis through a proxy of its own (real server or in-process)."""
        return self.uses_redis and len(self.proxies) == self.instances

    @property
    def controls_redis(self) -> bool:
        """A real Redis server this run may kill, stop and restart, with a proxy per instance."""
        return self.uses_redis and self.redis is not None and self.redis.controllable and bool(self.proxies)

    def wait_idle(self) -> bool:
        """Wait until no connection is open through any of the world's proxies (after shutdowns)."""
        return all(proxy.wait_idle() for proxy in self.proxies)

    def pick_instance(self) -> int:
        return self.rng.randrange(self.instances) if self.instances > 1 else 0

    def close(self) -> None:
        for thing in self.owned:
            thing.heal()
            thing.stop()
        self.owned.clear()

    @classmethod
    def in_process(
        cls,
        env: Env,
        rng: random.Random,
        fake_redis: FakeRedisServer | None = None,
        envs: list[Env] | None = None,
    ) -> World:
        """A world without real servers: the Env's Redis is `fake_redis` (connected to directly)."""
        db = env.database_url or ""
        return cls(
            envs=envs or [env],
            cache_dir=env.cache_dir,
            namespace=env.namespace,
            rng=rng,
            fake_redis=fake_redis,
            sqlite_path=db.removeprefix("sqlite://") if db.startswith("sqlite:///") else None,
            database_url=env.database_url,
        )


# --- the registry ---------------------------------------------------------------------------------

Builder = Callable[[World], "Nemesis | None"]
REGISTRY: dict[str, Builder] = {}

# Modules whose import fills the registry. Which one is imported first depends on the entry point, so
# `applicable()` lists faults in sorted kind order: the same seed picks the same faults everywhere.
BUILTIN_MODULES = (
    "tiercheck.chaos.redis_faults",
    "tiercheck.chaos.disk_faults",
    "tiercheck.chaos.db_faults",
    "tiercheck.chaos.hostile",
    "tiercheck.properties.faults",
)


def register(kind: str) -> Callable:
    """Register a builder `World -> Nemesis | None`, or a Nemesis class with `for_world(world)`."""

    def deco(obj):
        if kind in REGISTRY:
            raise ValueError(f"a fault {kind!r} is already registered")
        REGISTRY[kind] = obj.for_world if isinstance(obj, type) else obj
        return obj

    return deco


def load_builtin() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def build(kind: str, world: World) -> Nemesis | None:
    """The fault `kind` for this world, or None when it does not apply."""
    load_builtin()
    if kind not in REGISTRY:
        raise LookupError(f"no fault {kind!r}; known: {sorted(REGISTRY)}")
    nemesis = REGISTRY[kind](world)
    if nemesis is not None:
        nemesis.kind = kind
    return nemesis


def applicable(world: World, kinds: list[str] | tuple[str, ...] | None = None) -> list[Nemesis]:
    """Every registered fault that applies to this world (only `kinds`, if given), sorted by kind."""
    load_builtin()
    found = []
    for kind in sorted(REGISTRY):
        if kinds is not None and kind not in kinds:
            continue
        nemesis = build(kind, world)
        if nemesis is not None:
            found.append(nemesis)
    return found
