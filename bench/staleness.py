"""E6 staleness, measured: from an invalidate on instance A returning True to the first miss on B.

B holds the entry in its memory tier; A invalidates; B reads in a loop until it misses. Worlds:
real valkey (per-key coherence by CLIENT TRACKING) and database only (no Redis: per-key version
checks once per staleness window). Run: `python -m bench.staleness [--n 40] [--postgres]`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tiercheck import reference
from tiercheck.contract import Env
from tiercheck.integration import servers


def measure(env: Env, files: list[str]) -> list[float]:
    a, b = reference.factory(env), reference.factory(env)
    gaps = []
    try:
        for path in files:
            assert a.put(path, {"p": path}) and b.get(path) == {"p": path}
            for _ in range(3):
                b.get(path)  # a memory hit now
            assert a.invalidate(path)
            start = time.perf_counter()  # from the moment the invalidate returned True
            while b.get(path) is not None:
                pass
            gaps.append(time.perf_counter() - start)
    finally:
        a.shutdown()
        b.shutdown()
    return gaps


def summary(name: str, gaps: list[float], window: float) -> str:
    q = statistics.quantiles(gaps, n=100, method="inclusive")
    return (
        f"{name:<34} n={len(gaps):3d}  p50={q[49] * 1000:8.2f} ms  p99={q[98] * 1000:8.2f} ms  "
        f"max={max(gaps) * 1000:8.2f} ms  declared={window:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--postgres", action="store_true", help="also the database-only world on PostgreSQL")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="staleness-"))
    root.chmod(0o755)  # an unprivileged PostgreSQL (when run as root) must reach its data directory
    files = []
    for i in range(args.n):
        files.append(str(root / f"f{i}"))
        Path(files[-1]).write_bytes(b"file %d" % i)
    redis_server = servers.start_redis(str(root))
    try:
        worlds = {
            "valkey + sqlite (tracking)": dict(redis_url=redis_server.url, database_url=f"sqlite:///{root}/a.db"),
            "sqlite only (version polling)": dict(redis_url=None, database_url=f"sqlite:///{root}/b.db"),
        }
        pg = servers.start_postgres(str(root)) if args.postgres else None
        if pg is not None:
            worlds["postgresql only (version polling)"] = dict(redis_url=None, database_url=pg.url)
        for i, (name, urls) in enumerate(worlds.items()):
            env = Env(cache_dir=str(root / f"c{i}"), namespace=f"stale{i}", **urls)
            n = len(files) if "tracking" in name else max(5, len(files) // 4)
            print(summary(name, measure(env, files[:n]), 1.0), flush=True)
    finally:
        redis_server.close()
        servers.close_all()


if __name__ == "__main__":
    main()
