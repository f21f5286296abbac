"""E2 bug: entries are decoded without verifying their checksum: an altered entry is served."""

import io
import json

import zstandard

from examples.independent import IndependentCache
from examples.independent.codec import MAX_ENTRY_BYTES, Entry


class ChecksumUnchecked(IndependentCache):
    @staticmethod
    def decode(key, data: bytes):
        try:
            if data[:1] == b"Z":
                data = b"J" + zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data[1:])).read(MAX_ENTRY_BYTES)
            _, _, raw = data[1:].partition(b"\n")  # the checksum line is skipped, not compared
            doc = json.loads(raw)
            return Entry(json.dumps(doc["m"]), float(doc["x"]), str(doc["s"]))
        except (ValueError, KeyError, TypeError, RecursionError, zstandard.ZstdError):
            return None


def factory(env):
    return ChecksumUnchecked(env)
