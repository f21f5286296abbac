"""The local server starter under the conditions of a parallel run (a harness self-test).

Several PostgreSQL servers started and killed-and-restarted at once must each come up and answer; a
kill must leave no process of the server behind (PostgreSQL's children are not in its process group);
a port another process took is diagnosed from the server's log, and only then retried on a fresh port.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import psutil
import psycopg
import pytest
import redis

from tiercheck.integration import servers

pytestmark = pytest.mark.selftest

CONCURRENT = 4


def _local(kind: str) -> None:
    """These tests check the start from local binaries; another provider is not what they test."""
    if os.environ.get("TIERCHECK_DATABASE_URL" if kind == "postgres" else "TIERCHECK_REDIS_URL"):
        pytest.skip(f"not applicable: the {kind} server comes from the environment, not from local binaries")
    if servers.docker_status()[0]:
        pytest.skip("not applicable: Docker answers, so servers come from testcontainers, not local binaries")
    found = servers.postgres_bin_dir() if kind == "postgres" else servers.redis_binary()
    if found is None:
        pytest.skip(f"not applicable: no local {kind} binaries ({servers.SERVERS_EXTRA})")


def _port(handle: servers.ServerHandle) -> int:
    return int(handle.url.rsplit(":", 1)[1].split("/")[0])


def _answers(handle: servers.ServerHandle) -> int:
    with psycopg.connect(handle.url, connect_timeout=10) as conn:
        return conn.execute("SELECT count(*) FROM t").fetchone()[0]


@pytest.mark.real_postgres
def test_postgres_servers_started_and_restarted_at_once_all_answer():
    _local("postgres")
    barrier = threading.Barrier(CONCURRENT)
    handles: list[servers.ServerHandle] = []
    lock = threading.Lock()

    def start(i: int) -> servers.ServerHandle:
        barrier.wait()
        handle = servers.start_postgres()
        with lock:
            handles.append(handle)
        with psycopg.connect(handle.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t SELECT generate_series(1, %s)", (i + 1,))
        return handle

    def kill_and_restart(handle: servers.ServerHandle) -> None:
        idle = [psycopg.connect(handle.url) for _ in range(3)]  # backends that outlive a bare postmaster kill
        barrier.wait()
        handle.kill()
        for conn in idle:
            conn.close()
        handle.restart()

    try:
        with ThreadPoolExecutor(CONCURRENT) as pool:
            started = list(pool.map(start, range(CONCURRENT)))
            assert len({_port(h) for h in started}) == CONCURRENT
            assert [_answers(h) for h in started] == list(range(1, CONCURRENT + 1))
            list(pool.map(kill_and_restart, started))
        assert [_answers(h) for h in started] == list(range(1, CONCURRENT + 1))
    finally:
        for handle in handles:
            handle.close()


@pytest.mark.real_postgres
def test_postgres_kill_takes_every_server_process_with_it():
    """A backend that cannot notice its postmaster died (stopped) must still be gone when kill() returns,
    and the restart must not find it attached to the old shared memory."""
    _local("postgres")
    handle = servers.start_postgres()
    try:
        client = psycopg.connect(handle.url)
        backend = client.info.backend_pid
        tree = psutil.Process(handle.pid).children(recursive=True)
        assert backend in {p.pid for p in tree}
        os.kill(backend, signal.SIGSTOP)
        handle.kill()
        survivors = [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert survivors == []
        client.close()
        handle.restart()
        with psycopg.connect(handle.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        handle.close()


@pytest.mark.real_postgres
def test_postgres_restart_on_a_taken_port_says_so():
    _local("postgres")
    handle = servers.start_postgres()
    thief = socket.socket()
    try:
        handle.kill()
        thief.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the one way past the harness's hold
        thief.bind(("127.0.0.1", _port(handle)))
        thief.listen()
        with pytest.raises(servers.PortTaken, match="Address already in use") as failure:
            handle.restart()
        assert "server.log" in str(failure.value) and "could not create any TCP/IP sockets" in str(failure.value)
    finally:
        thief.close()
        handle.close()


@pytest.mark.real_redis
def test_first_start_on_a_taken_port_retries_on_a_fresh_one(monkeypatch):
    _local("redis")
    thief = socket.socket()
    thief.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    thief.bind(("127.0.0.1", 0))
    thief.listen()
    taken = thief.getsockname()[1]
    offered = [(taken, None)]
    reserve = servers.reserve_port
    monkeypatch.setattr(servers, "reserve_port", lambda: offered.pop() if offered else reserve())
    try:
        handle = servers.start_redis()
        try:
            assert _port(handle) != taken
            assert redis.Redis.from_url(handle.url).ping()
        finally:
            handle.close()
    finally:
        thief.close()


@pytest.mark.real_redis
def test_a_start_failure_other_than_the_port_is_not_retried(monkeypatch):
    _local("redis")
    attempts = []
    reserve = servers.reserve_port

    def counted():
        attempts.append(1)
        return reserve()

    monkeypatch.setattr(servers, "reserve_port", counted)
    monkeypatch.setattr(servers, "redis_binary", lambda: ("/bin/false", "a server that exits at once"))
    with pytest.raises(servers.Unavailable, match="exited with code 1 during start-up") as failure:
        servers.start_redis()
    assert not isinstance(failure.value, servers.PortTaken)
    assert len(attempts) == 1


def test_in_process_redis_holds_its_port_through_an_outage():
    """While stopped, clients are refused and the port stays bound, so a free-port probe elsewhere (a bind
    without address reuse, as servers' port pickers do) cannot take it and the restart at the end of an outage
    comes back on the URL the cache was given; `close()` gives the port back."""
    from tiercheck.backends import FakeRedisServer

    server = FakeRedisServer()
    server.stop()  # no client connected yet: no TIME_WAIT socket would block the probe below by itself
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=server.port, socket_timeout=2).ping()
    with socket.socket() as intruder, pytest.raises(OSError):
        intruder.bind(("127.0.0.1", server.port))
    server.start()
    client = redis.Redis(port=server.port, socket_timeout=2)
    client.set("k", "v")
    server.stop()
    server.start()
    assert client.get("k") == b"v"
    server.close()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", server.port))


def test_a_restartable_redis_is_the_runs_own_even_when_an_env_url_names_one(monkeypatch):
    """Tests that restart Redis (own_redis_server) cannot restart a server TIERCHECK_REDIS_URL names:
    it is shared, and the handle has no way to stop it. They get one the run starts."""
    monkeypatch.setenv("TIERCHECK_REDIS_URL", "redis://127.0.0.1:1/0")
    assert servers.start_redis().url == "redis://127.0.0.1:1/0"
    if servers.docker_status()[0] is False and servers.redis_binary() is None:
        pytest.skip("no local Redis-protocol server to start")
    handle = servers.start_redis(restartable=True)
    try:
        assert handle.url != "redis://127.0.0.1:1/0"
        client = redis.Redis.from_url(handle.url)
        before = client.info("server")["run_id"]
        handle.restart()
        assert redis.Redis.from_url(handle.url).info("server")["run_id"] != before
    finally:
        handle.close()
