"""The legacy module API: every function works, warns once, and agrees with the class API."""

from __future__ import annotations

import warnings

import pytest

from tiercheck import reference
from tiercheck.reference import legacy


@pytest.fixture
def installed(make_env, tmp_path):
    cache = reference.factory(make_env())
    legacy.install(cache)
    legacy.reset_warnings()
    f = tmp_path / "scan.tif"
    f.write_bytes(b"tiff" * 100)
    yield cache, str(f)
    legacy.shutdown_cache()


def call_warns_once(fn, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = fn(*args)
        fn(*args)
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1, [str(w.message) for w in caught]
    assert fn.__name__ in str(deprecations[0].message)
    return first


def test_set_and_get_agree_with_class_api(installed):
    cache, path = installed
    assert call_warns_once(legacy.set_cache, path, {"dpi": 300}, "premium") is True
    assert cache.get(path, "premium") == {"dpi": 300}
    cache.put(path, {"dpi": 600}, "free")
    assert call_warns_once(legacy.get_from_cache, path, "free") == {"dpi": 600}


def test_hash_is_the_full_content_hash(installed):
    cache, path = installed
    digest = call_warns_once(legacy.get_file_hash_quick, path)
    assert digest == cache._key(path, "premium").content and len(digest) == 64


def test_clear_cache_pattern(installed):
    cache, path = installed
    cache.put(path, {"a": 1}, "premium")
    cache.put(path, {"a": 2}, "free")
    content = cache._key(path, "premium").content
    variant = cache._key(path, "free").variant
    assert call_warns_once(legacy.clear_cache_pattern, f"*.{variant}") == 1
    assert cache.get(path, "free") is None and cache.get(path, "premium") == {"a": 1}
    assert legacy.clear_cache_pattern(f"{content}.*") == 1
    assert cache.get(path, "premium") is None


def test_stats_info_clear_and_get_cache(installed):
    cache, path = installed
    assert call_warns_once(legacy.get_cache) is cache
    cache.put(path, {"a": 1})
    cache.get(path)
    stats = call_warns_once(legacy.get_cache_stats)
    assert stats["writes"] == 1 and stats["hits"] >= 1
    info = call_warns_once(legacy.get_cache_info)
    assert info["config"]["namespace"] == cache.config.namespace and "tiers" in info
    call_warns_once(legacy.clear_cache)
    assert cache.get(path) is None


def test_shutdown_then_a_new_global_instance(installed, monkeypatch, tmp_path):
    cache, _ = installed
    monkeypatch.setenv("TIERCHECK_CACHE_DIR", str(tmp_path / "global"))
    call_warns_once(legacy.shutdown_cache)
    with pytest.raises(reference.CacheClosedError):
        cache.get(__file__)
    fresh = legacy.get_cache()
    assert fresh is not cache and fresh.config.cache_dir == str(tmp_path / "global")
