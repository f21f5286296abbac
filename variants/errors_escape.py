"""Bug: a tier failure is raised to the caller instead of being contained.

The `try/except` around the tier call was dropped ("let it crash, the caller retries"): with Redis
refused or the disk failing, get/put/invalidate raise instead of using the other tiers.
Expected to be caught by P5 (operations never raise because a tier failed).
"""

from tiercheck.reference.cache import MetadataCache

from . import build


class LeakyCache(MetadataCache):
    def _attempt(self, store, operation, fn, *args):
        health = self._health[store.name]
        if not health.allow():
            return False, None
        if self._repairs.owes(store.name):
            self._repairs.apply(store)
        result = fn(*args)  # BUG: no try/except: a TierError (or anything else) reaches the caller
        health.record_success()
        return True, result


def factory(env):
    return build(LeakyCache, env)
