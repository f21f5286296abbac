"""Bug: the content key hashes only the size and the first, middle and last 4 KiB of the file.

A classic "quick hash" (MetaExtract's own `get_file_hash_quick` did this for speed): two files of the
same size that differ anywhere outside the three samples share one key, so one file is served the
other's metadata. Expected to be caught by P6 (same-size files agreeing on the sampled regions).
"""

import os

import blake3

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.keys import ContentHasher, UnreadableFile

from . import build

SAMPLE = 4096


class SampledHasher(ContentHasher):
    def content_id(self, file_path):
        path = os.fspath(file_path)
        try:
            size = os.path.getsize(path)
            h = blake3.blake3(b"%d" % size)
            with open(path, "rb") as f:
                for offset in (0, max(0, size // 2 - SAMPLE // 2), max(0, size - SAMPLE)):
                    f.seek(offset)
                    h.update(f.read(SAMPLE))  # BUG: the bytes between the samples never reach the hash
        except (OSError, ValueError) as exc:
            raise UnreadableFile(f"{path!r}: {exc}") from exc
        return h.hexdigest()


def factory(env):
    return build(MetadataCache, env, hasher=SampledHasher())
