"""Bug: warm_cache looks files up through the public get(), so warming counts as caller requests.

Reusing `self.get()` for the "already cached?" check inflates total_requests and misses by one per
warmed file: the hit rate a dashboard shows collapses after every warm-up. Expected to be caught by
E8 (look-ups made inside warm_cache do not count).
"""

from concurrent.futures import ThreadPoolExecutor

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.keys import tier_variant

from . import build


class CountingWarmCache(MetadataCache):
    def warm_cache(self, paths, extract, tier="premium", max_workers=4):
        self._check_open()
        tier_variant(tier)
        unique = list(dict.fromkeys(paths))

        def warm(path):
            if self.get(path, tier) is not None:  # BUG: a caller-visible get, counted in the stats
                return True
            try:
                return self.put(path, extract(path, tier), tier)
            except Exception:
                return False

        with ThreadPoolExecutor(max_workers=max(1, int(max_workers))) as pool:
            return dict(zip(unique, pool.map(warm, unique), strict=True))


def factory(env):
    return build(CountingWarmCache, env)
