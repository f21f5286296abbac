"""E1 and E6 with two live instances over shared backends: a Hypothesis stateful machine.

Two cache instances share one Redis (fakeredis over TCP; each instance reaches it through its own
proxy, so a fault can cut one instance off while the other still reaches the server), one SQLite
database and one cache_dir. Rules: put, get, invalidate and clear_all on either instance; a restart
of one instance; faults on all instances (Redis refused, Redis back empty, disk EIO, SQLite locked)
or on one (a partition, late writes: the proxy holds Redis writes back so they land after later
commands, after the client gave up on them). Every example ends by healing, letting the declared
staleness window pass, and reading every key from both instances.

The invariant is the history checkers of chaos.checkers over everything recorded so far: per key
linearizable with misses allowed, indeterminate writes that may land later, an invalidate that
returned True never undone, reads by the other instance stale only within `staleness_seconds`;
no exception escapes; return types are the contract's. Hypothesis shrinks a failure to a short
sequence of steps across both instances.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import tempfile
import time

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from chaos.checkers import ContractInfo, ContractTypes, Linearizable, NoExceptionEscaped, check_all
from chaos.history import Fault, History
from chaos.runner import Client, LateProxy
from tiercheck.backends import FakeClock, FakeRedisServer, unique_namespace
from tiercheck.contract import Env, Factory

from .faults import DiskFault, RedisOutage, SqliteLocked

FILES = ["a", "b"]
TIERS = ["premium", "free"]
INSTANCES = [0, 1]


class _ProxyFault:
    """A fault on one instance's proxy (or every proxy): a partition or late writes."""

    tier = "redis"

    def __init__(self, proxies: list[LateProxy], how: str) -> None:
        self.proxies, self.how = proxies, how

    def inject(self) -> None:
        for p in self.proxies:
            if self.how == "partition":
                p.partition(True)
            else:
                p.hold_writes(0.3, 0.6)

    def heal(self) -> None:
        for p in self.proxies:
            p.partition(False)
            p.hold_writes(0.0)
        for p in self.proxies:
            p.wait_landed()


class TwoInstances(RuleBasedStateMachine):
    factory: Factory
    server: FakeRedisServer
    faults_allowed = True

    def __init__(self) -> None:
        super().__init__()
        self.server.start()
        self.root = tempfile.mkdtemp(prefix="tiercheck-two-")
        self.proxies = [LateProxy("127.0.0.1", self.server.port).start() for _ in INSTANCES]
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
        self.faults = {
            "redis refused": (RedisOutage(self.server), "all", None),
            "redis restarted empty": (RedisOutage(self.server, empty_on_heal=True), "all", None),
            "disk EIO": (DiskFault(base.cache_dir, errno.EIO), "all", None),
            "sqlite locked": (SqliteLocked(os.path.join(self.root, "db.sqlite3")), "all", None),
            "redis late writes": (_ProxyFault(self.proxies, "late"), "all", None),
        }
        for i in INSTANCES:
            self.faults[f"redis partition of instance {i}"] = (_ProxyFault([self.proxies[i]], "partition"), "one", i)
            self.faults[f"redis late writes of instance {i}"] = (_ProxyFault([self.proxies[i]], "late"), "one", i)
        self.active: tuple[str, Fault] | None = None
        self.seq = 0

    def teardown(self) -> None:
        try:
            self.settle_and_sweep()
        finally:
            self.close()

    def close(self) -> None:
        try:
            if self.active is not None:
                self.faults[self.active[0]][0].heal()
            for c in self.clients:
                c.cache.shutdown()
        finally:
            for p in self.proxies:
                p.stop()
            self.server.start()
            shutil.rmtree(self.root, ignore_errors=True)

    @rule(inst=st.sampled_from(INSTANCES), name=st.sampled_from(FILES), tier=st.sampled_from(TIERS))
    def put(self, inst: int, name: str, tier: str) -> None:
        self.seq += 1
        self.clients[inst].put(self.paths[name], tier, {"name": name, "tier": tier, "seq": self.seq, "by": inst})

    @rule(inst=st.sampled_from(INSTANCES), name=st.sampled_from(FILES), tier=st.sampled_from(TIERS))
    def get(self, inst: int, name: str, tier: str) -> None:
        self.clients[inst].get(self.paths[name], tier)

    @rule(inst=st.sampled_from(INSTANCES), name=st.sampled_from(FILES), tier=st.none() | st.sampled_from(TIERS))
    def invalidate(self, inst: int, name: str, tier: str | None) -> None:
        client = self.clients[inst]
        client.call(
            "invalidate",
            lambda: client.cache.invalidate(self.paths[name], tier),
            path=self.paths[name],
            tier=tier,
            tiers=tuple(TIERS) if tier is None else (tier,),
            content=_content(self.paths[name]),
        )

    @rule(inst=st.sampled_from(INSTANCES))
    def clear_all(self, inst: int) -> None:
        client = self.clients[inst]
        client.call("clear_all", client.cache.clear_all)

    @rule(inst=st.sampled_from(INSTANCES))
    def restart(self, inst: int) -> None:
        self.clients[inst].restart()

    @precondition(lambda self: self.faults_allowed and self.active is None)
    @rule(data=st.data())
    def inject(self, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(sorted(self.faults)), label="fault")
        nemesis, scope, instance = self.faults[kind]
        fault = Fault(kind, nemesis.tier, scope, instance)
        nemesis.inject()
        self.history.event("inject", fault)
        self.active = (kind, fault)

    @precondition(lambda self: self.active is not None)
    @rule()
    def heal(self) -> None:
        assert self.active is not None
        kind, fault = self.active
        self.faults[kind][0].heal()
        self.history.event("heal", fault)
        self.active = None

    def settle_and_sweep(self) -> None:
        """The end of every example: heal, let the declared staleness window pass (real seconds: the window
        is a bound in time, and only time can pass it), then every instance reads every key."""
        if self.active is not None:
            self.heal()
        time.sleep(self.contract.staleness_seconds + 0.05)
        for name in FILES:
            for tier in TIERS:
                for client in self.clients:
                    client.get(self.paths[name], tier, role="sweep")
        self.history_is_correct()

    @invariant()
    def history_is_correct(self) -> None:
        found = check_all(self.history, self.contract, self.checkers)
        if found:
            raise AssertionError("\n".join(str(v) for v in found[:3]))


def _content(path: str) -> str:
    from chaos.history import content_key

    with open(path, "rb") as f:
        return content_key(f.read())


@pytest.fixture
def own_redis():
    server = FakeRedisServer()  # stopped and restarted by the faults: not the shared one
    yield server
    server.stop()


def _run(factory: Factory, server: FakeRedisServer, faults: bool, examples: int) -> None:
    bound = type("Two", (TwoInstances,), {"factory": staticmethod(factory), "server": server, "faults_allowed": faults})
    # No shrinking: every example ends with real seconds of waiting, and the failures it finds depend on
    # timing; the report carries the failing steps and the checker's shortest failing key history.
    run_state_machine_as_test(
        bound,
        settings=settings(
            settings.default,
            max_examples=examples,
            stateful_step_count=25,
            deadline=None,
            phases=(Phase.explicit, Phase.reuse, Phase.generate),
        ),
    )


@pytest.mark.prop("E1")
def test_E1_two_instances_under_faults_never_undo_an_invalidate(impl_factory, own_redis):
    _run(impl_factory, own_redis, faults=True, examples=20)


@pytest.mark.prop("E6")
def test_E6_two_instances_stale_only_within_the_declared_window(impl_factory, own_redis):
    _run(impl_factory, own_redis, faults=False, examples=8)
