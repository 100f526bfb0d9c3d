"""The DO cache's redis engine on a real Redis server (``--dualcache-redis-url``).

CI starts ``redis-server`` on loopback and sets ``DUALCACHE_REDIS_URL``; without it the
server tests skip and only the option handling is checked.
"""

from __future__ import annotations

import os

import pytest

from pytest_dualcache import DualCacheEnv, RedisEngine, VirtualClock
from pytest_dualcache.settings import DualCacheSettings

REDIS_URL = os.environ.get("DUALCACHE_REDIS_URL")
needs_server = pytest.mark.skipif(not REDIS_URL, reason="no Redis server: DUALCACHE_REDIS_URL")


def test_a_url_that_is_not_redis_is_a_usage_error(pytester):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--dualcache-redis-url=http://localhost:6379")
    assert result.ret != 0
    result.stderr.fnmatch_lines(
        ["ERROR: --dualcache-redis-url: 'http://localhost:6379' is not a redis://*"]
    )


def test_an_unreachable_server_is_a_usage_error_naming_the_variable(pytester, monkeypatch):
    monkeypatch.setenv("DUALCACHE_REDIS_URL", "redis://127.0.0.1:1/0")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--dualcache", "-k", "test_nothing")
    assert result.ret != 0
    result.stderr.fnmatch_lines(
        ["ERROR: $DUALCACHE_REDIS_URL: cannot reach Redis at redis://127.0.0.1:1/0: *"]
    )


@needs_server
def test_each_env_gets_its_own_prefix_and_cleans_up_on_close():
    settings = DualCacheSettings(do_engine="redis", redis_url=REDIS_URL)
    first = DualCacheEnv.from_settings(settings, VirtualClock())
    second = DualCacheEnv.from_settings(settings, VirtualClock())
    first.do.set("k", "first", ttl=60)
    second.do.set("k", "second", ttl=60)
    assert (first.do.get("k"), second.do.get("k")) == ("first", "second")
    engine = first.do.engine
    assert isinstance(engine, RedisEngine) and engine.prefix != second.do.engine.prefix
    name = engine.prefix + "k"
    assert 0 < engine.client.ttl(name) <= engine.cleanup_after_s  # cleanup only
    first.close()
    assert engine.client.exists(name) == 0
    assert second.do.get("k") == "second"
    second.close()


@needs_server
def test_expiry_follows_the_virtual_clock_not_the_servers():
    env = DualCacheEnv.from_settings(
        DualCacheSettings(do_engine="redis", redis_url=REDIS_URL), VirtualClock()
    )
    env.do.set("k", "v", ttl=3600)
    env.clock.advance(3599.999)
    assert env.do.get("k") == "v"
    env.clock.advance(0.001)
    assert env.do.get("k") is None
    env.close()


@needs_server
def test_the_fixture_env_runs_on_the_server(pytester):
    pytester.makepyfile(
        """
        def test_on_server(do_cache):
            do_cache.set("k", 1, ttl=60)
            assert do_cache.engine.client.connection_pool.connection_kwargs["port"] > 0
            assert do_cache.engine.prefix.startswith("dualcache:")
        """
    )
    pytester.runpytest(f"--dualcache-redis-url={REDIS_URL}").assert_outcomes(passed=1)


def test_the_variable_never_stops_a_session_without_dualcache(pytester, monkeypatch):
    monkeypatch.setenv("DUALCACHE_REDIS_URL", "redis://127.0.0.1:1/0")
    pytester.makepyfile("def test_nothing(): pass")
    pytester.runpytest().assert_outcomes(passed=1)
