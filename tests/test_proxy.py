"""The chaos TCP proxy on its own (a harness self-test): pass-through, latency, reset mid-reply,
reset-all, refused upstream, partition; and its Redis-aware toxics on a real server: a held command
that lands after later ones, a hook between two commands, long-lived connections cut alone."""

from __future__ import annotations

import socket
import socketserver
import threading

import pytest
import redis

from tiercheck.chaos.proxy import Command, RespError, TcpProxy, opens_channel, parse_command

pytestmark = pytest.mark.selftest

FAILSAFE = 10.0  # a bounded timeout as a failsafe only, never a synchronisation


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


@pytest.fixture
def echo():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(FAILSAFE)


@pytest.fixture
def proxy(echo):
    with TcpProxy("127.0.0.1", echo) as p:
        yield p
    assert p._thread is None


def _connect(proxy: TcpProxy) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=FAILSAFE)
    return s


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def test_passes_bytes_both_ways_and_counts(proxy):
    with _connect(proxy) as s:
        s.sendall(b"hello")
        assert _recv_exactly(s, 5) == b"hello"
    assert proxy.stats.connections == 1
    assert proxy.stats.bytes_up == 5 and proxy.stats.bytes_down == 5


def test_latency_makes_client_timeouts_fire_and_keeps_order(proxy):
    proxy.latency(1.0)
    with _connect(proxy) as s:
        s.settimeout(0.05)  # far below the added latency: must time out, however loaded the machine
        s.sendall(b"one")
        with pytest.raises(TimeoutError):
            s.recv(3)
        proxy.heal()
        s.sendall(b"two")
        s.settimeout(FAILSAFE)
        assert _recv_exactly(s, 6) == b"onetwo"  # the late reply arrives, in order


def test_reset_mid_reply_delivers_a_partial_reply_then_rst(proxy):
    proxy.reset_mid_reply(True)
    with _connect(proxy) as s:
        s.sendall(b"x" * 1000)
        got = b""
        with pytest.raises((ConnectionResetError, ConnectionAbortedError)):
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    raise AssertionError(f"clean EOF after {len(got)} bytes: expected a reset")
                got += chunk
        assert len(got) < 1000
    assert proxy.stats.resets == 1
    proxy.heal()
    with _connect(proxy) as s:
        s.sendall(b"ok")
        assert _recv_exactly(s, 2) == b"ok"


def test_reset_all_resets_open_connections(proxy):
    with _connect(proxy) as s:
        s.sendall(b"a")
        assert _recv_exactly(s, 1) == b"a"
        proxy.reset_all()
        with pytest.raises((ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            s.sendall(b"b")
            if not s.recv(1):
                raise ConnectionResetError("EOF")
    assert proxy.stats.resets == 1


def test_refused_upstream_is_refused_downstream():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]  # nothing listens once the probe closes
    with TcpProxy("127.0.0.1", dead_port) as proxy:
        try:
            with _connect(proxy) as s:
                assert s.recv(1) == b""
        except ConnectionResetError:
            pass  # the reset may already arrive during connect
        assert proxy.stats.connections == 1


@pytest.mark.real_redis
def test_redis_client_sees_connection_errors_on_partial_replies(redis_server):
    port = int(redis_server.url.rsplit(":", 1)[1].split("/")[0])
    with TcpProxy("127.0.0.1", port) as proxy:
        client = redis.Redis.from_url(proxy.url(), socket_timeout=FAILSAFE)
        try:
            client.set("chaos-proxy-big", b"v" * 100_000)
            assert client.get("chaos-proxy-big") == b"v" * 100_000
            proxy.reset_mid_reply(True)
            with pytest.raises(redis.ConnectionError):
                client.get("chaos-proxy-big")
            proxy.heal()
            assert client.get("chaos-proxy-big") == b"v" * 100_000  # reconnects through the proxy
            client.delete("chaos-proxy-big")
        finally:
            client.close()


def _cut_off(proxy: TcpProxy, payload: bytes) -> bool:
    """Connect, send and wait for the echo; True when the connection failed anywhere on the way."""
    try:
        with _connect(proxy) as s:
            s.sendall(payload)
            return _recv_exactly(s, len(payload)) != payload  # EOF before the echo: cut off
    except OSError:  # refused, reset or broken: cut off
        return True


def test_partition_resets_open_connections_refuses_new_ones_and_delivers_nothing(proxy):
    with _connect(proxy) as s:
        s.sendall(b"a")
        assert _recv_exactly(s, 1) == b"a"
        proxy.partition(True)
        with pytest.raises(OSError):
            s.sendall(b"b")
            if not s.recv(1):
                raise ConnectionResetError("EOF")
    up_before = proxy.stats.bytes_up
    assert _cut_off(proxy, b"lost"), "a new connection got through the partition"
    assert proxy.stats.bytes_up == up_before, "bytes crossed a partition"
    proxy.heal()
    assert not _cut_off(proxy, b"ok"), "the healed proxy does not pass traffic"


# --- the RESP command parser ----------------------------------------------------------------------


def test_parse_command_splits_pipelined_commands_and_waits_for_incomplete_ones():
    one = b"*3\r\n$4\r\nHSET\r\n$1\r\nk\r\n$0\r\n\r\n"
    two = b"*2\r\n$3\r\nGET\r\n$5\r\na\r\nbc\r\n"  # a bulk string may hold CRLF
    buf = one + two
    args, end = parse_command(buf)
    assert args == [b"HSET", b"k", b""] and end == len(one)
    assert parse_command(buf, end) == ([b"GET", b"a\r\nbc"], len(buf))
    for cut in range(len(one)):  # every prefix of a command is incomplete, never an error
        assert parse_command(one[:cut]) is None
    assert Command(one, (b"hset", b"k", b"")).is_write and not Command(two, (b"GET", b"x")).is_write
    assert b"HSET" in Command(one, (b"HSET", b"k", b"")) and Command(one, ()).raw == one  # a matcher on bytes works


@pytest.mark.parametrize("junk", [b"hello", b"*x\r\n", b"*1\r\n:1\r\n", b"*1\r\n$1\r\nab\r\n"])
def test_parse_command_rejects_what_is_not_a_resp_command(junk):
    with pytest.raises(RespError):
        parse_command(junk)


def test_channel_commands_are_recognised():
    assert opens_channel([b"subscribe", b"ch"])
    assert opens_channel([b"CLIENT", b"TRACKING", b"on", b"BCAST"])
    assert opens_channel([b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"])
    assert not opens_channel([b"CLIENT", b"SETNAME", b"x"])
    assert not opens_channel([b"HELLO", b"3"])  # redis-py sends it on every connection
    assert not opens_channel([b"GET", b"subscribe"])


# --- Redis-aware toxics on a real server ------------------------------------------------------------


@pytest.fixture
def redis_proxy(redis_server):
    port = int(redis_server.url.rsplit(":", 1)[1].split("/")[0])
    with TcpProxy("127.0.0.1", port) as proxy:
        direct = redis.Redis.from_url(redis_server.url, socket_timeout=FAILSAFE)
        yield proxy, direct
        direct.close()


@pytest.mark.real_redis
def test_a_held_write_times_out_on_the_client_and_lands_after_later_commands(redis_proxy):
    proxy, direct = redis_proxy
    key = "chaos-proxy-late"
    direct.delete(key)
    client = redis.Redis.from_url(proxy.url(), socket_timeout=0.2, retry_on_timeout=False)
    try:
        hold = proxy.hold_next(lambda c: c.is_write and c.args[1:2] == (key.encode(),))
        assert client.get(key) is None  # a read passes: not a match
        with pytest.raises(redis.TimeoutError):
            client.set(key, b"early")  # held: the client gives up on it
        assert hold.wait_held(0) and str(hold.command).startswith("SET chaos-proxy-late")
        client.set(key, b"later")  # a new connection: passes the held one
        assert direct.get(key) == b"later"
        assert hold.passed >= 1 and not hold.applied
        assert proxy.release() is True
        assert direct.get(key) == b"early", "the held write did not land after the later one"
        assert "landed" in hold.describe()
    finally:
        client.close()
        direct.delete(key)


@pytest.mark.real_redis
def test_a_held_command_inside_a_transaction_holds_the_whole_block(redis_proxy):
    proxy, direct = redis_proxy
    key = "chaos-proxy-late-tx"
    direct.delete(key)
    client = redis.Redis.from_url(proxy.url(), socket_timeout=0.2)
    try:
        hold = proxy.hold_next(lambda c: c.name == b"HSET")
        pipe = client.pipeline(transaction=True)
        pipe.hset(key, "f", "old").expire(key, 600)
        with pytest.raises(redis.TimeoutError):
            pipe.execute()
        assert hold.held and direct.exists(key) == 0  # nothing of the block applied yet
        assert proxy.release()
        assert direct.hget(key, "f") == b"old" and direct.ttl(key) > 0
    finally:
        client.close()
        direct.delete(key)


@pytest.mark.real_redis
def test_reset_drops_a_held_command(redis_proxy):
    proxy, direct = redis_proxy
    key = "chaos-proxy-dropped"
    direct.delete(key)
    client = redis.Redis.from_url(proxy.url(), socket_timeout=0.2)
    try:
        hold = proxy.hold_next()
        with pytest.raises(redis.TimeoutError):
            client.set(key, b"never")
        proxy.reset_all()
        assert hold.dropped and proxy.release() is False
        assert direct.get(key) is None
    finally:
        client.close()


@pytest.mark.real_redis
def test_before_command_runs_between_two_commands_of_one_pipeline(redis_proxy):
    proxy, direct = redis_proxy
    key = "chaos-proxy-between"
    direct.delete(key)
    seen: list[bytes | None] = []
    client = redis.Redis.from_url(proxy.url(), socket_timeout=FAILSAFE)
    try:
        client.ping()  # the connection's handshake (CLIENT SETINFO ...) is behind us
        countdown = proxy.before_command(2, lambda: seen.append(direct.get(key)))
        client.pipeline(transaction=False).set(key, b"1").set(key, b"2").execute()
        assert countdown.done.is_set() and countdown.error is None
        assert seen == [b"1"], "the hook did not run between the first and the second command"
        assert countdown.before is not None and countdown.before.args == (b"SET", key.encode(), b"2")
    finally:
        client.close()
        direct.delete(key)


@pytest.mark.real_redis
def test_cut_long_lived_resets_subscribers_only(redis_proxy):
    proxy, direct = redis_proxy
    client = redis.Redis.from_url(proxy.url(), socket_timeout=FAILSAFE)
    pubsub = client.pubsub()
    try:
        pubsub.subscribe("chaos-proxy-channel")
        assert pubsub.get_message(timeout=FAILSAFE)["type"] == "subscribe"
        assert client.ping()
        assert proxy.channel_connections == 1 and proxy.open_connections == 2
        assert proxy.cut_long_lived() == 1
        assert proxy.open_connections == 1 and proxy.stats.channels_cut == 1
        assert client.ping()  # the command connection stayed up
        with pytest.raises(redis.ConnectionError):
            pubsub.parse_response(block=True, timeout=FAILSAFE)
    finally:
        pubsub.close()
        client.close()
