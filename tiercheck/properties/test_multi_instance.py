"""E1 and E6 with two live instances over shared backends: a Hypothesis stateful machine.

Two cache instances share one Redis (fakeredis over TCP; each instance reaches it through its own
proxy, so a fault can cut one instance off while the other still reaches the server), one SQLite
database and one cache_dir. Rules: put, get, invalidate and clear_all on either instance; a restart
of one instance; one instance stopped for a while (its process gone) and started again later; faults
on all instances (Redis refused, Redis back empty; the faults of the path between instances: disk and
database faults are the single-instance machines' business) or on one (a partition, late writes: the
proxy holds Redis writes back so they land after later commands, after the client gave up on them).
Like a Jepsen generator, each example is one fault cycle: operations; the declared staleness window
passes (real seconds); the fault; operations through it; heal; operations. Every example ends by
healing, letting the window pass, and reading every key from every running instance.

Faults that bring Redis back with old data (`stale_data`: restored from a snapshot taken just before
the last removal, or mid-operation) are healed either under the running instances or, drawn, while the
whole deployment is down: every instance stops, Redis is restored, they start again, and no operation
runs in between; only what the cache keeps durably can then tell the new instances that Redis lost
removals. They need a real server (fakeredis has no INFO, so a restored in-process server would hide the
new run_id every real restart shows): a short second world on a real valkey-server makes every example
such a restore with the deployment down.

The invariant is the history checkers of chaos.checkers over everything recorded so far: per key
linearizable with misses allowed, indeterminate writes that may land later, an invalidate that
returned True never undone, reads by the other instance stale only within `staleness_seconds`.
Each test judges its own property's findings and wrong data (chaos.judging); an exception that
escaped (P5's under a fault, else P1's) or a return type outside the contract (P1's) is printed as
"not judged here" and left to those properties' tests. A failure reports the steps across both
instances and the checker's shortest failing key history (no shrinking: examples take real seconds).
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import tempfile
import time

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tiercheck.backends import FakeClock, FakeRedisServer, unique_namespace
from tiercheck.chaos.checkers import ContractInfo, ContractTypes, Linearizable, NoExceptionEscaped, check_all
from tiercheck.chaos.history import History
from tiercheck.chaos.judging import judged
from tiercheck.chaos.nemesis import Nemesis, World, build
from tiercheck.chaos.proxy import TcpProxy
from tiercheck.chaos.redis_faults import refuses_connections
from tiercheck.chaos.runner import Client, fault_of, void
from tiercheck.contract import Env, Factory
from tiercheck.integration.servers import ServerHandle
from tiercheck.properties.machine import declared

FILES = ["a", "b"]
TIERS = ["premium"]  # few keys: the interleavings across instances are what this machine explores
INSTANCES = [0, 1]
# weights by repetition: clear_all, restarts and stops are rare (each wipes or rereads what the others built
# up, and while one instance is stopped the world has one instance: the interleavings across two are the point)
OPERATIONS = ["put"] * 4 + ["get"] * 5 + ["invalidate"] * 3 + ["clear_all", "restart", "stop or start"]


# The faults of the path between instances, from the one registry (disk and database faults are the
# single-instance machines' business). The one-instance faults hit the instance the world's rng picks.
FAULT_KINDS = [
    "redis refused",
    "redis restart empty",
    "redis partition",
    "redis partition (one instance)",
    "redis late write",
]
# The faults that bring Redis back with old data, for the world where the whole deployment is down during the
# restore (`test_E1_two_instances_restored_while_every_instance_is_down`, on a real server: fakeredis has no
# INFO, and a restored server's new run_id is a signal every real server gives and an implementation may use).
RESTORE_KINDS = ["redis restored from snapshot before a removal"]


class TwoInstances(RuleBasedStateMachine):
    factory: Factory
    server: FakeRedisServer | RealRedis
    faults_allowed = True
    fault_kinds = FAULT_KINDS
    always_down_for_restores = False  # True: a restore always finds every instance stopped (else drawn)
    judges = "E1"  # the property whose verdict this machine feeds (chaos.judging: its findings and wrong data)

    def __init__(self) -> None:
        super().__init__()
        self.server.start()
        self.root = tempfile.mkdtemp(prefix="tiercheck-two-")
        self.proxies = [TcpProxy("127.0.0.1", self.server.port).start() for _ in INSTANCES]
        base = Env(
            cache_dir=os.path.join(self.root, "cache"),
            database_url=f"sqlite:///{self.root}/db.sqlite3",
            namespace=unique_namespace("two"),
            clock=FakeClock(),
        )
        envs = [dataclasses.replace(base, redis_url=p.url()) for p in self.proxies]
        self.history = History(meta={"env_tiers": {i: {"memory", "redis", "disk", "database"} for i in INSTANCES}})
        self.clients = [Client(self.history, self.factory, i, env) for i, env in enumerate(envs)]
        self.contract = ContractInfo.of(self.clients[0].cache, base.ttl_seconds)
        self.checkers = [Linearizable(), NoExceptionEscaped(), ContractTypes()]
        self.paths = {}
        for name in FILES:
            self.paths[name] = os.path.join(self.root, name)
            with open(self.paths[name], "wb") as f:
                f.write(f"file {name}\n".encode() * 20)
        self.world = World(
            envs=envs,
            cache_dir=base.cache_dir,
            namespace=base.namespace,
            rng=random.Random(0),
            proxies=self.proxies,
            fake_redis=self.server if isinstance(self.server, FakeRedisServer) else None,
            redis=getattr(self.server, "handle", None),
            sqlite_path=f"{self.root}/db.sqlite3",
            database_url=base.database_url,
        )
        self.nemesis: Nemesis | None = None  # this example's fault, built by the registry in `schedule`
        self.active: Nemesis | None = None
        self.not_effective: list[str] = []
        self.stopped: set[int] = set()
        self.seq = 0
        self.phase = 0  # 0: before the fault, 1: fault active, 2: healed
        self.done = 0  # operations so far
        self.injected_at = 0  # the operation at which the fault was injected
        self.plan: tuple[str | None, int, int] = (None, 0, 0)
        self.restore_while_down = False  # heal a fault that brings Redis back with old data with no instance running

    def teardown(self) -> None:
        try:
            self.settle_and_sweep()
        finally:
            self.close()

    def close(self) -> None:
        try:
            if self.nemesis is not None:
                self.nemesis.close()
            for i, c in enumerate(self.clients):
                if i not in self.stopped:
                    c.cache.shutdown()
        finally:
            for p in self.proxies:
                p.stop()
            self.server.start()
            shutil.rmtree(self.root, ignore_errors=True)

    @rule(op=st.sampled_from(OPERATIONS), inst=st.sampled_from(INSTANCES), name=st.sampled_from(FILES))
    def operation(self, op: str, inst: int, name: str) -> None:
        """One operation on one instance; the nemesis schedule moves on with every one."""
        self.nemesis_step()
        if op in ("put", "get", "invalidate"):
            getattr(self, op)(inst, name, TIERS[0])
        elif op == "stop or start":
            self.stop_or_start(inst, name)
        else:
            getattr(self, op)(inst)

    def live(self, inst: int) -> Client:
        """The instance asked for, or the other one while it is stopped."""
        return self.clients[inst if inst not in self.stopped else next(i for i in INSTANCES if i not in self.stopped)]

    def put(self, inst: int, name: str, tier: str) -> None:
        self.seq += 1
        self.live(inst).put(self.paths[name], tier, {"name": name, "tier": tier, "seq": self.seq, "by": inst})

    def get(self, inst: int, name: str, tier: str) -> None:
        self.live(inst).get(self.paths[name], tier)

    def invalidate(self, inst: int, name: str, tier: str | None) -> None:
        client = self.live(inst)
        client.call(
            "invalidate",
            lambda: client.cache.invalidate(self.paths[name], tier),
            path=self.paths[name],
            tier=tier,
            tiers=tuple(TIERS) if tier is None else (tier,),
            content=_content(self.paths[name]),
        )

    def clear_all(self, inst: int) -> None:
        client = self.live(inst)
        client.call("clear_all", client.cache.clear_all)

    def restart(self, inst: int) -> None:
        self.live(inst).restart()

    def stop_or_start(self, inst: int, name: str) -> None:
        """Start the stopped instance; else, once the fault schedule began, stop `inst`; else a get. One weighted
        operation rather than two rules: as rules, Hypothesis drew them as often as every other operation
        together, and one instance was down for about half of each example."""
        if self.stopped:
            self.start()
        elif self.phase > 0:
            self.stop(inst)
        else:
            self.get(inst, name, TIERS[0])

    def stop(self, inst: int) -> None:
        """The instance's process goes away (a deploy, a crash-free exit) and stays away for a while."""
        client = self.clients[inst]
        client.call("shutdown", client.cache.shutdown)
        self.stopped.add(inst)

    def start(self) -> None:
        inst = self.stopped.pop()
        client = self.clients[inst]
        client.call("restart", lambda: setattr(client, "cache", self.factory(client.env)))
        client.incarnation += 1

    @initialize(data=st.data())
    def schedule(self, data: st.DataObject) -> None:
        """The nemesis schedule of this example, drawn up front as in Jepsen: after `start` operations the
        declared staleness window passes (real seconds: the instances have seen each other's changes),
        then the fault (none in the fault-free E6 run) holds for `length` operations."""
        kinds = self.fault_kinds if self.faults_allowed else [None]
        self.plan = (
            data.draw(st.sampled_from(kinds), label="fault"),
            data.draw(st.integers(2, 8), label="operations before it"),
            data.draw(st.integers(3, 10), label="operations during it"),
        )
        kind = self.plan[0]
        if kind is not None:
            self.world.rng = random.Random(data.draw(st.integers(0, 2**16), label="fault seed"))
            self.nemesis = build(kind, self.world)
            if self.nemesis is not None and self.nemesis.stale_data:
                # Redis comes back with old data: either under the running instances (they may notice the
                # restart), or while the whole deployment is down, so the instances that start next find
                # it as it is and only what the cache keeps durably can tell them it is behind.
                self.restore_while_down = self.always_down_for_restores or data.draw(
                    st.booleans(), label="restore while every instance is down"
                )
            if self.nemesis is not None:
                self.nemesis.arm()  # snapshots: taken now, or at a command some operations on

    def nemesis_step(self) -> None:
        kind, start, length = self.plan
        self.done += 1
        # a fault that prepared something (a snapshot due before a later command) waits until it has happened
        if self.phase == 0 and self.done >= start and (self.nemesis is None or self.nemesis.ready()):
            if not self.restore_while_down:  # (a restore while down starts every instance afresh: nothing to see)
                time.sleep(self.contract.staleness_seconds + 0.05)
            self.phase = 1
            self.injected_at = self.done
            if self.nemesis is not None:
                self.history.event("inject", fault_of(self.nemesis))
                self.nemesis.inject()
                self.active = self.nemesis
                if self.restore_while_down:
                    self.heal()  # no operation runs meanwhile: every instance stops, Redis is restored, they start
        elif self.phase == 1 and self.done >= self.injected_at + length:
            self.heal()

    def heal(self) -> None:
        self.phase = 2
        if self.active is None:
            return
        nemesis, self.active = self.active, None
        down = self.restore_while_down and nemesis.took_effect()
        if down:  # the whole deployment is down during the restore, and starts again after it
            for inst in INSTANCES:
                if inst not in self.stopped:
                    self.stop(inst)
        nemesis.heal()
        self.history.event("heal", fault_of(nemesis))
        while down and self.stopped:
            self.start()
        if not nemesis.took_effect():  # nothing excused or blamed by it: it never happened
            void(self.history, nemesis)
            self.not_effective.append(nemesis.kind)

    @invariant()
    def history_is_correct(self) -> None:
        found = judged(self.new_findings(), self.judges)
        if found:
            raise AssertionError("\n".join(str(v) for v in found[:3]))

    def new_findings(self) -> list:
        """Every checker's findings over the history so far, each reported once (the invariant reruns them)."""
        seen = getattr(self, "_seen", set())
        self._seen = seen
        fresh = [v for v in check_all(self.history, self.contract, self.checkers) if (v.check, v.key) not in seen]
        seen.update((v.check, v.key) for v in fresh)
        return fresh

    def settle_and_sweep(self) -> None:
        """The end of every example: heal, let the declared staleness window pass (real seconds: the window
        is a bound in time, and only time can pass it), then every instance reads every key."""
        if self.active is not None:
            self.heal()
        time.sleep(self.contract.staleness_seconds + 0.05)
        for name in FILES:
            for tier in TIERS:
                for i, client in enumerate(self.clients):
                    if i not in self.stopped:
                        client.get(self.paths[name], tier, role="sweep")
        self.history_is_correct()


def _content(path: str) -> str:
    from tiercheck.chaos.history import content_key

    with open(path, "rb") as f:
        return content_key(f.read())


class RealRedis:
    """A real valkey-server (integration.servers) with the FakeRedisServer face the machine uses: a real
    server's restart shows a new run_id, which an implementation may rely on; fakeredis has no INFO."""

    def __init__(self, handle: ServerHandle) -> None:
        self.handle = handle
        self.port = int(handle.url.rsplit(":", 1)[1].split("/", 1)[0])

    def start(self) -> None:
        if refuses_connections(self.handle.url):
            self.handle.restart()


@pytest.fixture
def own_real_redis(own_redis_server):
    return RealRedis(own_redis_server)


@pytest.fixture
def own_redis():
    server = FakeRedisServer()  # stopped and restarted by the faults: not the shared one
    yield server
    server.close()


def _skip_unless_applicable(factory: Factory, faults: bool) -> None:
    """Not applicable, by what the implementation declares: the instances share a SQLite database (when it has
    a database tier), and every fault of this machine is Redis's. (A restore while every instance is down
    stays applicable without a durable tier: the restored server's new run_id, against one recorded in Redis
    itself, tells any cache that the server restarted since.)"""
    caps = declared(factory)
    if caps.has_tier("database") and not caps.accepts_database("sqlite:///shared.sqlite3"):
        pytest.skip(
            "not applicable: the implementation does not declare a SQLite database tier (the instances share one)"
        )
    if faults and not caps.has_tier("redis"):
        pytest.skip("not applicable: the implementation declares no Redis tier, and every fault here is Redis's")


def _run(
    factory: Factory, server: FakeRedisServer | RealRedis, faults: bool, examples: int, judges: str, **world: object
) -> None:
    _skip_unless_applicable(factory, faults)
    bound = type(
        "Two",
        (TwoInstances,),
        {"factory": staticmethod(factory), "server": server, "faults_allowed": faults, "judges": judges, **world},
    )
    # No shrinking: every example ends with real seconds of waiting, and the failures it finds depend on
    # timing; the report carries the failing steps and the checker's shortest failing key history.
    run_state_machine_as_test(
        bound,
        settings=settings(
            settings.default,
            max_examples=examples,
            stateful_step_count=20,
            deadline=None,
            phases=(Phase.explicit, Phase.reuse, Phase.generate),
        ),
    )


@pytest.mark.prop("E1")
def test_E1_two_instances_under_faults_never_undo_an_invalidate(impl_factory, own_redis):
    _run(impl_factory, own_redis, faults=True, examples=20, judges="E1")


@pytest.mark.prop("E1")
def test_E1_two_instances_restored_while_every_instance_is_down(impl_factory, own_real_redis):
    """The world of a deployment that is down while Redis is restored with old data: no instance sees the
    server go away or come back, so only what the cache keeps durably can tell the next ones that Redis
    lost removals. The same machine; every example's fault is a restore, with every instance stopped. On a
    real valkey-server: a restored server has a new run_id, as every real one does (fakeredis has no INFO)."""
    _run(
        impl_factory,
        own_real_redis,
        faults=True,
        examples=6,
        judges="E1",
        fault_kinds=RESTORE_KINDS,
        always_down_for_restores=True,
    )


@pytest.mark.prop("E6")
def test_E6_two_instances_stale_only_within_the_declared_window(impl_factory, own_redis):
    _run(impl_factory, own_redis, faults=False, examples=6, judges="E6")
