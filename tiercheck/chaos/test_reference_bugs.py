"""Bugs the chaos suites found in reference/, kept as minimal reproducers through the contract.

Found: a new cache instance trusted a Redis server it had never seen; Redis restored from an RDB
taken before a successful invalidate resurrected the entry. Fixed by the Redis floor the reference
keeps in its journals; the test now guards every implementation against it.
"""

from __future__ import annotations

import pytest
import redis

from tiercheck.backends import FakeClock, unique_namespace
from tiercheck.contract import Env
from tiercheck.integration import servers


@pytest.mark.prop("E1")
@pytest.mark.real_redis
def test_E1_invalidate_then_restart_cache_and_redis_from_older_rdb(impl_factory, tmp_path):
    handle = servers.start_redis(str(tmp_path))
    try:
        env = Env(
            cache_dir=str(tmp_path / "cache"),
            redis_url=handle.url,
            database_url=f"sqlite:///{tmp_path}/db.sqlite3",
            namespace=unique_namespace("bug"),
            clock=FakeClock(),
        )
        src = tmp_path / "f"
        src.write_bytes(b"content")
        cache = impl_factory(env)
        assert cache.put(str(src), {"v": "old"})
        client = redis.Redis.from_url(handle.url)
        held = next(client.scan_iter(f"{env.namespace}*"), None)
        client.close()
        if held is None:
            cache.shutdown()
            pytest.skip("fault did not take effect: the put left no key of the namespace in Redis to restore")
        snapshot = servers.snapshot_redis(handle)  # an RDB that holds the entry
        assert cache.invalidate(str(src)) is True  # Redis up: removed from every tier, success reported
        cache.shutdown()  # the service restarts ...
        servers.restore_redis(handle, snapshot)  # ... and Redis comes back from the older RDB
        cache = impl_factory(env)
        try:
            assert cache.get(str(src)) is None, "an invalidation that reported success was undone"
        finally:
            cache.shutdown()
    finally:
        handle.close()
