"""Where the time goes on a path that misses its target: pyinstrument (a statistical profiler that
needs no build step or ptrace rights) over a few thousand ops. The report keeps the call tree
below the cache's own get/put, so the untimed per-op set-up (evicting the memory tier) is left out."""

from __future__ import annotations

from pathlib import Path

from pyinstrument import Profiler

from .paths import Scenario


def profile(sc: Scenario, n: int, text_out: Path, max_lines: int = 34) -> list[str]:
    """Run the scenario's op n times under the profiler; write the full tree, return the part under get/put."""
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for i in range(n):
        if sc.before is not None:
            sc.before(i)
        sc.op(i)
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    text_out.write_text(text)
    wanted = "MetadataCache.put" if sc.counter == "writes" else "MetadataCache.get"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if wanted in line), None)
    if start is None:
        return lines[:max_lines]
    indent = len(lines[start]) - len(lines[start].lstrip("|`- "))
    tree = [lines[start][indent:]]
    for line in lines[start + 1 :]:
        depth = len(line) - len(line.lstrip("|`- "))
        if depth <= indent or len(tree) >= max_lines:  # the subtree ended (or is long enough)
            break
        tree.append(line[indent:])
    return tree


def micro(redis_url: str, metadata: dict, n: int) -> dict[str, float]:
    """Medians (µs) of the pieces the profiles point at, to say what closing a gap would buy."""
    import orjson
    import redis

    from tiercheck.reference.codec import dump_metadata

    from . import timing

    raw = orjson.dumps(metadata)
    client = redis.Redis.from_url(redis_url)
    blob = b"x" * 1200

    def pipe(transaction: bool) -> None:
        p = client.pipeline(transaction=transaction)
        p.hset("bench-micro", "v", blob)
        p.pexpire("bench-micro", 10**9)
        p.execute()

    out = {
        "orjson.dumps": timing.median_us(timing.run(lambda i: orjson.dumps(metadata), n)),
        "dump_metadata": timing.median_us(timing.run(lambda i: dump_metadata(metadata), n)),
        "orjson.loads": timing.median_us(timing.run(lambda i: orjson.loads(raw), n)),
        "redis MULTI/HSET/PEXPIRE/EXEC": timing.median_us(timing.run(lambda i: pipe(True), n)),
        "redis HSET+PEXPIRE pipelined": timing.median_us(timing.run(lambda i: pipe(False), n)),
        "redis SET": timing.median_us(timing.run(lambda i: client.set("bench-micro-s", blob), n)),
    }
    client.delete("bench-micro", "bench-micro-s")
    client.close()
    return out
