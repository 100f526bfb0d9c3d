"""A user's project that only uses the fixtures: proves a non-editable install works."""

import pytest_dualcache


def test_fixtures_come_from_the_installed_wheel(kv_namespace, do_cache, dualcache_clock):
    assert "site-packages" in pytest_dualcache.__file__
    kv_namespace.put("k", "v", expiration_ttl=60)
    do_cache.set("k", {"v": 1}, ttl=30)
    dualcache_clock.advance(30)
    assert do_cache.get("k") is None
    assert kv_namespace.get("k") == "v"
    dualcache_clock.advance(30)
    assert kv_namespace.get("k") is None


def test_flag_and_env(dualcache_env, dualcache_flag):
    dualcache_flag.disable()
    assert not pytest_dualcache.is_do_cache_enabled(dualcache_env)
