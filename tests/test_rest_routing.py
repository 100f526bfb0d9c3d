"""How requests reach the emulated API and how they are judged: routing of httpx, requests
and aiohttp (the SDK's ``DefaultAioHttpClient()`` and a raw ``ClientSession``), other hosts
refused, users' respx and responses mocks, the loopback server, authentication, the API's
rate limit, namespace ids, and callers in the ledger (bypass detection, budgets and the
``--dualcache`` report treat a REST write as a binding write).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import textwrap
from collections.abc import Iterator

import pytest

from pytest_dualcache.budget import KVBudgetExceeded, kv_budget
from pytest_dualcache.env import DualCacheEnv
from pytest_dualcache.limits import (
    REST_API_HOST,
    REST_RATE_LIMIT_REQUESTS,
    REST_RATE_LIMIT_WINDOW_S,
)
from pytest_dualcache.recorder import Recorder
from pytest_dualcache.rest import (
    CloudflareAPI,
    RequestRefused,
    derived_namespace_id,
    parse_namespace_ids,
    wrangler_namespace_ids,
)
from pytest_dualcache.rest.wire import Request

REST_EXTRA = "the [rest] extra: pip install -e '.[rest]'"
httpx = pytest.importorskip("httpx", reason=REST_EXTRA)
requests = pytest.importorskip("requests", reason=REST_EXTRA)


@pytest.fixture
def cloudflare_api(dualcache_env: DualCacheEnv) -> Iterator[CloudflareAPI]:
    with CloudflareAPI(dualcache_env) as api:
        yield api


def namespace_url(api: CloudflareAPI, base: str | None = None) -> str:
    root = base or api.base_url
    return f"{root}/accounts/{api.account_id}/storage/kv/namespaces/{api.namespace_id()}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- routing ------------------------------------------------------------------------------------


def test_clients_built_before_the_fixture_are_routed(dualcache_env):
    early_httpx, early_requests = httpx.Client(), requests.Session()
    with CloudflareAPI(dualcache_env) as api:
        url = namespace_url(api) + "/values/k"
        assert early_httpx.put(url, content=b"1", headers=bearer(api.token)).status_code == 200
        dualcache_env.clock.advance(1)
        assert early_requests.put(url, data=b"2", headers=bearer(api.token)).status_code == 200
    assert dualcache_env.kv.get("k") == "2"


def test_other_hosts_are_refused_unsent_and_remembered(cloudflare_api):
    with pytest.raises(RequestRefused, match=r"refused https://example\.com/x"):
        httpx.get("https://example.com/x")
    with pytest.raises(RequestRefused):
        requests.get("http://10.0.0.1/")
    with pytest.raises(RequestRefused, match=r"api\.cloudflare\.com/client/v3"):
        httpx.get(f"https://{REST_API_HOST}/client/v3/user")
    assert cloudflare_api.refused == [
        "https://example.com/x",
        "http://10.0.0.1/",
        "https://api.cloudflare.com/client/v3/user",
    ]
    cloudflare_api.refused.clear()


def test_the_hooks_come_off_when_the_fixture_ends(dualcache_env):
    with CloudflareAPI(dualcache_env):
        assert "routing" in httpx.HTTPTransport.handle_request.__module__
    assert "routing" not in httpx.HTTPTransport.handle_request.__module__
    assert "routing" not in requests.adapters.HTTPAdapter.send.__module__


def test_users_respx_mocks_answer_other_hosts_beside_the_api(cloudflare_api):
    respx = pytest.importorskip("respx")
    with respx.mock:
        respx.get("https://prices.example/quote").respond(json={"AAPL": 1.0})
        assert httpx.get("https://prices.example/quote").json() == {"AAPL": 1.0}
        response = httpx.get(namespace_url(cloudflare_api) + "/keys", headers=bearer("x"))
        assert response.status_code == 403  # the emulator answered, not respx


def test_users_responses_mocks_answer_other_hosts_beside_the_api(cloudflare_api):
    responses = pytest.importorskip("responses")
    with responses.RequestsMock() as mocked:
        mocked.get("https://prices.example/quote", json={"AAPL": 1.0})
        mocked.add_passthru(f"https://{REST_API_HOST}")  # responses refuses the rest itself
        assert requests.get("https://prices.example/quote").json() == {"AAPL": 1.0}
        response = requests.get(namespace_url(cloudflare_api) + "/keys", headers=bearer("x"))
        assert response.status_code == 403


# --- aiohttp: the SDK's DefaultAioHttpClient() and aiohttp.ClientSession -------------------------

AIOHTTP_EXTRA = "the SDK's aiohttp extra: pip install 'cloudflare[aiohttp]'"


@pytest.fixture
def aiohttp():
    """aiohttp, with httpx_aiohttp (the transport of the SDK's ``DefaultAioHttpClient``)."""
    pytest.importorskip("httpx_aiohttp", reason=AIOHTTP_EXTRA)
    return pytest.importorskip("aiohttp", reason=AIOHTTP_EXTRA)


def aiohttp_sdk(api: CloudflareAPI):
    """``AsyncCloudflare`` on aiohttp, as a service builds it: a token, the default base URL."""
    cloudflare = pytest.importorskip("cloudflare", reason=REST_EXTRA)
    return cloudflare.AsyncCloudflare(
        api_token=api.token, max_retries=0, http_client=cloudflare.DefaultAioHttpClient()
    )


def test_the_sdk_on_aiohttp_writes_and_reads_as_the_binding_does(aiohttp, cloudflare_api):
    where = {"account_id": cloudflare_api.account_id, "namespace_id": cloudflare_api.namespace_id()}
    kv = cloudflare_api.kv_namespace

    async def backend_job() -> bytes:
        async with aiohttp_sdk(cloudflare_api) as client:
            await client.kv.namespaces.values.update(
                "aio:1", **where, value=b"a", metadata={"x": 1}, expiration_ttl=120
            )
            pairs = [{"key": f"aio:{i}", "value": "b"} for i in (2, 3)]
            await client.kv.namespaces.bulk_update(
                where["namespace_id"], account_id=where["account_id"], body=pairs
            )
            read = await client.kv.namespaces.values.get("aio:1", **where)
            return await read.read()

    assert asyncio.run(backend_job()) == b"a"
    kv.clock.advance(1)
    kv.put("bind:1", "a", metadata={"x": 1}, expiration_ttl=120)
    for key in ("bind:2", "bind:3"):
        kv.put(key, "b")
    assert kv.get_with_metadata("aio:1") == kv.get_with_metadata("bind:1")
    assert kv.expiration_of("aio:1") == kv.expiration_of("bind:1") - 1
    puts = [r for r in kv.ledger.records if r.op == "put"]
    rest, binding = puts[:3], puts[3:]
    assert [(r.key[4:], r.bytes, r.ok) for r in rest] == [
        (r.key[5:], r.bytes, r.ok) for r in binding
    ]
    assert {r.call_site.filename for r in puts} == {__file__}
    assert {r.call_site.function for r in rest} == {"backend_job"}
    assert [(m, s) for m, _, s in cloudflare_api.requests] == [("PUT", 200)] * 2 + [("GET", 200)]


def test_aiohttp_clients_built_before_the_fixture_are_routed(aiohttp, dualcache_env):
    async def backend_job() -> None:
        api = CloudflareAPI(dualcache_env)
        async with (
            aiohttp_sdk(api) as sdk,
            aiohttp.ClientSession(headers=bearer(api.token)) as session,
        ):
            with api:
                where = {"account_id": api.account_id, "namespace_id": api.namespace_id()}
                await sdk.kv.namespaces.values.update("sdk", **where, value=b"1")
                async with session.put(namespace_url(api) + "/values/raw", data=b"2") as put:
                    assert (await put.json())["success"] is True

    asyncio.run(backend_job())
    assert (dualcache_env.kv.get("sdk"), dualcache_env.kv.get("raw")) == ("1", "2")
    puts = [(r.key, r.call_site.function) for r in dualcache_env.kv.ledger.records if r.op == "put"]
    assert puts == [("sdk", "backend_job"), ("raw", "backend_job")]


def test_a_raw_aiohttp_session_writes_through_aiohttps_own_encoding(aiohttp, cloudflare_api):
    url = namespace_url(cloudflare_api)

    async def backend_job() -> list[object]:
        async with aiohttp.ClientSession(headers=bearer(cloudflare_api.token)) as session:
            form = aiohttp.FormData({"value": "summary"})
            form.add_field("metadata", '{"rows": 3}', content_type="application/json")
            async with session.put(f"{url}/values/report%3Adaily", data=form) as written:
                written.raise_for_status()
            pairs = [{"key": "p1", "value": "v"}, {"key": "p2", "value": "v"}]
            async with session.put(f"{url}/bulk", json=pairs) as bulk:
                bulk_result = (await bulk.json())["result"]["successful_key_count"]
            async with session.get(f"{url}/values/report%3Adaily") as got:
                body = await got.text()
            loopback = namespace_url(cloudflare_api, cloudflare_api.url)
            async with session.get(f"{loopback}/values/p1") as over_socket:
                return [bulk_result, body, await over_socket.text()]

    assert asyncio.run(backend_job()) == [2, "summary", "v"]
    kv = cloudflare_api.kv_namespace
    assert kv.get_with_metadata("report:daily").metadata == {"rows": 3}
    puts = [(r.key, r.call_site.function) for r in kv.ledger.records if r.op == "put"]
    assert puts == [("report:daily", "backend_job"), ("p1", "backend_job"), ("p2", "backend_job")]


def test_aiohttp_requests_to_other_hosts_are_refused_unsent(aiohttp, cloudflare_api):
    cloudflare = pytest.importorskip("cloudflare", reason=REST_EXTRA)

    async def backend_job() -> None:
        async with cloudflare.DefaultAioHttpClient() as sdk_transport:
            with pytest.raises(RequestRefused, match=r"refused https://example\.com/x"):
                await sdk_transport.get("https://example.com/x")
        async with aiohttp.ClientSession() as session:
            # the refusal itself, or (recent aiohttp) a ClientOSError it caused
            with pytest.raises(OSError, match=r"refused http://10\.0\.0\.1/") as caught:
                await session.get("http://10.0.0.1/")
            assert RequestRefused in {type(caught.value), type(caught.value.__cause__)}
            with pytest.raises(OSError, match=r"api\.cloudflare\.com/client/v3"):
                await session.get(f"https://{REST_API_HOST}/client/v3/user")

    asyncio.run(backend_job())
    assert cloudflare_api.refused == [
        "https://example.com/x",
        "http://10.0.0.1/",
        "https://api.cloudflare.com/client/v3/user",
    ]
    cloudflare_api.refused.clear()


def test_users_aioresponses_mocks_answer_other_hosts_beside_the_api(aiohttp, cloudflare_api):
    aioresponses = pytest.importorskip("aioresponses")
    cloudflare = pytest.importorskip("cloudflare", reason=REST_EXTRA)
    released = tuple(int(part) for part in aioresponses.__version__.split(".")[:3])
    if (
        released <= (0, 7, 9)
        and "stream_writer" in inspect.signature(aiohttp.ClientResponse).parameters
    ):
        pytest.skip("aioresponses <= 0.7.9 cannot build aiohttp 3.14's ClientResponse")
    quote = "https://prices.example/quote"

    async def backend_job() -> list[object]:
        passthrough = [f"https://{REST_API_HOST}"]  # aioresponses refuses the rest itself
        with aioresponses.aioresponses(passthrough=passthrough) as mocked:
            mocked.get(quote, payload={"AAPL": 1.0}, repeat=True)
            async with aiohttp.ClientSession(headers=bearer("x")) as session:
                async with session.get(quote) as raw_quote:
                    raw = await raw_quote.json()
                async with session.get(namespace_url(cloudflare_api) + "/keys") as keys:
                    status = keys.status  # the emulator answered, not aioresponses
            async with cloudflare.DefaultAioHttpClient() as sdk_transport:
                sdk_quote = (await sdk_transport.get(quote)).json()
        return [raw, status, sdk_quote]

    assert asyncio.run(backend_job()) == [{"AAPL": 1.0}, 403, {"AAPL": 1.0}]


def test_the_aiohttp_hooks_come_off_when_the_fixture_ends(aiohttp, dualcache_env):
    from httpx_aiohttp import AiohttpTransport

    with CloudflareAPI(dualcache_env):
        assert "routing" in aiohttp.BaseConnector.connect.__module__
        assert "routing" in AiohttpTransport.handle_async_request.__module__
    assert aiohttp.BaseConnector.connect.__module__ == "aiohttp.connector"
    assert AiohttpTransport.handle_async_request.__module__ == "httpx_aiohttp.transport"


# --- the loopback server --------------------------------------------------------------------------


def test_the_loopback_url_serves_the_same_namespace_and_attributes_the_client(cloudflare_api):
    url = namespace_url(cloudflare_api, cloudflare_api.url) + "/values/from%2Fshell"
    assert cloudflare_api.url.startswith("http://127.0.0.1:")
    written = requests.put(url, data="v", headers=bearer(cloudflare_api.token))
    assert written.json()["success"] is True
    assert cloudflare_api.kv_namespace.get("from/shell") == "v"
    record = cloudflare_api.kv_namespace.ledger.records[0]
    assert (record.op, record.call_site.filename) == ("put", "<cloudflare-api client 127.0.0.1>")
    assert httpx.get(url, headers=bearer(cloudflare_api.token)).content == b"v"


# --- authentication and the API's rate limit ------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "code", "chain"),
    [
        ({}, 400, 9106, None),
        ({"X-Auth-Key": "0" * 37}, 400, 9106, None),
        ({"Authorization": "Bearer two words"}, 400, 6003, 6111),
        ({"Authorization": "Basic abc"}, 400, 6003, 6111),
        ({"X-Auth-Email": "a@b.c", "X-Auth-Key": "a-token-not-a-key"}, 400, 6003, 6103),
        ({"X-Auth-Email": "nobody", "X-Auth-Key": "0" * 37}, 400, 6003, 6102),
        ({"X-Auth-Email": "a@b.c", "X-Auth-Key": "0" * 37}, 400, 9103, None),
        ({"Authorization": "Bearer wrong-token"}, 403, 10000, None),
    ],
)
def test_credentials_are_checked_as_the_api_checks_them(
    cloudflare_api, headers, status, code, chain
):
    response = httpx.get(namespace_url(cloudflare_api) + "/keys", headers=headers)
    (error,) = response.json()["errors"]
    assert (response.status_code, error["code"]) == (status, code)
    assert [c["code"] for c in error.get("error_chain", [])] == ([chain] if chain else [])
    assert cloudflare_api.kv_namespace.ledger.records == []  # nothing reached KV


def test_global_key_added_tokens_and_the_account_id(cloudflare_api):
    keys = namespace_url(cloudflare_api) + "/keys"
    by_key = {"X-Auth-Email": cloudflare_api.api_email, "X-Auth-Key": cloudflare_api.api_key}
    assert httpx.get(keys, headers=by_key).status_code == 200
    assert httpx.get(keys, headers=bearer(cloudflare_api.add_token())).status_code == 200
    other_account = keys.replace(cloudflare_api.account_id, "0" * 32)
    assert httpx.get(other_account, headers=bearer(cloudflare_api.token)).status_code == 403


def test_the_api_rate_limit_blocks_for_five_minutes_on_the_virtual_clock(cloudflare_api):
    request = Request.of(
        "GET",
        "/client/v4/accounts/x/storage/kv/namespaces",
        "",
        bearer("dualcache-test-token").items(),
        b"",
    )
    statuses = {cloudflare_api.app.handle(request).status for _ in range(REST_RATE_LIMIT_REQUESTS)}
    assert statuses == {403}  # wrong account: authenticated, counted, refused
    blocked = cloudflare_api.app.handle(request)
    assert blocked.status == 429 and blocked.json()["errors"][0]["code"] == 971
    assert ("Retry-After", str(REST_RATE_LIMIT_WINDOW_S)) in blocked.headers
    cloudflare_api.env.clock.advance(REST_RATE_LIMIT_WINDOW_S - 1)
    assert cloudflare_api.app.handle(request).status == 429
    cloudflare_api.env.clock.advance(1)
    assert cloudflare_api.app.handle(request).status == 403
    other = cloudflare_api.add_token()  # each token has its own allowance
    request.headers["authorization"] = f"Bearer {other}"
    assert cloudflare_api.app.handle(request).status == 403


# --- namespace ids --------------------------------------------------------------------------


def test_namespace_ids_from_configuration_wrangler_or_the_binding_name(dualcache_env, tmp_path):
    ids = parse_namespace_ids(["CACHE_KV = 0f2ac74b498b48028cb68387c421e279", ""], "ini x")
    assert ids == {"CACHE_KV": "0f2ac74b498b48028cb68387c421e279"}
    with pytest.raises(ValueError, match="ini x: cannot read 'CACHE_KV'"):
        parse_namespace_ids(["CACHE_KV"], "ini x")
    wrangler = tmp_path / "wrangler.toml"
    wrangler.write_text(
        textwrap.dedent(
            """
            kv_namespaces = [{ binding = "CACHE_KV", id = "top" }]
            [env.production]
            kv_namespaces = [{ binding = "CACHE_KV", id = "prod", preview_id = "p" }]
            """
        )
    )
    assert wrangler_namespace_ids(wrangler) == {"CACHE_KV": "top"}
    assert wrangler_namespace_ids(wrangler, "production") == {"CACHE_KV": "prod"}
    api = CloudflareAPI(dualcache_env, namespace_ids=ids)
    assert api.namespace_id() == "0f2ac74b498b48028cb68387c421e279"
    assert api.namespace_id("OTHER") == derived_namespace_id("OTHER")
    assert len(derived_namespace_id("OTHER")) == 32


# --- the ledger: callers, classification, budgets -----------------------------------------------


def write_through_sdk(api: CloudflareAPI, key: str) -> None:
    """A service's write, as this module's code (the "DAL" when this module is registered)."""
    requests.put(namespace_url(api) + f"/values/{key}", data="v", headers=bearer(api.token))


@pytest.mark.parametrize(("dal_modules", "via"), [((__name__,), __name__), (("elsewhere",), "")])
def test_rest_writes_are_classified_like_binding_writes(cloudflare_api, dal_modules, via):
    previous = Recorder(dal_modules=dal_modules).activate()
    try:
        write_through_sdk(cloudflare_api, "k")
        cloudflare_api.kv_namespace.clock.advance(1)
        cloudflare_api.kv_namespace.put("k", "binding")
        requests.put(
            namespace_url(cloudflare_api, cloudflare_api.url) + "/values/sock",
            data="v",
            headers=bearer(cloudflare_api.token),
        )
    finally:
        Recorder.restore(previous)
    rest, binding, socket = cloudflare_api.kv_namespace.ledger.records
    assert rest.call_site.function == "write_through_sdk"
    assert rest.via == binding.via == via
    assert socket.via == ""  # a client over a socket goes through no DAL: a bypass


def test_a_budget_counts_each_pair_of_a_bulk_write(cloudflare_api):
    pairs = [{"key": f"s{i}", "value": "v"} for i in range(5)]
    with (
        pytest.raises(KVBudgetExceeded, match="expected at most 3 KV writes, 5 were made"),
        kv_budget(writes=3),
    ):
        requests.put(
            namespace_url(cloudflare_api) + "/bulk",
            json=pairs,
            headers=bearer(cloudflare_api.token),
        )


def test_the_dualcache_report_names_a_rest_bypass(pytester):
    pytester.makeconftest(
        """
        import pytest
        from pytest_dualcache.rest import cloudflare_api_fixture

        @pytest.fixture
        def cloudflare_api(request, dualcache_env):
            yield from cloudflare_api_fixture(request, dualcache_env)
        """
    )
    pytester.makepyfile(
        test_service="""
        import requests

        def nightly_job(api):
            url = f"{api.base_url}/accounts/{api.account_id}/storage/kv/namespaces"
            pairs = [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
            requests.put(f"{url}/{api.namespace_id()}/bulk", json=pairs,
                         headers={"Authorization": f"Bearer {api.token}"})

        def test_job(cloudflare_api):
            nightly_job(cloudflare_api)
        """
    )
    result = pytester.runpytest("--dualcache", "-p", "no:randomly", "-k", "test_job")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*2 KV writes bypassed the cache layer*", "*2 x put at test_service.py:*:nightly_job*"]
    )


def test_rate_limit_figures_are_cloudflares():
    assert (REST_RATE_LIMIT_REQUESTS, REST_RATE_LIMIT_WINDOW_S) == (1200, 300)
    assert math.isclose(REST_RATE_LIMIT_REQUESTS / REST_RATE_LIMIT_WINDOW_S, 4.0)


def test_the_ini_keys_once_settings_has_them(monkeypatch, dualcache_env):
    from pytest_dualcache import settings, vocabulary
    from pytest_dualcache.rest import fixture

    monkeypatch.setitem(
        settings.SETTINGS,
        "rest_account_id",
        vocabulary.Setting("account", ini="dualcache_account_id"),
    )
    monkeypatch.setitem(
        settings.SETTINGS,
        "kv_namespace_ids",
        vocabulary.Setting(
            "ids", default=(), ini="dualcache_kv_namespace_ids", ini_type="linelist"
        ),
    )

    class Config:
        def __init__(self, ids: list[str]) -> None:
            self.ini = {"dualcache_account_id": "a" * 32, "dualcache_kv_namespace_ids": ids}

        def getini(self, name: str) -> object:
            return self.ini[name]

    account_id, ids = fixture._ini_settings(Config(["CACHE_KV=abc"]))  # type: ignore[arg-type]
    assert (account_id, ids) == ("a" * 32, {"CACHE_KV": "abc"})
    with pytest.raises(pytest.UsageError, match="ini dualcache_kv_namespace_ids: cannot read"):
        fixture._ini_settings(Config(["CACHE_KV"]))  # type: ignore[arg-type]
