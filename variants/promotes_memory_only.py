"""Bug: a hit from a lower tier is promoted into memory only, not into the tiers between.

"Promotion = put it in the LRU": a disk or database hit is never copied back into Redis, so other
processes keep going to the slow tier for it. Expected to be caught by P2 (after a hit served by
tier T, every enabled tier above T holds the entry).
"""

from tiercheck.reference.cache import MetadataCache

from . import build


class MemoryOnlyPromotionCache(MetadataCache):
    def _promote(self, key, blob, version, expires_at, payload, faster, token, now):
        super()._promote(key, blob, version, expires_at, payload, [], token, now)  # BUG: `faster` dropped


def factory(env):
    return build(MemoryOnlyPromotionCache, env)
