"""The KV REST API emulator driven by real, unmodified clients: the ``cloudflare`` SDK, httpx
and requests, each operation compared with the same operation through the Worker's binding.

The clients talk to ``https://api.cloudflare.com/client/v4`` as in production; the
``cloudflare_api`` fixture (local here until the plugin wires it) routes them to the env's
``KVNamespace``. SDK clients that test an error use ``max_retries=0``: the SDK retries 429s
after real sleeps, and on the virtual clock a retry at the same instant changes nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from pytest_dualcache.env import DualCacheEnv
from pytest_dualcache.kv import (
    KVQuotaError,
    KVRateLimitError,
    KVValidationError,
    KVValueWithMetadata,
)
from pytest_dualcache.limits import KV_MAX_VALUE_BYTES, REST_BULK_GET_MAX_KEYS
from pytest_dualcache.rest import CloudflareAPI

REST_EXTRA = "the [rest] extra: pip install -e '.[rest]'"
httpx = pytest.importorskip("httpx", reason=REST_EXTRA)
requests = pytest.importorskip("requests", reason=REST_EXTRA)
cloudflare = pytest.importorskip("cloudflare", reason=REST_EXTRA)


@pytest.fixture
def cloudflare_api(dualcache_env: DualCacheEnv) -> Iterator[CloudflareAPI]:
    """What the plugin's ``cloudflare_api`` fixture gives, built here directly."""
    with CloudflareAPI(dualcache_env) as api:
        yield api


@pytest.fixture
def sdk(cloudflare_api: CloudflareAPI) -> cloudflare.Cloudflare:
    """An SDK client as a service builds it: a token, the default base URL."""
    return cloudflare.Cloudflare(api_token=cloudflare_api.token, max_retries=0)


@pytest.fixture
def where(cloudflare_api: CloudflareAPI) -> dict[str, str]:
    """The SDK's ``account_id`` and ``namespace_id`` of the test's ``kv_namespace``."""
    return {"account_id": cloudflare_api.account_id, "namespace_id": cloudflare_api.namespace_id()}


def values_url(api: CloudflareAPI, key: str) -> str:
    namespace = f"{api.base_url}/accounts/{api.account_id}/storage/kv/namespaces"
    return f"{namespace}/{api.namespace_id()}/values/{key}"


def auth(api: CloudflareAPI) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token}"}


# --- single writes, metadata, expiry -----------------------------------------------------------


def test_sdk_write_with_metadata_and_ttl_reads_as_a_binding_write(sdk, where, kv_namespace):
    sdk.kv.namespaces.values.update(
        "signal:AAPL", **where, value=b'{"action":"buy"}', metadata={"v": 2}, expiration_ttl=120
    )
    kv_namespace.put("signal:MSFT", '{"action":"buy"}', metadata={"v": 2}, expiration_ttl=120)

    for key in ("signal:AAPL", "signal:MSFT"):
        assert kv_namespace.get_with_metadata(key, "json").value == {"action": "buy"}
        assert kv_namespace.get_with_metadata(key).metadata == {"v": 2}
        assert kv_namespace.expiration_of(key) == kv_namespace.clock.now() + 120
        read = sdk.kv.namespaces.values.get(key, **where)
        assert read.read() == b'{"action":"buy"}'
        assert read.headers["expiration"] == str(kv_namespace.expiration_of(key))
        assert sdk.kv.namespaces.metadata.get(key, **where) == {"v": 2}
    kv_namespace.clock.advance(120)
    with pytest.raises(cloudflare.NotFoundError):
        sdk.kv.namespaces.values.get("signal:AAPL", **where)
    assert kv_namespace.get("signal:MSFT") is None


def test_a_rest_write_is_one_put_in_the_ledger_with_the_callers_line(sdk, where, kv_namespace):
    sdk.kv.namespaces.values.update("k", **where, value=b"v")
    (record,) = kv_namespace.ledger.records
    assert (record.op, record.key, record.bytes, record.ok) == ("put", "k", 1, True)
    assert record.call_site.filename == __file__
    assert record.call_site.function.startswith("test_a_rest_write")


def test_absolute_expiration_and_raw_bodies_through_httpx_and_requests(
    cloudflare_api, kv_namespace
):
    at = int(kv_namespace.clock.now()) + 3600
    response = httpx.put(
        values_url(cloudflare_api, "raw%2Fkey"),
        params={"expiration": at},
        content=b"\x00\x01binary",
        headers=auth(cloudflare_api),
    )
    assert response.json() == {"success": True, "errors": [], "messages": [], "result": {}}
    assert kv_namespace.get("raw/key", "bytes") == b"\x00\x01binary"
    assert kv_namespace.expiration_of("raw/key") == at
    got = requests.get(values_url(cloudflare_api, "raw%2Fkey"), headers=auth(cloudflare_api))
    assert (got.status_code, got.content) == (200, b"\x00\x01binary")


def test_a_multipart_write_from_requests_carries_metadata(cloudflare_api, kv_namespace):
    response = requests.put(
        values_url(cloudflare_api, "report:daily"),
        files={"value": (None, "summary"), "metadata": (None, json.dumps({"rows": 3}))},
        headers=auth(cloudflare_api),
    )
    assert response.json()["success"] is True
    assert kv_namespace.get_with_metadata("report:daily") == KVValueWithMetadata(
        "summary", {"rows": 3}
    )


# --- bulk -------------------------------------------------------------------------------------


def test_bulk_write_counts_one_write_per_pair_like_binding_puts(sdk, where, kv_namespace):
    pairs = [{"key": f"price:{s}", "value": "1.0", "expiration_ttl": 86400} for s in "ABC"]
    result = sdk.kv.namespaces.bulk_update(
        where["namespace_id"], account_id=where["account_id"], body=pairs
    )
    assert (result.successful_key_count, result.unsuccessful_keys) == (3, [])
    for symbol in "DEF":
        kv_namespace.put(f"price:{symbol}", "1.0", expiration_ttl=86400)
    puts = [r.key for r in kv_namespace.ledger.records if r.op == "put" and r.ok]
    assert puts == ["price:A", "price:B", "price:C", "price:D", "price:E", "price:F"]
    assert kv_namespace.used_today()["write"] == 6


def test_bulk_get_and_bulk_delete(sdk, where, kv_namespace):
    kv_namespace.put("a", '{"n": 1}', metadata={"m": True})
    kv_namespace.put("b", "plain")
    ns, account = where["namespace_id"], where["account_id"]
    got = sdk.kv.namespaces.bulk_get(ns, account_id=account, keys=["a", "b", "zz"])
    assert got.values == {"a": '{"n": 1}', "b": "plain", "zz": None}
    got = sdk.kv.namespaces.bulk_get(
        ns, account_id=account, keys=["a"], type="json", with_metadata=True
    )
    assert got.values["a"].value == {"n": 1} and got.values["a"].metadata == {"m": True}
    with pytest.raises(cloudflare.BadRequestError):
        sdk.kv.namespaces.bulk_get(
            ns, account_id=account, keys=["k"] * (REST_BULK_GET_MAX_KEYS + 1)
        )
    deleted = sdk.kv.namespaces.bulk_delete(ns, account_id=account, body=["a", "b"])
    assert deleted.successful_key_count == 2 and kv_namespace.keys() == []


def test_a_bulk_pair_the_binding_would_refuse_fails_the_whole_request(sdk, where, kv_namespace):
    pairs = [{"key": "ok", "value": "1"}, {"key": "short", "value": "1", "expiration_ttl": 30}]
    with pytest.raises(cloudflare.BadRequestError, match="Expiration TTL must be at least 60"):
        sdk.kv.namespaces.bulk_update(
            where["namespace_id"], account_id=where["account_id"], body=pairs
        )
    assert kv_namespace.keys() == []


# --- listing --------------------------------------------------------------------------------------


def test_listing_with_cursors_pages_as_the_binding_does(sdk, where, kv_namespace):
    for i in range(25):
        kv_namespace.put(f"sym:{i:02}", "x", metadata={"i": i})
    binding_pages, cursor = [], None
    while True:
        page = kv_namespace.list(prefix="sym:", limit=10, cursor=cursor)
        binding_pages.append(([k.name for k in page.keys], page.cursor))
        if page.list_complete:
            break
        cursor = page.cursor
    ns, account = where["namespace_id"], where["account_id"]
    page = sdk.kv.namespaces.keys.list(ns, account_id=account, prefix="sym:", limit=10)
    rest_pages = []
    for _ in range(3):
        rest_pages.append(([k.name for k in page.result], page.result_info.cursor or None))
        if not page.has_next_page():
            break
        page = page.get_next_page()
    assert rest_pages == binding_pages
    every = sdk.kv.namespaces.keys.list(ns, account_id=account, prefix="sym:", limit=10)
    assert [k.metadata for k in every][:2] == [{"i": 0}, {"i": 1}]
    assert len(list(every)) == 25


def test_namespaces_list_names_every_binding(sdk, cloudflare_api, dualcache_env):
    dualcache_env.add_kv_namespace("REPORTS_KV")
    listed = {
        ns.title: ns.id for ns in sdk.kv.namespaces.list(account_id=cloudflare_api.account_id)
    }
    assert listed == {
        "CACHE_KV": cloudflare_api.namespace_id(),
        "REPORTS_KV": cloudflare_api.namespace_id("REPORTS_KV"),
    }


# --- errors, each compared with the binding's -----------------------------------------------------


def test_404_for_a_missing_key_where_the_binding_reads_none(sdk, where, kv_namespace):
    with pytest.raises(cloudflare.NotFoundError) as caught:
        sdk.kv.namespaces.values.get("missing", **where)
    assert caught.value.body["errors"] == [{"code": 10009, "message": "get: 'key not found'"}]
    assert kv_namespace.get("missing") is None
    with pytest.raises(cloudflare.NotFoundError):
        sdk.kv.namespaces.metadata.get("missing", **where)


def test_400_for_a_short_ttl_with_the_bindings_message(sdk, where, kv_namespace):
    with pytest.raises(KVValidationError) as binding:
        kv_namespace.put("k", "v", expiration_ttl=30)
    with pytest.raises(cloudflare.BadRequestError) as rest:
        sdk.kv.namespaces.values.update("k", **where, value=b"v", expiration_ttl=30)
    (error,) = rest.value.body["errors"]
    assert rest.value.status_code == binding.value.status == 400
    assert binding.value.message == f"KV PUT failed: 400 {error['message']}"
    assert "k" not in kv_namespace


def test_413_for_a_value_over_25_mib(sdk, where, kv_namespace):
    big = b"x" * (KV_MAX_VALUE_BYTES + 1)
    with pytest.raises(KVValidationError) as binding:
        kv_namespace.put("big", big)
    with pytest.raises(cloudflare.APIStatusError) as rest:
        sdk.kv.namespaces.values.update("big", **where, value=big)
    assert rest.value.status_code == binding.value.status == 413
    assert rest.value.body["errors"][0]["message"] in binding.value.message


def test_429_for_a_second_write_to_one_key_within_a_second(sdk, where, kv_namespace):
    sdk.kv.namespaces.values.update("hot", **where, value=b"1")
    with pytest.raises(cloudflare.RateLimitError):
        sdk.kv.namespaces.values.update("hot", **where, value=b"2")
    with pytest.raises(KVRateLimitError):
        kv_namespace.put("hot", "3")  # the binding meets the same per-key limit
    kv_namespace.clock.advance(1)
    sdk.kv.namespaces.values.update("hot", **where, value=b"4")
    assert kv_namespace.get("hot") == "4"


def test_the_daily_write_quota_is_shared_with_the_binding(sdk, where, kv_namespace):
    ns, account = where["namespace_id"], where["account_id"]
    pairs = [{"key": f"k{i}", "value": "v"} for i in range(999)]
    sdk.kv.namespaces.bulk_update(ns, account_id=account, body=pairs)
    kv_namespace.put("the-1000th", "v")
    with pytest.raises(cloudflare.RateLimitError, match="limit exceeded for the day"):
        sdk.kv.namespaces.values.update("one-more", **where, value=b"v")
    with pytest.raises(KVQuotaError):
        kv_namespace.put("one-more", "v")
    late = sdk.kv.namespaces.bulk_update(ns, account_id=account, body=[{"key": "x", "value": "v"}])
    assert late.unsuccessful_keys == ["x"]


def test_an_unknown_namespace_is_404_10013(sdk, cloudflare_api):
    with pytest.raises(cloudflare.NotFoundError) as caught:
        sdk.kv.namespaces.values.get(
            "k", account_id=cloudflare_api.account_id, namespace_id="f" * 32
        )
    assert caught.value.body["errors"][0]["code"] == 10013


# --- async clients --------------------------------------------------------------------------------


def test_async_sdk_and_async_httpx(cloudflare_api, where, kv_namespace):
    async def backend_job() -> bytes:
        client = cloudflare.AsyncCloudflare(api_token=cloudflare_api.token, max_retries=0)
        await client.kv.namespaces.values.update("async:1", **where, value=b"a", metadata={"x": 1})
        async with httpx.AsyncClient(headers=auth(cloudflare_api)) as raw:
            response = await raw.get(values_url(cloudflare_api, "async:1"))
        return response.content

    assert asyncio.run(backend_job()) == b"a"
    assert kv_namespace.get_with_metadata("async:1") == KVValueWithMetadata("a", {"x": 1})
    put = kv_namespace.ledger.records[0]
    assert put.call_site.filename == __file__ and put.call_site.function == "backend_job"
