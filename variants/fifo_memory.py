"""Bug: the memory tier evicts in insertion order (FIFO): a get does not refresh an entry.

A plain dict (insertion-ordered) used as an "LRU" without `move_to_end` on a hit: the hottest
entry is evicted first once enough new files arrive. Expected to be caught by P8 (LRU model).
"""

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.config import CacheConfig
from tiercheck.reference.memory_tier import MemoryTier

from . import build


class FifoMemoryTier(MemoryTier):
    def get(self, key, now):
        with self._lock:
            item = self._entries.get(key)
            if item is None:
                return None
            if now >= item[0]:
                self._drop(key)
                return None
            return item  # BUG: no self._entries.move_to_end(key)


def factory(env):
    config = CacheConfig.from_contract_env(env)
    return build(MetadataCache, env, config, memory=FifoMemoryTier(config.max_memory_entries, config.max_memory_bytes))
