"""The chaos TCP proxy on its own: pass-through, latency, reset mid-reply, reset-all, refused upstream."""

from __future__ import annotations

import socket
import socketserver
import threading

import pytest
import redis

from chaos.proxy import TcpProxy

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
