"""P11: static checks of an implementation's source, for the structural bugs MetaExtract's cache had.

Three rules, each finding citing file and line:
- self-at-module-level: a module-level function whose first parameter is `self` (a method that
  lost its indentation and fell out of its class);
- redefinition: a def/class name bound twice in one scope, the later silently replacing the
  earlier (property setters, overloads and alternatives in if/try branches are not flagged);
- undefined-self-attribute: `self.name` read in a class that never defines `name` (assigned on
  self, in the class body, or on a base the checker can resolve; classes with unresolvable
  bases or dynamic attributes are skipped rather than guessed about).

Why not pyflakes or pylint: pyflakes' F811 covers only part of the second rule and nothing of
the others; pylint covers the third (E1101/E0203 family) but with a whole-program inference
engine, configuration and false positives on dynamic code that would make a conformance verdict
depend on pylint's mood. Forty lines of `ast` give exactly the three rules the SPEC names.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import site
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Finding:
    rule: str
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message}"


def check_source(text: str, filename: str = "<source>") -> list[Finding]:
    tree = ast.parse(text, filename)
    findings: list[Finding] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            params = node.args.posonlyargs + node.args.args
            if params and params[0].arg == "self":
                findings.append(
                    Finding(
                        "self-at-module-level",
                        filename,
                        node.lineno,
                        f"module-level function {node.name}() takes self: a method outside its class?",
                    )
                )
    findings += _redefinitions(tree, filename)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    imports = _imported_names(tree)
    for cls in classes.values():
        findings += _undefined_self_attributes(cls, classes, imports, filename)
    return sorted(findings, key=lambda f: (f.file, f.line, f.rule))


# --- redefinition -----------------------------------------------------------------------------


def _redefinitions(tree: ast.AST, filename: str) -> list[Finding]:
    findings: list[Finding] = []
    for scope in ast.walk(tree):
        body = getattr(scope, "body", None)
        if isinstance(body, list) and isinstance(
            scope, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        ):
            findings += _redefined_in(body, filename)
    return findings


def _decorator_names(node: ast.AST) -> set[str]:
    names = set()
    for dec in getattr(node, "decorator_list", []):
        target = dec.func if isinstance(dec, ast.Call) else dec
        names.add(ast.unparse(target))
    return names


def _redefined_in(body: list[ast.stmt], filename: str) -> list[Finding]:
    """Only straight-line statements of one block count: branches are alternatives, not replacements."""
    seen: dict[str, ast.stmt] = {}
    findings = []
    for stmt in body:
        if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if stmt.name == "_" or any(
            d.endswith(("overload", ".setter", ".deleter", ".getter", ".register")) for d in _decorator_names(stmt)
        ):
            continue  # overload stubs, property accessors, singledispatch registrations
        earlier = seen.get(stmt.name)
        if earlier is not None:
            findings.append(
                Finding(
                    "redefinition",
                    filename,
                    stmt.lineno,
                    f"{stmt.name} is defined again here, replacing the one at line {earlier.lineno}",
                )
            )
        seen[stmt.name] = stmt
    return findings


# --- undefined self attributes ------------------------------------------------------------------

_KNOWN_BASES = {
    "object",
    "Exception",
    "BaseException",
    "ValueError",
    "RuntimeError",
    "TypeError",
    "KeyError",
    "OSError",
    "Protocol",
    "Generic",
}


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name → dotted import path, for resolving bases like threading.Thread."""
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                names[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _resolve_external(expr: ast.expr, imports: dict[str, str]) -> type | None:
    """Import a base class named like `threading.Thread` or `Thread` (from-imported), if possible."""
    dotted = ast.unparse(expr)
    head, _, rest = dotted.partition(".")
    if head in _KNOWN_BASES and not rest:
        return getattr(builtins, head, object)
    if head not in imports:
        return None
    path = imports[head] + ("." + rest if rest else "")
    module_name, _, attr = path.rpartition(".")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except Exception:
        try:
            target = importlib.import_module(path)
        except Exception:
            return None
    return target if inspect.isclass(target) else None


def _defined_names(cls: ast.ClassDef) -> tuple[set[str], bool]:
    """Names a class defines (body and self assignments) and whether it is too dynamic to judge."""
    names: set[str] = set()
    dynamic = False
    for stmt in cls.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(stmt.name)
            if stmt.name in ("__getattr__", "__getattribute__"):
                dynamic = True
        elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                for node in ast.walk(target):
                    if isinstance(node, ast.Name):
                        names.add(node.id)
            if any(isinstance(t, ast.Name) and t.id == "__slots__" for t in targets) and stmt.value is not None:
                names.update(
                    c.value for c in ast.walk(stmt.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)
                )
    for node in ast.walk(cls):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store | ast.Del)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            names.add(node.attr)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and node.args
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in ("self", "cls")
            or isinstance(node, ast.Attribute)
            and node.attr == "__dict__"
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            dynamic = True
    return names, dynamic


def _undefined_self_attributes(
    cls: ast.ClassDef, classes: dict[str, ast.ClassDef], imports: dict[str, str], filename: str
) -> list[Finding]:
    names, dynamic = _defined_names(cls)
    inherited: list[type] = []
    stack, visited = list(cls.bases), {cls.name}
    while stack:
        base = stack.pop()
        if isinstance(base, ast.Subscript):  # Generic[T], Protocol[T]
            base = base.value
        local = classes.get(ast.unparse(base))
        if local is not None and local.name not in visited:
            visited.add(local.name)
            more, more_dynamic = _defined_names(local)
            names |= more
            dynamic |= more_dynamic
            stack.extend(local.bases)
            continue
        external = _resolve_external(base, imports)
        if external is None:
            return []  # a base we cannot see: do not guess
        inherited.append(external)
    if dynamic:
        return []
    findings = []
    reported: set[str] = set()
    for node in ast.walk(cls):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Load)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            name = node.attr
            if (
                name in names
                or name in reported
                or any(hasattr(base, name) for base in inherited)
                or hasattr(object, name)
            ):
                continue
            reported.add(name)
            findings.append(
                Finding(
                    "undefined-self-attribute",
                    filename,
                    node.lineno,
                    f"self.{name} is used in class {cls.name} but never defined",
                )
            )
    return findings


# --- files of an implementation -------------------------------------------------------------

_SUITES = ("properties", "chaos", "integration")


def _harness_dirs() -> tuple[Path, list[Path]]:
    """tiercheck's own package directory, and its suite packages (beside it in a checkout, or inside it)."""
    import tiercheck

    root = Path(tiercheck.__file__).resolve().parent
    suites = [base / name for base in (root.parent, root) for name in _SUITES]
    suites.append(Path(__file__).resolve().parent)  # wherever this suite lives
    return root, suites


def _excluded_dirs(third_party: bool) -> list[Path]:
    """The standard library, and (for base classes) site-packages: other people's code, not the implementation."""
    names = ["stdlib", "platstdlib"] + (["purelib", "platlib"] if third_party else [])
    paths = {Path(sysconfig.get_paths()[name]).resolve() for name in names if name in sysconfig.get_paths()}
    if third_party:
        paths |= {Path(p).resolve() for p in site.getsitepackages()}
    return sorted(paths)


def _within(path: Path, dirs: Iterable[Path]) -> bool:
    return any(path == d or d in path.parents for d in dirs)


def _is_harness(path: Path) -> bool:
    root, suites = _harness_dirs()
    return path == root or path.parent == root and path.is_file() or _within(path, suites)


def _is_test_file(path: Path, package_dir: Path) -> bool:
    relative = path.relative_to(package_dir)
    return (
        path.name.startswith("test_")
        or path.name.endswith("_test.py")
        or path.name == "conftest.py"
        or any(part in ("tests", "test") for part in relative.parts[:-1])
    )


def _package_files(module_name: str) -> list[Path]:
    """All .py files of the outermost package of `module_name` that is not tiercheck's own (tests left out).

    `mycache.tiers.redis` gives every file under mycache/; `tiercheck.reference.cache` (an implementation
    shipped inside tiercheck's namespace) gives tiercheck/reference/, not the harness around it.
    """
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:depth]))
        if module is None:
            return []
        if hasattr(module, "__path__"):  # a package (regular or namespace)
            dirs = [Path(d).resolve() for d in module.__path__]
            if all(_is_harness(d) for d in dirs):
                continue
            files = []
            for base in dirs:
                files += [
                    p
                    for p in base.rglob("*.py")
                    if not _is_test_file(p, base) and not _is_harness(p.resolve()) and "site-packages" not in p.parts
                ]
            return files
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py"):
            return []
        path = Path(file).resolve()
        return [] if _is_harness(path) else [path]
    return []


def implementation_source_files(cache: object, factory: object | None = None) -> list[Path]:
    """The .py files of the implementation behind `cache`: the package of its class, of every class in its MRO,
    and of the factory that built it.

    tiercheck's own packages and the standard library are left out; so is site-packages for base classes
    (a third-party base is not the implementation's code), while the implementation's own class is scanned
    wherever it is installed. An empty list means there is no Python source to check.
    """
    own = [type(cache).__module__] + ([factory.__module__] if getattr(factory, "__module__", None) else [])
    bases = [cls.__module__ for cls in type(cache).__mro__[1:]]
    files: dict[Path, None] = {}
    for names, third_party in ((own, False), (bases, True)):
        excluded = _excluded_dirs(third_party)
        for name in dict.fromkeys(names):
            for path in _package_files(name):
                resolved = path.resolve()
                if not _within(resolved, excluded):
                    files[resolved] = None
    return sorted(files)


def display_path(path: Path) -> str:
    """`path` relative to the working directory when under it (short in reports), else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_paths(paths: Iterable[Path | str]) -> list[Finding]:
    findings: list[Finding] = []
    for path in paths:
        findings += check_source(Path(path).read_text(encoding="utf-8"), str(path))
    return findings


def main(argv: list[str] | None = None) -> int:
    findings = check_paths(argv if argv is not None else sys.argv[1:])
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
