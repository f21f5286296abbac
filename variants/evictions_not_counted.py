"""Bug: the memory tier evicts its least recently used entry but nobody counts the eviction.

`self._memory_cache.popitem(last=False)` with the `stats["evictions"] += 1` forgotten (it was in
the branch that was refactored away): the stats report zero evictions on a thrashing cache.
Expected to be caught by P8 (evictions are counted).
"""

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.config import CacheConfig
from tiercheck.reference.memory_tier import MemoryTier

from . import build


class SilentEvictionMemoryTier(MemoryTier):
    def _evict(self):
        entries = self._entries
        while len(entries) > self.max_entries or (self.max_bytes is not None and self._bytes > self.max_bytes):
            self._forget(*entries.popitem(last=False))  # BUG: no `self.evictions += 1`
        return 0


def factory(env):
    config = CacheConfig.from_contract_env(env)
    return build(
        MetadataCache, env, config, memory=SilentEvictionMemoryTier(config.max_memory_entries, config.max_memory_bytes)
    )
