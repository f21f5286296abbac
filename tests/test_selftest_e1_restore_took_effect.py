"""An E1 test whose Redis snapshot holds nothing did not inject its fault (a harness self-test).

test_E1_invalidation_survives_outage_restart_and_old_data and test_E1_clear_all_survives_restart_with_old_data
bring Redis back with the keys of the namespace it held before the removal. When the put left no such key
(an implementation that writes Redis lazily, or whose Redis tier took nothing), there is no old data to
bring back and the verdict was PASS without the fault: now it skips with "fault did not take effect".
"""

from __future__ import annotations

import dataclasses

import pytest

from tiercheck.backends import FakeRedisServer
from tiercheck.properties import test_fault_properties as faults
from tiercheck.reference import factory as reference

pytestmark = pytest.mark.selftest


def redis_left_out(env):
    """The reference, declaring its Redis tier as always, but never given the server: Redis holds nothing."""
    return reference(dataclasses.replace(env, redis_url=None))


def test_nothing_in_redis_is_a_fault_that_did_not_take_effect(tmp_path):
    server = FakeRedisServer()
    try:
        with pytest.raises(pytest.skip.Exception, match="fault did not take effect"):
            faults.test_E1_invalidation_survives_outage_restart_and_old_data(redis_left_out, server, tmp_path)
    finally:
        server.close()
