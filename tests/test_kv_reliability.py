"""Regression tests for the KV defects a fuzzing and stress campaign found (issue 10).

Each test names what it guards. Time only moves through the ``VirtualClock``; a refused
operation must leave the namespace as it was and be recorded as a failure.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from enum import Enum
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_dualcache.abstraction import CacheAbstraction
from pytest_dualcache.budget import KVBudget
from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.durable import DurableObjectCache
from pytest_dualcache.env import DualCacheEnv
from pytest_dualcache.kv import (
    KVBindingError,
    KVKey,
    KVNamespace,
    KVValidationError,
    KVValueWithMetadata,
    js_int32_option,
    js_json_stringify,
    js_number,
    utf8_length,
)
from pytest_dualcache.ledger import OperationRecord
from pytest_dualcache.limits import (
    KV_BINDING_MESSAGES,
    KV_MAX_KEY_BYTES,
    KV_MAX_LIST_LIMIT,
    KV_MAX_METADATA_BYTES,
    KV_SAME_KEY_WRITE_INTERVAL_S,
)
from pytest_dualcache.report import summarize

INT32_RANGE_TEXT = KV_BINDING_MESSAGES["int32_range"]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def kv(clock: VirtualClock) -> KVNamespace:
    return KVNamespace(clock)


def snapshot(kv: KVNamespace) -> tuple[list[str], dict[str, int | None], dict[str, int]]:
    """What a refused operation must leave alone, read without operations (no quota used):
    live keys, their expirations, today's quota use. Tests check values with ``get`` after."""
    names = kv.keys()
    return names, {name: kv.expiration_of(name) for name in names}, kv.used_today()


def last_record(kv: KVNamespace) -> OperationRecord:
    return kv.ledger.records[-1]


def list_names(kv: KVNamespace, *, limit: object, prefix: str | None = None) -> list[str]:
    """Every key, page by page with ``limit``, through the cursors ``list`` hands out."""
    names: list[str] = []
    cursor = None
    while True:
        page = kv.list(prefix=prefix, limit=limit, cursor=cursor)
        names += [key.name for key in page.keys]
        if page.list_complete:
            return names
        cursor = page.cursor


def code_point_sorted(names: set[str]) -> list[str]:
    """Key order: UTF-8 byte order, which for any code points (surrogates too) is theirs."""
    return sorted(names, key=lambda name: name.encode("utf-8", "surrogatepass"))


# --- 1. cursors round-trip any key ------------------------------------------------------------


def test_list_cursor_after_lone_surrogate_key_resumes_at_next_key(kv: KVNamespace) -> None:
    kv.put("\ud800x", "v")
    kv.put("\ue000", "v")
    first = kv.list(limit=1)
    assert [key.name for key in first.keys] == ["\ud800x"]
    assert not first.list_complete
    second = kv.list(limit=1, cursor=first.cursor)
    assert second.keys == [KVKey("\ue000")]
    assert second.list_complete and second.cursor is None


def test_list_cursor_after_lone_low_surrogate_key_does_not_repeat_or_skip(
    kv: KVNamespace,
) -> None:
    names = {"a\udfff", "a\udfff\x00", "a\ue000", "b"}
    for name in names:
        kv.put(name, "v")
    assert list_names(kv, limit=1) == code_point_sorted(names)


def test_hand_made_cursor_with_invalid_utf8_is_still_read_leniently(kv: KVNamespace) -> None:
    for name in ["a", "\ufffd", "\uffff"]:
        kv.put(name, "v")
    # base64 of b"\xff": not UTF-8 and no key's cursor; Node reads it as U+FFFD.
    assert [key.name for key in kv.list(cursor="/w==").keys] == ["\uffff"]


#: Every code point; lone surrogates (which plain ``characters`` almost never draws) and the
#: code points around them made common.
KEY_CHARS = (
    st.characters(codec=None, exclude_categories=())
    | st.characters(categories=["Cs"])
    | st.sampled_from("a\x00\ud7ff\ue000\uffff\U00010000")
)
VALID_KEYS = st.text(KEY_CHARS, min_size=1, max_size=6).filter(
    lambda key: key not in {".", ".."} and utf8_length(key) <= KV_MAX_KEY_BYTES
)


@settings(max_examples=60, deadline=None, database=None)
@given(names=st.sets(VALID_KEYS, min_size=1, max_size=12), limit=st.integers(1, 4))
def test_list_paging_over_any_unicode_keys_visits_each_key_once_in_order(
    names: set[str], limit: int
) -> None:
    kv = KVNamespace(VirtualClock(), plan="unlimited")
    for name in names:
        kv.put(name, "v")
    assert list_names(kv, limit=limit) == code_point_sorted(names)


def test_cache_abstraction_list_over_two_kv_pages_keeps_keys_after_a_lone_surrogate_key() -> None:
    env = DualCacheEnv(kv_plan="unlimited", flag_enabled=False)  # flag off: lists KV
    cache = CacheAbstraction(env)
    wanted = {"\ud800x", "\ue000"}
    for name in wanted:
        assert cache.put(name, 1).success
    # Fill KV until the lone-surrogate key is the last one of the first 1,000-key page.
    stored = env.kv.keys()  # the two keys, and the route marker if the cache wrote one
    fillers = KV_MAX_LIST_LIMIT - sum(1 for name in stored if name <= "\ud800x")
    for index in range(fillers):
        name = f"k{index:04d}"
        assert cache.put(name, index).success
        wanted.add(name)
    first_page = env.kv.list()
    assert first_page.keys[-1].name == "\ud800x" and not first_page.list_complete
    assert cache.list() == sorted(wanted)


# --- 2. a str subclass is stored as its characters --------------------------------------------


class Color(str, Enum):  # noqa: UP042 - a StrEnum's str() is its value: no bug to guard
    RED = "red"


def test_str_enum_value_is_stored_as_its_characters_as_the_do_cache_stores_it(
    kv: KVNamespace, clock: VirtualClock
) -> None:
    kv.put("color", Color.RED)
    stored = kv.get("color")
    assert stored == "red" and type(stored) is str
    assert kv.get("color", "bytes") == b"red"
    assert last_record(kv).bytes == 3
    do = DurableObjectCache(clock)
    do.set("color", Color.RED, ttl=60)
    assert kv.get("color") == do.get("color") == "red"


def test_str_enum_in_metadata_is_written_as_its_characters(kv: KVNamespace) -> None:
    assert js_json_stringify({"c": Color.RED, "l": [Color.RED]}) == '{"c":"red","l":["red"]}'
    kv.put("k", "v", metadata={"c": Color.RED})
    assert kv.get_with_metadata("k").metadata == {"c": "red"}


# --- 4 and 5 (threads) are in test_kv_threads.py ------------------------------------------------

# --- 9. deep metadata is the size error ---------------------------------------------------------


def nested_lists(depth: int) -> list[object]:
    outer: list[object] = []
    inner = outer
    for _ in range(depth - 1):
        child: list[object] = []
        inner.append(child)
        inner = child
    return outer


def nested_dicts(depth: int) -> dict[str, object]:
    outer: dict[str, object] = {}
    inner = outer
    for _ in range(depth - 1):
        child: dict[str, object] = {}
        inner["a"] = child
        inner = child
    return outer


@pytest.mark.parametrize(
    ("metadata", "length"),
    [
        pytest.param(nested_lists(10_000), 20_000, id="lists"),
        pytest.param(nested_dicts(10_000), 10_000 * 2 + 9_999 * 4, id="dicts"),
    ],
)
def test_metadata_nested_10000_deep_is_the_413_size_error_with_its_length_and_stores_nothing(
    kv: KVNamespace, clock: VirtualClock, metadata: object, length: int
) -> None:
    kv.put("k", "old", metadata={"m": 1})
    clock.advance(KV_SAME_KEY_WRITE_INTERVAL_S)
    before = snapshot(kv)
    with pytest.raises(KVValidationError) as excinfo:
        kv.put("k", "new", metadata=metadata)
    assert excinfo.value.status == 413
    assert str(excinfo.value) == (
        f"KV PUT failed: 413 Metadata length of {length} exceeds limit of {KV_MAX_METADATA_BYTES}."
    )
    assert snapshot(kv) == before
    assert not last_record(kv).ok
    assert kv.get_with_metadata("k") == KVValueWithMetadata("old", {"m": 1})


def test_metadata_nested_as_deep_as_1024_bytes_allow_is_stored_and_read_back(
    kv: KVNamespace,
) -> None:
    deepest = nested_lists(KV_MAX_METADATA_BYTES // 2)  # "[" and "]" per level: 1,024 bytes
    assert utf8_length(js_json_stringify(deepest)) == KV_MAX_METADATA_BYTES
    kv.put("k", "v", metadata=deepest)
    assert kv.get_with_metadata("k").metadata == deepest
    assert kv.list().keys == [KVKey("k", None, deepest)]


def test_metadata_cycle_deep_inside_is_refused_without_recursion(kv: KVNamespace) -> None:
    metadata = nested_lists(5_000)
    inner = metadata
    while inner:
        inner = inner[0]  # type: ignore[assignment]
    inner.append(metadata)
    with pytest.raises(TypeError, match="circular structure"):
        kv.put("k", "v", metadata=metadata)
    assert kv.keys() == []


def test_metadata_repeated_sibling_is_not_a_cycle() -> None:
    shared = [1, {"a": None}]
    assert js_json_stringify({"x": shared, "y": (shared, shared)}) == (
        '{"x":[1,{"a":null}],"y":[[1,{"a":null}],[1,{"a":null}]]}'
    )


# --- 10. numbers too large for a float --------------------------------------------------------


@pytest.mark.parametrize("option", ["expiration_ttl", "expiration"])
@pytest.mark.parametrize("raw", [10**400, -(10**400)], ids=["huge", "huge-negative"])
def test_expiration_option_beyond_float_range_is_the_binding_int32_error(
    kv: KVNamespace, option: str, raw: int
) -> None:
    before = snapshot(kv)
    with pytest.raises(KVBindingError) as excinfo:
        kv.put("k", "v", **{option: raw})
    assert isinstance(excinfo.value, TypeError)
    assert str(excinfo.value) == INT32_RANGE_TEXT
    assert snapshot(kv) == before
    assert not last_record(kv).ok


def test_int32_option_is_range_checked_exactly_for_any_int() -> None:
    assert js_int32_option(2**31 - 1) == 2**31 - 1
    for raw in (2**31, 2**64, 10**400):
        with pytest.raises(KVBindingError, match="Value out of range"):
            js_int32_option(raw)


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        (10**400, math.inf),
        (-(10**400), -math.inf),
        ("0x" + "f" * 300, math.inf),
        ("1e400", math.inf),
        (2**53 + 1, float(2**53)),
    ],
)
def test_js_number_of_a_number_beyond_float_range_is_infinity_as_in_javascript(
    raw: object, number: float
) -> None:
    assert js_number(raw) == number


@pytest.mark.parametrize("limit", [10**400, -(10**400)], ids=["huge", "huge-negative"])
def test_list_limit_beyond_float_range_asks_for_the_default_page(
    kv: KVNamespace, limit: int
) -> None:
    for name in ["a", "b"]:
        kv.put(name, "v")
    page = kv.list(limit=limit)
    assert [key.name for key in page.keys] == ["a", "b"] and page.list_complete
    assert last_record(kv).ok


# --- 11. a cursor that is not a str -----------------------------------------------------------


@pytest.mark.parametrize(("cursor", "type_name"), [(5, "int"), (b"YQ==", "bytes"), ([], "list")])
def test_list_cursor_not_a_str_is_a_type_error_naming_its_type_recorded_as_failed(
    kv: KVNamespace, cursor: object, type_name: str
) -> None:
    kv.put("a", "v")
    before = snapshot(kv)
    with pytest.raises(TypeError) as excinfo:
        kv.list(cursor=cursor)  # type: ignore[arg-type]
    assert str(excinfo.value) == f"KV list() cursor must be str, got {type_name}"
    assert snapshot(kv) == before
    failed = last_record(kv)
    assert failed.op == "list" and not failed.ok and failed.error == str(excinfo.value)


def test_empty_cursor_lists_from_the_start(kv: KVNamespace) -> None:
    kv.put("a", "v")
    assert kv.list(cursor="").keys == [KVKey("a")]


# --- 12. option types a Python Worker cannot pass ---------------------------------------------

UNPASSABLE = [
    pytest.param(Decimal(120), "Decimal", id="decimal"),
    pytest.param([120], "list", id="list"),
    pytest.param(b"120", "bytes", id="bytes"),
]


@pytest.mark.parametrize(("raw", "type_name"), UNPASSABLE)
@pytest.mark.parametrize("option", ["expiration_ttl", "expiration"])
def test_expiration_option_of_a_type_a_worker_cannot_pass_is_a_type_error_naming_both(
    kv: KVNamespace, option: str, raw: object, type_name: str
) -> None:
    kv.put("k", "old")
    before = snapshot(kv)
    with pytest.raises(TypeError) as excinfo:
        kv.put("k", "new", **{option: raw})
    assert not isinstance(excinfo.value, KVValidationError)
    assert str(excinfo.value) == (
        f"KV put() {option} must be an int, float, str or bool, got {type_name}"
    )
    assert snapshot(kv) == before
    assert not last_record(kv).ok
    assert kv.get("k") == "old"


def test_unpassable_expiration_is_refused_even_beside_a_valid_ttl(kv: KVNamespace) -> None:
    with pytest.raises(TypeError, match="expiration must be an int, float, str or bool"):
        kv.put("k", "v", expiration_ttl=120, expiration=Decimal(10**10))
    assert kv.keys() == []


@pytest.mark.parametrize(("raw", "type_name"), UNPASSABLE)
def test_list_limit_of_a_type_a_worker_cannot_pass_is_a_type_error_naming_both(
    kv: KVNamespace, raw: object, type_name: str
) -> None:
    with pytest.raises(TypeError) as excinfo:
        kv.list(limit=raw)  # type: ignore[arg-type]
    assert (
        str(excinfo.value) == f"KV list() limit must be an int, float, str or bool, got {type_name}"
    )
    assert kv.used_today()["list"] == 0
    assert not last_record(kv).ok


@pytest.mark.parametrize("ttl", [120, 120.5, "120", " 120 ", "0x78"])
def test_expiration_ttl_of_a_passable_type_keeps_javascript_number_semantics(
    kv: KVNamespace, ttl: object
) -> None:
    kv.put("k", "v", expiration_ttl=ttl)
    assert kv.expiration_of("k") == math.floor(kv.clock.now()) + 120


# --- 13. a JSON read that does not parse is a billed read -------------------------------------


def test_get_json_of_non_json_text_counts_one_successful_read_and_raises_the_parse_error(
    kv: KVNamespace,
) -> None:
    kv.put("k", "not json")
    start = kv.ledger.position
    with pytest.raises(json.JSONDecodeError) as excinfo:
        kv.get("k", type="json")
    assert kv.used_today()["read"] == 1
    [read] = kv.ledger.since(start)
    assert (read.op, read.key, read.bytes, read.ok) == ("get", "k", len("not json"), True)
    assert read.error == str(excinfo.value)
    assert summarize([read], Path.cwd())["kv"]["reads"] == 1
    assert summarize([read], Path.cwd())["kv_errors"] == {"rate_limited": 0, "quota": 0, "other": 0}
    [violation] = KVBudget.of("test", reads=0).violations([read])
    assert violation.records == [read]


def test_get_with_metadata_json_of_non_json_bytes_is_a_billed_read_too(
    kv: KVNamespace,
) -> None:
    kv.put("k", b"{", metadata={"m": 1})
    with pytest.raises(json.JSONDecodeError):
        kv.get_with_metadata("k", type="json")
    read = last_record(kv)
    assert read.ok and read.bytes == 1 and read.error
    assert kv.used_today()["read"] == 1


def test_get_json_that_parses_records_no_error(kv: KVNamespace) -> None:
    kv.put("k", '{"a": 1}')
    assert kv.get("k", type="json") == {"a": 1}
    read = last_record(kv)
    assert read.ok and read.error is None


def test_get_json_of_bytes_that_are_not_utf8_parses_the_text_a_text_read_gives(
    kv: KVNamespace,
) -> None:
    kv.put("string", b'"\xff"')
    assert kv.get("string", type="json") == json.loads(kv.get("string")) == "\ufffd"
    kv.put("bad", b"\xe8")
    with pytest.raises(json.JSONDecodeError):  # not a UnicodeDecodeError
        kv.get("bad", type="json")
    assert last_record(kv).ok
