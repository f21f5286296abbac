"""P9 with real seconds: the backends' own expiry (Redis PEXPIRE/TTL, database expiry columns, disk
files, whatever the implementation uses) against the TTL the Env declares.

Every other P9 test moves a fake clock, so a backend's native expiry — set from the same TTL in the
backend's own units and clock — never runs. Here the Env clock is `time.time`, the TTL 1.5 s, Redis is
a real valkey-server: an entry must be served from each shared tier until its put time + TTL (an expiry
set too short, e.g. seconds read as milliseconds, shows here) and by no tier afterwards, not even by a
fresh instance or by an instance that promoted it into its memory before expiry.
"""

from __future__ import annotations

import time

import pytest

from tiercheck.contract import has_capability
from tiercheck.properties.effectiveness_probes import credited_get, judged_tiers, make_files, single_tier_env

pytestmark = [pytest.mark.real_redis, pytest.mark.prop("P9")]

TTL = 1.5
WAIT_BOUND = 5.0
"""Seconds the wait for expiry may take at most (a bound against a stuck clock, not a timing judgement)."""


def wait_until_wall_clock(moment: float) -> None:
    """Poll until time.time() >= moment, bounded on the monotonic clock."""
    give_up = time.monotonic() + WAIT_BOUND
    while time.time() < moment:
        assert time.monotonic() < give_up, "the wall clock did not reach the expiry moment"
        time.sleep(0.02)  # pacing: the loop ends on the wall clock, the Env's clock


def test_P9_native_expiry_matches_the_declared_ttl(impl_factory, make_env, redis_server, tmp_path):
    """Neutral: the contract says an entry is live while clock() < put time + ttl_seconds, with the Env's
    clock the only time source; here that clock is the real one, so whatever native expiry an
    implementation sets must agree with it. Before expiry, a fresh instance sharing only one tier must
    serve the entry from that tier (its stats credit it); once time.time() passes the end of the put +
    TTL, every instance — the writer, the single-tier ones that promoted it into their memory, a fresh
    one — misses. A run too slow to probe before expiry is reported as inconclusive, never FAIL.
    """
    env = make_env(redis_url=redis_server.url, clock=time.time, ttl_seconds=TTL)
    (path,) = make_files(str(tmp_path / "files"), ["expiring"])
    value = {"expires": "after 1.5 s"}
    writer = impl_factory(env)
    probes = []
    try:
        put_began = time.time()
        assert writer.put(path, value) is True
        put_ended = time.time()
        tiers = judged_tiers(writer, env)  # may be empty (a memory-only cache): the writer is still judged

        served_before = {"memory (writer)": credited_get(writer, path)}
        for tier in tiers:
            probe = impl_factory(single_tier_env(env, tier, str(tmp_path)))
            probes.append((tier, probe))
            served_before[tier] = credited_get(probe, path)
        if time.time() >= put_began + TTL:
            pytest.skip("inconclusive: the probes before expiry ended after the TTL had passed (machine too slow)")
        not_served = {t: got for t, (got, _) in served_before.items() if got != value}
        assert not not_served, f"before put time + TTL, the entry was not served: {not_served}"
        # Which tier the stats credit is P2's and P10's to judge; here it only says which tier the probe showed.
        elsewhere = {t: credit for t, (_, credit) in served_before.items() if credit != t.split(" ")[0]}
        if elsewhere:
            print(f"not judged here (P2's business): the hits before expiry were credited to {elsewhere}")

        wait_until_wall_clock(put_ended + TTL)
        assert writer.get(path) is None, "the writer served the entry after put time + TTL"
        for tier, probe in probes:
            assert probe.get(path) is None, f"an instance sharing only {tier} served it after put time + TTL"
        fresh = impl_factory(env)
        probes.append(("all", fresh))
        assert fresh.get(path) is None, "a fresh instance over the same backends served it after put time + TTL"
        for tier in tiers:
            late = impl_factory(single_tier_env(env, tier, str(tmp_path)))
            probes.append((tier, late))
            assert late.get(path) is None, f"the {tier} tier served it to a fresh instance after put time + TTL"
        fresh.cleanup()
        if has_capability(fresh, "tiers_holding"):
            assert fresh.tiers_holding(path) == set(), "after expiry and cleanup() a tier still holds the entry"
    finally:
        writer.shutdown()
        for _, probe in probes:
            probe.shutdown()
