"""`python -m bench [--quick]`: run every measurement once and write BENCHMARKS.md and the plot."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import orjson

from . import (
    anchors,
    footprint,
    harness,
    hashing,
    mixed,
    paths,
    plot,
    profiling,
    report,
    scaling,
    services,
    staleness,
    targets,
    timing,
    tuning,
)
from .workload import make_big_file, make_workload

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    "tiercheck",
    "redis",
    "cachetools",
    "diskcache",
    "blake3",
    "xxhash",
    "zstandard",
    "orjson",
    "psycopg",
    "matplotlib",
    "numpy",
    "pyinstrument",
]


def machine(workdir: Path) -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    fs = max((m for m in mounts if str(workdir).startswith(m[1])), key=lambda m: len(m[1]))
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{int(mem) / (1 << 20):.1f} GiB",
        "kernel": platform.release(),
        "fs": f"{fs[2]} ({fs[0]} at {fs[1]})",
    }


def versions(svc: services.Services) -> dict[str, str]:
    out = {"Python": platform.python_version(), "SQLite": sqlite3.sqlite_version}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["server"] = svc.redis_version
    out["PostgreSQL"] = svc.postgres_version
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="5,000 ops and small samples: a smoke test (~2 minutes)")
    ap.add_argument("--ops", type=int, help="mixed-run operations (default 100,000; quick 5,000)")
    ap.add_argument("--trials", type=int, help="staleness trials per quiet setup (default 100; quick 10)")
    ap.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL server")
    ap.add_argument(
        "--no-harness", action="store_true", help="skip the harness timings (suites, variants; skipped with --quick)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--plot", type=Path, default=ROOT / "bench" / "latency.png")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    n_ops = args.ops or (5_000 if args.quick else 100_000)
    n_files = 200 if args.quick else 2_000
    n = 500 if args.quick else max(1_000, n_ops // 10)  # timed ops per path
    n_trials = args.trials or (10 if args.quick else 100)
    big_size = (16 if args.quick else 256) << 20
    workdir = Path(tempfile.mkdtemp(prefix="tiercheck-bench-"))
    phases: list[tuple[str, float]] = []

    def say(msg: str) -> None:
        now = time.perf_counter() - t_start
        phases.append((msg, now))
        print(f"[{now:7.1f}s] {msg}", flush=True)

    argv_shown = " ".join(argv if argv is not None else sys.argv[1:])
    r: dict = {
        "quick": args.quick,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "command": f"python -m bench {argv_shown}".strip(),
        "n_samples": n,
        "n_trials": n_trials,
    }
    load = timing.LoadSampler()
    try:
        say(f"workload: {n_files} files, {n_ops} ops, {n} samples per path, in {workdir}")
        wl = make_workload(workdir / "src", n_files, n_ops)
        big = make_big_file(workdir / "big.bin", big_size)  # early: it must age past the racy window
        probe = staleness.probe_files(workdir / "stale")
        r.update(machine=machine(workdir), n_files=n_files, n_cold=len(wl.cold))
        with services.running(not args.no_postgres) as svc:
            r["versions"] = versions(svc)
            r["servers"] = (
                f"Redis protocol: {svc.redis_version}; PostgreSQL: {svc.postgres_version}"
                + (f" ({svc.postgres_note})" if svc.postgres_note else "")
                + " — from tiercheck/integration/servers.py"
            )
            say("keys of big files: first get vs plain read")
            r["bandwidth"] = hashing.bandwidth(big, wl.files[0], workdir, 3 if args.quick else 7)
            say("anchors: setting up")
            lat: dict[str, np.ndarray] = {}
            checks: dict[str, tuple[int, int, dict[str, int]]] = {}
            names = [k for k in paths.SCENARIOS if k != "postgres hit" or svc.postgres_url] + ["put (no fsync)"]
            threads_at = (1, 2, 4, 8)
            with anchors.opened(svc, wl, workdir) as anchor_ops:
                for name in names:
                    paired = [a for a in anchors.PAIRS.get(name, []) if a in anchor_ops]
                    say(f"reference: {name}" + (f", interleaved with {', '.join(paired)}" if paired else ""))
                    with paths.scenario(
                        name, svc, wl, workdir, **({"disk_fsync": False} if "no fsync" in name else {})
                    ) as sc:
                        ops = {name: (sc.op, sc.before), **{a: anchor_ops[a] for a in paired}}
                        timed, moved, failed = paths.counted(sc, lambda ops=ops: timing.interleaved(ops, n))
                        lat.update(timed)
                        checks[name] = (moved, n + min(50, n), failed)
                        if name == "disk hit":
                            r["disk_usage"] = tuning.disk_usage(sc.cache_dir, len(wl.files))
                        if name == "memory hit":
                            say("threads: reference memory hits and the anchor behind a lock, in rounds")
                            nf = len(wl.files)
                            r["threads_rounds"] = (0.3, 3) if args.quick else (1.0, 5)  # seconds per figure, rounds
                            load_before = os.getloadavg()[0]
                            with timing.OthersCpu() as others:
                                r["threads"], r["anchor_threads"] = scaling.threads(
                                    lambda i, c=sc.cache, nf=nf: c.get(wl.files[i % nf], paths.TIER),
                                    anchors.fresh_copy_lru(wl, threading.Lock()),
                                    threads_at,
                                    *r["threads_rounds"],
                                )
                            r["threads_load"] = max(load_before, os.getloadavg()[0])
                            r["threads_others"] = others.cores
            anchors.add_sums(lat)
            say("repeated get on the big file")
            big_lat = hashing.repeated_get(big, wl.files[0], wl.metadata[0], workdir, n)
            lat.update(big_lat)
            say("mixed workload, one process")
            r["mixed_latency"], r["mixed"] = mixed.run(svc, wl, workdir)
            r["staleness"] = []
            for setup in staleness.SETUPS:
                if setup == "PostgreSQL only" and not svc.postgres_url:
                    continue
                say(f"staleness, quiet: {setup}")
                with staleness.pair(svc, workdir, setup) as (a, b):
                    r["staleness"].append(staleness.run(setup, a, b, probe, wl.metadata, n_trials))
            r["ops_per_process"] = min(20_000 if not args.quick else 2_000, n_ops // 4)
            r["processes"] = {}
            for k in (1, 2, 4):
                say(f"mixed workload, {k} process(es) sharing backends, staleness probe beside them")
                r["processes"][k] = scaling.processes(svc, wl, workdir, k, r["ops_per_process"], probe)
            r["targets"] = targets.evaluate(
                lat, r["processes"], r["threads"], r["anchor_threads"], r["threads_load"], os.cpu_count() or 1,
                r.get("threads_others"),
            )
            for x in r["targets"]:
                failed = checks.get(x.path, (0, 0, {}))[2]
                if failed and x.op:
                    x.inconclusive = "tiers failed while timed: " + ", ".join(f"{t} {k}x" for t, k in failed.items())
            r["earlier_targets"] = targets.earlier(r["bandwidth"], big_lat)
            say("library floors")
            r["micro"] = profiling.micro(wl.metadata[0], n)
            r["latency_so_far"] = lat
            profile_dir = args.out.resolve().parent / "bench" / "profiles"  # the report links them relative to itself
            r["profiles"] = profiles(r["targets"], svc, wl, workdir, 300 if args.quick else 3_000, r, profile_dir, say)
        say("memory footprint")
        r["footprint"] = footprint.measure(5_000 if args.quick else 20_000, str(workdir))
        say("compression levels")
        r["compression"] = tuning.compression(wl.metadata, n)
        r["payload_bytes"] = float(np.mean([len(orjson.dumps(md)) for md in wl.metadata]))
        r["stored_bytes"] = r["compression"][3]["entry_bytes"]
        r.update(latency=lat, checks=checks)
        r["guide"] = report.guide(r)
        r["not_measured"] = NOT_MEASURED + (
            [
                "- The harness's own speed (suite wall times, time to catch each broken variant): skipped in this run "
                "(`--no-harness` or `--quick`)."
            ]
            if args.no_harness or args.quick
            else []
        )
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot.draw(lat, args.plot, f"tiercheck reference cache vs anchors — {n:,} ops per path, {r['date']} UTC")
        harness_section = "" if args.no_harness or args.quick else harness.render(harness.measure(say))
        say("report")
        r["wall_s"] = time.perf_counter() - t_start
        r["load"] = load.stop()
        r["phases"] = phases
        args.out.write_text(report.render(r) + harness_section)
        print(f"wrote {args.out} and {args.plot} in {r['wall_s']:.0f} s")
        for x in r["targets"] + r["earlier_targets"]:
            shown = x.show(x.value) if x.measured else "-"
            print(f"  {x.name:62s} {shown:>8s}  {x.bound:10s} {x.verdict.strip('*')[:40]}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def profiles(found: list[targets.Target], svc, wl, workdir: Path, n: int, r: dict, out_dir: Path, say) -> list[str]:
    """pyinstrument over each missed latency target's reference path; the other missed targets get a note."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.txt"):
        old.unlink()
    lines: list[str] = []
    done: set[str] = set()
    for x in found:
        if not x.measured or not x.op or x.met or x.inconclusive:
            continue
        if not x.path:
            lines += [f"### {x.name}: {x.show(x.value)} (target {x.bound})", "", *floor_notes(x, r), ""]
            continue
        if x.path in done:
            continue
        done.add(x.path)
        say(f"profile: {x.path}")
        text = out_dir / f"{x.path.replace(' ', '-')}.txt"
        with paths.scenario(x.path, svc, wl, workdir) as sc:
            tree, kinds = profiling.profile(sc, n, text)
            entry = f"{type(sc.cache).__name__}.{profiling.method(sc)}"
        seconds = float(tree[0].split()[0]) if tree and tree[0].split()[0].replace(".", "").isdigit() else 0.0
        lines += [
            f"### {x.path}: {x.show(x.value)} {x.anchor} (target {x.bound})",
            "",
            f"pyinstrument, {n:,} ops ({1e6 * seconds / n:.0f} µs per op under the profiler), the tree below "
            f"`{entry}`, seconds in total over the run "
            f"(full tree: [bench/profiles/{text.name}](bench/profiles/{text.name})):",
            "",
            "```",
            *tree,
            "```",
            "",
            *io_floor(x, kinds, r),
            *floor_notes(x, r),
            "",
        ]
    return lines or ["Every measured target was met in this run: nothing to profile."]


def io_floor(x: targets.Target, kinds: dict[str, float], r: dict) -> list[str]:
    """The profile's time by kind of work, and the ratio the I/O and decoding alone would give: below it no
    trimming of code can go, for this path's set of tier operations."""
    total = sum(kinds.values())
    if total <= 0:
        return []
    lat = r["latency_so_far"]
    ref, anchor = float(np.median(lat[x.path])) / 1000, float(np.median(lat[x.anchor])) / 1000
    work = sum(kinds[k] for k in (*profiling.IO_KINDS, profiling.CODEC)) / total
    floor = ref * work / anchor
    rows = [f"| {k} | {100 * v / total:.1f} % | {ref * v / total:.0f} µs |" for k, v in kinds.items()]
    verdict = (
        f"so the target ({x.bound}) is out of reach for this set of tier operations: they, not code, make the gap"
        if floor > x.limit
        else f"below the target ({x.bound}): the rest of the gap is code, where the tree above puts it (the profiler "
        "hooks every call, so it overstates the Python share)"
    )
    return [
        "Where the time goes, from the same profile (each C call classified by its name; the rest is Python), "
        f"applied to this run's median ({ref:.0f} µs, no profiler):",
        "",
        "| kind of work | share | of the median |",
        "|---|---:|---:|",
        *rows,
        "",
        f"The I/O and decoding alone ({100 * work:.0f} %) are {ref * work:.0f} µs, **{floor:.2f}x** the anchor "
        f"({x.anchor}, {anchor:.0f} µs): {verdict}.",
        "",
    ]


def _sequence_note(med: dict[str, float], raw: str) -> str:
    """How much more the same raw ops cost back to back in one op than timed apart: a floor for any cache that
    performs them in sequence, with no code of its own at all."""
    apart, together = med.get(f"{raw} (sum)"), med.get(f"{raw} (in sequence)")
    if not apart or not together:
        return ""
    return (
        f" The same raw ops back to back in one op, as a cache performs them, take {together:.0f} µs: "
        f"**{together / apart:.2f}x** the sum of the parts timed apart ({apart:.0f} µs) — a floor with no cache "
        "code at all."
    )


def floor_notes(x: targets.Target, r: dict) -> list[str]:
    """The floor under a missed target, from this run's library and anchor medians (no claims about code)."""
    u, med = r["micro"], {k: float(np.median(v)) / 1000 for k, v in r["latency_so_far"].items()}
    notes = {
        "memory hit": f"Floor: a memory hit that honours P1 (a fresh dict per get) pays at least os.stat "
        f"({u['os.stat']:.1f} µs) + orjson.loads of the payload ({u['orjson.loads']:.1f} µs) in this run; the "
        f"anchor adds only the cachetools lookup ({med['cachetools get+stat+orjson.loads']:.1f} µs in all; the "
        f"reference {med['memory hit']:.1f} µs). Without the copy, cachetools get+stat is "
        f"{med['cachetools get+stat']:.1f} µs.",
        "disk hit": f"Anchor: diskcache get {med['diskcache get']:.1f} µs (one SELECT on an open connection + "
        f"unpickle). A hit that checks and decodes its entry also pays zstd decompress ({u['zstd decompress']:.1f} "
        f"µs), orjson.loads ({u['orjson.loads']:.1f} µs) and a checksum (xxh3_128 of the entry: "
        f"{u['xxh3_128 of the entry']:.1f} µs).",
        "sqlite hit": f"Anchor: SELECT + decode {med['sqlite SELECT+decode']:.1f} µs; a checksum on top costs "
        f"{u['xxh3_128 of the entry']:.1f} µs (xxh3_128 of the entry).",
        "put": f"Anchor: Redis SET {med['redis SET']:.0f} µs + fsync'd file write {med['file write+fsync']:.0f} µs + "
        f"SQLite upsert {med['sqlite upsert']:.0f} µs. Encoding is not in the anchor: orjson.dumps "
        f"{u['orjson.dumps']:.1f} µs + zstd compress {u['zstd compress (level 3)']:.1f} µs."
        f"{_sequence_note(med, 'raw writes')}",
        "invalidate": f"Anchor: Redis DEL {med['redis DEL']:.0f} µs + file unlink {med['file unlink']:.0f} µs + "
        f"SQLite DELETE {med['sqlite DELETE']:.0f} µs of the one entry. An invalidate of a file removes the entry of "
        "every tier name (P3), and a cache that fences late writes (E1) records that, so it may do more than these "
        f"three deletes.{_sequence_note(med, 'raw deletes')}",
    }
    if x.path in notes:
        return [notes[x.path]]
    if x.name.startswith("mixed run"):
        return [
            "No profile: a share of gets is not a latency. The counts per process count are in *Concurrency*, beside "
            f"the staleness measured under the same load. {x.note}."
        ]
    if x.name.startswith("memory-hit throughput"):
        return [
            "No profile (pyinstrument samples one thread). The anchor shows what the GIL leaves on this machine: "
            f"{x.note}."
        ]
    return []


NOT_MEASURED = [
    "- py-spy: pyinstrument was enough to attribute the time (and needs no ptrace rights).",
    "- PostgreSQL puts and the multi-process runs on PostgreSQL: the database anchors and targets are SQLite's; the "
    "PostgreSQL hit is reported for context, and PostgreSQL appears in the staleness table.",
    "- Network latency: every server is on 127.0.0.1; a Redis or PostgreSQL across a network adds its round trip to "
    "the hits and to every put.",
]


if __name__ == "__main__":
    sys.exit(main())
