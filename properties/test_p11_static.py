"""P11: the static checker finds the original structural bugs, and nothing in clean code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiercheck.contract import load_factory

from .static_checks import Finding, check_source, source_files_of

FIXTURE = Path(__file__).parent / "fixtures" / "broken_cache_structure.py"


@pytest.mark.prop("P11")
def test_P11_implementation_source_is_structurally_sound(impl_spec):
    factory = load_factory(impl_spec)
    files = source_files_of(factory)
    if not files:
        pytest.skip("not applicable: no Python source files found for the implementation")
    findings = [f for path in files for f in check_source(path.read_text(encoding="utf-8"), str(path))]
    assert not findings, "structural findings:\n" + "\n".join(map(str, findings))


@pytest.mark.prop("P11")
def test_P11_finds_every_original_bug_in_the_fixture():
    findings = check_source(FIXTURE.read_text(), "fixture.py")
    got = sorted((f.rule, f.line, f.message.split()[0]) for f in findings)
    assert got == [
        ("redefinition", 50, "get_file_hash_quick"),
        ("self-at-module-level", 29, "module-level"),
        ("self-at-module-level", 33, "module-level"),
        ("self-at-module-level", 37, "module-level"),
        ("self-at-module-level", 42, "module-level"),
        ("undefined-self-attribute", 18, "self._get_from_disk"),  # the methods fell out of the class
        ("undefined-self-attribute", 18, "self._get_from_redis"),
        ("undefined-self-attribute", 25, "self.redis_client"),  # never assigned
        ("undefined-self-attribute", 26, "self._save_to_disk"),
    ], "\n".join(map(str, findings))
    assert all(str(f).startswith("fixture.py:") for f in findings)


CLEAN = {
    "property setter": """
class A:
    def __init__(self): self._x = 1
    @property
    def x(self): return self._x
    @x.setter
    def x(self, v): self._x = v
""",
    "overloads": """
from typing import overload
@overload
def f(a: int) -> int: ...
@overload
def f(a: str) -> str: ...
def f(a): return a
""",
    "alternatives in branches": """
try:
    import orjson
    def dumps(x): return orjson.dumps(x)
except ImportError:
    def dumps(x): return b""
if True:
    def g(): return 1
else:
    def g(): return 2
""",
    "inherited and dynamic": """
import threading
class T(threading.Thread):
    def run(self): return self.name, self.daemon
class D:
    def __getattr__(self, n): return n
    def f(self): return self.anything
class S:
    __slots__ = ("a",)
    def f(self): return self.a
class Base:
    def __init__(self): self.b = 1
class Child(Base):
    def f(self): return self.b
""",
    "dataclass fields and class attributes": """
from dataclasses import dataclass
@dataclass
class P:
    x: int
    y: int = 0
    LIMIT = 3
    def f(self): return self.x + self.y + self.LIMIT
""",
}


@pytest.mark.prop("P11")
@pytest.mark.parametrize("case", sorted(CLEAN))
def test_P11_no_false_positive(case):
    assert check_source(CLEAN[case], case) == []


@pytest.mark.prop("P11")
def test_P11_unresolvable_base_is_not_guessed():
    source = "from somewhere_unknown import Base\nclass A(Base):\n    def f(self): return self.mystery\n"
    assert check_source(source) == []


@pytest.mark.prop("P11")
def test_P11_finding_format():
    assert str(Finding("redefinition", "a.py", 3, "f again")) == "a.py:3: redefinition: f again"
