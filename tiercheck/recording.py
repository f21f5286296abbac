"""The in-run side of `tiercheck verify`: a pytest plugin loaded (`-p tiercheck.recording`) where tests run.

With pytest-xdist, tests run in worker processes that only load plugins named on the command line, so the
pieces that must see the test items live here rather than in the controller's `VerdictRecorder`:

- `--tiercheck-only P1,E2` keeps only the tests marked with one of those property IDs;
- every report carries, in `user_properties`, the test's property IDs (`tiercheck.properties`), its
  fixture names (`tiercheck.fixtures`, so the counterexample can leave them out), the number of
  Hypothesis examples it ran (`tiercheck.examples`), whether it exercised the implementation under test
  (`tiercheck.exercised`) and whether it is a harness self-test (`tiercheck.selftest`) — these travel
  back to the controller with the report.

A test exercised the implementation when the `impl_factory` fixture (tiercheck.pytest_plugin, the one
route to the implementation named by --impl; `open_cache` uses it) is in its fixture closure. Only such
tests count toward a verdict: a test of the harness itself (the linearizability checker, the static
checker...) proves nothing about the implementation, whatever property it is about.
"""

from __future__ import annotations

from typing import Any

import pytest

from .catalog import normalize

_EXAMPLES = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tiercheck-only", default="", help="keep only tests of these property IDs (P1,E2,...)")


IMPLEMENTATION_FIXTURE = "impl_factory"


def property_ids(item: pytest.Item) -> list[str]:
    return [m.args[0].upper() for m in item.iter_markers("prop") if m.args]


def exercises_implementation(item: pytest.Item) -> bool:
    """The implementation's factory is in the test's fixture closure (directly or through open_cache)."""
    return IMPLEMENTATION_FIXTURE in getattr(item, "fixturenames", ())


def is_selftest(item: pytest.Item) -> bool:
    return item.get_closest_marker("selftest") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    only = config.getoption("--tiercheck-only")
    if not only:
        return
    wanted = set(normalize(only))
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (keep if set(property_ids(item)) & wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Count the examples Hypothesis ran (its statistics hook is cheap; observability is not)."""
    item.stash[_EXAMPLES] = 0
    try:
        from hypothesis.statistics import collector
    except ImportError:  # a Hypothesis without it: examples are then reported as 0
        return (yield)

    def note(stats: dict[str, Any]) -> None:
        item.stash[_EXAMPLES] += sum(
            len(stats.get(phase, {}).get("test-cases", []))
            for phase in ("explicit-phase", "reuse-phase", "generate-phase")
        )

    with collector.with_value(note):  # type: ignore[arg-type]  # Hypothesis types the collector as None-only
        return (yield)


OURS = (
    "tiercheck.properties",
    "tiercheck.fixtures",
    "tiercheck.examples",
    "tiercheck.exercised",
    "tiercheck.selftest",
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    ids = property_ids(item)
    if ids:
        # A report's user_properties is the item's list (shared by its setup, call and teardown reports):
        # replace our entries rather than append, so each report carries them exactly once.
        props = [(k, v) for k, v in item.user_properties if k not in OURS]
        props += [
            ("tiercheck.properties", ids),
            ("tiercheck.fixtures", sorted(getattr(item, "fixturenames", ()))),
            ("tiercheck.examples", item.stash.get(_EXAMPLES, 0)),
            ("tiercheck.exercised", exercises_implementation(item)),
            ("tiercheck.selftest", is_selftest(item)),
        ]
        item.user_properties[:] = props
        report.user_properties = list(props)
    return report
