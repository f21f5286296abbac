"""Bug: the disk tier zstd-compresses its files and decompresses them with no bound on the output.

`ZstdDecompressor().decompressobj().decompress(data)` happily inflates a 40 KB file into a GiB:
one planted decompression bomb in the cache directory exhausts the memory of every reader.
Expected to be caught by E4 (a planted bomb never expands past a bounded size).
"""

import zstandard

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.disk_tier import DiskTier

from . import build, swap_store


def _unpack(data):
    try:
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)  # BUG: unbounded output
    except zstandard.ZstdError:
        return data  # not ours: the codec will reject it


class ZstdDiskTier(DiskTier):
    def put(self, key, blob, version, expires_at, now):
        return super().put(key, zstandard.ZstdCompressor(level=3).compress(blob), version, expires_at, now)

    def get(self, key):
        data = super().get(key)
        return None if data is None else _unpack(data)

    def purge(self, is_dead):
        return super().purge(lambda key, data: is_dead(key, _unpack(data)))


def factory(env):
    return build(MetadataCache, env, stores=swap_store("disk", ZstdDiskTier))
