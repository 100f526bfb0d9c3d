"""The team's own tests of its DAL, on the plugin's fixtures (no ``--dualcache`` needed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handwritten.dal import HandwrittenDAL

from pytest_dualcache import DualCacheEnv


def test_do_route_spends_one_kv_write_on_first_use_and_none_after(
    dualcache_env: DualCacheEnv, kv_budget: Callable[..., Any]
) -> None:
    dal = HandwrittenDAL(dualcache_env)  # the flag is "true": the DO route
    with kv_budget(writes=1, deletes=0):  # the route marker, written once per env
        for n in range(100):
            assert dal.put(f"signal:{n % 7}", {"n": n}, ttl=600).success
            assert dal.get(f"signal:{n % 7}") == {"n": n}
            dualcache_env.clock.advance(0.5)


def test_rollback_and_back_never_serves_the_value_from_before(
    dualcache_env: DualCacheEnv,
) -> None:
    flag = dualcache_env.flag
    before = HandwrittenDAL(dualcache_env)
    assert before.put("report:daily", "monday").success  # on the DO
    flag.disable()  # the seed's rollback: FEATURE_FLAG_DO_CACHE = "false", redeploy
    during = HandwrittenDAL(dualcache_env)
    assert during.put("report:daily", "tuesday").success  # in KV
    flag.enable()
    after = HandwrittenDAL(dualcache_env)
    # The DO still holds "monday", from an older generation: a miss, never a stale read.
    assert after.get("report:daily") is None
    # An instance idle through both flips trusts its view of the route for up to its
    # local_cache_ttl (LOC-3's bound on other instances' writes); after that, a miss too.
    dualcache_env.clock.advance(before.local_cache_ttl)
    assert before.get("report:daily") is None


def test_a_put_during_a_do_outage_survives_it(dualcache_env: DualCacheEnv) -> None:
    dal = HandwrittenDAL(dualcache_env)
    assert dal.put("price:AAPL", 231.5, ttl=300).success
    dualcache_env.clock.advance(1)
    with dualcache_env.do.outage():
        assert dal.put("price:AAPL", 232.0, ttl=300).success  # a fallback copy in KV
        assert HandwrittenDAL(dualcache_env).get("price:AAPL") == 232.0
    dualcache_env.clock.advance(5)
    assert HandwrittenDAL(dualcache_env).get("price:AAPL") == 232.0  # repaired into the DO
    assert dualcache_env.kv.get("price:AAPL") is None  # and the copy removed from KV
