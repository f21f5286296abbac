"""Bug: the memory tier treats an entry as live while `now <= expires_at` (instead of `now < expires_at`).

An off-by-one at the boundary: at exactly put time + TTL the memory tier still serves the entry
(the lower tiers, which compare correctly, would not). Expected to be caught by P9 (the TTL
machine samples the boundary: advancing the clock by exactly the TTL).
"""

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.config import CacheConfig
from tiercheck.reference.memory_tier import MemoryTier

from . import build


class InclusiveExpiryMemoryTier(MemoryTier):
    def get(self, key, now):
        with self._lock:
            item = self._entries.get(key)
            if item is None:
                return None
            if now > item[0]:  # BUG: should be >=; the entry is dead at exactly expires_at
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return item


def factory(env):
    config = CacheConfig.from_contract_env(env)
    return build(
        MetadataCache, env, config, memory=InclusiveExpiryMemoryTier(config.max_memory_entries, config.max_memory_bytes)
    )
