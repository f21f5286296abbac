"""Real servers for the run, from tiercheck/integration/servers.py (valkey-server and PostgreSQL from wheels).

Stopped gracefully (SIGTERM, waiting for exit) before `close()`: PostgreSQL then reaps its own
backends; a bare SIGKILL of the group leaves them as zombies under PID 1 on this machine.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from tiercheck.integration import servers


@dataclass
class Services:
    redis_url: str
    redis_version: str
    postgres_url: str | None
    postgres_version: str
    postgres_note: str = ""


def _redis_version(handle: servers.ServerHandle) -> str:
    found = servers.redis_binary()
    if found is None:
        return handle.provider
    out = subprocess.run([found[0], "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return out.split(" sha=")[0] or handle.provider


def _postgres_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])


@contextlib.contextmanager
def running(want_postgres: bool = True) -> Iterator[Services]:
    """Start valkey (required) and PostgreSQL (optional: its absence is reported, not fatal)."""
    handles: list[servers.ServerHandle] = []
    try:
        redis = servers.start_redis()
        handles.append(redis)
        pg_url, pg_version, note = None, "not run", ""
        if want_postgres:
            try:
                pg = servers.start_postgres()
                handles.append(pg)
                pg_url, pg_version = pg.url, _postgres_version(pg.url)
            except servers.Unavailable as exc:
                note = f"PostgreSQL not available: {exc}"
        else:
            note = "PostgreSQL skipped (--no-postgres)"
        yield Services(redis.url, _redis_version(redis), pg_url, pg_version, note)
    finally:
        for handle in reversed(handles):
            if handle.controllable:
                handle.stop()
            handle.close()
