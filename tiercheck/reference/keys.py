"""Content-addressed keys: blake3 of the WHOLE file, plus the tier, with a racy-safe stat memo.

A key is a pair `(content, variant)`: `content` is the hex blake3 of every byte of the file,
`variant` the hex blake3 of the tier string. Keeping them apart lets `invalidate(file)` drop every
tier name of one content in one operation per storage tier. Both are fixed-length hex, so no two
(content, tier) pairs can share a key and no key can spell a path or SQL.

The memo skips re-reading an unchanged file, trusting a stat signature only the way git trusts
its index: an entry recorded while the file was "racily clean" (modified within
`racy_window_ns` of the moment it was hashed) is never trusted, because a same-size rewrite in
the same timestamp tick, or one whose mtime was put back with os.utime, would look unchanged.
ctime is part of the signature too: utime cannot set it back.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import OrderedDict
from functools import lru_cache
from typing import NamedTuple

import blake3

_SMALL_FILE = 1 << 20  # below this, one read() beats mmap set-up
_STABLE_ATTEMPTS = 3


class UnreadableFile(OSError):
    """The path is not a readable regular file, or kept changing while it was hashed."""


class CacheKey(NamedTuple):
    """A tuple, so building, hashing and comparing one (every get does each) runs in C."""

    content: str
    variant: str

    def __str__(self) -> str:
        return f"{self.content}.{self.variant}"


@lru_cache(maxsize=1024)
def tier_variant(tier: str) -> str:
    """Hex digest naming one tier string; any str, including separators and lone surrogates."""
    if not isinstance(tier, str):
        raise TypeError(f"tier must be a str, got {type(tier).__name__}")
    return blake3.blake3(b"tiercheck-tier\0" + tier.encode("utf-8", "surrogatepass")).hexdigest(16)


def _signature(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ContentHasher:
    """Hashes files by content; thread-safe; memo bounded to `memo_size` paths.

    The memo holds only trusted signatures: whether one is racy is fixed when it is recorded (its
    mtime and ctime against the moment the file was hashed), so a racy one is never recorded and
    a hit is one stat and one comparison."""

    def __init__(self, racy_window_seconds: float = 2.0, memo_size: int = 4096) -> None:
        self.racy_window_ns = int(racy_window_seconds * 1e9)
        self._memo: OrderedDict[str, tuple[tuple[int, int, int, int, int], str]] = OrderedDict()
        self._memo_size = memo_size
        self._lock = threading.Lock()

    def content_id(self, file_path: str | os.PathLike[str]) -> str:
        """Hex blake3 of the file's bytes; raise UnreadableFile (an OSError) when it cannot be read."""
        path = os.fspath(file_path)
        if not isinstance(path, str) or "\0" in path:
            raise UnreadableFile(f"not a usable path: {path!r}")
        try:
            st = os.stat(path)
        except (OSError, ValueError) as exc:
            raise UnreadableFile(f"{path!r}: {exc}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFile(f"{path!r} is not a regular file")
        sig = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        memo = self._memo.get(path)  # each OrderedDict call is atomic: a hit takes no lock
        if memo is not None and memo[0] == sig:
            try:  # noqa: SIM105 (contextlib.suppress costs ~1 us per hit)
                self._memo.move_to_end(path)
            except KeyError:  # dropped by another thread meanwhile: the digest is still right
                pass
            return memo[1]
        for _ in range(_STABLE_ATTEMPTS):
            hashed_at = time.time_ns()
            digest = _hash_file(path, st.st_size)
            try:
                after = os.stat(path)
            except OSError as exc:
                raise UnreadableFile(f"{path!r}: {exc}") from exc
            if _signature(after) == sig:
                with self._lock:
                    if self._racy(sig, hashed_at):  # never trusted: a same-tick rewrite would look unchanged
                        self._memo.pop(path, None)
                    else:
                        self._memo[path] = (sig, digest)
                        self._memo.move_to_end(path)
                        while len(self._memo) > self._memo_size:
                            self._memo.popitem(last=False)
                return digest
            sig, st = _signature(after), after  # changed while we read it: read again
        raise UnreadableFile(f"{path!r} kept changing while it was hashed")

    def _racy(self, sig: tuple[int, int, int, int, int], hashed_at: int) -> bool:
        return max(sig[3], sig[4]) >= hashed_at - self.racy_window_ns

    def forget(self) -> None:
        with self._lock:
            self._memo.clear()


def _hash_file(path: str, size: int) -> str:
    hasher = blake3.blake3(b"tiercheck-content\0", max_threads=blake3.blake3.AUTO if size >= (64 << 20) else 1)
    try:
        if size < _SMALL_FILE:
            with open(path, "rb") as f:
                hasher.update(f.read())
        else:
            hasher.update_mmap(path)
    except (OSError, ValueError) as exc:
        raise UnreadableFile(f"{path!r}: {exc}") from exc
    return hasher.hexdigest()
