"""A base class that runs tiercheck's suites inside a project's own tests (after dogpile.cache's testing fixtures).

    from tiercheck.conformance import CacheConformance
    import mycache

    class TestMyCache(CacheConformance):
        factory = mycache.factory          # or the string "mycache:factory"

pytest (with tiercheck installed: its plugin loads itself) then collects, under `TestMyCache`, every test of
tiercheck's property, chaos and integration suites that exercises an implementation (those marked `prop`),
with the `impl_factory` and `impl_spec` fixtures bound to this factory. The tests are the suites' own
functions and state machines, not copies: a class adds nothing to judge and leaves nothing out. Pick
properties with `-m "tiercheck_P1 or tiercheck_E2"` or `--tiercheck-only P1,E2`.

Some properties start the implementation in a child process (P11 reads its source, P12 imports it in a clean
interpreter, E3 kills a writer, E6 runs several processes), so the factory must be importable by name: a
module-level function, or a "module:factory" string.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from .contract import Factory, ImplementationError, load_factory
from .door import DoorError, check_factory
from .pytest_plugin import activate
from .suites import suite_dirs


class CacheConformance:
    """Subclass as `Test...` and set `factory`; see the module docstring."""

    factory: Any = None

    @classmethod
    def _declared(cls) -> Any:
        declared = inspect.getattr_static(cls, "factory", None)
        return declared.__func__ if isinstance(declared, staticmethod | classmethod) else declared

    @classmethod
    def impl_spec(cls) -> str:
        """`module:factory` naming this class's factory, as a child process can import it."""
        declared = cls._declared()
        if isinstance(declared, str):
            return declared
        module, qualname = getattr(declared, "__module__", None), getattr(declared, "__qualname__", "")
        spec = f"{module}:{qualname}"
        try:
            named = load_factory(spec) if module and "<" not in qualname else None
        except ImplementationError:
            named = None
        if named is not declared:
            pytest.fail(
                f"{cls.__name__}.factory ({declared!r}) cannot be imported by name, and this property starts the "
                "implementation in a child process: use a module-level function or a 'module:factory' string",
                pytrace=False,
            )
        return spec

    @classmethod
    def impl_factory(cls) -> Factory:
        declared = cls._declared()
        return load_factory(declared) if isinstance(declared, str) else declared


class ConformanceSuite(pytest.Collector):
    """The collector of a CacheConformance subclass: the suites' test modules, and the class's own test methods.

    Not a `pytest.Class`: pytest would then take the suites' module-level test functions for methods of the
    class and drop their first argument as `self`.
    """

    def __init__(self, *, suite: type[CacheConformance], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.obj = suite
        marks = getattr(suite, "pytestmark", [])
        for mark in marks if isinstance(marks, list) else [marks]:  # the class's own marks reach every test
            self.own_markers.append(mark.mark if isinstance(mark, pytest.MarkDecorator) else mark)

    def collect(self) -> list[Any]:
        suite = self.suite
        declared = suite._declared()
        if declared is None:
            raise self.CollectError(
                f"{suite.__name__}: set `factory = mycache.factory` (or 'mycache:factory') to check an implementation"
            )
        try:
            check_factory(str(declared), suite.impl_factory(), label=f"{suite.__name__}.factory")
        except (ImplementationError, DoorError) as exc:
            raise self.CollectError(f"tiercheck: {exc}") from None
        activate(self.config)  # before the suites are imported: their @settings take the profile's defaults
        collected: list[Any] = []
        if any(name.startswith("test") and callable(getattr(suite, name)) for name in dir(suite)):
            collected.append(pytest.Class.from_parent(self, name=suite.__name__, obj=suite))
        for directory in suite_dirs():
            for path in sorted(directory.glob("test_*.py")):
                name = f"{directory.name}/{path.name}"
                collected.append(pytest.Module.from_parent(self, path=path, name=name, nodeid=f"{self.nodeid}::{name}"))
        return collected


def make_collector(collector: pytest.Collector, name: str, obj: object) -> ConformanceSuite | None:
    """For `pytest_pycollect_makeitem`: collect a CacheConformance subclass named like a test class."""
    if (
        isinstance(obj, type)
        and issubclass(obj, CacheConformance)
        and obj is not CacheConformance
        and isinstance(collector, pytest.Module)
        and collector.istestclass(obj, name)
    ):
        return ConformanceSuite.from_parent(collector, name=name, suite=obj)
    return None


def conformance_class_of(node: Any) -> type[CacheConformance] | None:
    """The CacheConformance subclass a node was collected under, if any."""
    for parent in reversed(node.listchain()):
        if isinstance(parent, ConformanceSuite):
            return parent.suite
    return None
