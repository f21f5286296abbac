"""Failures, made actionable: the shrunk counterexample as numbered steps, and one command that replays it.

`parse_failure` reads the text pytest reports for a failed test (the traceback plus the notes Hypothesis adds:
"Failing test case: ...", "@reproduce_failure(...)", "--hypothesis-seed=N") and returns the exception message,
the counterexample steps — the calls of a state machine, or the arguments of a `@given` test — and the
reproduction blob or seed when there is one. `replay_command` builds the pytest command that runs exactly that
test again under the same profile, implementation and seed: the `ci` profile is derandomized (the same examples,
in the same order, every run), and `tiercheck verify` fixes `--hypothesis-seed` for the random profiles, so the
command finds the same counterexample again.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field

_CASE_HEADERS = ("Failing test case:", "Falsifying example:")
_CASE_END = (
    "Explanation:",
    "You can reproduce",
    "You can add @seed",
    "Trying example",
    "Highest target",
    "Failing test case",
    "Falsifying example",
    "Unreliable test",
    "Traceback",
)
_BLOB = re.compile(r"@reproduce_failure\((['\"])[^'\"]+\1, b(['\"])[^'\"]*\2\)")
# Environment settings of the harness that change what a run generates: a replay must carry them too.
_PASSED_ON = ("TIERCHECK_SHRINK",)
_SEED = re.compile(r"(?:--hypothesis-seed=|@seed\()(\d+)")


@dataclass
class FailureInfo:
    message: str = ""
    steps: list[str] = field(default_factory=list)
    reproduce_failure: str | None = None
    seed: int | None = None


_GROUP_BAR = re.compile(r"^\s*(?:\+-)?\+?-+(?: \d+ -+)?\s*$|^\s*\+ Exception Group Traceback")
_PIPE = re.compile(r"^\s*\| ?")
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Failure|Exit|Warning)): ")
_GROUP = re.compile(r"ExceptionGroup: Hypothesis found (\d+) distinct failures")


def _strip(line: str) -> str:
    """Drop pytest's 'E   ' error prefix (and the bare 'E' of an empty error line)."""
    if line.startswith("E   "):
        return line[4:]
    if line.rstrip() == "E":
        return ""
    return line


def _normalize(text: str) -> list[str]:
    """The report's lines without pytest's 'E' prefixes, xdist's '[gwN]' header and exception-group bars."""
    lines = []
    for line in text.splitlines():
        if re.match(r"^\[gw\d+\] ", line) or _GROUP_BAR.match(line):
            continue
        lines.append(_PIPE.sub("", line) if _PIPE.match(line) else _strip(line))
    return lines


def parse_failure(text: str, fixtures: frozenset[str] | set[str] = frozenset()) -> FailureInfo:
    """Message, counterexample steps, reproduce blob and seed from a failure's report text.

    `fixtures` are argument names that are pytest fixtures (the implementation's factory, a clock...):
    Hypothesis prints them among the arguments, but they are not part of the counterexample.
    """
    lines = _normalize(text)
    info = FailureInfo()
    error_lines = [line for line in text.splitlines() if line.startswith("E   ")]
    if error_lines:
        # The exception line and its continuation lines (indented deeper), up to pytest's "assert ..." rewrite.
        message = [error_lines[0][4:].strip()]
        for line in error_lines[1:]:
            if not line.startswith("E     ") or len(message) >= 12:
                break
            message.append(line[4:].rstrip())
        info.message = "\n".join(message)
    else:  # a long or native traceback (an exception group, say): its first exception line
        first_case = next((i for i, line in enumerate(lines) if line.strip().startswith(_CASE_HEADERS)), len(lines))
        found = [line.strip() for line in lines[:first_case] if _EXCEPTION_LINE.match(line.strip())]
        found = [line for line in found if not line.startswith("ExceptionGroup")]
        info.message = found[-1] if found else ""  # the last of a chain: the one the test raised
        info.message = info.message or next((line.strip() for line in lines if line.strip()), "")
    if group := _GROUP.search(text):
        more = int(group.group(1)) - 1
        info.message += f"\n(and {more} more distinct failure{'s' if more > 1 else ''}: see the full failure output)"
    if blob := _BLOB.search(text):
        info.reproduce_failure = blob.group(0)
    if seed := _SEED.search(text):
        info.seed = int(seed.group(1))
    start = next((i for i, line in enumerate(lines) if line.strip().startswith(_CASE_HEADERS)), None)
    if start is None:
        return info
    header = lines[start].strip().split(":", 1)[1].strip()
    body: list[str] = []
    for line in lines[start + 1 :]:
        if not line.strip() or line.strip().startswith(_CASE_END):
            break
        body.append(line)
    if header and header != "<state machine>" and not header.endswith("("):
        info.steps = [header]  # a one-line example: test(x=1, y=2)
        return info
    is_machine = header == "<state machine>" or bool(body and body[0].strip().startswith("state = "))
    if not is_machine:
        first = next((len(line) - len(line.lstrip()) for line in body if line.strip()), 0)
        closing = next(
            (i for i, line in enumerate(body) if line.strip() == ")" and len(line) - len(line.lstrip()) < first),
            len(body),
        )
        body = body[:closing]  # the arguments of "test_name(...)"
    indent = min((len(line) - len(line.lstrip()) for line in body if line.strip()), default=0)
    steps: list[str] = []
    for line in body:
        if is_machine:
            if line.strip().startswith("state"):
                steps.append(line.strip())
            elif steps:
                steps[-1] += "\n" + line[indent:].rstrip()
            continue
        if len(line) - len(line.lstrip()) == indent and not line.lstrip().startswith((")", "]", "}")):
            steps.append(line.strip())
        elif steps:
            steps[-1] += "\n" + line[indent:].rstrip()
    steps = [s.removesuffix(",") for s in steps]
    info.steps = [s for s in steps if s.split("=", 1)[0].strip() not in fixtures]
    return info


def replay_command(
    nodeid: str,
    impl: str,
    profile: str,
    seed: int | None = None,
    rootdir: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> str:
    """The one shell command that runs exactly this test again, as `tiercheck verify` ran it, from any shell.

    It changes to `cwd` (where verify ran, so an `--impl` module found there is found again), names the test
    by its absolute path under pytest's `rootdir`, and uses the interpreter tiercheck runs in.
    """
    python = shlex.quote(sys.executable or "python")
    target = f"{str(rootdir).rstrip('/')}/{nodeid}" if rootdir is not None else nodeid
    parts = [f"cd {shlex.quote(str(cwd or os.getcwd()))}", "&&", f"TIERCHECK_PROFILE={shlex.quote(profile)}"]
    parts += [f"{name}={shlex.quote(os.environ[name])}" for name in _PASSED_ON if name in os.environ]
    parts += [python, "-m", "pytest", "-p", "tiercheck.pytest_plugin", "-p", "no:cacheprovider"]
    parts += ["--no-header", "-q", "--tb=short", shlex.quote(target), "--tiercheck-impl", shlex.quote(impl)]
    if seed is not None:
        parts.append(f"--hypothesis-seed={seed}")
    return " ".join(parts)
