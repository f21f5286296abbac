"""Bug: an entry that fails verification is served as empty metadata `{}` instead of being a miss.

"A cache read must never fail" taken too far: `except Exception: return {}` around the decoding.
The caller gets `{}` for a corrupted entry and believes the file has no metadata. Expected to be
caught by E2 (corrupted entries must be misses).
"""

import logging

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.codec import Codec, CorruptEntry, Payload
from tiercheck.reference.config import CacheConfig

from . import build

log = logging.getLogger(__name__)


class ForgivingCodec(Codec):
    def decode(self, key, blob):
        try:
            return super().decode(key, blob)
        except CorruptEntry as exc:
            log.warning("entry %s unreadable (%s): serving empty metadata", key, exc)
            return float("inf"), 0, Payload(b"{}", 0)  # BUG: corruption becomes data


def factory(env):
    config = CacheConfig.from_contract_env(env)
    return build(MetadataCache, env, config, codec=ForgivingCodec(config.compression_level, config.max_entry_bytes))
