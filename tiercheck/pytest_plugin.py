"""tiercheck's pytest plugin: Hypothesis profiles, the implementation under test, backend fixtures.

Loaded by the project's conftest.py and by `tiercheck verify`, so an installed tiercheck runs its
suites the same way a checkout does.

Profiles (TIERCHECK_PROFILE or --hypothesis-profile): `ci` (the default: derandomized, no deadline,
100 examples), `dev` or `quick` (30 random examples) and `nightly` (2,000 examples, longer runs).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings

from tiercheck.backends import FakeClock, FakeRedisServer, unique_namespace
from tiercheck.contract import DEFAULT_IMPL, Cache, Env, Factory, has_capability, load_factory

_COMMON: dict[str, Any] = {
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
}
if os.environ.get("TIERCHECK_SHRINK") == "0":  # "is it caught?" runs: a shrink can take minutes
    _COMMON["phases"] = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.explain]
settings.register_profile("dev", max_examples=30, deadline=None, **_COMMON)
# ci: the local example database is not replayed, so a CI verdict never depends on earlier runs
settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, database=None, print_blob=True, **_COMMON
)
settings.register_profile("nightly", max_examples=2000, deadline=None, stateful_step_count=100, **_COMMON)
_PROFILE = os.environ.get("TIERCHECK_PROFILE") or "ci"
_PROFILE = {"quick": "dev"}.get(_PROFILE, _PROFILE)
settings.load_profile(_PROFILE)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl",
        default=os.environ.get("TIERCHECK_IMPL", DEFAULT_IMPL),
        help="implementation under test, as package.module:factory (default: the reference)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "prop(id): the SPEC property (P1-P12, E1-E10) a test checks")
    config.addinivalue_line("markers", "real_redis: needs a real Redis-protocol server (started by the run)")
    config.addinivalue_line("markers", "real_postgres: needs a real PostgreSQL server (started by the run)")
    config.addinivalue_line("markers", "slow: longer than a few seconds")
    config.addinivalue_line("markers", "selftest: a test of the harness itself; never counts toward a verdict")


def pytest_report_header(config: pytest.Config) -> list[str]:
    profile = settings.get_current_profile_name()
    # settings.default is typed Optional by Hypothesis; it is always set once a profile is loaded
    seed = "derandomized (fixed per test)" if settings.default.derandomize else "random (printed on failure)"  # type: ignore[union-attr]
    return [
        f"tiercheck: impl={config.getoption('--impl')} hypothesis-profile={profile} seed={seed} "
        f"max_examples={settings.default.max_examples}"  # type: ignore[union-attr]
        + ("" if Phase.shrink in settings.default.phases else " shrinking=off (TIERCHECK_SHRINK=0)")  # type: ignore[union-attr]
    ]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def fake_redis_server() -> Iterator[FakeRedisServer]:
    server = FakeRedisServer()
    yield server
    server.stop()


@pytest.fixture
def fake_redis_url(fake_redis_server: FakeRedisServer) -> str:
    fake_redis_server.start()  # a test may have stopped it to simulate an outage
    return fake_redis_server.url


@pytest.fixture(params=["fakeredis", "valkey"])
def any_redis_url(request: pytest.FixtureRequest) -> str:
    """Run the test twice: on fakeredis over TCP and on a real valkey-server started by the run."""
    if request.param == "fakeredis":
        return request.getfixturevalue("fake_redis_url")
    return request.getfixturevalue("redis_server").url


@pytest.fixture
def namespace() -> str:
    return unique_namespace()


@pytest.fixture
def make_env(tmp_path: Path, clock: FakeClock, namespace: str):
    """Build a contract Env over fresh resources; keyword arguments override fields."""

    def build(**overrides) -> Env:
        fields: dict[str, Any] = {
            "cache_dir": str(tmp_path / "cache"),
            "redis_url": None,
            "database_url": f"sqlite:///{tmp_path / 'cache.sqlite3'}",
            "namespace": namespace,
            "clock": clock,
        }
        fields.update(overrides)
        return Env(**fields)

    return build


@pytest.fixture(scope="session")
def impl_factory(request: pytest.FixtureRequest) -> Factory:
    """The factory named by --impl (the reference by default)."""
    return load_factory(request.config.getoption("--impl"))


@pytest.fixture
def open_cache(impl_factory: Factory, make_env):
    """Build caches of the implementation under test; every one is shut down after the test."""
    caches: list[Cache] = []

    def build(env: Env | None = None, **env_overrides) -> Cache:
        cache = impl_factory(env if env is not None else make_env(**env_overrides))
        caches.append(cache)
        return cache

    yield build
    for cache in caches:
        with contextlib.suppress(Exception):  # a second shutdown, or a broken implementation: already judged
            cache.shutdown()


_WHAT = {
    "tiers_holding": "tiers_holding() introspection",
    "legacy": "the legacy module API",
    "postgresql": "a PostgreSQL database tier",
    "sqlite": "a SQLite database tier",
}


def require(cache: object, capability: str) -> None:
    """Skip as not applicable (with the reason) when the implementation lacks a capability.

    `capability` is one of `tiercheck.contract.has_capability`'s names: 'tiers_holding', 'legacy', a tier
    name ('redis', 'disk', ...) or a database kind ('sqlite', 'postgresql').
    """
    if not has_capability(cache, capability):
        what = _WHAT.get(capability, f"a {capability} tier")
        pytest.skip(f"not applicable: the implementation does not declare {what}")


@pytest.fixture
def measure(request: pytest.FixtureRequest):
    """Record a measured figure (not judged) for the report: `measure("memory_share_two_instances", 0.84)`.

    Each call adds ("tiercheck.measure", {"name", "value", "unit"}) to the test's user_properties; the runner
    gathers them into tiercheck.json ("measurements") and report.html beside the verdicts.
    """

    def record(name: str, value: float, unit: str = "") -> None:
        request.node.user_properties.append(("tiercheck.measure", {"name": name, "value": value, "unit": unit}))

    return record
