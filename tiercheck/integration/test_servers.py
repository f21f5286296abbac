"""The server providers: real processes that start, fail on command, restart, and never outlive the run."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from tiercheck.integration import servers


def _gone(pid: int, deadline: float = 10.0) -> bool:
    """Poll the process table (a readiness-style wait, not a sleep-as-synchronisation)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.02)
    return False


def test_docker_probe_gives_a_clear_reason():
    usable, reason = servers.docker_status()
    assert reason.startswith("Docker engine answers" if usable else "Docker not available")
    assert any(line.startswith("tiercheck servers: ") for line in servers.describe_providers())


@pytest.mark.real_redis
def test_redis_kill_pause_restart_snapshot():
    handle = servers.start_redis()
    if not handle.controllable:
        pytest.skip("not applicable: an external server cannot be killed by the harness")
    try:
        client = redis.Redis.from_url(handle.url, socket_timeout=0.2)
        client.set("k", "old")
        snapshot = servers.snapshot_redis(handle)
        client.set("k", "new")
        handle.pause()
        with pytest.raises(redis.TimeoutError):
            client.get("k")
        handle.resume()
        client = redis.Redis.from_url(handle.url, socket_timeout=0.5)
        assert client.get("k") == b"new"
        handle.kill()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(handle.url, socket_timeout=0.5).ping()
        handle.restart()
        assert redis.Redis.from_url(handle.url).get("k") == b"old"  # reloads the last saved RDB
        handle.restart(empty=True)
        assert redis.Redis.from_url(handle.url).get("k") is None
        servers.restore_redis(handle, snapshot)
        assert redis.Redis.from_url(handle.url).get("k") == b"old"  # back with old data
        pid = handle.pid
    finally:
        handle.close()
    assert pid is not None and _gone(pid)


def _sysv_segments() -> set[tuple[int, int]] | None:
    """(key, id) of every SysV shared-memory segment, where the kernel lists them (Linux)."""
    try:
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return None
    return {(int(row.split()[0]), int(row.split()[1])) for row in rows}


@pytest.mark.real_postgres
def test_postgres_keeps_committed_data_across_kill_and_dies_with_close():
    handle = servers.start_postgres()
    if not handle.controllable:
        pytest.skip("not applicable: an external server cannot be killed by the harness")
    try:
        with psycopg.connect(handle.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (42)")
        handle.kill()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(handle.url, connect_timeout=1)
        handle.restart()
        with psycopg.connect(handle.url) as conn:
            assert conn.execute("SELECT x FROM t").fetchall() == [(42,)]
        pid = handle.pid
        tree = psutil.Process(pid).children(recursive=True)  # each child in its own session, see kill_tree
        key, shmid = map(int, (handle.workdir / "data" / "postmaster.pid").read_text().splitlines()[6].split())
    finally:
        handle.close()
    assert pid is not None and _gone(pid)
    assert tree and all(_gone(p.pid) for p in tree)
    leftovers = [
        p for p in psutil.process_iter(["cmdline"]) if str(handle.workdir) in " ".join(p.info["cmdline"] or [])
    ]
    assert all(_gone(p.pid) for p in leftovers)
    segments = _sysv_segments()
    assert segments is None or (key, shmid) not in segments  # the kernel's count of segments is finite


def test_env_url_wins(monkeypatch, redis_server):
    monkeypatch.setenv("TIERCHECK_REDIS_URL", redis_server.url)
    handle = servers.start_redis()
    assert (handle.provider, handle.url, handle.controllable) == ("TIERCHECK_REDIS_URL", redis_server.url, False)
    with pytest.raises(servers.Unavailable, match="cannot be stopped"):
        handle.kill()
