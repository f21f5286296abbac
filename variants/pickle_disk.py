"""Bug: the disk tier stores entries with pickle and unpickles whatever file it reads.

The original MetaExtract disk cache wrote `.pkl` files with `pickle.dump` "because it is fast":
anyone who can write into the cache directory gets code execution in every process that reads it.
Expected to be caught by E4 (a planted pickle payload is never executed).
"""

import pickle

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.disk_tier import DiskTier

from . import build, swap_store


class PickleDiskTier(DiskTier):
    def put(self, key, blob, version, expires_at, now):
        return super().put(key, pickle.dumps(blob), version, expires_at, now)

    def get(self, key):
        data = super().get(key)
        return None if data is None else pickle.loads(data)  # BUG: unpickles untrusted bytes

    def purge(self, is_dead):
        return super().purge(lambda key, data: is_dead(key, pickle.loads(data)))


def factory(env):
    return build(MetadataCache, env, stores=swap_store("disk", PickleDiskTier))
