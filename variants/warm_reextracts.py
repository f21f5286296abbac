"""Bug: warm_cache extracts every file it is given, whether or not it is already cached.

The "is it cached already?" check was removed to "refresh" entries while warming: a warm-up over a
large library re-runs every expensive extraction. Expected to be caught by E8 (never re-extracts
cached files).
"""

from concurrent.futures import ThreadPoolExecutor

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.keys import tier_variant

from . import build


class ReextractingCache(MetadataCache):
    def warm_cache(self, paths, extract, tier="premium", max_workers=4):
        self._check_open()
        tier_variant(tier)
        unique = list(dict.fromkeys(paths))

        def warm(path):
            try:  # BUG: no lookup first: cached files are extracted again
                return self.put(path, extract(path, tier), tier)
            except Exception:
                return False

        with ThreadPoolExecutor(max_workers=max(1, int(max_workers))) as pool:
            return dict(zip(unique, pool.map(warm, unique), strict=True))


def factory(env):
    return build(ReextractingCache, env)
