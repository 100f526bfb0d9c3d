"""The reference CacheAbstraction and its async face, driven directly on an emulated env."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager

import fakeredis
import pytest

from pytest_dualcache.abstraction import (
    MAX_TTL_S,
    REPAIR_BACKOFF_MAX_S,
    ROUTE_MARKER_KEY,
    AsyncCacheAbstraction,
    CacheAbstraction,
    CacheInputError,
    CacheStats,
    WriteResult,
)
from pytest_dualcache.durable import RedisEngine
from pytest_dualcache.env import DualCacheEnv

ROUTES = ("do", "kv")


@pytest.fixture
def env(dualcache_env: DualCacheEnv) -> DualCacheEnv:
    return dualcache_env


@pytest.fixture
def cache(env: DualCacheEnv) -> CacheAbstraction:
    return CacheAbstraction(env)


@pytest.fixture(params=ROUTES)
def route(request: pytest.FixtureRequest, env: DualCacheEnv) -> str:
    """Each test using it runs with the flag on ("do") and off ("kv")."""
    env.flag.set(request.param == "do")
    return request.param


def marker_puts(env: DualCacheEnv) -> int:
    """Successful KV writes of the route marker so far."""
    return sum(1 for r in env.kv.ledger if r.op == "put" and r.key == ROUTE_MARKER_KEY and r.ok)


def store_writes(env: DualCacheEnv) -> list[tuple[str, str, str]]:
    """Every successful write (KV put/delete, DO set/delete) as (store, op, key)."""
    return [
        (r.store, r.op, r.key)
        for ledger in env.ledgers()
        for r in ledger
        if r.ok and r.op in ("put", "set", "delete")
    ]


def do_gets(env: DualCacheEnv, key: str) -> int:
    return sum(1 for r in env.do.ledger if r.op == "get" and r.key == key)


def marker(env: DualCacheEnv) -> dict:
    return json.loads(env.kv.get(ROUTE_MARKER_KEY))


def test_the_marker_key_is_reserved_under_a_nul_prefix():
    assert ROUTE_MARKER_KEY == "\x00dualcache:route"


# --- put, get, delete, list -------------------------------------------------------------------


def test_put_get_delete_on_the_do_route(env, cache):
    assert cache.put("user:1", {"name": "Ada"}, ttl=120) == WriteResult(
        True, "user:1", 120, "do", None
    )
    assert cache.get("user:1") == {"name": "Ada"}
    assert env.do.list() == ["user:1"]
    assert env.kv.keys() == [ROUTE_MARKER_KEY]
    assert cache.delete("user:1") == WriteResult(True, "user:1", None, "do", None)
    assert cache.get("user:1") is None
    assert env.do.list() == []


def test_put_get_delete_on_the_kv_route(env, cache):
    env.flag.disable()
    assert cache.put("user:1", [1, "two"], ttl=120) == WriteResult(True, "user:1", 120, "kv", None)
    assert cache.get("user:1") == [1, "two"]
    assert "user:1" in env.kv
    assert cache.delete("user:1") == WriteResult(True, "user:1", None, "kv", None)
    assert cache.get("user:1") is None
    assert "user:1" not in env.kv
    assert len(env.do.ledger) == 0, "flag off must never touch the Durable Object"


def test_get_of_an_absent_key_is_none(route, cache):
    assert cache.get("never:written") is None


@pytest.mark.parametrize(
    "value", [None, True, 0, -7, 2.5, "", "héllo", [], {}, {"a": [1, {"b": None}]}]
)
def test_every_json_value_round_trips(route, cache, value):
    cache.put("k", value)
    got = cache.get("k")
    assert got == value and type(got) is type(value)


def test_default_ttl_is_3600(cache):
    assert cache.default_ttl == 3600
    assert cache.put("k", 1).ttl == 3600


def test_an_omitted_ttl_means_default_ttl(route, env):
    cache = CacheAbstraction(env, default_ttl=90)
    assert cache.put("k", "v").ttl == 90
    env.clock.advance(89.999)
    assert cache.get("k") == "v"
    env.clock.advance(0.001)
    assert cache.get("k") is None


def test_list_gives_live_keys_under_a_prefix_and_hides_the_marker(route, env, cache):
    for key in ("b:1", "a:2", "a:1"):
        cache.put(key, key)
    cache.put("a:short", 0, ttl=10)
    assert ROUTE_MARKER_KEY in env.kv
    assert cache.list() == ["a:1", "a:2", "a:short", "b:1"]
    assert cache.list("a:") == ["a:1", "a:2", "a:short"]
    assert cache.list("\x00") == []
    env.clock.advance(10)
    assert cache.list("a:") == ["a:1", "a:2"]


# --- caller mistakes --------------------------------------------------------------------------

BAD_KEYS = [
    pytest.param("", "non-empty", id="empty"),
    pytest.param(".", "not allowed", id="dot"),
    pytest.param("..", "not allowed", id="dotdot"),
    pytest.param("k" * 513, "513 UTF-8 bytes; KV's limit is 512", id="513-bytes"),
    pytest.param("é" * 257, "514 UTF-8 bytes; KV's limit is 512", id="514-bytes-of-257-chars"),
    pytest.param(ROUTE_MARKER_KEY, "reserved", id="the-marker"),
    pytest.param("\x00dualcache:mine", "reserved", id="reserved-prefix"),
    pytest.param(42, "must be non-empty str", id="int"),
    pytest.param(None, "must be non-empty str", id="none"),
    pytest.param(b"key", "must be non-empty str", id="bytes"),
]
BAD_TTLS = [0, -1, True, 1.5, "60", math.inf, MAX_TTL_S + 1, 2**63]
BAD_VALUES = [
    pytest.param({1, 2}, "type set", id="set"),
    pytest.param(b"raw", "type bytes", id="bytes"),
    pytest.param(object(), "type object", id="object"),
    pytest.param(math.nan, "NaN", id="nan"),
    pytest.param(math.inf, "inf", id="inf"),
    pytest.param([1, -math.inf], "value[1] is -inf", id="nested-minus-inf"),
    pytest.param((1, 2), "tuple", id="tuple"),
    pytest.param({1: "x"}, "int key 1", id="int-dict-key"),
]


@contextmanager
def nothing_written(env: DualCacheEnv) -> Iterator[None]:
    """Asserts that neither store was written to or changed inside the block."""
    before = (store_writes(env), env.kv.keys(), env.do.list())
    yield
    assert (store_writes(env), env.kv.keys(), env.do.list()) == before


@pytest.fixture
def seeded(env: DualCacheEnv) -> Iterator[CacheAbstraction]:
    """A fresh instance on an env holding k = "before", which must still hold it afterwards."""
    CacheAbstraction(env).put("k", "before")
    yield CacheAbstraction(env)
    assert CacheAbstraction(env).get("k") == "before"


@pytest.mark.parametrize(("key", "says"), BAD_KEYS)
@pytest.mark.parametrize("call", ["put", "get", "delete"])
def test_a_bad_key_is_a_cache_input_error_naming_the_limit(route, env, seeded, key, says, call):
    args = (key, "v") if call == "put" else (key,)
    with nothing_written(env), pytest.raises(CacheInputError) as raised:
        getattr(seeded, call)(*args)
    assert says in str(raised.value)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("ttl", BAD_TTLS, ids=repr)
def test_a_bad_ttl_is_a_cache_input_error(route, env, seeded, ttl):
    with nothing_written(env), pytest.raises(CacheInputError, match="ttl must be a positive int"):
        seeded.put("k", "after", ttl=ttl)


def test_the_largest_ttl_is_kvs_int32_bound():
    assert MAX_TTL_S == 2**31 - 1, "the Workers binding takes expirationTtl as a 32-bit int"


def test_a_ttl_beyond_the_largest_is_refused_before_any_store_on_both_routes(route, env, seeded):
    # Issue 10 item 14: 2**31 was success=False on the KV route (the binding's int32 range
    # error) but a success on the DO route; the same call now fails the same way on both.
    with nothing_written(env), pytest.raises(CacheInputError, match="at most 2147483647 s"):
        seeded.put("k", "after", ttl=2**31)


def test_the_largest_ttl_works_on_both_routes_until_it_ends(route, env, cache):
    env.clock.advance(0.5)  # mid-second: KV's whole-second expiry must not cut it short here
    written = cache.put("k", "v", ttl=MAX_TTL_S)
    assert (written.success, written.route) == (True, route)
    env.clock.advance(MAX_TTL_S - 1)
    assert CacheAbstraction(env).get("k") == "v", "a fresh instance reads it from the store"
    env.clock.advance(1)
    assert CacheAbstraction(env).get("k") is None


@pytest.mark.parametrize(("value", "says"), BAD_VALUES)
def test_a_non_json_value_is_a_cache_input_error_naming_the_problem(
    route, env, seeded, value, says
):
    with nothing_written(env), pytest.raises(CacheInputError, match="strict JSON") as raised:
        seeded.put("k", value)
    assert says in str(raised.value)


def test_an_int_too_long_for_json_is_a_cache_input_error(env, seeded):
    with nothing_written(env), pytest.raises(CacheInputError):
        seeded.put("k", 10**5000)


def test_a_bad_first_call_on_a_fresh_env_writes_not_even_the_marker():
    env = DualCacheEnv()
    with pytest.raises(CacheInputError):
        CacheAbstraction(env).put("", 1)
    assert [len(ledger) for ledger in env.ledgers()] == [0, 0]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("default_ttl", 0),
        ("default_ttl", 1.5),
        ("local_cache_ttl", -1),
        ("local_cache_ttl", math.nan),
        ("local_cache_size", -1),
        ("local_cache_size", 2.0),
    ],
)
def test_bad_constructor_options_are_cache_input_errors(env, option, value):
    with pytest.raises(CacheInputError, match=option):
        CacheAbstraction(env, **{option: value})


@pytest.mark.parametrize(("option", "value"), [("max_kv_attempts", 0), ("kv_retry_delay", -1)])
def test_bad_retry_options_are_cache_input_errors(env, option, value):
    with pytest.raises(CacheInputError, match=option):
        CacheAbstraction(env, **{option: value})


# --- what KV holds ----------------------------------------------------------------------------


def test_kv_holds_plain_json_text_with_the_logical_expiry_in_metadata(env, cache):
    env.flag.disable()
    value = {"a": [1, 2.5, "é", None, True]}
    put_at = env.clock.now()
    cache.put("k", value, ttl=120)
    assert json.loads(env.kv.get("k")) == value
    assert put_at + 120 in env.kv.get_with_metadata("k").metadata.values()


@pytest.mark.parametrize("ttl", [30, 120])
@pytest.mark.parametrize("start", [0.0, 0.5], ids=["on-the-second", "mid-second"])
def test_a_ttl_expires_on_time_on_the_kv_route_whatever_kv_rounds(env, cache, start, ttl):
    env.flag.disable()
    env.clock.advance(start)
    put_at = env.clock.now()
    assert cache.put("k", "v", ttl=ttl).success
    assert env.kv.expiration_of("k") >= math.floor(put_at) + 60, "KV's own floor is 60 s"
    env.clock.advance(ttl - 0.001)
    assert cache.get("k") == "v"
    env.clock.advance(0.001)
    assert cache.get("k") is None
    if ttl < 60:
        assert "k" in env.kv, "KV still holds it: the logical expiry decided"


def test_legacy_kv_entries_without_metadata_are_read_on_the_kv_route(env, cache):
    env.flag.disable()
    env.kv.put("legacy:1", json.dumps({"x": 1}), expiration_ttl=60)
    assert cache.get("legacy:1") == {"x": 1}
    assert cache.list("legacy:") == ["legacy:1"]
    env.clock.advance(60)
    assert cache.get("legacy:1") is None


def test_a_do_miss_does_not_read_through_to_kv(env, cache):
    env.kv.put("legacy:1", json.dumps({"x": 1}))
    assert cache.get("legacy:1") is None


# --- the route marker -------------------------------------------------------------------------


@pytest.mark.parametrize("first_route", ROUTES)
def test_first_use_of_an_env_writes_the_marker_exactly_once(env, cache, first_route):
    env.flag.set(first_route == "do")
    cache.put("a", 1)
    cache.get("a")
    cache.list()
    env.clock.advance(61)  # past local_cache_ttl: the marker is read again, not written
    cache.get("a")
    cache.delete("a")
    assert marker_puts(env) == 1
    assert marker(env)["route"] == first_route
    assert cache.stats().coordination_writes == 1


def test_a_healthy_do_route_makes_no_kv_write_per_operation(env, cache):
    cache.get("warm")
    before = store_writes(env)
    for n in range(5):
        cache.put(f"k{n}", n)
        cache.get(f"k{n}")
        env.clock.advance(30)
        cache.delete(f"k{n}")
    assert [w for w in store_writes(env)[len(before) :] if w[0] == env.kv.name] == []


def test_one_marker_write_per_flag_transition_whatever_the_instances(env):
    first, second = CacheAbstraction(env), CacheAbstraction(env)
    for step, enabled in enumerate([True, False, True, False, True]):
        env.flag.set(enabled)
        first.put(f"k{step}", step)
        second.get(f"k{step}")
        env.clock.advance(1)
    assert marker_puts(env) == 5  # first use + four transitions
    assert marker(env)["route"] == "do"


def test_a_second_instance_adopts_the_marker_without_writing(env, cache):
    cache.put("k", 1)
    other = CacheAbstraction(env)
    assert other.get("k") == 1
    other.put("j", 2)
    assert marker_puts(env) == 1
    assert other.stats().coordination_writes == 0


def test_after_on_off_on_a_fresh_instance_misses_the_first_on_period(env):
    CacheAbstraction(env).put("k", "first on")
    env.flag.disable()
    CacheAbstraction(env).put("k", "off")
    env.flag.enable()
    fresh = CacheAbstraction(env)
    assert fresh.get("k") is None, "a miss, never the stale 'first on' value"
    assert env.do.get("k") is not None, "the old DO entry is still there, only ignored"


def on_off_on(env: DualCacheEnv) -> None:
    """First on period writes x="first on", the off period x="off"; the flag ends on."""
    CacheAbstraction(env).put("x", "first on")
    env.flag.disable()
    env.clock.advance(1)
    CacheAbstraction(env).put("x", "off")
    env.flag.enable()
    env.clock.advance(1)
    CacheAbstraction(env).get("warm")
    assert marker(env) == {"route": "do", "generation": 2, "degraded": False}


def test_a_failed_marker_read_never_rewinds_the_generation(env):
    on_off_on(env)
    env.kv.fail(times=1, ops="get")
    assert CacheAbstraction(env).get("x") is None
    assert CacheAbstraction(env).get("x") is None


def test_a_put_made_while_kv_is_down_is_not_silently_lost(env):
    on_off_on(env)
    env.kv.fail()
    instance = CacheAbstraction(env)
    result = instance.put("k", "v")
    env.kv.recover()
    env.clock.advance(1)
    instance.put("other", 1)
    if result.success:  # FB-7: a put that reported success is readable until its TTL
        assert CacheAbstraction(env).get("k") == "v"
        assert instance.get("k") == "v"


# --- 429 retries ------------------------------------------------------------------------------


def test_two_puts_to_one_key_in_one_instant_both_succeed_on_the_kv_route(env, cache):
    env.flag.disable()
    assert cache.put("k", "first").success
    at = env.clock.now()
    assert cache.put("k", "second") == WriteResult(True, "k", 3600, "kv", None)
    assert cache.stats().retries >= 1
    assert env.clock.now() > at, "the backoff slept on the virtual clock"
    assert cache.get("k") == "second"
    assert json.loads(env.kv.get("k")) == "second"


def test_exhausted_kv_attempts_report_failure_with_the_429(env):
    env.flag.disable()
    cache = CacheAbstraction(env, max_kv_attempts=1)
    cache.put("k", "first")
    at = env.clock.now()
    result = cache.put("k", "second")
    assert (result.success, result.key, result.ttl, result.route) == (False, "k", 3600, "kv")
    assert "429" in result.error
    assert env.clock.now() == at
    assert cache.get("k") == "first"


# --- Durable Object failures ------------------------------------------------------------------


def test_a_failing_do_put_falls_back_to_kv_and_degrades_the_marker(env, cache):
    cache.put("warm", 0)
    env.do.fail()
    assert cache.put("k", {"v": 1}, ttl=120) == WriteResult(True, "k", 120, "kv", None)
    assert cache.stats().fallbacks >= 1
    assert cache.get("k") == {"v": 1}
    assert marker(env)["degraded"] is True


def test_a_short_put_that_expired_during_a_long_outage_does_not_bring_back_the_older_value(env):
    # The fallback copy must outlive its logical TTL in KV until repair: had KV dropped it at
    # max(60, ttl + 1) s, repair would never learn that the DO's older value was overwritten.
    cache = CacheAbstraction(env)
    cache.put("k", "v1", ttl=3600)
    env.do.fail()
    assert cache.put("k", "v2", ttl=5).success
    env.clock.advance(120)
    env.do.recover()
    env.clock.advance(REPAIR_BACKOFF_MAX_S)
    assert cache.get("k") is None
    assert CacheAbstraction(env).get("k") is None, "a fresh instance too"
    assert "k" not in env.kv, "repair dropped the copy"


@pytest.mark.parametrize("error", ["overloaded", "timeout"])
def test_a_failing_do_get_falls_back_to_kv_and_never_raises(env, cache, error):
    cache.put("on-do", "d")
    env.do.fail(ops="set")
    cache.put("copy", "c")
    env.do.fail(error=error, ops="get")
    fallbacks = cache.stats().fallbacks
    assert cache.get("copy") == "c"
    assert cache.get("on-do") is None
    assert cache.stats().fallbacks > fallbacks


def test_a_lost_redis_server_falls_back_to_kv_like_any_do_outage():
    server = fakeredis.FakeServer()
    engine = RedisEngine(fakeredis.FakeRedis(server=server))
    env = DualCacheEnv(do_engine=engine)
    cache = CacheAbstraction(env)
    cache.put("on-do", "d")
    server.connected = False
    assert cache.get("on-do") is None, "FB-4: a lost server is a DO error; get never raises"
    assert cache.put("k", "v") == WriteResult(True, "k", 3600, "kv", None)
    assert cache.get("k") == "v"
    assert cache.list() == ["k"]
    server.connected = True
    env.clock.advance(REPAIR_BACKOFF_MAX_S)  # past any repair backoff
    assert cache.get("on-do") == "d" and cache.get("k") == "v"
    assert marker(env)["degraded"] is False, "the next DO call that answers repairs"


def test_a_successful_do_call_repairs_the_degraded_route(env, cache):
    cache.put("warm", 0)
    env.do.fail()
    put_at = env.clock.now()
    cache.put("k", "v", ttl=100)
    env.clock.advance(10)
    env.do.recover()
    assert cache.get("k") == "v"
    assert marker(env)["degraded"] is False
    assert "k" in env.do.list(), "the fallback copy moved into the DO"
    assert "k" not in env.kv, "and left KV"
    other = CacheAbstraction(env)
    env.clock.set(put_at + 99.999)
    assert other.get("k") == "v"
    env.clock.set(put_at + 100)
    assert "k" not in env.do.list(), "the DO copy kept the remaining TTL"
    assert other.get("k") is None


@pytest.mark.parametrize("failing", [None, "delete"], ids=["all-ops", "delete-only"])
def test_a_delete_during_an_outage_hides_the_older_do_value(env, cache, failing):
    cache.put("k", "old")
    env.clock.advance(1)
    env.do.fail(ops=failing)
    assert cache.delete("k") == WriteResult(True, "k", None, "kv", None)
    assert "k" in env.kv, "a tombstone"
    assert cache.get("k") is None
    assert CacheAbstraction(env).get("k") is None
    env.do.recover()
    env.clock.advance(2)
    assert CacheAbstraction(env).get("k") is None
    assert "k" not in env.do.list()
    assert marker(env)["degraded"] is False


def test_a_key_deleted_during_an_outage_is_not_listed(env, cache):
    cache.put("k", "old")
    cache.put("j", "kept")
    env.clock.advance(1)
    env.do.fail(ops="delete")
    cache.delete("k")
    assert cache.list() == ["j"]
    assert CacheAbstraction(env).list() == ["j"]


def test_an_oversized_value_does_not_leave_a_healthy_do_route_degraded(env, cache):
    cache.put("warm", 0)  # the env's first use writes the route marker
    with contextlib.suppress(CacheInputError):
        cache.put("big", "x" * 200_000)
    env.clock.advance(2)
    before = store_writes(env)
    for n in range(3):
        cache.put(f"k{n}", n)
        env.clock.advance(2)
    assert [w for w in store_writes(env)[len(before) :] if w[0] == env.kv.name] == []
    assert marker(env)["degraded"] is False


def test_list_includes_keys_held_as_fallback_copies(env, cache):
    cache.put("a", 1)
    env.do.fail(ops="set")
    assert cache.put("k", 2).success
    assert cache.get("k") == 2
    assert cache.list() == ["a", "k"]


def test_both_stores_failing_put_reports_failure_and_get_answers_none(route, env, cache):
    cache.put("k", "stored")
    env.do.fail()
    env.kv.fail()
    result = cache.put("k", "new")
    assert (result.success, result.route) == (False, "kv")
    assert result.error == "KV PUT failed: 503 Service Unavailable"
    assert cache.get("k") is None
    assert CacheAbstraction(env).get("k") is None


# --- the local cache --------------------------------------------------------------------------


def test_a_second_get_is_a_local_hit(env, cache):
    cache.put("k", "v")
    assert cache.get("k") == "v"
    assert cache.get("k") == "v"
    assert do_gets(env, "k") == 1
    assert cache.stats().local_hits == 1


@pytest.mark.parametrize(
    ("ttl", "local_ttl"), [(100, 10), (5, 60)], ids=["local-ttl-first", "ttl-first"]
)
def test_local_entries_live_min_of_ttl_and_local_cache_ttl(env, ttl, local_ttl):
    cache = CacheAbstraction(env, local_cache_ttl=local_ttl)
    cache.put("k", "v", ttl=ttl)
    cache.get("k")
    env.clock.advance(min(ttl, local_ttl) - 0.001)
    assert cache.get("k") == "v"
    assert cache.stats().local_hits == 1
    env.clock.advance(0.001)
    assert cache.get("k") == ("v" if ttl > local_ttl else None)
    assert cache.stats().local_hits == 1
    assert do_gets(env, "k") == 2


def test_the_local_cache_evicts_the_least_recently_used(env):
    cache = CacheAbstraction(env, local_cache_size=2)
    for key in "abc":
        cache.put(key, key)
    for key in "abac":  # a is used again, so b is the least recently used when c comes
        cache.get(key)
    assert [do_gets(env, key) for key in "abc"] == [1, 1, 1]
    cache.get("a")
    cache.get("b")
    assert [do_gets(env, key) for key in "abc"] == [1, 2, 1]


@pytest.mark.parametrize("option", ["local_cache_size", "local_cache_ttl"])
def test_a_zero_option_turns_the_local_cache_off(env, option):
    cache = CacheAbstraction(env, **{option: 0})
    cache.put("k", "v")
    cache.get("k")
    cache.get("k")
    assert do_gets(env, "k") == 2
    assert cache.stats().local_hits == 0


def test_the_instances_own_put_and_delete_invalidate_its_local_copy(route, cache):
    cache.put("k", "v1")
    cache.get("k")
    assert cache.put("k", "v2").success
    assert cache.get("k") == "v2"
    cache.delete("k")
    assert cache.get("k") is None


def test_a_flip_empties_the_local_cache(env, cache):
    cache.put("k", "on")
    cache.get("k")
    env.flag.disable()
    assert cache.get("k") is None
    env.flag.enable()
    assert cache.get("k") is None
    assert cache.stats().local_hits == 0


# --- stats ------------------------------------------------------------------------------------


def test_stats_of_a_fresh_instance_are_zero(cache):
    stats = cache.stats()
    assert isinstance(stats, CacheStats)
    assert (stats.writes, stats.route_share) == ({"do": 0, "kv": 0}, {"do": 0.0, "kv": 0.0})
    counters = ("reads", "local_hits", "do_hits", "do_misses", "fallbacks", "retries")
    assert [getattr(stats, name) for name in counters] == [0] * len(counters)
    assert (stats.do_hit_rate, stats.coordination_writes) == (0.0, 0)


def test_stats_count_writes_per_route_hits_and_coordination(env):
    cache = CacheAbstraction(env, local_cache_size=0)
    for n in range(3):
        cache.put(f"d{n}", n)
    cache.get("d0")
    cache.get("d1")
    cache.get("absent")
    env.flag.disable()
    cache.put("k", 1)
    stats = cache.stats()
    assert stats.writes == {"do": 3, "kv": 1}
    assert stats.route_share == {"do": 0.75, "kv": 0.25}
    assert (stats.reads, stats.do_hits, stats.do_misses) == (3, 2, 1)
    assert stats.do_hit_rate == pytest.approx(2 / 3)
    assert stats.coordination_writes == 2


def test_a_fallback_write_counts_as_a_kv_write(env, cache):
    env.do.fail(ops="set")
    cache.put("k", 1)
    assert cache.stats().writes == {"do": 0, "kv": 1}
    assert cache.stats().fallbacks == 1


# --- logging ----------------------------------------------------------------------------------


def test_each_put_logs_its_key_route_and_reason(env, cache, caplog):
    caplog.set_level(logging.DEBUG, logger="pytest_dualcache.abstraction")
    cache.put("on:k", 1)
    env.flag.disable()
    cache.put("off:k", 1)
    env.flag.enable()
    env.do.fail()
    cache.put("down:k", 1)
    lines = [r.getMessage() for r in caplog.records if r.name == "pytest_dualcache.abstraction"]

    def logged(key: str, *parts: str) -> bool:
        return any(repr(key) in line and all(p in line for p in parts) for line in lines)

    assert logged("on:k", "put", "-> do", "flag on")
    assert logged("off:k", "put", "-> kv", "flag off")
    assert logged("down:k", "put", "-> kv", "DO failed")


# --- the async face ---------------------------------------------------------------------------


@pytest.mark.parametrize("face", ["workers", "dualcache"])
def test_the_async_face_does_what_the_sync_one_does(env, face):
    cache = AsyncCacheAbstraction(env.workers() if face == "workers" else env, default_ttl=60)

    async def story() -> None:
        assert await cache.put("k", {"v": 1}) == WriteResult(True, "k", 60, "do", None)
        assert await cache.get("k") == {"v": 1}
        assert await cache.put("gone", 3) == WriteResult(True, "gone", 60, "do", None)
        assert await cache.delete("gone") == WriteResult(True, "gone", None, "do", None)
        assert await cache.list() == ["k"]
        env.flag.disable()
        assert (await cache.put("j", 2, ttl=30)).route == "kv"
        assert await cache.list() == ["j"]
        env.clock.advance(30)
        assert await cache.get("j") is None
        assert await cache.delete("k") == WriteResult(True, "k", None, "kv", None)
        stats = await cache.stats()
        assert (stats.writes, stats.reads) == ({"do": 2, "kv": 1}, 2)

    asyncio.run(story())


def test_the_async_face_shares_one_sync_cache_abstraction(env):
    cache = AsyncCacheAbstraction(env.workers(), default_ttl=90, local_cache_ttl=5)
    assert isinstance(cache.sync, CacheAbstraction)
    assert (cache.default_ttl, cache.local_cache_ttl) == (90, 5)
    asyncio.run(cache.put("k", "v"))
    assert cache.sync.get("k") == "v"
    assert asyncio.run(cache.stats()) == cache.sync.stats()


def test_the_async_face_raises_caller_mistakes_and_survives_outages(env):
    cache = AsyncCacheAbstraction(env)
    with pytest.raises(CacheInputError):
        asyncio.run(cache.put("k", math.nan))
    env.do.fail()
    assert asyncio.run(cache.put("k", 1)).route == "kv"
    assert asyncio.run(cache.get("k")) == 1


def test_values_up_to_the_do_limit_less_the_record_are_accepted_on_both_routes(route, env, cache):
    from pytest_dualcache.abstraction import MAX_VALUE_BYTES, RECORD_OVERHEAD_BYTES

    assert MAX_VALUE_BYTES == 131_072 - RECORD_OVERHEAD_BYTES
    largest = "x" * (MAX_VALUE_BYTES - 2)  # two bytes of JSON quotes
    assert cache.put("big", largest).success
    assert cache.get("big") == largest
    env.clock.advance(1)
    with pytest.raises(CacheInputError, match=f"at most {MAX_VALUE_BYTES}"):
        cache.put("big", largest + "x")
    assert cache.get("big") == largest


def test_foreign_kv_metadata_reads_as_legacy_data_not_a_crash(env, cache):
    env.flag.disable()
    env.kv.put("k", '"theirs"', metadata="v2")
    assert cache.get("k") == "theirs"
    assert cache.list() == ["k"]


def test_list_answers_empty_when_kv_is_down_for_a_fresh_instance(env):
    env.kv.fail()
    assert CacheAbstraction(env).list() == []


def test_repair_attempts_back_off_while_the_do_stays_down(env, cache):
    cache.put("warm", 0)
    env.do.fail()
    assert cache.put("k", 1).success  # a fallback copy: the route is degraded now
    lists_before = env.kv.used_today()["list"]
    for _ in range(600):  # ten minutes of one get a second
        cache.get("k")
        env.clock.advance(1)
    repair_lists = env.kv.used_today()["list"] - lists_before
    assert repair_lists <= 12, f"{repair_lists} KV lists: repair attempts must back off"
    env.do.recover()
    env.clock.advance(300)
    assert cache.get("k") == 1
    assert env.kv.get_with_metadata("k").value is None  # repaired: the copy moved to the DO


def test_the_async_face_goes_through_the_workers_bindings(env, monkeypatch):
    from pytest_dualcache.workers import WorkersDurableObjectCache, WorkersKV

    calls = []
    for face, names in (
        (WorkersKV, ("put", "getWithMetadata", "get")),
        (WorkersDurableObjectCache, ("set", "get")),
    ):
        for name in names:
            original = getattr(face, name)

            async def spy(self, *args, __original=original, __name=f"{face.__name__}.{name}", **kw):
                calls.append(__name)
                return await __original(self, *args, **kw)

            monkeypatch.setattr(face, name, spy)
    cache = AsyncCacheAbstraction(env)
    asyncio.run(cache.put("k", {"v": 1}, ttl=120))
    assert asyncio.run(cache.get("k")) == {"v": 1}
    env.flag.disable()
    env.clock.advance(1)
    asyncio.run(cache.put("k", [2], ttl=30))
    assert asyncio.run(cache.get("k")) == [2]
    assert {"WorkersDurableObjectCache.set", "WorkersKV.put", "WorkersKV.getWithMetadata"} <= set(
        calls
    ), calls
    assert env.kv.get_with_metadata("k").metadata["e"] == env.clock.now() + 30
