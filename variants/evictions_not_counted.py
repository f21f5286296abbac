"""Bug: the memory tier evicts its least recently used entry but nobody counts the eviction.

`self._memory_cache.popitem(last=False)` with the `stats["evictions"] += 1` forgotten (it was in
the branch that was refactored away): the stats report zero evictions on a thrashing cache.
Expected to be caught by P8 (evictions are counted).
"""

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.memory_tier import MemoryTier

from . import build


class SilentEvictionMemoryTier(MemoryTier):
    def put(self, key, expires_at, payload):
        super().put(key, expires_at, payload)
        return 0  # BUG: the evictions just made are not reported


class UncountedEvictionsCache(MetadataCache):
    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        self.memory = SilentEvictionMemoryTier(self.config.max_memory_entries, self.config.max_memory_bytes)


def factory(env):
    return build(UncountedEvictionsCache, env)
