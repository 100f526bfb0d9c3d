"""``workers.Request``, ``Response`` and ``fetch``, and ``pyodide.ffi`` and ``js``, as Worker code
uses them."""

from __future__ import annotations

import asyncio
import time
from http import HTTPMethod
from http.client import HTTPMessage

import pytest

from pytest_dualcache.clock import DEFAULT_START, VirtualClock
from pytest_dualcache.runtime.ffi import (
    JSON,
    RUNTIME_CLOCK,
    DataCloneError,
    Date,
    JsArray,
    JsBuffer,
    JsDict,
    JsException,
    JsProxy,
    JsRangeError,
    JsTypeError,
    Object,
    as_js,
    to_js,
)
from pytest_dualcache.runtime.http import NoNetworkError, Request, Response, fetch

run = asyncio.run


# --- Response -------------------------------------------------------------------------------


def test_text_response_defaults():
    response = Response("hello")
    assert (response.status, response.ok, response.status_text) == (200, True, "")
    assert response.headers == {"content-type": "text/plain;charset=UTF-8"}
    assert run(response.text()) == "hello"


def test_bytes_and_empty_bodies():
    assert run(Response(b"\x00\x01").bytes()) == b"\x00\x01"
    assert Response(b"x").headers == {}
    assert run(Response(None, status=204).text()) == ""


def test_response_json_builds_a_json_response_and_reads_it_back():
    response = Response.json({"value": 3}, status=201, headers={"x-id": "7"})
    assert response.status == 201
    assert response.headers == {"x-id": "7", "content-type": "application/json"}
    assert run(response.json()) == {"value": 3}


def test_a_body_reads_once():
    response = Response("once")
    run(response.text())
    assert response.body_used
    with pytest.raises(OSError, match="Body already used"):
        run(response.text())


def test_content_reads_without_using_the_body():
    response = Response("peek")
    assert response.content == b"peek" and not response.body_used


def test_status_outside_200_to_599_is_workerds_range_error():
    with pytest.raises(JsRangeError, match="status codes in the range 200 to 599, inclusive"):
        Response("x", status=99)


def test_null_body_status_with_a_body_is_refused():
    with pytest.raises(JsTypeError, match=r"null body status \(101, 204, 205, or 304\)"):
        Response("x", status=204)


def test_unsupported_body_and_headers_types():
    with pytest.raises(TypeError, match="Unsupported type in Response: dict"):
        Response({"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected type for headers"):
        Response("x", headers=42)  # type: ignore[arg-type]


def test_headers_from_pairs_keep_lower_case_names_and_join_repeats():
    response = Response("x", headers=[("Set-Thing", "a"), ("set-thing", "b")])
    assert response.headers["set-thing"] == "a, b"


def test_clone_has_an_unread_body_and_raise_for_status():
    response = Response("gone", status=404)
    copy = response.clone()
    run(response.text())
    assert run(copy.text()) == "gone"
    with pytest.raises(OSError, match="404 Client Error"):
        copy.raise_for_status()


def test_redirect_and_replace_body():
    assert Response.redirect("https://a.example/").headers == {"location": "https://a.example/"}
    with pytest.raises(JsRangeError):
        Response.redirect("https://a.example/", status=200)
    assert run(Response("a", status=202).replace_body("b").text()) == "b"


# --- Request ----------------------------------------------------------------------------------


def test_request_reads_like_the_sdks():
    request = Request("HTTPS://Example.COM", method="post", headers={"X-A": "1"}, body='{"n": 2}')
    assert request.url == "https://example.com/"
    assert request.method == HTTPMethod.POST and request.method == "POST"
    assert isinstance(request.headers, HTTPMessage) and request.headers["x-a"] == "1"
    assert run(request.json()) == {"n": 2}


def test_a_relative_url_is_workerds_invalid_url():
    with pytest.raises(JsTypeError, match="Invalid URL: /counter"):
        Request("/counter")


def test_get_with_a_body_is_refused():
    with pytest.raises(JsTypeError, match="GET or HEAD method cannot have a body"):
        Request("https://a.example/", body="x")


def test_request_from_a_request_copies_it():
    original = Request("https://a.example/x", method=HTTPMethod.PUT, body="data")
    copy = Request(original)
    assert (copy.url, copy.method, run(copy.text())) == (original.url, "PUT", "data")
    assert not original.body_used
    with pytest.raises(TypeError, match="unknown options"):
        Request("https://a.example/", color="red")


def test_fetch_is_importable_and_refuses_the_network():
    with pytest.raises(NoNetworkError, match=r"'https://api\.example/x'.*no network"):
        run(fetch("https://api.example/x"))
    with pytest.raises(NoNetworkError):
        run(fetch(Request("https://api.example/y")))


# --- pyodide.ffi and js ------------------------------------------------------------------------


def test_to_js_is_the_identity_and_takes_pyodides_options():
    value = {"a": [1, 2]}
    assert to_js(value, dict_converter=Object.fromEntries, create_pyproxies=False) is value


def test_binding_results_carry_to_py():
    record = as_js({"count": 2})
    assert isinstance(record, JsDict) and isinstance(record, JsProxy)
    assert record.to_py() == {"count": 2} and type(record.to_py()) is dict
    assert (record.count, record.size, record.has("count")) == (2, 1, True)
    with pytest.raises(AttributeError):
        _ = record.missing
    items = as_js([1, 2])
    assert isinstance(items, JsArray) and items.length == 2 and items.to_py() == [1, 2]
    data = as_js(b"ab")
    assert isinstance(data, JsBuffer) and data.to_py() == memoryview(b"ab")
    assert data.to_bytes() == b"ab"
    assert as_js({1, 2}).size == 2
    assert as_js(3) == 3 and as_js(record) is record


def test_json_and_object_from_entries():
    assert JSON.stringify({"a": [1, 2.0, None]}) == '{"a":[1,2,null]}'
    assert JSON.stringify(as_js({"b": 1})) == '{"b":1}'
    parsed = JSON.parse('{"x": [1]}')
    assert parsed.to_py() == {"x": [1]}
    assert Object.fromEntries([("k", 1)]).k == 1


def test_date_now_reads_the_runtime_clock_when_one_is_set():
    clock = VirtualClock()
    token = RUNTIME_CLOCK.set(clock)
    try:
        assert Date.now() == int(DEFAULT_START * 1000)
    finally:
        RUNTIME_CLOCK.reset(token)
    assert abs(Date.now() - time.time() * 1000) < 60_000


def test_js_errors_read_as_pyodide_shows_them():
    error = JsRangeError("too big")
    assert str(error) == "RangeError: too big" and error.message == "too big"
    assert isinstance(error, ValueError) and isinstance(error, JsException)
    assert isinstance(JsTypeError("x"), TypeError)
    assert str(DataCloneError("nope")) == "DataCloneError: nope"
