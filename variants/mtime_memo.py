"""Bug: a stat memo that trusts (size, mtime) with a one-second tolerance and skips re-hashing.

The original MetaExtract cache compared `abs(cached_mtime - st_mtime) < 1.0` to "absorb filesystem
timestamp jitter": a file rewritten in place with the same size within that second (or whose mtime
was put back with os.utime) keeps its old key, so the old content's metadata is served for the new
content. Expected to be caught by P3 (same-size rewrites in the invalidation machine).
"""

import os

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.keys import ContentHasher

from . import build


class ToleranceHasher(ContentHasher):
    def __init__(self, racy_window_seconds=2.0, memo_size=4096):
        super().__init__(racy_window_seconds, memo_size)
        self._stat_memo = {}

    def content_id(self, file_path):
        path = os.fspath(file_path)
        try:
            st = os.stat(path)
        except (OSError, TypeError, ValueError):
            return super().content_id(path)  # let the reference raise its usual error
        memo = self._stat_memo.get(path)
        if memo and memo[0] == st.st_size and abs(memo[1] - st.st_mtime) < 1.0:  # BUG: size+mtime, 1 s slack
            return memo[2]
        digest = super().content_id(path)
        self._stat_memo[path] = (st.st_size, st.st_mtime, digest)
        return digest


def factory(env):
    return build(MetadataCache, env, hasher=ToleranceHasher())
