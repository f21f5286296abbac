"""Bug: warm_cache sizes its thread pool by the number of files, ignoring max_workers.

`ThreadPoolExecutor(max_workers=len(paths))` ("as parallel as possible"): warming 10,000 files
starts 10,000 threads and runs as many extractions at once. Expected to be caught by E8 (at most
max_workers extractions at once).
"""

from concurrent.futures import ThreadPoolExecutor

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.keys import tier_variant

from . import build


class UnboundedWarmingCache(MetadataCache):
    def warm_cache(self, paths, extract, tier="premium", max_workers=4):
        self._check_open()
        tier_variant(tier)
        unique = list(dict.fromkeys(paths))

        def warm(path):
            key = self._key(path, tier)
            if key is not None and self._lookup(key) is not None:
                return True
            try:
                return self.put(path, extract(path, tier), tier)
            except Exception:
                return False

        with ThreadPoolExecutor(max_workers=max(1, len(unique))) as pool:  # BUG: max_workers ignored
            return dict(zip(unique, pool.map(warm, unique), strict=True))


def factory(env):
    return build(UnboundedWarmingCache, env)
