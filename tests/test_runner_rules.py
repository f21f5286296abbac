"""Self-tests of the chaos runner's own machinery (no implementation under test): the late-write and
mid-operation snapshot toxics of the proxy, and the schedule's fault scopes."""

from __future__ import annotations

import random

import pytest
import redis

from tiercheck.backends import FakeRedisServer
from tiercheck.chaos.history import Fault
from tiercheck.chaos.runner import LateProxy, write_commands

pytestmark = pytest.mark.selftest


def test_write_commands_are_recognised_in_resp_chunks():
    set_cmd = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
    get_cmd = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    pipeline = (
        b"*1\r\n$5\r\nMULTI\r\n" + b"*4\r\n$4\r\nhset\r\n$1\r\nh\r\n$1\r\nf\r\n$1\r\nv\r\n" + b"*1\r\n$4\r\nEXEC\r\n"
    )
    assert write_commands(set_cmd) == 1
    assert write_commands(get_cmd) == 0
    assert write_commands(pipeline) == 2  # HSET and EXEC


@pytest.fixture
def late_proxy():
    server = FakeRedisServer()
    proxy = LateProxy("127.0.0.1", server.port).start()
    yield server, proxy
    proxy.stop()
    server.stop()


def test_a_held_write_times_out_on_the_client_and_lands_later(late_proxy):
    server, proxy = late_proxy
    slow = redis.Redis.from_url(proxy.url(), socket_timeout=0.2)
    direct = redis.Redis.from_url(server.url)
    proxy.hold_writes(1.0, 0.6, random.Random(1))
    with pytest.raises(redis.TimeoutError):
        slow.set("k", "late")  # the client gives up: an indeterminate write
    assert direct.get("k") is None  # not landed yet
    direct.set("other", "now")  # later commands of other connections go first
    proxy.hold_writes(0.0)
    assert proxy.wait_landed(30)
    landed = next((i for i in range(1000) if direct.get("k") == b"late"), None)  # round trips, no sleeps
    assert landed is not None  # ... and then the write lands
    assert proxy.held == 1
    slow.close()
    direct.close()


def test_snapshot_is_taken_just_before_the_nth_write(late_proxy):
    server, proxy = late_proxy
    client = redis.Redis.from_url(proxy.url())
    direct = redis.Redis.from_url(server.url)
    seen: list[bytes | None] = []
    proxy.snapshot_after(3, lambda: seen.append(direct.get("n")))
    for i in range(5):
        client.set("n", str(i))
    assert seen == [b"1"]  # taken between the 2nd and the 3rd write
    assert proxy.snapshots == 1
    client.close()
    direct.close()


def test_fault_scope():
    one = Fault("redis partition (one instance)", "redis", "one", 1)
    assert one.hits(1) and not one.hits(0)
    assert Fault("redis SIGKILL", "redis").hits(0)
