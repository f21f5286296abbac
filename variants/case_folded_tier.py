"""Bug: the tier string is lower-cased before it goes into the key.

"Normalising" user input (`tier.lower().strip()` is a common reflex): 'Premium' and 'premium' then
share one entry, so one tier's extraction is served for another. Expected to be caught by P6 (tier
strings that are case variants of each other).
"""

from tiercheck.reference.cache import MetadataCache

from . import build


class CaseFoldingCache(MetadataCache):
    def _key(self, file_path, tier):
        return super()._key(file_path, tier.lower() if isinstance(tier, str) else tier)  # BUG


def factory(env):
    return build(CaseFoldingCache, env)
