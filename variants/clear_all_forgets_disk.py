"""Bug: clear_all() clears memory, Redis and the database, but not the disk tier.

The disk tier was added after clear_all was written and the method was never extended: the next
get after clear_all serves the cleared entry from disk. Expected to be caught by P1 (the model
machine's clear_all rule).
"""

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.store import ALL

from . import build


class DiskForgettingCache(MetadataCache):
    def clear_all(self):
        self._check_open()
        self._start()
        with self._writing(None):
            self.memory.clear()
            for store in self._stores:
                if store.name == "disk":
                    continue  # BUG: the disk tier is left as it was
                if not self._attempt(store, "clear", store.clear)[0]:
                    self._defer(store, ALL, ALL)
        self._announce_invalidation()


def factory(env):
    return build(DiskForgettingCache, env)
