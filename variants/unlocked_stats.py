"""Bug: the statistics counters are updated without a lock (read, then write back).

`self.stats["hits"] += 1` from many threads is a read-modify-write; in the original code the
counters were bumped outside the cache lock. Two threads that read the same old value lose an
update, so total_requests drifts from the number of gets. `time.sleep(0)` between the read and the
write stands for the thread switch that makes this happen rarely in production and often here.
Expected to be caught by P4 (the stats invariants after the threaded workload).
"""

import time

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.stats import TIER_HIT_KEYS, Stats

from . import build


class UnlockedStats(Stats):
    def _bump(self, name, amount=1):
        value = self._c[name]  # BUG: no lock around the read-modify-write
        time.sleep(0)
        self._c[name] = value + amount

    def record_get(self, served_by):
        self._bump("total_requests")
        if served_by is None:
            self._bump("misses")
        else:
            self._bump("hits")
            self._bump(TIER_HIT_KEYS[served_by])

    def add(self, name, amount=1):
        if amount:
            self._bump(name, amount)


class UnlockedStatsCache(MetadataCache):
    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        self._stats = UnlockedStats()


def factory(env):
    return build(UnlockedStatsCache, env)
