"""E6 staleness as observed: seconds from an invalidate on instance A returning to the first miss on
instance B, which held the entry in its memory tier. Two instances over the same backends, reached only
through the contract (put, get, invalidate) and `capabilities(cache).staleness_seconds` for the window.

B is polled (a get, then a short pause, until it misses or the window plus a margin has passed); the
pause bounds the resolution, which the report states. A trial in which B never misses within the
deadline is counted as a timeout, not folded into the percentiles.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tiercheck.contract import Cache, capabilities
from tiercheck.reference import CacheConfig, MetadataCache

from .paths import TIER
from .services import Services

POLL_SECONDS = 0.0005
MARGIN_SECONDS = 1.0


@dataclass
class Staleness:
    setup: str
    window: float  # declared by the implementation (capabilities), seconds
    seconds: list[float] = field(default_factory=list)  # one per trial that ended in a miss
    timeouts: int = 0  # trials in which B still served past window + margin
    wrong: int = 0  # trials in which B served something never put, or did not serve the put at all

    @property
    def trials(self) -> int:
        return len(self.seconds) + self.timeouts + self.wrong

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.seconds, q)) if self.seconds else float("nan")


def trial(a: Cache, b: Cache, path: str, value: dict, result: Staleness) -> None:
    """Put on A, B serves it twice (the second from its own memory), invalidate on A, poll B."""
    a.put(path, value, TIER)
    if b.get(path, TIER) != value or b.get(path, TIER) != value:
        result.wrong += 1
        return
    a.invalidate(path)
    returned = time.monotonic()
    deadline = returned + result.window + MARGIN_SECONDS
    while True:
        got = b.get(path, TIER)
        now = time.monotonic()
        if got is None:
            result.seconds.append(now - returned)
            return
        if got != value:
            result.wrong += 1
            return
        if now > deadline:
            result.timeouts += 1
            return
        time.sleep(POLL_SECONDS)  # pacing of the poll; the loop ends on B's first miss


def run(setup: str, a: Cache, b: Cache, files: list[str], values: list[dict], n: int = 0, until=None) -> Staleness:
    """n trials over the files in turn; or, given `until` (a callable), trials until it returns True."""
    result = Staleness(setup, capabilities(b).staleness_seconds)
    i = 0
    while (i < n) if until is None else not until():
        trial(a, b, files[i % len(files)], values[i % len(values)], result)
        i += 1
    return result


SETUPS = ("valkey + SQLite + disk", "PostgreSQL only")


@contextlib.contextmanager
def pair(svc: Services, workdir: Path, setup: str) -> Iterator[tuple[Cache, Cache]]:
    """Two instances A, B over the same backends, with one namespace:
    - "valkey + SQLite + disk": one real valkey, one cache_dir (its SQLite file and disk tier shared),
      as the README asks of instances that share backends;
    - "PostgreSQL only": one PostgreSQL database and nothing else shared (no Redis; each its own
      cache_dir with the disk tier off, so no unshared persistent tier can serve what A removed)."""
    root = Path(tempfile.mkdtemp(prefix="stale-", dir=workdir))
    namespace = f"bench-stale-{uuid.uuid4().hex[:8]}"
    if setup == SETUPS[0]:
        cfg = CacheConfig(cache_dir=str(root / "shared"), redis_url=svc.redis_url, namespace=namespace)
        configs = [cfg, cfg]
    elif setup == SETUPS[1]:
        if not svc.postgres_url:
            raise ValueError("PostgreSQL is not running")
        configs = [
            CacheConfig(
                cache_dir=str(root / name), database_url=svc.postgres_url, enable_disk=False, namespace=namespace
            )
            for name in ("a", "b")
        ]
    else:
        raise ValueError(f"unknown setup {setup!r}")
    a, b = MetadataCache(configs[0]), MetadataCache(configs[1])
    try:
        yield a, b
    finally:
        with contextlib.suppress(Exception):
            a.clear_all()
        a.shutdown()
        b.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def probe_files(root: Path, n: int = 20) -> list[str]:
    """Small files of distinct content for the trials (not the workload's: no interference)."""
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = root / f"stale-{i:03d}.txt"
        path.write_bytes(f"staleness probe {i} {uuid.uuid4().hex}\n".encode())
        out.append(str(path))
    return out
