"""Bug: clear_all() clears memory, Redis and the database, but not the disk tier.

The disk tier was added after clear_all was written and the method was never extended: the next
get after clear_all serves the cleared entry from disk. Expected to be caught by P1 (the model
machine's clear_all rule).
"""

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.disk_tier import DiskTier

from . import build, swap_store


class ClearIgnoringDiskTier(DiskTier):
    def clear(self, version):
        pass  # BUG: the disk tier is left as it was


def factory(env):
    return build(MetadataCache, env, stores=swap_store("disk", ClearIgnoringDiskTier))
