"""The project keeps its promises to a new user: README commands, CI, import hygiene."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    """The shell commands of the README's 'The two commands' section."""
    section = (ROOT / "README.md").read_text().split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_has_the_two_commands():
    commands = readme_commands()
    assert len(commands) == 2, commands
    assert "tiercheck verify" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci, "'.ci/run' must run the README's test command exactly"


def test_importing_reference_opens_no_socket_and_starts_no_thread():
    probe = (
        "import sys, threading\n"
        "events = []\n"
        "sys.addaudithook(lambda e, a: events.append(e) if e.startswith('socket.') else None)\n"
        "before = threading.active_count()\n"
        "from tiercheck import reference\nimport tiercheck.reference.legacy\n"
        "cache = reference.MetadataCache()\n"
        "assert not events, events\n"
        "assert threading.active_count() == before, threading.enumerate()\n"
        "print('clean')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": "/nonexistent", "PATH": "/usr/bin:/bin"},
        cwd=str(ROOT),
    )
    assert out.returncode == 0 and out.stdout.strip() == "clean", out.stderr
