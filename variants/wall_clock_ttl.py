"""Bug: expiry decisions use time.time() instead of the clock the cache was given.

The factory builds its configuration without passing the injected clock on (so the default,
`time.time`, is used): TTLs then follow the wall clock, and an entry outlives its TTL on the clock
the deployment (or the test) actually runs on. Expected to be caught by P9.
"""

import time

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.config import CacheConfig

from . import build


def factory(env):
    config = CacheConfig.from_contract_env(env).with_changes(clock=time.time)  # BUG: env.clock dropped
    return build(MetadataCache, env, config)
