"""Self-test of the P4 linearizability checker: histories it must accept and histories it must reject.

These tests never call the implementation under test, so they carry `selftest`, not `prop("P4")`.
"""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tiercheck.properties.linearizability import HistoryRecorder, Op, check_history, check_key

pytestmark = pytest.mark.selftest


def op(thread, kind, value=None, result=None, start=0, end=None):
    return Op(thread, "k", kind, value, result, start, end)


def put(t, v, s, e, ok=True):
    return op(t, "put", {"v": v}, ok, s, e)


def get(t, v, s, e):
    return op(t, "get", None, None if v is None else {"v": v}, s, e)


def inv(t, s, e, ok=True):
    return op(t, "invalidate", None, ok, s, e)


ACCEPT = {
    "sequential": [put(0, 1, 0, 1), get(0, 1, 2, 3), put(0, 2, 4, 5), get(0, 2, 6, 7)],
    "overlapping put and get, old value": [put(0, 1, 0, 1), put(1, 2, 2, 5), get(0, 1, 3, 4)],
    "overlapping put and get, new value": [put(0, 1, 0, 1), put(1, 2, 2, 5), get(0, 2, 3, 4)],
    "a miss anywhere": [put(0, 1, 0, 1), get(1, None, 2, 3), get(0, 1, 4, 5)],
    "value of a pending put": [put(0, 1, 0, None), get(1, 1, 5, 6)],
    "failed put may have happened": [put(0, 1, 0, 1, ok=False), get(1, 1, 2, 3)],
    "failed invalidate may not have happened": [put(0, 1, 0, 1), inv(0, 2, 3, ok=False), get(1, 1, 4, 5)],
    "concurrent invalidate": [put(0, 1, 0, 1), inv(1, 2, 5), get(0, 1, 3, 4)],
}

REJECT = {
    "stale read after a later put completed": [put(0, 1, 0, 1), put(0, 2, 2, 3), get(1, 1, 4, 5)],
    "read after a completed invalidate": [put(0, 1, 0, 1), inv(0, 2, 3), get(1, 1, 4, 5)],
    "never-put value": [put(0, 1, 0, 1), get(1, 7, 2, 3)],
    "new-old inversion": [put(0, 1, 0, 1), put(0, 2, 2, 9), get(1, 2, 3, 4), get(2, 1, 5, 6)],
    "value before its put began": [get(1, 1, 0, 1), put(0, 1, 2, 3)],
}


@pytest.mark.parametrize("name", sorted(ACCEPT))
def test_accepts(name):
    verdict = check_key(ACCEPT[name])
    assert verdict.ok, verdict.message


@pytest.mark.parametrize("name", sorted(REJECT))
def test_rejects(name):
    verdict = check_key(REJECT[name])
    assert not verdict.ok and not verdict.undecided


def test_another_keys_value_rejected():
    ops = [Op(0, "a", "put", {"v": 1}, True, 0, 1), Op(1, "b", "get", None, {"v": 1}, 2, 3)]
    verdict = check_history(ops)
    assert not verdict.ok and "never put" in verdict.message


def sequential_history(seed: int, n: int) -> list[Op]:
    rng = random.Random(seed)
    state, ops, t = None, [], 0
    for i in range(n):
        kind = rng.choice(["put", "get", "invalidate"])
        if kind == "put":
            state = {"v": i}
            ops.append(put(0, i, t, t + 1))
        elif kind == "invalidate":
            state = None
            ops.append(inv(0, t, t + 1))
        else:
            ops.append(get(0, state["v"] if state and rng.random() < 0.8 else None, t, t + 1))
        t += 2
    return ops


@given(seed=st.integers(0, 2**32), n=st.integers(1, 60))
def test_sequential_model_histories_accepted(seed, n):
    assert check_key(sequential_history(seed, n)).ok


@given(seed=st.integers(0, 2**32), n=st.integers(5, 60))
def test_stale_read_injected_into_a_sequential_history_rejected(seed, n):
    ops = sequential_history(seed, n)
    puts = [i for i, o in enumerate(ops) if o.kind == "put"]
    later_gets = [i for i, o in enumerate(ops) if o.kind == "get" and len([p for p in puts if p < i]) >= 2]
    if not later_gets:
        return
    g = later_gets[-1]
    older = [p for p in puts if p < g][-2]
    ops[g] = get(0, ops[older].value["v"], ops[g].invoked, ops[g].completed)
    assert not check_key(ops).ok


def test_real_concurrent_register_histories_accepted():
    recorder, register, lock = HistoryRecorder(), {}, threading.Lock()

    def worker(t):
        rng = random.Random(t)
        for i in range(50):
            kind, s = rng.choice(["put", "get", "invalidate"]), recorder.begin()
            with lock:
                if kind == "put":
                    register["k"] = {"v": t * 1000 + i}
                    value, result = {"v": t * 1000 + i}, True
                elif kind == "get":
                    value, result = None, register.get("k")
                else:
                    value, result = None, register.pop("k", None) is not None or True
            recorder.end(t, "k", kind, value, result, s)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert check_history(recorder.ops).ok
