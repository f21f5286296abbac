"""`python -m bench.hitratio [--rounds 3] [--n 10000] [--profile]`: only the disk-hit and SQLite-hit
ratios, measured as `python -m bench` measures them (same scenarios from paths.py, same anchors as
anchors.py, interleaved in rounds of 50 ops, ratio of medians), in seconds instead of minutes. Needs no
server: these two paths use only the disk and SQLite tiers. For iterating on the read path."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import diskcache
import numpy as np
import orjson
import zstandard

from . import anchors, paths, profiling, timing
from .services import Services
from .workload import Workload, make_workload

PATHS = {"disk hit": "diskcache get", "sqlite hit": "sqlite SELECT+decode"}


@contextlib.contextmanager
def _anchors(wl: Workload, workdir: Path) -> Iterator[dict[str, Callable[[int], object]]]:
    """The two anchors exactly as anchors.opened builds them (that one also needs Redis)."""
    keys, blobs = anchors._payloads(wl)
    nf = len(keys)
    dctx = zstandard.ZstdDecompressor()
    with contextlib.ExitStack() as stack:
        dc_dir = tempfile.mkdtemp(prefix="diskcache-", dir=workdir)
        stack.callback(shutil.rmtree, dc_dir, ignore_errors=True)
        dc = stack.enter_context(diskcache.Cache(dc_dir))
        for key, md in zip(keys, wl.metadata, strict=True):
            dc.set(key, md)
        con = stack.enter_context(anchors._sqlite(workdir))
        con.executemany("INSERT INTO t VALUES (?, ?)", zip(keys, blobs, strict=True))
        select = "SELECT v FROM t WHERE k = ?"
        yield {
            "diskcache get": lambda i: dc.get(keys[i % nf]),
            "sqlite SELECT+decode": lambda i: orjson.loads(
                dctx.decompress(con.execute(select, (keys[i % nf],)).fetchone()[0])
            ),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.hitratio", description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=10_000, help="timed ops per path and round")
    ap.add_argument("--files", type=int, default=2_000)
    ap.add_argument("--only", choices=sorted(PATHS), action="append")
    ap.add_argument("--profile", type=Path, help="write a pyinstrument tree per path into this directory")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="tiercheck-hitratio-"))
    svc = Services(redis_url="", redis_version="", postgres_url=None, postgres_version="")
    ratios: dict[str, list[float]] = {name: [] for name in args.only or PATHS}
    try:
        wl = make_workload(workdir / "src", args.files, 0)
        with _anchors(wl, workdir) as anchor_ops:
            for r in range(args.rounds):
                for name in ratios:
                    anchor = PATHS[name]
                    with paths.scenario(name, svc, wl, workdir) as sc:
                        ops = {name: (sc.op, None), anchor: (anchor_ops[anchor], None)}
                        timed, moved, failed = paths.counted(sc, lambda ops=ops: timing.interleaved(ops, args.n))
                        ref, anc = timing.median_us(timed[name]), timing.median_us(timed[anchor])
                        ratios[name].append(ref / anc)
                        p90 = float(np.percentile(timed[name], 90)) / 1000
                        print(
                            f"round {r + 1} {name}: {ref:.1f} us (p90 {p90:.1f}) / {anchor} {anc:.1f} us"
                            f" = {ref / anc:.3f}x  (counter moved {moved}, failures {failed or 'none'})",
                            flush=True,
                        )
                        if args.profile and r == 0:
                            args.profile.mkdir(parents=True, exist_ok=True)
                            out = args.profile / f"{name.replace(' ', '-')}.txt"
                            tree, _ = profiling.profile(sc, args.n, out, max_lines=60)
                            print("\n".join(tree))
        for name, values in ratios.items():
            shown = ", ".join(f"{v:.3f}" for v in values)
            print(f"{name}: median {statistics.median(values):.3f}x over {len(values)} rounds ({shown})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
