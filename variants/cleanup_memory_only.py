"""Bug: cleanup() purges expired entries from the memory tier only.

The lower tiers "expire on their own" — except they do not: the disk keeps every expired file until
the budget evicts it, and the database grows without bound. Expected to be caught by P9 (after
cleanup() no tier holds an expired entry).
"""

from tiercheck.reference.cache import MetadataCache

from . import build


class MemoryOnlyCleanupCache(MetadataCache):
    def cleanup(self):
        self._check_open()
        self._start()
        self.memory.purge_expired(self.config.clock())  # BUG: Redis, disk and database are not swept


def factory(env):
    return build(MemoryOnlyCleanupCache, env)
