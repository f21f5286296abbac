"""E10 bounded resources: memory within its entry budget, disk within max_disk_bytes after every put,
no descriptor or thread growth over 10,000 operations."""

from __future__ import annotations

import os
import random
import threading

import pytest

from tiercheck.pytest_plugin import require

from .machine import accepted_database  # noqa: F401 - a fixture, used below

pytestmark = pytest.mark.usefixtures("accepted_database")

SEED = 20261126


def disk_bytes(root: str) -> int:
    total = 0
    for directory, _, names in os.walk(root):
        for name in names:
            try:
                total += os.stat(os.path.join(directory, name)).st_size
            except FileNotFoundError:
                continue
    return total


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.prop("E10")
def test_E10_memory_within_its_entry_budget(open_cache, make_env, tmp_path):
    cache = open_cache(make_env(max_memory_entries=8))
    require(cache, "tiers_holding")
    paths = []
    for i in range(40):
        path = tmp_path / f"f{i}"
        path.write_bytes(b"file %d" % i)
        paths.append(str(path))
        assert cache.put(str(path), {"i": i})
        in_memory = sum("memory" in cache.tiers_holding(p) for p in paths)
        assert in_memory <= 8, f"{in_memory} entries in a memory tier of 8 after {i + 1} puts"
        cache.get(paths[random.Random(SEED + i).randrange(len(paths))])  # promotions count too


@pytest.mark.prop("E10")
def test_E10_disk_within_max_disk_bytes_after_every_put(open_cache, make_env, tmp_path):
    budget = 64 * 1024
    env = make_env(max_disk_bytes=budget, compression_level=0)
    cache = open_cache(env)
    rng = random.Random(SEED)
    print(f"E10 disk: seed {SEED}")
    for i in range(200):
        path = tmp_path / f"d{i % 50}"
        path.write_bytes(b"disk %d" % i)
        size = rng.choice([10, 500, 2_000, 8_000])
        cache.put(str(path), {"blob": rng.randbytes(size // 2).hex()})
        used = disk_bytes(env.cache_dir)
        assert used <= budget, f"disk tier holds {used} bytes after put {i + 1}, budget {budget}"


@pytest.mark.prop("E10")
def test_E10_no_descriptor_or_thread_growth_over_10000_operations(open_cache, make_env, fake_redis_url, tmp_path):
    cache = open_cache(make_env(redis_url=fake_redis_url, max_memory_entries=50))
    rng = random.Random(SEED)
    print(f"E10 growth: seed {SEED}")
    paths = []
    for i in range(100):
        path = tmp_path / f"g{i}"
        path.write_bytes(b"growth %d" % i)
        paths.append(str(path))

    def run(n: int) -> None:
        for _ in range(n):
            path = rng.choice(paths)
            roll = rng.random()
            if roll < 0.1:
                cache.put(path, {"v": rng.random()})
            elif roll < 0.11:
                cache.invalidate(path)
            elif roll < 0.112:
                cache.cleanup()
            else:
                cache.get(path)

    run(500)  # warm-up: pools and connections reach their working size
    fds, threads = open_fds(), threading.active_count()
    run(10_000)
    assert open_fds() <= fds, f"descriptors grew from {fds} to {open_fds()} over 10,000 operations"
    assert threading.active_count() <= threads, f"threads grew from {threads} to {threading.active_count()}"
