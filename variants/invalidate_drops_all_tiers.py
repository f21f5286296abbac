"""Bug: invalidate(file, tier) ignores the tier and removes every tier name of the file.

Implemented as "delete `<hash>*`" (the legacy clear_cache_pattern way): invalidating the 'free'
extraction of a file also throws away its 'premium' one, which then has to be extracted again.
Expected to be caught by P3 (`invalidate(file, tier)` removes only that tier name).
"""

from tiercheck.reference.cache import MetadataCache

from . import build


class BroadInvalidationCache(MetadataCache):
    def invalidate(self, file_path, tier=None):
        return super().invalidate(file_path, None)  # BUG: the tier argument is dropped


def factory(env):
    return build(BroadInvalidationCache, env)
