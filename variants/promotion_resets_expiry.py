"""Bug: a hit promoted from a lower tier is stored in memory with a fresh TTL (now + ttl).

The original code promoted with `self._memory_cache[key] = (data, time.time() + self.ttl)`: an
entry read shortly before it expires lives on in memory for another full TTL. Expected to be
caught by P9 (no tier serves an entry after its original put time plus TTL).
"""

from tiercheck.reference.cache import MetadataCache

from . import build


class FreshTtlPromotionCache(MetadataCache):
    def _promote(self, key, blob, version, expires_at, payload, faster, token, now):
        fresh = now + self.config.ttl_seconds  # BUG: should keep the entry's own expires_at
        super()._promote(key, blob, version, fresh, payload, faster, token, now)


def factory(env):
    return build(FreshTtlPromotionCache, env)
