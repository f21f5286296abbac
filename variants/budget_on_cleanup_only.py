"""Bug: the disk tier enforces its size budget in cleanup() only, not on put.

"Eviction is the janitor's job": between two cleanups the cache directory grows without bound,
and a burst of large entries fills the disk. Expected to be caught by E10 (the disk tier stays
within max_disk_bytes after every put).
"""

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.disk_tier import DiskTier

from . import build


class CleanupBudgetDiskTier(DiskTier):
    def put(self, key, blob, expires_at, now):
        enforce, self._enforce_budget = self._enforce_budget, lambda: 0  # BUG: no budget on the put path
        try:
            super().put(key, blob, expires_at, now)
        finally:
            self._enforce_budget = enforce


class CleanupBudgetCache(MetadataCache):
    def _start(self):
        super()._start()
        for store in self._stores:
            if type(store) is DiskTier:
                store.__class__ = CleanupBudgetDiskTier


def factory(env):
    return build(CleanupBudgetCache, env)
