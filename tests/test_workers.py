"""The Python Workers face: async bindings with JS names, over the same stores and ledgers."""

from __future__ import annotations

import asyncio
import json

import pytest

from pytest_dualcache.durable import DOStats
from pytest_dualcache.env import DualCacheEnv
from pytest_dualcache.kv import (
    KVKey,
    KVListResult,
    KVRateLimitError,
    KVValidationError,
    KVValueWithMetadata,
)
from pytest_dualcache.workers import WorkersDurableObjectCache, WorkersEnv, WorkersKV

run = asyncio.run


@pytest.fixture
def env(dualcache_env: DualCacheEnv) -> DualCacheEnv:
    return dualcache_env


@pytest.fixture
def wenv(dualcache_workers_env: WorkersEnv) -> WorkersEnv:
    return dualcache_workers_env


# --- the env ------------------------------------------------------------------------------


def test_workers_env_fixture_wraps_the_dualcache_env_fixture(env, wenv):
    assert wenv.dualcache_env is env


def test_bindings_are_async_faces_over_the_same_stores(env, wenv):
    assert isinstance(wenv.CACHE_KV, WorkersKV)
    assert wenv.CACHE_KV.namespace is env.kv
    assert isinstance(wenv.CACHE_DO, WorkersDurableObjectCache)
    assert wenv.CACHE_DO.cache is env.do


def test_binding_faces_are_made_once(wenv):
    assert wenv.CACHE_KV is wenv.CACHE_KV


def test_string_vars_are_attributes(wenv):
    assert wenv.FEATURE_FLAG_DO_CACHE == "true"


def test_extra_vars_are_attributes():
    assert DualCacheEnv(vars={"ENVIRONMENT": "staging"}).workers().ENVIRONMENT == "staging"


def test_var_changes_show_through(env, wenv):
    env.flag.disable()
    assert wenv.FEATURE_FLAG_DO_CACHE == "false"


def test_unknown_attribute_raises_attribute_error_naming_it(wenv):
    with pytest.raises(AttributeError, match="env has no binding or var named 'NOPE'"):
        _ = wenv.NOPE


def test_missing_do_binding_is_an_attribute_error():
    with pytest.raises(AttributeError, match="CACHE_DO"):
        _ = DualCacheEnv(bind_do=False).workers().CACHE_DO


def test_repr_lists_bindings(wenv):
    assert repr(wenv) == "<WorkersEnv bindings=['CACHE_DO', 'CACHE_KV']>"


# --- KV put and get -------------------------------------------------------------------------


def test_put_with_expiration_ttl_keyword(env, wenv):
    run(wenv.CACHE_KV.put("quote:AAPL", "189.5", expirationTtl=60))
    assert env.kv.expiration_of("quote:AAPL") == int(env.clock.now()) + 60


def test_put_with_an_options_dict(env, wenv):
    run(wenv.CACHE_KV.put("quote:AAPL", "189.5", {"expirationTtl": 60, "metadata": {"v": 2}}))
    assert env.kv.expiration_of("quote:AAPL") == int(env.clock.now()) + 60
    assert env.kv.get_with_metadata("quote:AAPL").metadata == {"v": 2}


def test_put_with_absolute_expiration(env, wenv):
    at = int(env.clock.now()) + 120
    run(wenv.CACHE_KV.put("k", "v", expiration=at))
    assert env.kv.expiration_of("k") == at


def test_put_entry_expires_when_the_clock_moves_the_ttl(env, wenv):
    run(wenv.CACHE_KV.put("k", "v", expirationTtl=60))
    env.clock.advance(59)
    assert run(wenv.CACHE_KV.get("k")) == "v"
    env.clock.advance(1)
    assert run(wenv.CACHE_KV.get("k")) is None


def test_put_bytes_and_get_array_buffer_gives_bytes(wenv):
    run(wenv.CACHE_KV.put("blob", b"\x00\x01"))
    assert run(wenv.CACHE_KV.get("blob", type="arrayBuffer")) == b"\x00\x01"


def test_get_array_buffer_of_text_gives_its_utf8_bytes(wenv):
    run(wenv.CACHE_KV.put("k", "é"))
    assert run(wenv.CACHE_KV.get("k", type="arrayBuffer")) == "é".encode()


def test_get_defaults_to_text(wenv):
    run(wenv.CACHE_KV.put("k", '{"a": 1}'))
    assert run(wenv.CACHE_KV.get("k")) == '{"a": 1}'


def test_get_with_type_json_keyword(wenv):
    run(wenv.CACHE_KV.put("k", json.dumps({"a": [1, 2]})))
    assert run(wenv.CACHE_KV.get("k", type="json")) == {"a": [1, 2]}


def test_get_with_type_as_second_argument(wenv):
    run(wenv.CACHE_KV.put("k", json.dumps({"a": 1})))
    assert run(wenv.CACHE_KV.get("k", "json")) == {"a": 1}


def test_get_with_an_options_dict_ignores_cache_ttl(wenv):
    run(wenv.CACHE_KV.put("k", json.dumps([1])))
    assert run(wenv.CACHE_KV.get("k", {"type": "json", "cacheTtl": 60})) == [1]


def test_get_missing_key_is_none(wenv):
    assert run(wenv.CACHE_KV.get("absent", type="json")) is None


@pytest.mark.parametrize("js_type", ["stream", "blob", "JSON"])
def test_get_unknown_type_raises_value_error(wenv, js_type):
    with pytest.raises(ValueError, match=f"Unknown response type '{js_type}'"):
        run(wenv.CACHE_KV.get("k", type=js_type))


def test_get_with_metadata_returns_value_and_metadata(wenv):
    run(wenv.CACHE_KV.put("k", "v", metadata={"source": "polygon"}))
    result = run(wenv.CACHE_KV.getWithMetadata("k"))
    assert isinstance(result, KVValueWithMetadata)
    assert result.value == "v"
    assert result.metadata == {"source": "polygon"}


def test_get_with_metadata_with_type_json(wenv):
    run(wenv.CACHE_KV.put("k", "[1, 2]"))
    assert run(wenv.CACHE_KV.getWithMetadata("k", type="json")).value == [1, 2]


def test_get_with_metadata_of_missing_key_is_none_and_none(wenv):
    result = run(wenv.CACHE_KV.getWithMetadata("absent"))
    assert (result.value, result.metadata) == (None, None)


def test_delete_removes_the_key(wenv):
    run(wenv.CACHE_KV.put("k", "v"))
    run(wenv.CACHE_KV.delete("k"))
    assert run(wenv.CACHE_KV.get("k")) is None


def test_put_rejects_unknown_options(wenv):
    with pytest.raises(TypeError, match=r"KV put\(\) got unknown options \['ttl'\]"):
        run(wenv.CACHE_KV.put("k", "v", ttl=60))


def test_put_rejects_unknown_options_in_a_dict(wenv):
    with pytest.raises(TypeError, match=r"unknown options \['expiration_ttl'\]"):
        run(wenv.CACHE_KV.put("k", "v", {"expiration_ttl": 60}))


def test_put_with_unknown_option_stores_nothing(env, wenv):
    with pytest.raises(TypeError):
        run(wenv.CACHE_KV.put("k", "v", ttl=60))
    assert env.kv.keys() == []


# --- KV list --------------------------------------------------------------------------------


def _put_keys(env: DualCacheEnv, *names: str) -> None:
    for name in names:
        env.kv.put(name, name.upper(), expiration_ttl=600, metadata={"n": name})


def test_list_returns_keys_with_name_expiration_and_metadata(env, wenv):
    _put_keys(env, "b", "a")
    result = run(wenv.CACHE_KV.list())
    assert isinstance(result, KVListResult)
    expires = int(env.clock.now()) + 600
    assert result.keys == [KVKey("a", expires, {"n": "a"}), KVKey("b", expires, {"n": "b"})]
    assert result.keys[0].name == "a"
    assert result.keys[0].expiration == expires
    assert result.keys[0].metadata == {"n": "a"}


def test_list_complete_has_no_cursor(env, wenv):
    _put_keys(env, "a")
    result = run(wenv.CACHE_KV.list())
    assert result.list_complete is True
    assert result.cursor is None


def test_list_with_prefix(env, wenv):
    _put_keys(env, "quote:A", "quote:B", "news:A")
    result = run(wenv.CACHE_KV.list(prefix="quote:"))
    assert [key.name for key in result.keys] == ["quote:A", "quote:B"]


def test_list_with_an_options_dict(env, wenv):
    _put_keys(env, "quote:A", "news:A")
    result = run(wenv.CACHE_KV.list({"prefix": "news:"}))
    assert [key.name for key in result.keys] == ["news:A"]


def test_list_pages_with_limit_and_cursor(env, wenv):
    _put_keys(env, "k1", "k2", "k3", "k4", "k5")
    pages = []
    cursor = None
    while True:
        result = run(wenv.CACHE_KV.list(prefix="k", limit=2, cursor=cursor))
        pages.append([key.name for key in result.keys])
        if result.list_complete:
            assert result.cursor is None
            break
        assert result.cursor
        cursor = result.cursor
    assert pages == [["k1", "k2"], ["k3", "k4"], ["k5"]]


def test_list_rejects_unknown_options(wenv):
    with pytest.raises(TypeError, match=r"KV list\(\) got unknown options \['max'\]"):
        run(wenv.CACHE_KV.list(max=10))


def test_list_rejects_a_bad_limit_like_the_sync_face(env, wenv):
    with pytest.raises(KVValidationError) as sync_error:
        env.kv.list(limit=1001)
    with pytest.raises(KVValidationError) as async_error:
        run(wenv.CACHE_KV.list(limit=1001))
    assert str(async_error.value) == str(sync_error.value)


# --- same limits as the sync face -----------------------------------------------------------


def test_expiration_ttl_59_raises_the_sync_faces_validation_error(env, wenv):
    with pytest.raises(KVValidationError) as sync_error:
        env.kv.put("k", "v", expiration_ttl=59)
    with pytest.raises(KVValidationError) as async_error:
        run(wenv.CACHE_KV.put("k", "v", expirationTtl=59))
    assert str(async_error.value) == str(sync_error.value)
    assert str(async_error.value) == (
        "KV PUT failed: 400 Invalid expiration_ttl of 59. Expiration TTL must be at least 60."
    )
    assert async_error.value.status == 400


def test_second_write_to_a_key_within_a_second_is_rate_limited_429(wenv):
    run(wenv.CACHE_KV.put("k", "1"))
    with pytest.raises(KVRateLimitError) as error:
        run(wenv.CACHE_KV.put("k", "2"))
    assert error.value.status == 429
    assert str(error.value) == "KV PUT failed: 429 Too Many Requests"


def test_write_after_a_second_is_not_rate_limited(env, wenv):
    run(wenv.CACHE_KV.put("k", "1"))
    env.clock.advance(1)
    run(wenv.CACHE_KV.put("k", "2"))
    assert env.kv.get("k") == "2"


# --- ledgers --------------------------------------------------------------------------------


def test_kv_operations_land_in_the_sync_namespaces_ledger(env, wenv):
    async def scenario():
        await wenv.CACHE_KV.put("k", "v", expirationTtl=60)
        await wenv.CACHE_KV.get("k")
        await wenv.CACHE_KV.getWithMetadata("k")
        await wenv.CACHE_KV.list(prefix="k")
        await wenv.CACHE_KV.delete("k")

    env.kv.put("sync", "v")
    run(scenario())
    assert [(record.op, record.key) for record in env.kv.ledger] == [
        ("put", "sync"),
        ("put", "k"),
        ("get", "k"),
        ("get", "k"),
        ("list", "k"),
        ("delete", "k"),
    ]


def test_kv_operations_are_attributed_to_the_calling_coroutine(env, wenv):
    async def fetch_quote():
        await wenv.CACHE_KV.put("k", "v")
        return await wenv.CACHE_KV.get("k")

    run(fetch_quote())
    sites = [record.call_site for record in env.kv.ledger]
    assert [site.filename for site in sites] == [__file__, __file__]
    assert [site.function for site in sites] == ["fetch_quote", "fetch_quote"]


def test_failed_kv_operation_is_recorded_with_its_caller(env, wenv):
    async def store_short_lived():
        await wenv.CACHE_KV.put("k", "v", expirationTtl=59)

    with pytest.raises(KVValidationError):
        run(store_short_lived())
    (record,) = env.kv.ledger.records
    assert record.ok is False
    assert "at least 60" in record.error
    assert record.call_site.filename == __file__
    assert record.call_site.function == "store_short_lived"


def test_do_operations_land_in_the_do_ledger_with_the_caller(env, wenv):
    async def cache_quote():
        await wenv.CACHE_DO.set("k", 1, ttl=60)
        await wenv.CACHE_DO.get("k")

    run(cache_quote())
    records = env.do.ledger.records
    assert [record.op for record in records] == ["set", "get"]
    assert {record.call_site.filename for record in records} == {__file__}
    assert {record.call_site.function for record in records} == {"cache_quote"}


# --- the DO face ----------------------------------------------------------------------------


def test_do_set_with_ttl_keyword_then_get(wenv):
    run(wenv.CACHE_DO.set("quote", {"price": 189.5}, ttl=60))
    assert run(wenv.CACHE_DO.get("quote")) == {"price": 189.5}


def test_do_set_with_an_options_dict(env, wenv):
    run(wenv.CACHE_DO.set("quote", "v", {"ttl": 60}))
    env.clock.advance(59.999)
    assert run(wenv.CACHE_DO.get("quote")) == "v"
    env.clock.advance(0.001)
    assert run(wenv.CACHE_DO.get("quote")) is None


def test_do_set_without_ttl_raises_type_error(env, wenv):
    with pytest.raises(TypeError, match="needs a ttl option"):
        run(wenv.CACHE_DO.set("quote", "v"))
    assert env.do.list() == []


def test_do_get_ignores_the_seeds_ttl_option(wenv):
    run(wenv.CACHE_DO.set("k", "v", ttl=60))
    assert run(wenv.CACHE_DO.get("k", {"ttl": 3600})) == "v"


def test_do_get_missing_key_is_none(wenv):
    assert run(wenv.CACHE_DO.get("absent")) is None


def test_do_delete_returns_true_for_a_live_entry(wenv):
    run(wenv.CACHE_DO.set("k", "v", ttl=60))
    assert run(wenv.CACHE_DO.delete("k")) is True
    assert run(wenv.CACHE_DO.get("k")) is None


def test_do_delete_returns_false_for_a_missing_entry(wenv):
    assert run(wenv.CACHE_DO.delete("absent")) is False


def test_do_list_returns_sorted_live_keys(wenv):
    async def scenario():
        await wenv.CACHE_DO.set("quote:B", 1, ttl=60)
        await wenv.CACHE_DO.set("quote:A", 1, ttl=60)
        await wenv.CACHE_DO.set("news:A", 1, ttl=60)
        return await wenv.CACHE_DO.list(), await wenv.CACHE_DO.list("quote:")

    assert run(scenario()) == (["news:A", "quote:A", "quote:B"], ["quote:A", "quote:B"])


def test_do_stats_count_hits_and_misses(wenv):
    async def scenario():
        await wenv.CACHE_DO.set("k", "v", ttl=60)
        await wenv.CACHE_DO.get("k")
        await wenv.CACHE_DO.get("absent")
        return await wenv.CACHE_DO.stats()

    assert run(scenario()) == DOStats(hits=1, misses=1, hit_rate=0.5, size=1, evictions=0)


# --- a Worker-style data access layer runs unmodified ---------------------------------------


class MarketDataDAL:
    """Written as for a Python Worker: async bindings by name, the flag as a string var."""

    def __init__(self, env):
        self.env = env

    async def get_quote(self, symbol):
        key = f"quote:{symbol}"
        if self.env.FEATURE_FLAG_DO_CACHE == "true":
            cached = await self.env.CACHE_DO.get(key)
            if cached is not None:
                return cached
        return await self.env.CACHE_KV.get(key, type="json")

    async def put_quote(self, symbol, quote):
        key = f"quote:{symbol}"
        if self.env.FEATURE_FLAG_DO_CACHE == "true":
            await self.env.CACHE_DO.set(key, quote, {"ttl": 60})
        await self.env.CACHE_KV.put(key, json.dumps(quote), expirationTtl=300)


def test_worker_style_dal_reads_its_own_writes(wenv):
    dal = MarketDataDAL(wenv)

    async def scenario():
        await dal.put_quote("AAPL", {"price": 189.5})
        return await dal.get_quote("AAPL")

    assert run(scenario()) == {"price": 189.5}


def test_worker_style_dal_uses_the_do_when_the_flag_is_on(env, wenv):
    run(MarketDataDAL(wenv).put_quote("AAPL", {"price": 189.5}))
    assert env.do.get("quote:AAPL") == {"price": 189.5}
    assert env.kv.get("quote:AAPL", "json") == {"price": 189.5}


def test_worker_style_dal_skips_the_do_when_the_flag_is_off(env, wenv, dualcache_flag):
    dualcache_flag.disable()
    dal = MarketDataDAL(wenv)

    async def scenario():
        await dal.put_quote("AAPL", {"price": 189.5})
        return await dal.get_quote("AAPL")

    assert run(scenario()) == {"price": 189.5}
    assert len(env.do.ledger) == 0
    assert env.kv.ledger.counts() == {"put": 1, "get": 1}


def test_worker_style_dal_falls_back_to_kv_after_the_do_entry_expires(env, wenv):
    dal = MarketDataDAL(wenv)
    run(dal.put_quote("AAPL", {"price": 189.5}))
    env.clock.advance(60)
    assert run(dal.get_quote("AAPL")) == {"price": 189.5}
    assert env.kv.ledger.counts()["get"] == 1


@pytest.mark.parametrize("cache_ttl", [10, 29, "abc"])
def test_a_cache_ttl_under_30_seconds_is_refused_as_kv_does(wenv, cache_ttl):
    with pytest.raises(KVValidationError) as raised:
        run(wenv.CACHE_KV.get("k", cacheTtl=cache_ttl))
    assert str(raised.value).startswith(f"KV GET failed: 400 Invalid cache_ttl of {cache_ttl}.")
    assert str(raised.value).endswith("Cache TTL must be at least 30.")


def test_a_cache_ttl_of_30_seconds_or_more_is_accepted_and_ignored(env, wenv):
    env.kv.put("k", "v")
    assert run(wenv.CACHE_KV.get("k", {"cacheTtl": 30, "type": "text"})) == "v"


def test_unknown_get_options_are_refused_like_put_and_list(wenv):
    with pytest.raises(TypeError, match="unknown options"):
        run(wenv.CACHE_KV.get("k", cacheTTL=60))
