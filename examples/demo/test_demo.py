"""The plugin's own demo: a tiny two-tier cache exercised with the dualcache fixtures.

Run it with ``pytest --dualcache examples/demo``: the KV namespace enforces Cloudflare's
limits, the clock is virtual, and every KV and DO operation is in a ledger.
"""

import asyncio
import json

import pytest
from demo_cache import cache_get, cache_put, save_daily_report

from pytest_dualcache import KVRateLimitError


def test_flag_on_routes_every_write_to_the_durable_object(dualcache_env, kv_namespace):
    cache_put(dualcache_env, "price:AAPL", {"close": 231.5})
    assert cache_get(dualcache_env, "price:AAPL") == {"close": 231.5}
    assert kv_namespace.ledger.counts()["put"] == 0


def test_flag_off_falls_back_to_kv(dualcache_env, dualcache_flag, kv_namespace):
    dualcache_flag.disable()
    cache_put(dualcache_env, "price:AAPL", {"close": 231.5})
    assert json.loads(kv_namespace.get("price:AAPL")) == {"close": 231.5}
    (record,) = [r for r in kv_namespace.ledger if r.op == "put"]
    assert record.call_site.function == "cache_put"


def test_kv_allows_one_write_per_second_per_key(dualcache_env, dualcache_flag, dualcache_clock):
    dualcache_flag.disable()
    cache_put(dualcache_env, "signal:MSFT", "buy")
    with pytest.raises(KVRateLimitError, match="429 Too Many Requests"):
        cache_put(dualcache_env, "signal:MSFT", "sell")
    dualcache_clock.advance(1)
    cache_put(dualcache_env, "signal:MSFT", "sell")
    assert cache_get(dualcache_env, "signal:MSFT") == "sell"


def test_ttl_expires_on_the_virtual_clock(dualcache_env, dualcache_clock, do_cache):
    cache_put(dualcache_env, "intraday:TSLA", [1, 2, 3], ttl=90)
    dualcache_clock.advance(89.999)
    assert cache_get(dualcache_env, "intraday:TSLA") == [1, 2, 3]
    dualcache_clock.advance(0.001)
    assert cache_get(dualcache_env, "intraday:TSLA") is None
    assert do_cache.stats().evictions == 1


def test_a_python_worker_runs_unmodified(dualcache_workers_env):
    assert asyncio.run(save_daily_report(dualcache_workers_env, {"ok": True})) == {"ok": True}
    assert dualcache_workers_env.FEATURE_FLAG_DO_CACHE == "true"
