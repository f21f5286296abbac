"""Bug: a put makes its value visible in memory before the store tiers could refuse it.

The put writes the memory tier first, "so the caller's next get is fast", then the store tiers, and
drops its memory entry when a tier refused the write (a newer put already won there). Between the
two, a get serves the losing value; a later get serves the winner again: no linearization exists.
It is the reference's own bug until stop 20 (found by a probe run without the disk tier).
Expected to be caught by P4 (histories of threads, linearizable per key).
"""

from tiercheck.reference.cache import MetadataCache

from . import build


class MemoryFirstCache(MetadataCache):
    def _attempt(self, store, operation, fn, *args):
        if operation == "put" and store is self._stores[0]:  # the put's first tier write, under its write lock
            key, blob = args[0], args[1]
            expires_at, version, payload = self._codec.decode(".".join(key), blob)
            self.memory.put(key, expires_at, payload, version)  # BUG: visible before any tier could refuse it
        return super()._attempt(store, operation, fn, *args)


def factory(env):
    return build(MemoryFirstCache, env)
