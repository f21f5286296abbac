"""The in-run side of `tiercheck verify`: a pytest plugin loaded (`-p tiercheck.recording`) where tests run.

With pytest-xdist, tests run in worker processes that only load plugins named on the command line, so the
pieces that must see the test items live here rather than in the controller's `VerdictRecorder`:

- `--tiercheck-only P1,E2` keeps only the tests marked with one of those property IDs;
- every report carries, in `user_properties`, the test's property IDs (`tiercheck.properties`), its
  fixture names (`tiercheck.fixtures`, so the counterexample can leave them out) and the number of
  Hypothesis examples it ran (`tiercheck.examples`) — these travel back to the controller with the report.
"""

from __future__ import annotations

from typing import Any

import pytest

from .catalog import normalize

_EXAMPLES = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tiercheck-only", default="", help="keep only tests of these property IDs (P1,E2,...)")


def property_ids(item: pytest.Item) -> list[str]:
    return [m.args[0].upper() for m in item.iter_markers("prop") if m.args]


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    ids = property_ids(item)
    if ids:
        # A report's user_properties is the item's list (shared by its setup, call and teardown reports):
        # replace our entries rather than append, so each report carries them exactly once.
        ours = ("tiercheck.properties", "tiercheck.fixtures", "tiercheck.examples")
        props = [(k, v) for k, v in item.user_properties if k not in ours]
        props += [
            ("tiercheck.properties", ids),
            ("tiercheck.fixtures", sorted(getattr(item, "fixturenames", ()))),
            ("tiercheck.examples", item.stash.get(_EXAMPLES, 0)),
        ]
        item.user_properties[:] = props
        report.user_properties = list(props)
    return report
