"""Self-test of the P11 static checker: it finds the original structural bugs, and nothing in clean code.

These tests never call the implementation under test (P11's test of it is properties/test_p11_static.py),
so they carry `selftest`, not `prop("P11")`.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import pytest

from tiercheck.properties.static_checks import Finding, check_source, implementation_source_files

pytestmark = pytest.mark.selftest

FIXTURE = Path(__file__).parent / "fixtures" / "broken_cache_structure.py"


def test_finds_every_original_bug_in_the_fixture():
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


@pytest.mark.parametrize("case", sorted(CLEAN))
def test_no_false_positive(case):
    assert check_source(CLEAN[case], case) == []


def test_unresolvable_base_is_not_guessed():
    source = "from somewhere_unknown import Base\nclass A(Base):\n    def f(self): return self.mystery\n"
    assert check_source(source) == []


def test_finding_format():
    assert str(Finding("redefinition", "a.py", 3, "f again")) == "a.py:3: redefinition: f again"


# --- which files P11 scans ----------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """An adapter package whose cache subclasses a class of another package (and of the standard library)."""
    _write(
        tmp_path,
        {
            "tc_adapter/__init__.py": "",
            "tc_adapter/glue.py": "from tc_core.store import Store\nclass Cache(Store):\n    pass\n"
            "def factory(env):\n    return Cache()\n",
            "tc_adapter/tests/test_glue.py": "",
            "tc_adapter/test_more.py": "",
            "tc_core/__init__.py": "",
            "tc_core/store.py": "import collections\nclass Store(collections.UserDict):\n    pass\n",
            "tc_core/tiers/disk.py": "",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in list(sys.modules):
        if name.startswith(("tc_adapter", "tc_core")):
            monkeypatch.delitem(sys.modules, name)
    return tmp_path, importlib.import_module("tc_adapter.glue")


def test_scans_the_packages_of_the_class_its_bases_and_the_factory_without_tests_or_stdlib(packages):
    root, glue = packages
    files = implementation_source_files(glue.factory(None), glue.factory)
    assert [p.relative_to(root.resolve()).as_posix() for p in files] == [
        "tc_adapter/__init__.py",
        "tc_adapter/glue.py",
        "tc_core/__init__.py",
        "tc_core/store.py",
        "tc_core/tiers/disk.py",
    ]


def test_no_source_for_a_builtin_class_or_the_harness_itself():
    from tiercheck.backends import FakeClock

    assert implementation_source_files(types.SimpleNamespace()) == []
    assert implementation_source_files(FakeClock(), FakeClock) == []  # tiercheck's own code is never scanned
