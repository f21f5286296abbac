"""Content-addressed keys: blake3 of the WHOLE file plus blake3 of the tier, with a racy-safe stat memo.

`CacheKey(content, variant)` keeps the two apart so `invalidate(file)` drops every tier name of one
content in one operation per tier; both are fixed-length hex, so no key can collide, spell a path or SQL.
The memo trusts a stat signature (with ctime, which utime cannot set back) only as git trusts its index:
never for a file modified within `racy_window_ns` of being hashed, where a same-tick rewrite looks unchanged.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from operator import attrgetter
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
        return ".".join(self)  # content.variant; the cache spells it so where a frame counts


@lru_cache(maxsize=1024)
def tier_variant(tier: str) -> str:
    """Hex digest naming one tier string; any str, including separators and lone surrogates."""
    if not isinstance(tier, str):
        raise TypeError(f"tier must be a str, got {type(tier).__name__}")
    return blake3.blake3(b"tiercheck-tier\0" + tier.encode("utf-8", "surrogatepass")).hexdigest(16)


Signature = tuple[int, int, int, int, int, int]


# the stat fields that tell an unchanged file, as a tuple; attrgetter is C code: no Python frame per get
_signature: Callable[[os.stat_result], Signature] = attrgetter(
    "st_mode", "st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns"
)


class ContentHasher:
    """Hashes files by content; thread-safe. The memo (`memo_size` paths) holds only non-racy signatures,
    so a hit is one stat and one comparison."""

    def __init__(self, racy_window_seconds: float = 2.0, memo_size: int = 4096) -> None:
        self.racy_window_ns = int(racy_window_seconds * 1e9)
        self._memo: OrderedDict[str, tuple[Signature, str]] = OrderedDict()
        self._memo_size = memo_size
        self._lock = threading.Lock()

    def content_id(self, file_path: str | os.PathLike[str]) -> str:
        """Hex blake3 of the file's bytes; raise UnreadableFile (an OSError) when it cannot be read."""
        path = file_path
        if type(path) is not str:
            path = os.fspath(path)
            if not isinstance(path, str):
                raise UnreadableFile(f"not a usable path: {path!r}")
        try:
            st = os.stat(path)
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            raise UnreadableFile(f"{path!r}: {exc}") from exc
        sig = _signature(st)
        memo = self._memo.get(path)  # each OrderedDict call is atomic: a hit takes no lock
        if memo is not None and memo[0] == sig:  # memoized: a regular file, and the mode is in the signature
            try:  # noqa: SIM105 (contextlib.suppress costs ~1 us per hit)
                self._memo.move_to_end(path)
            except KeyError:  # dropped by another thread meanwhile: the digest is still right
                pass
            return memo[1]
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFile(f"{path!r} is not a regular file")
        for _ in range(_STABLE_ATTEMPTS):
            hashed_at = time.time_ns()
            digest = _hash_file(path, st.st_size)
            try:
                after = os.stat(path)
            except OSError as exc:
                raise UnreadableFile(f"{path!r}: {exc}") from exc
            if _signature(after) == sig:
                with self._lock:
                    if max(sig[4], sig[5]) >= hashed_at - self.racy_window_ns:  # racy: never trusted
                        self._memo.pop(path, None)
                    else:
                        self._memo[path] = (sig, digest)
                        self._memo.move_to_end(path)
                        while len(self._memo) > self._memo_size:
                            self._memo.popitem(last=False)
                return digest
            sig, st = _signature(after), after  # changed while we read it: read again
        raise UnreadableFile(f"{path!r} kept changing while it was hashed")


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
