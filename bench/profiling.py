"""Where the time goes on a path that misses its target: pyinstrument (a statistical profiler that
needs no build step or ptrace rights) over a few thousand ops. The report keeps the call tree below
the cache's own get/put/invalidate, so the untimed per-op set-up (a put before an invalidate) is left
out. The tree is read from the profiler's output by the cache's class name: no internals assumed."""

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
    wanted = f"{type(sc.cache).__name__}.{method(sc)}"
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


def method(sc: Scenario) -> str:
    return {"writes": "put", "invalidations": "invalidate"}.get(sc.counter, "get")


def micro(metadata: dict, n: int) -> dict[str, float]:
    """Medians (µs) of library steps any cache does on these paths: the floor under the anchors."""
    import os
    import tempfile

    import blake3
    import orjson
    import zstandard

    from . import timing

    raw = orjson.dumps(metadata)
    cctx, dctx = zstandard.ZstdCompressor(level=3), zstandard.ZstdDecompressor()
    blob = cctx.compress(raw)
    fd, path = tempfile.mkstemp()
    os.close(fd)
    try:
        out = {
            "orjson.dumps": timing.median_us(timing.run(lambda i: orjson.dumps(metadata), n)),
            "orjson.loads": timing.median_us(timing.run(lambda i: orjson.loads(raw), n)),
            "zstd compress (level 3)": timing.median_us(timing.run(lambda i: cctx.compress(raw), n)),
            "zstd decompress": timing.median_us(timing.run(lambda i: dctx.decompress(blob), n)),
            "blake3 of the entry": timing.median_us(timing.run(lambda i: blake3.blake3(blob).digest(), n)),
            "os.stat": timing.median_us(timing.run(lambda i: os.stat(path), n)),
        }
    finally:
        os.unlink(path)
    return out
