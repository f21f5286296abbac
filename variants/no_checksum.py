"""Bug: entries are decoded without verifying their checksum.

"The checksum is only for the network" — the decoder trusts the header and body as read. A flipped
bit inside a string, or another entry's bytes copied over this one's slot, is served as data.
Expected to be caught by E2 (corrupted entries, including another entry's bytes, are misses).
"""

import zstandard

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.codec import FLAG_COMPRESSED, FLAG_STDLIB_JSON, HEADER_LEN, Codec, CorruptEntry, Payload
from tiercheck.reference.config import CacheConfig

from . import build


class UncheckedCodec(Codec):
    def decode(self, key, blob):
        expires_at, flags, raw_len, version = self.peek(blob)
        body = blob[HEADER_LEN:]  # BUG: the 16-byte checksum before it is never compared
        if raw_len > self.max_entry_bytes:
            raise CorruptEntry(f"entry claims {raw_len} bytes, above max_entry_bytes={self.max_entry_bytes}")
        if flags & FLAG_COMPRESSED:
            try:
                raw = self._decompressor().decompress(body, max_output_size=max(raw_len, 1))
            except zstandard.ZstdError as exc:
                raise CorruptEntry(f"zstd: {exc}") from exc
        else:
            raw = body
        if len(raw) != raw_len:
            raise CorruptEntry("length mismatch")
        return expires_at, version, Payload(bytes(raw), flags & FLAG_STDLIB_JSON)


def factory(env):
    config = CacheConfig.from_contract_env(env)
    return build(MetadataCache, env, config, codec=UncheckedCodec(config.compression_level, config.max_entry_bytes))
