"""DualCacheEnv: the bindings and vars one Worker sees, on one virtual clock."""

from __future__ import annotations

import asyncio
import re
import types

import pytest

from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.durable import DurableObjectCache, MemoryEngine, RedisEngine
from pytest_dualcache.env import BindingNames, DualCacheEnv, FeatureFlag, is_do_cache_enabled
from pytest_dualcache.kv import KVNamespace, KVRateLimitError
from pytest_dualcache.latency import SEED_TABLE, Latency, LatencyModel, RequestRecorder
from pytest_dualcache.settings import DualCacheSettings
from pytest_dualcache.workers import WorkersEnv

# --- defaults -------------------------------------------------------------------------------


def test_default_binding_names_are_cache_do_cache_kv_and_the_flag_var():
    assert BindingNames() == BindingNames(
        do="CACHE_DO", kv="CACHE_KV", flag="FEATURE_FLAG_DO_CACHE"
    )


def test_default_env_binds_kv_as_cache_kv_attribute():
    env = DualCacheEnv()
    assert isinstance(env.kv, KVNamespace)
    assert env.CACHE_KV is env.kv
    assert env.kv.name == "CACHE_KV"


def test_default_env_binds_do_as_cache_do_attribute():
    env = DualCacheEnv()
    assert isinstance(env.do, DurableObjectCache)
    assert env.CACHE_DO is env.do
    assert env.do.name == "CACHE_DO"


def test_default_env_has_flag_var_true():
    env = DualCacheEnv()
    assert env.FEATURE_FLAG_DO_CACHE == "true"
    assert env.vars == {"FEATURE_FLAG_DO_CACHE": "true"}


def test_default_env_uses_the_memory_engine_and_free_plan():
    env = DualCacheEnv()
    assert isinstance(env.do.engine, MemoryEngine)
    assert env.kv.plan == "free"


def test_kv_and_do_share_one_clock():
    env = DualCacheEnv()
    assert env.kv.clock is env.clock
    assert env.do.clock is env.clock


def test_env_uses_the_clock_it_is_given():
    clock = VirtualClock(0)
    env = DualCacheEnv(clock)
    assert env.clock is clock
    assert env.kv.clock is clock
    assert env.do.clock is clock


def test_advancing_the_env_clock_expires_kv_and_do_entries_together():
    env = DualCacheEnv()
    env.kv.put("k", "v", expiration_ttl=60)
    env.do.set("k", "v", ttl=60)
    env.clock.advance(60)
    assert env.kv.get("k") is None
    assert env.do.get("k") is None


def test_each_env_has_its_own_clock_by_default():
    assert DualCacheEnv().clock is not DualCacheEnv().clock


def test_repr_lists_bindings_and_vars():
    assert repr(DualCacheEnv()) == (
        "<DualCacheEnv bindings=['CACHE_DO', 'CACHE_KV'] vars={'FEATURE_FLAG_DO_CACHE': 'true'}>"
    )


# --- custom names, vars and plan -------------------------------------------------------------


def test_custom_binding_names_rename_the_attributes():
    names = BindingNames(do="MARKET_DO", kv="MARKET_ANALYSIS_CACHE", flag="USE_DO")
    env = DualCacheEnv(names=names)
    assert env.MARKET_ANALYSIS_CACHE is env.kv
    assert env.MARKET_DO is env.do
    assert env.USE_DO == "true"
    assert env.kv.name == "MARKET_ANALYSIS_CACHE"
    assert env.do.name == "MARKET_DO"
    assert env.binding_names is names


def test_custom_binding_names_leave_the_default_names_unbound():
    env = DualCacheEnv(names=BindingNames(kv="MARKET_ANALYSIS_CACHE"))
    with pytest.raises(AttributeError, match="CACHE_KV"):
        _ = env.CACHE_KV


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ({"kv": "CACHE", "do": "CACHE"}, "three different names, got CACHE, CACHE, FEATURE_"),
        ({"flag": "CACHE_KV"}, "three different names, got CACHE_DO, CACHE_KV, CACHE_KV"),
        ({"kv": "not-an-identifier"}, "'not-an-identifier' is not a valid binding name"),
    ],
    ids=["kv-equals-do", "flag-equals-kv", "not-an-identifier"],
)
def test_colliding_or_invalid_binding_names_are_rejected(names, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        BindingNames(**names)


def test_extra_vars_are_attributes():
    env = DualCacheEnv(vars={"ENVIRONMENT": "staging"})
    assert env.ENVIRONMENT == "staging"


def test_vars_are_copied_from_the_given_dict():
    given = {"ENVIRONMENT": "staging"}
    env = DualCacheEnv(vars=given)
    env.flag.disable()
    assert given == {"ENVIRONMENT": "staging"}


def test_a_given_flag_var_wins_over_flag_enabled():
    env = DualCacheEnv(vars={"FEATURE_FLAG_DO_CACHE": "false"}, flag_enabled=True)
    assert env.FEATURE_FLAG_DO_CACHE == "false"


def test_flag_enabled_false_stores_the_string_false():
    assert DualCacheEnv(flag_enabled=False).vars["FEATURE_FLAG_DO_CACHE"] == "false"


def test_kv_plan_is_passed_to_the_namespace():
    assert DualCacheEnv(kv_plan="paid").kv.plan == "paid"


def test_bad_kv_plan_raises_value_error():
    with pytest.raises(ValueError, match="'gold'"):
        DualCacheEnv(kv_plan="gold")


def test_bind_do_false_leaves_the_do_out():
    env = DualCacheEnv(bind_do=False)
    assert env.do is None
    assert "CACHE_DO" not in env.bindings
    with pytest.raises(AttributeError, match="CACHE_DO"):
        _ = env.CACHE_DO


# --- unknown attributes ---------------------------------------------------------------------


def test_unknown_attribute_raises_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="env has no binding or var named 'MISSING_BINDING'"):
        _ = DualCacheEnv().MISSING_BINDING


def test_getattr_default_works_for_unknown_names():
    assert getattr(DualCacheEnv(), "MISSING_BINDING", "absent") == "absent"


def test_dunder_lookups_raise_plain_attribute_error():
    with pytest.raises(AttributeError):
        _ = DualCacheEnv().__wrapped__


# --- the feature flag -----------------------------------------------------------------------


def test_flag_is_a_feature_flag_on_the_flag_var():
    env = DualCacheEnv()
    assert isinstance(env.flag, FeatureFlag)
    assert env.flag.name == "FEATURE_FLAG_DO_CACHE"
    assert env.flag.enabled is True


def test_flag_disable_stores_the_string_false():
    env = DualCacheEnv()
    env.flag.disable()
    assert env.vars["FEATURE_FLAG_DO_CACHE"] == "false"
    assert env.FEATURE_FLAG_DO_CACHE == "false"
    assert env.flag.enabled is False


def test_flag_enable_stores_the_string_true():
    env = DualCacheEnv(flag_enabled=False)
    env.flag.enable()
    assert env.vars["FEATURE_FLAG_DO_CACHE"] == "true"
    assert env.flag.enabled is True


@pytest.mark.parametrize(("enabled", "stored"), [(True, "true"), (False, "false")])
def test_flag_set_from_a_bool_stores_the_string(enabled, stored):
    env = DualCacheEnv()
    env.flag.set(enabled)
    assert env.vars["FEATURE_FLAG_DO_CACHE"] == stored


@pytest.mark.parametrize(("var", "enabled"), [("true", True), ("True", False), ("1", False)])
def test_flag_is_enabled_only_for_the_exact_string_true(var, enabled):
    env = DualCacheEnv(vars={"FEATURE_FLAG_DO_CACHE": var})
    assert env.flag.enabled is enabled
    assert bool(env.flag) is enabled


def test_flag_follows_a_custom_flag_var():
    env = DualCacheEnv(names=BindingNames(flag="USE_DO"))
    env.flag.disable()
    assert env.vars == {"USE_DO": "false"}


def test_flag_repr_shows_name_and_value():
    assert repr(DualCacheEnv().flag) == "<FeatureFlag FEATURE_FLAG_DO_CACHE='true'>"


# --- is_do_cache_enabled --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "expected"),
    [("true", True), ("True", False), ("TRUE", False), ("1", False), ("false", False), ("", False)],
)
def test_is_do_cache_enabled_only_for_the_exact_string_true(var, expected):
    assert is_do_cache_enabled(DualCacheEnv(vars={"FEATURE_FLAG_DO_CACHE": var})) is expected


def test_is_do_cache_enabled_false_when_the_flag_var_is_missing():
    env = DualCacheEnv()
    del env.vars["FEATURE_FLAG_DO_CACHE"]
    assert is_do_cache_enabled(env) is False


def test_is_do_cache_enabled_false_without_the_do_binding():
    assert is_do_cache_enabled(DualCacheEnv(bind_do=False)) is False


def test_is_do_cache_enabled_follows_flag_disable_and_enable():
    env = DualCacheEnv()
    env.flag.disable()
    assert is_do_cache_enabled(env) is False
    env.flag.enable()
    assert is_do_cache_enabled(env) is True


def test_is_do_cache_enabled_reads_custom_names():
    env = DualCacheEnv(names=BindingNames(do="MARKET_DO", flag="USE_DO"))
    assert is_do_cache_enabled(env) is True


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"FEATURE_FLAG_DO_CACHE": "true", "CACHE_DO": object()}, True),
        ({"FEATURE_FLAG_DO_CACHE": "True", "CACHE_DO": object()}, False),
        ({"FEATURE_FLAG_DO_CACHE": "1", "CACHE_DO": object()}, False),
        ({"FEATURE_FLAG_DO_CACHE": "false", "CACHE_DO": object()}, False),
        ({"CACHE_DO": object()}, False),
        ({"FEATURE_FLAG_DO_CACHE": "true"}, False),
        ({"FEATURE_FLAG_DO_CACHE": "true", "CACHE_DO": None}, False),
        ({"FEATURE_FLAG_DO_CACHE": True, "CACHE_DO": object()}, False),
    ],
)
def test_is_do_cache_enabled_on_a_plain_object(attributes, expected):
    assert is_do_cache_enabled(types.SimpleNamespace(**attributes)) is expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, True),
        ({"vars": {"FEATURE_FLAG_DO_CACHE": "True"}}, False),
        ({"flag_enabled": False}, False),
        ({"bind_do": False}, False),
    ],
)
def test_is_do_cache_enabled_on_the_workers_env(kwargs, expected):
    workers_env = DualCacheEnv(**kwargs).workers()
    assert is_do_cache_enabled(workers_env) is expected


def test_is_do_cache_enabled_on_the_workers_env_with_custom_names():
    env = DualCacheEnv(names=BindingNames(do="MARKET_DO", flag="USE_DO"))
    assert is_do_cache_enabled(env.workers()) is True


# --- more KV namespaces and ledgers ---------------------------------------------------------


def test_add_kv_namespace_binds_it_by_name():
    env = DualCacheEnv()
    sessions = env.add_kv_namespace("SESSIONS")
    assert env.SESSIONS is sessions
    assert sessions.name == "SESSIONS"
    assert env.kv_namespaces == [env.kv, sessions]


def test_add_kv_namespace_shares_the_env_clock():
    env = DualCacheEnv()
    sessions = env.add_kv_namespace("SESSIONS")
    assert sessions.clock is env.clock
    sessions.put("s", "1", expiration_ttl=60)
    env.clock.advance(60)
    assert sessions.get("s") is None


def test_add_kv_namespace_inherits_the_plan():
    assert DualCacheEnv(kv_plan="paid").add_kv_namespace("SESSIONS").plan == "paid"


def test_add_kv_namespace_takes_its_own_plan():
    assert DualCacheEnv().add_kv_namespace("SESSIONS", plan="unlimited").plan == "unlimited"


def test_add_kv_namespace_is_a_separate_store():
    env = DualCacheEnv()
    sessions = env.add_kv_namespace("SESSIONS")
    env.kv.put("k", "main")
    assert sessions.get("k") is None


@pytest.mark.parametrize("name", ["CACHE_KV", "CACHE_DO", "FEATURE_FLAG_DO_CACHE"])
def test_add_kv_namespace_rejects_a_taken_name(name):
    env = DualCacheEnv()
    with pytest.raises(ValueError, match=f"already has a binding or var named '{name}'"):
        env.add_kv_namespace(name)


@pytest.mark.parametrize("name", ["kv", "do", "clock", "vars"])
def test_add_kv_namespace_rejects_a_name_shadowed_by_an_env_attribute(name):
    env = DualCacheEnv()
    with pytest.raises(ValueError, match=f"'{name}'"):
        env.add_kv_namespace(name)


def test_add_kv_namespace_rejects_adding_the_same_name_twice():
    env = DualCacheEnv()
    env.add_kv_namespace("SESSIONS")
    with pytest.raises(ValueError, match="'SESSIONS'"):
        env.add_kv_namespace("SESSIONS")
    assert len(env.kv_namespaces) == 2


def test_ledgers_list_kv_namespaces_first_then_the_do():
    env = DualCacheEnv()
    sessions = env.add_kv_namespace("SESSIONS")
    assert env.ledgers() == [env.kv.ledger, sessions.ledger, env.do.ledger]
    assert [ledger.store for ledger in env.ledgers()] == ["CACHE_KV", "SESSIONS", "CACHE_DO"]


def test_ledgers_without_the_do_hold_only_kv():
    env = DualCacheEnv(bind_do=False)
    assert env.ledgers() == [env.kv.ledger]


def test_ledgers_record_operations_of_each_store():
    env = DualCacheEnv()
    sessions = env.add_kv_namespace("SESSIONS")
    sessions.put("s", "1")
    env.do.set("d", 1, ttl=60)
    assert [len(ledger) for ledger in env.ledgers()] == [0, 1, 1]


# --- DO engines and close -------------------------------------------------------------------


def test_do_engine_redis_stores_through_fakeredis():
    env = DualCacheEnv(do_engine="redis")
    assert isinstance(env.do.engine, RedisEngine)
    env.do.set("quote", {"price": 189.5}, ttl=60)
    assert env.do.get("quote") == {"price": 189.5}


def test_do_engine_accepts_a_ready_engine():
    engine = MemoryEngine()
    env = DualCacheEnv(do_engine=engine)
    assert env.do.engine is engine


def test_do_engine_bogus_raises_value_error():
    with pytest.raises(ValueError, match="do_engine must be 'memory', 'redis' or a DOEngine"):
        DualCacheEnv(do_engine="bogus")


def test_close_clears_the_do():
    env = DualCacheEnv()
    env.do.set("k", "v", ttl=60)
    env.close()
    assert env.do.get("k") is None
    assert env.do.stats().size == 0


def test_close_clears_the_redis_engine_keys():
    env = DualCacheEnv(do_engine="redis")
    env.do.set("k", "v", ttl=60)
    env.close()
    assert env.do.engine.client.keys("dualcache:do:*") == []


def test_close_without_a_do_is_fine():
    env = DualCacheEnv(bind_do=False)
    env.kv.put("k", "v")
    env.close()
    assert env.kv.get("k") == "v"


# --- the Workers face -----------------------------------------------------------------------


def test_workers_returns_a_workers_env_over_this_env():
    env = DualCacheEnv()
    workers_env = env.workers()
    assert isinstance(workers_env, WorkersEnv)
    assert workers_env.dualcache_env is env


def test_workers_env_sees_namespaces_added_later():
    env = DualCacheEnv()
    workers_env = env.workers()
    sessions = env.add_kv_namespace("SESSIONS")
    assert workers_env.SESSIONS.namespace is sessions


# --- the simulated latency model ------------------------------------------------------------------

START = 1_767_571_200.0  # the virtual clock's default start
#: Fixed figures, so every sum below is exact: KV (ms) put 50, get 10, delete 40, list 20;
#: every DO cache operation 0.5.
FIXED = {
    "kv": {"put": Latency(50_000, 50_000), "get": Latency(10_000, 10_000)}
    | {"delete": Latency(40_000, 40_000), "list": Latency(20_000, 20_000)},
    "do": {"default": Latency(500, 500)},
}


def _timed_env(**kwargs: object) -> DualCacheEnv:
    return DualCacheEnv(latency=LatencyModel(FIXED), **kwargs)  # type: ignore[arg-type]


def _elapsed_us(env: DualCacheEnv) -> int:
    return round((env.clock.now() - START) * 1_000_000)


def test_every_kv_and_do_cache_operation_spends_its_latency():
    env = _timed_env()
    env.kv.put("k", "v")
    assert _elapsed_us(env) == 50_000
    env.kv.get("k")
    env.kv.get_with_metadata("k")  # a KV read like get
    env.kv.list()
    env.kv.delete("k")
    assert _elapsed_us(env) == 50_000 + 10_000 + 10_000 + 20_000 + 40_000
    env.do.set("d", 1, ttl=60)
    env.do.get("d")
    env.do.list()
    env.do.delete("d")
    assert _elapsed_us(env) == 130_000 + 4 * 500
    # each ledger row keeps when its operation started
    assert [round((r.at - START) * 1e6) for r in env.kv.ledger.records] == [
        0,
        50_000,
        60_000,
        70_000,
        90_000,
    ]
    assert [round((r.at - START) * 1e6) for r in env.do.ledger.records] == [
        130_000,
        130_500,
        131_000,
        131_500,
    ]


def test_another_namespace_the_workers_face_and_a_refused_write_spend_it_too():
    env = _timed_env()
    other = env.add_kv_namespace("OTHER_KV")
    other.put("k", "v")
    assert _elapsed_us(env) == 50_000
    asyncio.run(env.workers().CACHE_KV.put("w", "v"))
    assert _elapsed_us(env) == 100_000
    with pytest.raises(KVRateLimitError):  # 50 ms later: within the 1 s per-key window
        other.put("k", "again")
    assert _elapsed_us(env) == 150_000  # a 429 is a round trip too


def test_without_a_model_no_time_is_spent_and_requests_are_untimed():
    env = DualCacheEnv()
    with env.request("GET /quote"):
        env.kv.put("k", "v")
        env.do.set("d", 1, ttl=60)
    assert (env.latency, env.latency_meter, env.clock.now()) == (None, None, START)
    assert env.kv.ledger.latency is None and env.do.ledger.latency is None


def test_a_request_is_the_latency_its_operations_spent_nested_ones_included():
    requests = RequestRecorder()
    env = _timed_env(requests=requests)
    with env.request("GET /quote"):
        env.kv.get("price")
        env.clock.advance(3600)  # the test moving time on is not a response time
        with env.request("DO read"):
            env.do.get("price")
    env.kv.put("outside", "v")  # in no request
    assert requests.durations == {"DO read": [500], "GET /quote": [10_500]}
    refused = pytest.raises(ValueError, match=r"request\(\) takes a non-empty request name, got ''")
    with refused, env.request(""):
        pass


def test_each_env_draws_from_its_own_fresh_streams():
    model = LatencyModel(SEED_TABLE, seed=9)
    model.latency_us("kv", "get")  # the session's model is never drawn from by an env
    first, second = DualCacheEnv(latency=model), DualCacheEnv(latency=model)
    for env in (first, second):
        for i in range(5):
            env.kv.get(f"k{i}")
    assert first.clock.now() == second.clock.now() > START
    assert first.latency is not model and first.latency is not None
    assert first.latency.seed == 9


def test_from_settings_never_reads_the_latency_model_from_the_settings():
    """The contract suite's harness builds its env so: no clause's timing changes."""
    settings = DualCacheSettings(latency=LatencyModel(FIXED))
    env = DualCacheEnv.from_settings(settings)
    env.kv.put("k", "v")
    assert (env.latency, env.clock.now()) == (None, START)
    timed = DualCacheEnv.from_settings(settings, latency=settings.latency)
    timed.kv.put("k", "v")
    assert _elapsed_us(timed) == 50_000
