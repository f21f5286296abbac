"""Bug: every hit below memory is credited to the disk tier, whichever tier served it.

The original stats had `memory_hits` and `disk_hits` only; Redis and the database were added later
and their hits kept landing in `disk_hits`, so dashboards show a cold Redis. Expected to be caught
by P2 (the stats credit the tier that served: after a restart an entry still in Redis is a Redis hit).
"""

from tiercheck.reference.cache import MetadataCache

from . import build


class MiscreditingCache(MetadataCache):
    def get(self, file_path, tier="premium"):
        self._check_open()
        key = self._key(file_path, tier)
        found = None if key is None else self._lookup(key)
        served = found[0] if found else None
        if served in ("redis", "database"):
            served = "disk"  # BUG: "anything below memory is a disk hit"
        self._stats.record_get(served)
        return found[1] if found else None


def factory(env):
    return build(MiscreditingCache, env)
