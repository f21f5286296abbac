"""Bug: invalidate() removes the entry from memory, disk and database, but not from Redis.

The Redis branch of the invalidation was lost in a refactor (it is the tier most often "off" in
development, so nobody noticed): after an invalidation the next get misses memory and is served
the old entry from Redis. Expected to be caught by P3 (after invalidate no tier serves it).
"""

from tiercheck.reference.cache import MetadataCache

from . import build


class RedisForgettingCache(MetadataCache):
    def _attempt(self, store, operation, fn, *args):
        if operation == "invalidate" and store.name == "redis":
            return True, None  # BUG: reported as done, never sent to Redis
        return super()._attempt(store, operation, fn, *args)


def factory(env):
    return build(RedisForgettingCache, env)
