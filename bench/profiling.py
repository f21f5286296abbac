"""Where the time goes on a path that misses its target: pyinstrument (a statistical profiler that
needs no build step or ptrace rights) over a few thousand ops. The report keeps the call tree below
the cache's own get/put/invalidate, so the untimed per-op set-up (a put before an invalidate) is left
out. The tree is read from the profiler's output by the cache's class name: no internals assumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyinstrument import Profiler

from .paths import Scenario


def profile(sc: Scenario, n: int, text_out: Path, max_lines: int = 34) -> tuple[list[str], dict[str, float]]:
    """Run the scenario's op n times under the profiler; write the full tree; return the part under
    get/put/invalidate and its seconds by kind of work (`breakdown`)."""
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
    kinds = breakdown(profiler.last_session.root_frame(), wanted) if profiler.last_session else {}
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if wanted in line), None)
    if start is None:
        return lines[:max_lines], kinds
    indent = len(lines[start]) - len(lines[start].lstrip("|`- "))
    tree = [lines[start][indent:]]
    for line in lines[start + 1 :]:
        depth = len(line) - len(line.lstrip("|`- "))
        if depth <= indent or len(tree) >= max_lines:  # the subtree ended (or is long enough)
            break
        tree.append(line[indent:])
    return tree, kinds


IO_KINDS = ("network round trips", "file system calls", "SQLite statements")
CODEC = "encode/decode (orjson, zstd, checksums)"
KINDS = (*IO_KINDS, CODEC, "other C calls", "Python")
_FILE_CALLS = {"open", "read", "write", "close", "fsync", "unlink", "rename", "replace", "listdir", "scandir", "stat"}
_FILE_CALLS |= {"lstat", "fstat", "mkdir", "makedirs", "rmdir", "flock", "lockf", "utime"}
_CODEC_CALLS = {"loads", "dumps", "compress", "decompress", "digest", "hexdigest", "update", "frame_content_size"}


def _kind(function: str) -> str:
    """What a C call does, from its name alone (no knowledge of the cache's code)."""
    name = function.rpartition(".")[2]
    if any(word in function for word in ("recv", "send", "socket", "select", "poll")):
        return "network round trips"
    if function.startswith(("Connection.", "Cursor.")):  # sqlite3's C objects
        return "SQLite statements"
    if name in _FILE_CALLS or function.startswith(("BufferedReader.", "BufferedWriter.", "FileIO.")):
        return "file system calls"
    if name in _CODEC_CALLS or "blake3" in function or "xxh" in function or "Zstd" in function:
        return CODEC
    return "other C calls"


def breakdown(root: Any, wanted: str) -> dict[str, float]:
    """Seconds under every `wanted` frame, by kind: each C call (a `<built-in>` frame, children included)
    by what it does; the rest is Python. The I/O kinds are what no implementation of the path avoids."""
    out = dict.fromkeys(KINDS, 0.0)

    def name(frame: Any) -> str:
        return f"{frame.class_name}.{frame.function}" if getattr(frame, "class_name", None) else frame.function

    def inside(frame: Any) -> None:
        if frame.file_path == "<built-in>":
            out[_kind(name(frame))] += frame.time
            out["Python"] -= frame.time
            return
        for child in frame.children:
            inside(child)

    def find(frame: Any) -> None:
        if name(frame) == wanted:
            out["Python"] += frame.time
            inside(frame)
            return
        for child in frame.children:
            find(child)

    find(root)
    return out


def method(sc: Scenario) -> str:
    return {"writes": "put", "invalidations": "invalidate"}.get(sc.counter, "get")


def micro(metadata: dict, n: int) -> dict[str, float]:
    """Medians (µs) of library steps any cache does on these paths: the floor under the anchors."""
    import os
    import tempfile

    import orjson
    import xxhash
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
            "xxh3_128 of the entry": timing.median_us(timing.run(lambda i: xxhash.xxh3_128_digest(blob), n)),
            "os.stat": timing.median_us(timing.run(lambda i: os.stat(path), n)),
        }
    finally:
        os.unlink(path)
    return out
