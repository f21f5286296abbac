"""The E1 "Redis restarts with old data" test must restart Redis the way a real server restarts (a harness
self-test).

An implementation may learn that Redis restarted from the server's run_id (INFO server), a signal every real
restart gives; the in-process fakeredis has no INFO. A restore-with-old-data test on fakeredis therefore
fails a correct run_id-watching implementation (found by a third, independent probe implementation), so the
test runs on a real server, and this self-test checks the restart it injects shows that signal.
"""

from __future__ import annotations

import inspect

import pytest
import redis

from tiercheck.integration import servers
from tiercheck.properties import test_fault_properties as faults

pytestmark = pytest.mark.selftest


def test_clear_all_restore_test_asks_for_a_real_server():
    params = inspect.signature(faults.test_E1_clear_all_survives_restart_with_old_data).parameters
    assert "own_redis_server" in params and "private_redis" not in params, (
        "the E1 clear_all restore test must run on a real server: fakeredis hides the restart's new run_id"
    )


def test_the_injected_restart_shows_a_new_run_id_and_brings_the_old_data_back(tmp_path):
    try:
        handle = servers.start_redis(str(tmp_path))
    except servers.Unavailable as exc:
        pytest.skip(f"not applicable: no real Redis-protocol server: {exc}")
    try:
        client = redis.Redis.from_url(handle.url)
        client.set("ns:k", b"old")
        before = client.info("server")["run_id"]
        dumps = {b"ns:k": client.dump("ns:k")}
        client.delete("ns:k")
        client.close()
        faults.restart_redis_with(handle, dumps)
        client = redis.Redis.from_url(handle.url)
        assert client.get("ns:k") == b"old", "the restart did not bring the removed data back"
        assert client.info("server")["run_id"] != before, "the restart is invisible to a run_id-watching cache"
        client.close()
    finally:
        handle.close()
