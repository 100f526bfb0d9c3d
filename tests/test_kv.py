"""Conformance tests for ``KVNamespace``: Workers KV limits, texts, quotas, ledger and model.

Every figure is taken from ``pytest_dualcache.limits`` and pinned once against Cloudflare's
documented value in ``test_documented_kv_figures``; error texts are asserted literally, as
Cloudflare words them. Time only moves through the ``VirtualClock`` (no ``time.sleep``).
"""

from __future__ import annotations

import datetime as dt
import math
import time

import freezegun
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pytest_dualcache.clock import DEFAULT_START, VirtualClock
from pytest_dualcache.kv import (
    KVBindingError,
    KVError,
    KVKey,
    KVListResult,
    KVNamespace,
    KVQuotaError,
    KVRateLimitError,
    KVValidationError,
    KVValueWithMetadata,
    js_int32_option,
    js_json_stringify,
    js_number_text,
    utf8_length,
)
from pytest_dualcache.ledger import Ledger
from pytest_dualcache.limits import (
    KV_DAILY_QUOTAS,
    KV_MAX_KEY_BYTES,
    KV_MAX_LIST_LIMIT,
    KV_MAX_METADATA_BYTES,
    KV_MAX_VALUE_BYTES,
    KV_MIN_EXPIRATION_TTL_S,
    KV_PLANS,
    KV_QUOTA_STATUS,
    KV_SAME_KEY_WRITE_INTERVAL_S,
    SECONDS_PER_DAY,
)

NOW = int(DEFAULT_START)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def kv(clock: VirtualClock) -> KVNamespace:
    return KVNamespace(clock)


def utf8_sorted(names):
    return sorted(names, key=lambda name: name.encode("utf-8"))


def list_all(kv: KVNamespace, *, prefix: str | None = None, limit: int = KV_MAX_LIST_LIMIT):
    """Every page of ``list`` from the start, checking the paging contract on the way."""
    pages: list[KVListResult] = []
    cursor = None
    while True:
        page = kv.list(prefix=prefix, limit=limit, cursor=cursor)
        pages.append(page)
        assert len(page.keys) <= limit
        if page.list_complete:
            assert page.cursor is None
            return pages
        assert len(page.keys) == limit
        assert isinstance(page.cursor, str)
        assert page.cursor
        cursor = page.cursor


def listed_names(kv: KVNamespace, **kwargs) -> list[str]:
    return [key.name for page in list_all(kv, **kwargs) for key in page.keys]


def snapshot(kv: KVNamespace) -> dict[str, tuple[object, object, int | None]]:
    """Every live key with its bytes, metadata and expiration."""
    result = {}
    live_keys = kv.keys()
    for key in live_keys:
        got = kv.get_with_metadata(key, "bytes")
        result[key] = (got.value, got.metadata, kv.expiration_of(key))
    return result


# --- figures ----------------------------------------------------------------------------


def test_documented_kv_figures() -> None:
    assert KV_MAX_KEY_BYTES == 512
    assert KV_MAX_VALUE_BYTES == 26_214_400
    assert KV_MAX_METADATA_BYTES == 1024
    assert KV_MIN_EXPIRATION_TTL_S == 60
    assert KV_MAX_LIST_LIMIT == 1000
    assert KV_SAME_KEY_WRITE_INTERVAL_S == 1
    assert SECONDS_PER_DAY == 86_400
    assert KV_QUOTA_STATUS == 429
    assert KV_DAILY_QUOTAS["free"] == {
        "read": 100_000,
        "write": 1_000,
        "delete": 1_000,
        "list": 1_000,
    }
    assert KV_DAILY_QUOTAS["paid"] is None
    assert KV_DAILY_QUOTAS["unlimited"] is None
    assert set(KV_PLANS) == {"free", "paid", "unlimited"}


def test_default_clock_start_is_a_utc_midnight() -> None:
    assert DEFAULT_START % SECONDS_PER_DAY == 0


@pytest.mark.parametrize(
    ("text", "length"),
    [("", 0), ("abc", 3), ("é", 2), ("€", 3), ("😀", 4), ("\uffff", 3), ("\ud800", 3)],
)
def test_utf8_length_counts_encoded_bytes(text: str, length: int) -> None:
    assert utf8_length(text) == length


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (60, 60),
        (60.9, 60),
        (-60.9, -60),
        (59.9, 59),
        ("120", 120),
        ("  42 ", 42),
        ("1e3", 1000),
        ("0x40", 64),
        ("60abc", 0),
        ("abc", 0),
        ("", 0),
        (math.nan, 0),
        (math.inf, 0),
        (True, 1),
        (2**31 - 1, 2**31 - 1),
    ],
)
def test_numeric_options_convert_as_the_workers_binding_does(raw: object, expected: int) -> None:
    assert js_int32_option(raw) == expected


@pytest.mark.parametrize("raw", [2**31, -(2**31) - 1, "4294967296"])
def test_numeric_options_outside_int32_are_a_binding_type_error(raw: object) -> None:
    with pytest.raises(KVBindingError) as raised:
        js_int32_option(raw)
    assert isinstance(raised.value, TypeError)
    assert str(raised.value) == (
        "Value out of range. Must be between -2147483648 and 2147483647 (inclusive)."
    )


# --- keys -------------------------------------------------------------------------------

KEY_OPERATIONS = [
    pytest.param("PUT", lambda kv, key: kv.put(key, "v"), id="put"),
    pytest.param("GET", lambda kv, key: kv.get(key), id="get"),
    pytest.param("GET", lambda kv, key: kv.get_with_metadata(key), id="get_with_metadata"),
    pytest.param("DELETE", lambda kv, key: kv.delete(key), id="delete"),
]


@pytest.mark.parametrize(("op_name", "operation"), KEY_OPERATIONS)
@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("", "Key name cannot be empty."),
        (".", '"." is not allowed as a key name.'),
        ("..", '".." is not allowed as a key name.'),
    ],
    ids=["empty", "dot", "dotdot"],
)
def test_empty_and_dot_keys_are_refused_by_the_binding_as_a_type_error(
    kv: KVNamespace, op_name: str, operation, key: str, text: str
) -> None:
    with pytest.raises(KVBindingError) as excinfo:  # workerd throws before any request
        operation(kv, key)
    assert isinstance(excinfo.value, TypeError) and isinstance(excinfo.value, KVValidationError)
    assert str(excinfo.value) == text
    assert kv.keys() == []


BAD_KEYS = [
    pytest.param(
        "x" * 513,
        414,
        "UTF-8 encoded length of 513 exceeds key length limit of 512.",
        id="513-ascii",
    ),
    pytest.param(
        "é" * 257,
        414,
        "UTF-8 encoded length of 514 exceeds key length limit of 512.",
        id="257-e-acute-514-bytes",
    ),
    pytest.param(
        "€" * 171,
        414,
        "UTF-8 encoded length of 513 exceeds key length limit of 512.",
        id="171-euro-513-bytes",
    ),
    pytest.param(
        "😀" * 128 + "a",
        414,
        "UTF-8 encoded length of 513 exceeds key length limit of 512.",
        id="emoji-plus-a-513-bytes",
    ),
]


@pytest.mark.parametrize(("op_name", "operation"), KEY_OPERATIONS)
@pytest.mark.parametrize(("key", "status", "text"), BAD_KEYS)
def test_invalid_key_is_rejected_with_cloudflare_status_and_text(
    kv: KVNamespace, op_name: str, operation, key: str, status: int, text: str
) -> None:
    with pytest.raises(KVValidationError) as excinfo:
        operation(kv, key)
    assert excinfo.value.status == status
    assert str(excinfo.value) == f"KV {op_name} failed: {status} {text}"
    assert excinfo.value.message == str(excinfo.value)
    assert kv.keys() == []


def test_put_513_byte_key_is_rejected_414(kv: KVNamespace) -> None:
    with pytest.raises(KVValidationError) as excinfo:
        kv.put("k" * (KV_MAX_KEY_BYTES + 1), "v")
    assert excinfo.value.status == 414
    assert str(excinfo.value) == (
        "KV PUT failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    )


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k" * KV_MAX_KEY_BYTES, id="512-ascii"),
        pytest.param("€" * 170 + "ab", id="170-euro-plus-ab-512-bytes"),
        pytest.param("é" * 256, id="256-e-acute-512-bytes"),
        pytest.param("😀" * 128, id="128-emoji-512-bytes"),
        pytest.param("...", id="three-dots"),
        pytest.param("./x", id="dot-slash"),
        pytest.param(" ", id="space"),
    ],
)
def test_valid_key_round_trips_through_put_get_list_delete(kv: KVNamespace, key: str) -> None:
    assert utf8_length(key) <= KV_MAX_KEY_BYTES
    kv.put(key, "value")
    assert kv.get(key) == "value"
    assert listed_names(kv) == [key]
    kv.delete(key)
    assert kv.get(key) is None


def test_multibyte_key_boundary_is_counted_in_utf8_bytes() -> None:
    assert len(("€" * 170 + "ab").encode("utf-8")) == 512
    assert len(("é" * 257).encode("utf-8")) == 514


@pytest.mark.parametrize("key", [b"k", 1, None, ("k",)])
@pytest.mark.parametrize(("op_name", "operation"), KEY_OPERATIONS)
def test_non_str_key_raises_type_error(
    kv: KVNamespace, op_name: str, operation, key: object
) -> None:
    with pytest.raises(TypeError):
        operation(kv, key)


def test_list_prefix_over_512_bytes_is_rejected_414(kv: KVNamespace) -> None:
    with pytest.raises(KVValidationError) as excinfo:
        kv.list(prefix="p" * (KV_MAX_KEY_BYTES + 1))
    assert excinfo.value.status == 414
    assert str(excinfo.value) == (
        "KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    )


def test_list_multibyte_prefix_over_512_bytes_is_rejected_with_its_byte_length(
    kv: KVNamespace,
) -> None:
    with pytest.raises(KVValidationError) as excinfo:
        kv.list(prefix="é" * 257)
    assert str(excinfo.value) == (
        "KV GET failed: 414 UTF-8 encoded length of 514 exceeds key length limit of 512."
    )


def test_list_prefix_of_exactly_512_bytes_is_accepted(kv: KVNamespace) -> None:
    key = "p" * KV_MAX_KEY_BYTES
    kv.put(key, "v")
    assert listed_names(kv, prefix=key) == [key]


# --- values -----------------------------------------------------------------------------

VALUE_AT_LIMIT = [
    pytest.param(lambda n: "x" * n, id="ascii-str"),
    pytest.param(lambda n: b"x" * n, id="bytes"),
    pytest.param(lambda n: bytearray(n), id="bytearray"),
    pytest.param(lambda n: "é" * (n // 2), id="two-byte-str"),
    pytest.param(lambda n: "€" * (n // 3) + "x" * (n % 3), id="three-byte-str"),
]


@pytest.mark.parametrize("make_value", VALUE_AT_LIMIT)
def test_put_value_of_exactly_25_mib_is_accepted(kv: KVNamespace, make_value) -> None:
    value = make_value(KV_MAX_VALUE_BYTES)
    kv.put("big", value)
    assert kv.ledger.records[-1].bytes == 26_214_400
    assert len(kv.get("big", "bytes")) == 26_214_400


VALUE_OVER_LIMIT = [
    pytest.param(lambda n: "x" * (n + 1), id="ascii-str"),
    pytest.param(lambda n: b"x" * (n + 1), id="bytes"),
    pytest.param(lambda n: bytearray(n + 1), id="bytearray"),
    pytest.param(lambda n: "é" * (n // 2) + "x", id="two-byte-str"),
    pytest.param(lambda n: "x" * (n - 1) + "é", id="ascii-then-two-byte-char"),
]


@pytest.mark.parametrize("make_value", VALUE_OVER_LIMIT)
def test_put_value_one_byte_over_25_mib_is_rejected_413(kv: KVNamespace, make_value) -> None:
    with pytest.raises(KVValidationError) as excinfo:
        kv.put("big", make_value(KV_MAX_VALUE_BYTES))
    assert excinfo.value.status == 413
    assert str(excinfo.value) == (
        "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400."
    )
    assert "big" not in kv


@pytest.mark.parametrize("value", [None, 42, 1.5, True, {"a": 1}, ["x"], object()])
def test_put_non_str_non_bytes_value_raises_type_error(kv: KVNamespace, value: object) -> None:
    with pytest.raises(TypeError):
        kv.put("k", value)
    assert kv.keys() == []


class _TextSubclass(str):
    __slots__ = ()


def test_put_str_subclass_value_is_accepted_as_text(kv: KVNamespace) -> None:
    kv.put("k", _TextSubclass("héllo"))
    assert kv.get("k") == "héllo"
    assert kv.get("k", "bytes") == "héllo".encode()
    assert kv.ledger.records[-1].bytes == 6


def test_put_bytearray_is_copied_so_later_mutation_changes_nothing(kv: KVNamespace) -> None:
    buffer = bytearray(b"abc")
    kv.put("k", buffer)
    buffer[0] = ord("z")
    buffer.extend(b"more")
    got = kv.get("k", "bytes")
    assert got == b"abc"
    assert type(got) is bytes


def test_empty_value_is_stored_and_distinct_from_absent(kv: KVNamespace) -> None:
    kv.put("k", "")
    assert kv.get("k") == ""
    assert kv.get("missing") is None


# --- metadata ---------------------------------------------------------------------------

METADATA_AT_LIMIT = [
    # '{"a":1,"b":"' (12) + 1010 + '"}' (2): only the compact separators fit.
    pytest.param({"a": 1, "b": "x" * 1010}, id="compact-separators"),
    # '{"k":"' (6) + 508 * 2 + '"}' (2): only unescaped UTF-8 fits (\\u00e9 would be 6 bytes).
    pytest.param({"k": "é" * 508}, id="non-ascii-unescaped"),
    pytest.param("x" * 1022, id="json-string"),
]


@pytest.mark.parametrize("metadata", METADATA_AT_LIMIT)
def test_metadata_of_exactly_1024_json_bytes_is_accepted(kv: KVNamespace, metadata) -> None:
    kv.put("k", "v", metadata=metadata)
    assert kv.get_with_metadata("k") == KVValueWithMetadata("v", metadata)


METADATA_OVER_LIMIT = [
    pytest.param({"a": 1, "b": "x" * 1011}, id="ascii"),
    pytest.param({"k": "é" * 508 + "x"}, id="non-ascii"),
    pytest.param("x" * 1023, id="json-string"),
]


@pytest.mark.parametrize("metadata", METADATA_OVER_LIMIT)
def test_metadata_of_1025_json_bytes_is_rejected_413(kv: KVNamespace, metadata) -> None:
    with pytest.raises(KVValidationError) as excinfo:
        kv.put("k", "v", metadata=metadata)
    assert excinfo.value.status == 413
    assert str(excinfo.value) == (
        "KV PUT failed: 413 Metadata length of 1025 exceeds limit of 1024."
    )
    assert "k" not in kv


def test_metadata_length_counts_integral_floats_like_json_stringify(kv: KVNamespace) -> None:
    kv.put("k", "v", metadata={"a": 1.0, "b": "x" * 1010})
    assert kv.get_with_metadata("k").metadata == {"a": 1, "b": "x" * 1010}


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({1, 2}, id="set"),
        pytest.param(math.nan, id="nan"),
        pytest.param({"a": math.inf}, id="inf-inside"),
        pytest.param(object(), id="object"),
        pytest.param(b"bytes", id="bytes"),
    ],
)
def test_non_json_metadata_raises_type_error(kv: KVNamespace, metadata: object) -> None:
    with pytest.raises(TypeError):
        kv.put("k", "v", metadata=metadata)
    assert "k" not in kv


@pytest.mark.parametrize("metadata", [{}, [], 0, False, "", {"n": None}])
def test_falsy_metadata_is_kept_not_dropped(kv: KVNamespace, metadata: object) -> None:
    kv.put("k", "v", metadata=metadata)
    assert kv.get_with_metadata("k").metadata == metadata
    assert kv.get_with_metadata("k").metadata is not None
    assert kv.list().keys[0].metadata == metadata


def test_metadata_dict_mutated_after_put_changes_nothing_stored(kv: KVNamespace) -> None:
    metadata = {"tags": ["a"], "n": 1}
    kv.put("k", "v", metadata=metadata)
    metadata["tags"].append("b")
    metadata["n"] = 2
    assert kv.get_with_metadata("k").metadata == {"tags": ["a"], "n": 1}
    assert kv.list().keys[0].metadata == {"tags": ["a"], "n": 1}


def test_metadata_returned_by_get_with_metadata_is_a_copy(kv: KVNamespace) -> None:
    kv.put("k", "v", metadata={"tags": ["a"]})
    got = kv.get_with_metadata("k").metadata
    got["tags"].append("b")
    got["extra"] = True
    assert kv.get_with_metadata("k").metadata == {"tags": ["a"]}


def test_metadata_returned_by_list_is_a_copy(kv: KVNamespace) -> None:
    kv.put("k", "v", metadata={"tags": ["a"]})
    kv.list().keys[0].metadata["tags"].append("b")
    assert kv.list().keys[0].metadata == {"tags": ["a"]}


# --- expiration -------------------------------------------------------------------------


def test_expiration_ttl_is_truncated_to_an_integer_from_the_whole_second(
    kv: KVNamespace, clock: VirtualClock
) -> None:
    clock.advance(0.7)
    kv.put("k", "v", expiration_ttl=60.9)
    assert kv.expiration_of("k") == math.floor(clock.now()) + 60
    assert kv.expiration_of("k") == NOW + 60


@pytest.mark.parametrize(("ttl", "ahead"), [(60, 60), (120, 120), ("120", 120), (86_400, 86_400)])
def test_expiration_ttl_sets_absolute_expiration(
    kv: KVNamespace, clock: VirtualClock, ttl: object, ahead: int
) -> None:
    kv.put("k", "v", expiration_ttl=ttl)
    assert kv.expiration_of("k") == NOW + ahead


@pytest.mark.parametrize(
    ("ttl", "raw"), [(59.9, "59"), (59, "59"), (1, "1"), ("59", "59"), (True, "1"), ("1e1", "10")]
)
def test_expiration_ttl_under_60_is_rejected_400(kv: KVNamespace, ttl: object, raw: str) -> None:
    with pytest.raises(KVValidationError) as excinfo:
        kv.put("k", "v", expiration_ttl=ttl)
    assert excinfo.value.status == 400
    assert str(excinfo.value) == (
        f"KV PUT failed: 400 Invalid expiration_ttl of {raw}. Expiration TTL must be at least 60."
    )
    assert "k" not in kv


@pytest.mark.parametrize(
    ("ttl", "raw"),
    [
        (0, "0"),
        (-1, "-1"),
        ("abc", "0"),
        ("60abc", "0"),
        ("", "0"),
        (math.nan, "0"),
        (math.inf, "0"),
        (0.5, "0"),
        (-1e9, "-1000000000"),
    ],
)
def test_expiration_ttl_not_positive_integer_is_rejected_400(
    kv: KVNamespace, ttl: object, raw: str
) -> None:
    with pytest.raises(KVValidationError) as excinfo:
        kv.put("k", "v", expiration_ttl=ttl)
    assert excinfo.value.status == 400
    assert str(excinfo.value) == (
        f"KV PUT failed: 400 Invalid expiration_ttl of {raw}. "
        "Please specify integer greater than 0."
    )
    assert "k" not in kv


def test_expiration_ttl_outside_int32_is_refused_by_the_binding(kv: KVNamespace) -> None:
    with pytest.raises(KVBindingError, match="Value out of range"):
        kv.put("k", "v", expiration_ttl=2**31)
    assert "k" not in kv


@pytest.mark.parametrize("offset", [-86_400, -1, 0])
def test_absolute_expiration_in_the_past_or_now_is_rejected_400(
    kv: KVNamespace, offset: int
) -> None:
    with pytest.raises(KVValidationError) as excinfo:
        kv.put("k", "v", expiration=NOW + offset)
    assert excinfo.value.status == 400
    assert str(excinfo.value) == (
        f"KV PUT failed: 400 Invalid expiration of {NOW + offset}. Please specify integer "
        "greater than the current number of seconds since the UNIX epoch."
    )
    assert "k" not in kv


@pytest.mark.parametrize("offset", [1, 30, 59])
def test_absolute_expiration_under_60_seconds_ahead_is_rejected_400(
    kv: KVNamespace, offset: int
) -> None:
    with pytest.raises(KVValidationError) as excinfo:
        kv.put("k", "v", expiration=NOW + offset)
    assert excinfo.value.status == 400
    assert str(excinfo.value) == (
        f"KV PUT failed: 400 Invalid expiration of {NOW + offset}. "
        "Expiration times must be at least 60 seconds in the future."
    )
    assert "k" not in kv


@pytest.mark.parametrize("expiration", [NOW + 60, float(NOW + 60), str(NOW + 60)])
def test_absolute_expiration_exactly_60_seconds_ahead_is_accepted(
    kv: KVNamespace, expiration: object
) -> None:
    kv.put("k", "v", expiration=expiration)
    assert kv.expiration_of("k") == NOW + 60


def test_expiration_ttl_wins_when_both_are_given(kv: KVNamespace) -> None:
    kv.put("k", "v", expiration=NOW + 1000, expiration_ttl=120)
    assert kv.expiration_of("k") == NOW + 120


def test_entry_is_readable_until_just_before_expiration(
    kv: KVNamespace, clock: VirtualClock
) -> None:
    kv.put("k", "v", expiration_ttl=60)
    clock.advance(59.999)
    assert kv.get("k") == "v"
    assert listed_names(kv) == ["k"]


def test_entry_is_gone_at_expiration(kv: KVNamespace, clock: VirtualClock) -> None:
    kv.put("k", "v", expiration_ttl=60, metadata={"m": 1})
    kv.put("stays", "v")
    clock.advance(60)
    assert kv.get("k") is None
    assert kv.get_with_metadata("k") == KVValueWithMetadata(None, None)
    assert listed_names(kv) == ["stays"]
    assert kv.keys() == ["stays"]
    assert "k" not in kv
    assert kv.expiration_of("k") is None


def test_entry_without_expiration_never_expires(kv: KVNamespace, clock: VirtualClock) -> None:
    kv.put("k", "v")
    clock.advance(10 * 365 * SECONDS_PER_DAY)
    assert kv.get("k") == "v"
    assert kv.expiration_of("k") is None


def test_put_without_expiration_clears_an_earlier_expiration(
    kv: KVNamespace, clock: VirtualClock
) -> None:
    kv.put("k", "v1", expiration_ttl=60)
    clock.advance(1)
    kv.put("k", "v2")
    clock.advance(120)
    assert kv.get("k") == "v2"


# --- list -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "text"),
    [
        (1001, "Invalid key_count_limit of 1001. Please specify an integer less than 1000."),
        (5000, "Invalid key_count_limit of 5000. Please specify an integer less than 1000."),
    ],
)
def test_list_limit_out_of_range_is_rejected_400(kv: KVNamespace, limit: object, text: str) -> None:
    with pytest.raises(KVValidationError) as excinfo:
        kv.list(limit=limit)
    assert excinfo.value.status == 400
    assert str(excinfo.value) == f"KV GET failed: 400 {text}"  # workerd says GET for list


@pytest.mark.parametrize("limit", [0, -1, "abc", None])
def test_list_limit_below_one_or_unreadable_asks_for_the_default_page(
    kv: KVNamespace, limit: object
) -> None:
    for index in range(3):
        kv.put(f"k{index}", "v")
    page = kv.list(limit=limit)
    assert [key.name for key in page.keys] == ["k0", "k1", "k2"] and page.list_complete


@pytest.mark.parametrize("limit", [1, KV_MAX_LIST_LIMIT])
def test_list_limit_within_range_is_accepted(kv: KVNamespace, limit: int) -> None:
    kv.put("a", "v")
    assert kv.list(limit=limit).keys == [KVKey("a")]


def test_list_limit_defaults_to_1000() -> None:
    kv = KVNamespace(VirtualClock(), plan="unlimited")
    for i in range(KV_MAX_LIST_LIMIT + 1):
        kv.put(f"k{i:04d}", "v")
    page = kv.list()
    assert len(page.keys) == 1000
    assert page.list_complete is False
    assert page.cursor is not None


def test_list_of_empty_namespace_is_complete(kv: KVNamespace) -> None:
    assert kv.list() == KVListResult([], True, None)


def test_list_sorts_keys_by_utf8_byte_order(kv: KVNamespace) -> None:
    names = ["a", "z", "é", "€", "😀", "\uffff", "Z", "~"]
    for name in reversed(names):
        kv.put(name, "v")
    got = listed_names(kv)
    assert got == utf8_sorted(names)
    # Literal order: UTF-16 order would put the emoji (D83D...) before U+FFFF.
    assert got == ["Z", "a", "z", "~", "é", "€", "\uffff", "😀"]


def test_list_sorted_order_holds_across_pages(kv: KVNamespace) -> None:
    names = ["a", "z", "é", "€", "😀", "\uffff", "Z", "~"]
    for name in names:
        kv.put(name, "v")
    assert listed_names(kv, limit=3) == ["Z", "a", "z", "~", "é", "€", "\uffff", "😀"]


def test_list_prefix_filters_keys(kv: KVNamespace) -> None:
    for name in ["user:1", "user:2", "users", "admin", "use", "user:é"]:
        kv.put(name, "v")
    assert listed_names(kv, prefix="user:") == ["user:1", "user:2", "user:é"]
    assert listed_names(kv, prefix="user") == ["user:1", "user:2", "user:é", "users"]
    assert listed_names(kv, prefix="nobody") == []


def test_list_cursor_paging_over_2500_keys_visits_each_key_exactly_once() -> None:
    kv = KVNamespace(VirtualClock(), plan="unlimited")
    names = [f"key-{i:05d}" for i in range(2500)]
    for name in reversed(names):
        kv.put(name, "v")
    pages = list_all(kv, limit=1000)
    assert [len(page.keys) for page in pages] == [1000, 1000, 500]
    assert [page.list_complete for page in pages] == [False, False, True]
    assert all(page.cursor for page in pages[:-1])
    assert pages[-1].cursor is None
    visited = [key.name for page in pages for key in page.keys]
    assert visited == names
    assert len(set(visited)) == 2500


def test_list_page_of_exactly_limit_remaining_keys_is_complete() -> None:
    kv = KVNamespace(VirtualClock(), plan="unlimited")
    for i in range(2000):
        kv.put(f"k{i:04d}", "v")
    first = kv.list(limit=1000)
    assert first.list_complete is False
    second = kv.list(limit=1000, cursor=first.cursor)
    assert len(second.keys) == 1000
    assert second.list_complete is True
    assert second.cursor is None


def test_list_first_page_holding_all_keys_exactly_is_complete(kv: KVNamespace) -> None:
    for name in "abc":
        kv.put(name, "v")
    page = kv.list(limit=3)
    assert [key.name for key in page.keys] == ["a", "b", "c"]
    assert page.list_complete is True
    assert page.cursor is None


def test_list_key_added_after_the_cursor_between_pages_shows_up(kv: KVNamespace) -> None:
    for name in "abcd":
        kv.put(name, "v")
    first = kv.list(limit=2)
    assert [key.name for key in first.keys] == ["a", "b"]
    kv.put("bb", "v")  # after the cursor: must appear
    kv.put("aa", "v")  # before the cursor: already passed
    rest = []
    cursor = first.cursor
    while cursor is not None:
        page = kv.list(limit=2, cursor=cursor)
        rest += [key.name for key in page.keys]
        cursor = page.cursor
    assert rest == ["bb", "c", "d"]


def test_list_reports_absolute_expiration_and_metadata_only_when_set(
    kv: KVNamespace, clock: VirtualClock
) -> None:
    kv.put("plain", "v")
    kv.put("ttl", "v", expiration_ttl=120)
    kv.put("abs", "v", expiration=NOW + 3600, metadata={"m": "é"})
    clock.advance(30)
    assert kv.list().keys == [
        KVKey("abs", NOW + 3600, {"m": "é"}),
        KVKey("plain", None, None),
        KVKey("ttl", NOW + 120, None),
    ]


def test_a_malformed_cursor_is_decoded_leniently_as_miniflare_does(kv: KVNamespace) -> None:
    for name in ("a", "b", "k1", "k2"):
        kv.put(name, "v")
    assert [key.name for key in kv.list(cursor="!!!").keys] == ["a", "b", "k1", "k2"]
    assert [key.name for key in kv.list(cursor="azE").keys] == ["k2"]  # unpadded "k1"


# --- get types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "type_", "expected"),
    [
        ("héllo", "text", "héllo"),
        ("héllo".encode(), "text", "héllo"),
        ('{"a": [1, 2], "b": "é"}', "json", {"a": [1, 2], "b": "é"}),
        (b"[1, null]", "json", [1, None]),
        ("héllo", "bytes", "héllo".encode()),
        (b"\x00\xff", "bytes", b"\x00\xff"),
    ],
)
def test_get_type_converts_stored_value(
    kv: KVNamespace, stored: str | bytes, type_: str, expected: object
) -> None:
    kv.put("k", stored)
    assert kv.get("k", type_) == expected
    assert type(kv.get("k", type_)) is type(expected)
    assert kv.get_with_metadata("k", type_).value == expected


def test_get_type_defaults_to_text(kv: KVNamespace) -> None:
    kv.put("k", b"abc")
    assert kv.get("k") == "abc"


@pytest.mark.parametrize("type_", ["arrayBuffer", "stream", "TEXT", ""])
def test_get_invalid_type_raises_value_error(kv: KVNamespace, type_: str) -> None:
    kv.put("k", "v")
    with pytest.raises(ValueError):
        kv.get("k", type_)
    with pytest.raises(ValueError):
        kv.get_with_metadata("k", type_)


def test_get_absent_key_returns_none(kv: KVNamespace) -> None:
    assert kv.get("missing") is None
    assert kv.get("missing", "json") is None
    assert kv.get("missing", "bytes") is None


def test_get_with_metadata_of_absent_key_is_both_none(kv: KVNamespace) -> None:
    assert kv.get_with_metadata("missing") == KVValueWithMetadata(None, None)


def test_get_with_metadata_returns_value_and_metadata(kv: KVNamespace) -> None:
    kv.put("k", "v", metadata={"etag": "x1"})
    kv.put("bare", "w")
    assert kv.get_with_metadata("k") == KVValueWithMetadata("v", {"etag": "x1"})
    assert kv.get_with_metadata("bare") == KVValueWithMetadata("w", None)


def test_delete_removes_and_absent_delete_is_fine(kv: KVNamespace) -> None:
    kv.put("k", "v")
    kv.delete("k")
    kv.delete("k")
    kv.delete("never")
    assert kv.get("k") is None
    assert kv.keys() == []


# --- per-key write rate -----------------------------------------------------------------


def test_second_put_to_same_key_within_a_second_is_rejected_429_and_keeps_value(
    kv: KVNamespace, clock: VirtualClock
) -> None:
    kv.put("k", "first")
    clock.advance(0.5)
    with pytest.raises(KVRateLimitError) as excinfo:
        kv.put("k", "second")
    assert excinfo.value.status == 429
    assert str(excinfo.value) == "KV PUT failed: 429 Too Many Requests"
    assert kv.get("k") == "first"


def test_put_to_same_key_one_second_later_is_accepted(kv: KVNamespace, clock: VirtualClock) -> None:
    kv.put("k", "first")
    clock.advance(KV_SAME_KEY_WRITE_INTERVAL_S)
    kv.put("k", "second")
    assert kv.get("k") == "second"


def test_puts_to_different_keys_in_the_same_instant_are_fine(kv: KVNamespace) -> None:
    for i in range(50):
        kv.put(f"k{i}", "v")
    assert len(kv.keys()) == 50


def test_deletes_are_not_rate_limited(kv: KVNamespace) -> None:
    kv.put("k", "v")
    kv.delete("k")
    kv.delete("k")
    kv.delete("k")
    assert "k" not in kv


def test_delete_does_not_reset_put_rate_put_delete_put_after_0_2s_is_still_429(
    kv: KVNamespace, clock: VirtualClock
) -> None:
    kv.put("k", "v1")
    kv.delete("k")
    clock.advance(0.2)
    with pytest.raises(KVRateLimitError):
        kv.put("k", "v2")  # the last PUT to "k" was only 0.2 s ago
    assert "k" not in kv


def test_delete_between_puts_does_not_restart_the_window(
    kv: KVNamespace, clock: VirtualClock
) -> None:
    kv.put("k", "v1")
    clock.advance(0.5)
    kv.delete("k")
    clock.advance(0.5)
    kv.put("k", "v2")  # 1 s after the last PUT, although only 0.5 s after the delete
    assert kv.get("k") == "v2"


def test_rejected_put_does_not_reset_the_rate_window(kv: KVNamespace, clock: VirtualClock) -> None:
    kv.put("k", "v1")
    clock.advance(0.5)
    with pytest.raises(KVRateLimitError):
        kv.put("k", "v2")
    clock.advance(0.5)
    kv.put("k", "v3")
    assert kv.get("k") == "v3"


def test_invalid_put_does_not_start_the_rate_window(kv: KVNamespace) -> None:
    with pytest.raises(KVValidationError):
        kv.put("k", "v", expiration_ttl=1)
    kv.put("k", "v")
    assert kv.get("k") == "v"


def test_put_one_second_later_in_tenth_second_steps_is_accepted(
    kv: KVNamespace, clock: VirtualClock
) -> None:
    kv.put("k", "v1")
    for _ in range(10):
        clock.advance(0.1)
    kv.put("k", "v2")
    assert kv.get("k") == "v2"


# --- plans and daily quotas -------------------------------------------------------------

QUOTA_CASES = [
    pytest.param(
        "write",
        lambda kv, i: kv.put(f"k{i}", "v"),
        "KV put() limit exceeded for the day.",
        id="put",
    ),
    pytest.param(
        "delete",
        lambda kv, i: kv.delete(f"k{i}"),
        "KV delete() limit exceeded for the day.",
        id="delete",
    ),
    pytest.param(
        "list",
        lambda kv, i: kv.list(limit=1),
        "KV list() limit exceeded for the day.",
        id="list",
    ),
    pytest.param(
        "read",
        lambda kv, i: kv.get("k"),
        "KV get() limit exceeded for the day.",
        id="get",
    ),
    pytest.param(
        "read",
        lambda kv, i: kv.get_with_metadata("k"),
        "KV get() limit exceeded for the day.",
        id="get_with_metadata",
    ),
]


@pytest.mark.parametrize(("kind", "operation", "message"), QUOTA_CASES)
def test_free_plan_daily_quota_rejects_next_op_until_next_utc_midnight(
    clock: VirtualClock, kind: str, operation, message: str
) -> None:
    kv = KVNamespace(clock, plan="free", ledger=Ledger("quota", enabled=False))
    quota = KV_DAILY_QUOTAS["free"][kind]
    for i in range(quota):
        operation(kv, i)
    assert kv.used_today()[kind] == quota
    with pytest.raises(KVQuotaError) as excinfo:
        operation(kv, quota)
    assert excinfo.value.status == 429
    assert str(excinfo.value) == message
    assert kv.used_today()[kind] == quota

    clock.set(DEFAULT_START + SECONDS_PER_DAY - 0.5)  # 23:59:59.5 UTC, same day
    with pytest.raises(KVQuotaError):
        operation(kv, quota)

    clock.set(DEFAULT_START + SECONDS_PER_DAY)  # next 00:00 UTC
    operation(kv, quota)
    assert kv.used_today()[kind] == 1


def test_free_plan_quota_figures_per_operation() -> None:
    free = KV_DAILY_QUOTAS["free"]
    assert (free["read"], free["write"], free["delete"], free["list"]) == (
        100_000,
        1_000,
        1_000,
        1_000,
    )


def test_put_over_daily_quota_stores_nothing(clock: VirtualClock) -> None:
    kv = KVNamespace(clock, plan="free")
    for i in range(1000):
        kv.put(f"k{i}", "v")
    before = kv.keys()
    with pytest.raises(KVQuotaError):
        kv.put("k1000", "v")
    with pytest.raises(KVQuotaError):
        kv.put("k0", "overwrite")
    assert kv.keys() == before
    assert "k1000" not in kv
    assert kv.get("k0") == "v"


def test_delete_over_daily_quota_removes_nothing(kv: KVNamespace) -> None:
    kv.put("keep", "v")
    for _ in range(1000):
        kv.delete("other")
    with pytest.raises(KVQuotaError) as excinfo:
        kv.delete("keep")
    assert str(excinfo.value) == "KV delete() limit exceeded for the day."
    assert kv.get("keep") == "v"


def test_rate_limited_put_does_not_use_write_quota(kv: KVNamespace) -> None:
    kv.put("k", "v")
    with pytest.raises(KVRateLimitError):
        kv.put("k", "v")
    assert kv.used_today()["write"] == 1
    for i in range(999):
        kv.put(f"other{i}", "v")
    assert kv.used_today()["write"] == 1000
    with pytest.raises(KVQuotaError):
        kv.put("one-too-many", "v")


def test_validation_errors_do_not_use_quota(kv: KVNamespace) -> None:
    with pytest.raises(KVValidationError):
        kv.put("", "v")
    with pytest.raises(KVValidationError):
        kv.put("k", "v", expiration_ttl=0)
    with pytest.raises(TypeError):
        kv.put("k", 1)
    with pytest.raises(KVValidationError):
        kv.get("")
    with pytest.raises(ValueError):
        kv.get("k", "stream")
    with pytest.raises(KVValidationError):
        kv.delete("..")
    with pytest.raises(KVValidationError):
        kv.list(limit=1001)
    assert kv.used_today() == {"read": 0, "write": 0, "delete": 0, "list": 0}


def test_used_today_reports_successful_operation_counts(kv: KVNamespace) -> None:
    assert kv.used_today() == {"read": 0, "write": 0, "delete": 0, "list": 0}
    kv.put("a", "v")
    kv.put("b", "v")
    kv.get("a")
    kv.get("missing")
    kv.get_with_metadata("b")
    kv.delete("a")
    kv.list()
    assert kv.used_today() == {"read": 3, "write": 2, "delete": 1, "list": 1}


def test_used_today_resets_at_utc_midnight(kv: KVNamespace, clock: VirtualClock) -> None:
    clock.advance(SECONDS_PER_DAY - 1)  # 23:59:59 UTC
    kv.put("a", "v")
    assert kv.used_today()["write"] == 1
    clock.advance(1)
    assert kv.used_today() == {"read": 0, "write": 0, "delete": 0, "list": 0}


def test_paid_plan_has_no_daily_cap() -> None:
    kv = KVNamespace(VirtualClock(), plan="paid", ledger=Ledger("paid", enabled=False))
    for i in range(1001):
        kv.put(f"k{i}", "v")
        kv.delete(f"gone{i}")
        kv.list(limit=1)
    assert len(kv.keys()) == 1001
    assert kv.used_today()["write"] == 1001


def test_paid_plan_still_limits_one_put_per_second_per_key(clock: VirtualClock) -> None:
    kv = KVNamespace(clock, plan="paid")
    kv.put("k", "v1")
    clock.advance(0.5)
    with pytest.raises(KVRateLimitError):
        kv.put("k", "v2")
    assert kv.get("k") == "v1"


def test_unlimited_plan_has_neither_rate_limit_nor_quota() -> None:
    kv = KVNamespace(VirtualClock(), plan="unlimited", ledger=Ledger("u", enabled=False))
    for i in range(1001):
        kv.put("same", f"v{i}")
    assert kv.get("same") == "v1000"
    assert kv.used_today()["write"] == 1001


@pytest.mark.parametrize("plan", ["enterprise", "", "FREE", None])
def test_unknown_plan_raises_value_error(clock: VirtualClock, plan: object) -> None:
    with pytest.raises(ValueError):
        KVNamespace(clock, plan=plan)


# --- errors -----------------------------------------------------------------------------


def test_error_hierarchy() -> None:
    assert issubclass(KVValidationError, KVError)
    assert issubclass(KVValidationError, ValueError)
    assert issubclass(KVRateLimitError, KVError)
    assert issubclass(KVQuotaError, KVError)
    assert not issubclass(KVRateLimitError, ValueError)
    assert not issubclass(KVQuotaError, ValueError)


def test_error_carries_status_and_message(kv: KVNamespace) -> None:
    with pytest.raises(KVError) as excinfo:
        kv.put("", "v")
    assert excinfo.value.status == 400
    assert excinfo.value.message == "Key name cannot be empty."
    assert str(excinfo.value) == excinfo.value.message


REJECTED_PUTS = [
    pytest.param(lambda kv: kv.put("", "x"), KVValidationError, id="empty-key"),
    pytest.param(lambda kv: kv.put("k" * 513, "x"), KVValidationError, id="long-key"),
    pytest.param(lambda kv: kv.put("k", "x", expiration_ttl=59), KVValidationError, id="ttl"),
    pytest.param(lambda kv: kv.put("k", "x", expiration=NOW), KVValidationError, id="expiry"),
    pytest.param(
        lambda kv: kv.put("k", "x", metadata="m" * 1023), KVValidationError, id="metadata-size"
    ),
    pytest.param(lambda kv: kv.put("k", "x", metadata={1}), TypeError, id="metadata-type"),
    pytest.param(lambda kv: kv.put("k", 1), TypeError, id="value-type"),
    pytest.param(
        lambda kv: kv.put("k", b"x" * (KV_MAX_VALUE_BYTES + 1)), KVValidationError, id="value-size"
    ),
    pytest.param(lambda kv: kv.put("k", "x"), KVRateLimitError, id="rate"),
    pytest.param(lambda kv: kv.delete(""), KVValidationError, id="delete-empty-key"),
    pytest.param(lambda kv: kv.get("k", "stream"), ValueError, id="get-bad-type"),
    pytest.param(lambda kv: kv.list(limit=1001), KVValidationError, id="list-bad-limit"),
]


@pytest.mark.parametrize(("operation", "error"), REJECTED_PUTS)
def test_rejected_operation_leaves_store_unchanged(
    kv: KVNamespace, operation, error: type[Exception]
) -> None:
    kv.put("k", "original", expiration_ttl=600, metadata={"v": 1})
    kv.put("other", b"\x00")
    before = snapshot(kv)
    with pytest.raises(error):
        operation(kv)
    assert snapshot(kv) == before
    assert before == {
        "k": (b"original", {"v": 1}, NOW + 600),
        "other": (b"\x00", None, None),
    }


# --- ledger -----------------------------------------------------------------------------


def test_ledger_records_every_operation_with_outcome(kv: KVNamespace, clock: VirtualClock) -> None:
    kv.put("k", "héllo")
    with pytest.raises(KVRateLimitError) as rate_error:
        kv.put("k", "again")
    clock.advance(1.5)
    kv.get("k")
    kv.get("missing")
    kv.get_with_metadata("k")
    kv.list(prefix="k")
    kv.list()
    kv.delete("k")
    with pytest.raises(KVValidationError) as key_error:
        kv.get("")
    rows = [
        (record.op, record.key, record.at, record.bytes, record.ok, record.error)
        for record in kv.ledger.records
    ]
    later = DEFAULT_START + 1.5
    assert rows == [
        ("put", "k", DEFAULT_START, 6, True, None),
        ("put", "k", DEFAULT_START, 0, False, str(rate_error.value)),
        ("get", "k", later, 6, True, None),
        ("get", "missing", later, 0, True, None),
        ("get", "k", later, 6, True, None),
        ("list", "k", later, 0, True, None),
        ("list", "", later, 0, True, None),
        ("delete", "k", later, 0, True, None),
        ("get", "", later, 0, False, str(key_error.value)),
    ]
    assert rows[1][5] == "KV PUT failed: 429 Too Many Requests"
    assert rows[-1][5] == "Key name cannot be empty."
    assert {record.store for record in kv.ledger.records} == {"CACHE_KV"}


def test_ledger_records_quota_rejections(clock: VirtualClock) -> None:
    kv = KVNamespace(clock)
    for _ in range(1000):
        kv.list(limit=1)
    with pytest.raises(KVQuotaError):
        kv.list(prefix="p")
    last = kv.ledger.records[-1]
    assert (last.op, last.key, last.ok, last.error) == (
        "list",
        "p",
        False,
        "KV list() limit exceeded for the day.",
    )
    assert kv.ledger.counts() == {"list": 1001}
    assert kv.ledger.counts(ok=False) == {"list": 1}


def test_ledger_attributes_operations_to_the_calling_test_function(kv: KVNamespace) -> None:
    kv.put("k", "v")
    kv.get("k")
    kv.delete("k")
    kv.list()
    with pytest.raises(KVValidationError):
        kv.put("", "v")
    records = kv.ledger.records
    assert len(records) == 5
    for record in records:
        assert record.call_site.filename == __file__
        assert (
            record.call_site.function
            == "test_ledger_attributes_operations_to_the_calling_test_function"
        )
        assert record.caller.startswith(f"{__file__}:")


def test_disabled_ledger_records_nothing(clock: VirtualClock) -> None:
    ledger = Ledger("CACHE_KV", enabled=False)
    kv = KVNamespace(clock, ledger=ledger)
    kv.put("k", "v")
    kv.get("k")
    kv.list()
    kv.delete("k")
    with pytest.raises(KVValidationError):
        kv.get("")
    assert len(ledger) == 0
    assert ledger.records == []
    assert kv.ledger is ledger


def test_keys_and_inspection_helpers_are_not_recorded_and_use_no_quota(kv: KVNamespace) -> None:
    kv.put("k", "v")
    kv.keys()
    kv.expiration_of("k")
    assert "k" in kv
    assert kv.used_today()["read"] == 0
    assert len(kv.ledger) == 1


# --- freezegun --------------------------------------------------------------------------


def test_expiry_follows_freezegun_time_moved_by_the_clock(clock: VirtualClock) -> None:
    frozen_at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC).timestamp()
    with freezegun.freeze_time("2026-03-01 12:00:00"):
        kv = KVNamespace(clock)
        assert clock.now() == frozen_at
        assert time.time() == clock.now()
        kv.put("k", "v", expiration_ttl=60)
        assert kv.expiration_of("k") == int(frozen_at) + 60
        clock.advance(59)
        assert kv.get("k") == "v"
        clock.advance(1)
        assert time.time() == clock.now() == frozen_at + 60
        assert kv.get("k") is None
        assert kv.list().keys == []


def test_rate_limit_follows_freezegun_time(clock: VirtualClock) -> None:
    with freezegun.freeze_time("2026-03-01 12:00:00"):
        kv = KVNamespace(clock)
        kv.put("k", "v1")
        clock.advance(0.5)
        with pytest.raises(KVRateLimitError):
            kv.put("k", "v2")
        clock.advance(0.5)
        kv.put("k", "v3")
        assert kv.get("k") == "v3"


# --- hypothesis -------------------------------------------------------------------------

KEY_ALPHABET = "ab/é"
KEYS = st.text(alphabet=KEY_ALPHABET, min_size=1, max_size=3)
VALUES = st.text(max_size=6) | st.binary(max_size=6)


def as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


class KVModelMachine(RuleBasedStateMachine):
    """KVNamespace (plan "unlimited") against a dict {key: (value, expiration)}."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.kv = KVNamespace(self.clock, plan="unlimited")
        self.model: dict[str, tuple[str | bytes, int | None]] = {}

    def live(self) -> dict[str, tuple[str | bytes, int | None]]:
        now = self.clock.now()
        return {k: v for k, v in self.model.items() if v[1] is None or now < v[1]}

    @rule(key=KEYS, value=VALUES, ttl=st.none() | st.integers(60, 400))
    def put(self, key: str, value: str | bytes, ttl: int | None) -> None:
        self.kv.put(key, value, expiration_ttl=ttl)
        expiration = None if ttl is None else math.floor(self.clock.now()) + ttl
        self.model[key] = (value, expiration)

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        entry = self.live().get(key)
        expected = None if entry is None else as_bytes(entry[0])
        assert self.kv.get(key, "bytes") == expected
        if entry is not None and isinstance(entry[0], str):
            assert self.kv.get(key) == entry[0]

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        self.kv.delete(key)
        self.model.pop(key, None)

    @rule(prefix=st.text(alphabet=KEY_ALPHABET, max_size=2), limit=st.integers(1, 5))
    def list_pages(self, prefix: str, limit: int) -> None:
        live = self.live()
        pages = list_all(self.kv, prefix=prefix or None, limit=limit)
        keys = [key for page in pages for key in page.keys]
        assert [key.name for key in keys] == utf8_sorted(k for k in live if k.startswith(prefix))
        for key in keys:
            assert key.expiration == live[key.name][1]
            assert key.metadata is None

    @rule(seconds=st.integers(0, 200) | st.floats(0, 200))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def live_keys_match(self) -> None:
        assert self.kv.keys() == sorted(self.live())

    @invariant()
    def expirations_match(self) -> None:
        for key, (_, expiration) in self.live().items():
            assert self.kv.expiration_of(key) == expiration


# max_examples from the loaded profile (tests/conftest.py): quick by default, deep in CI.
KVModelMachine.TestCase.settings = settings(stateful_step_count=30, deadline=None, database=None)
TestKVModel = KVModelMachine.TestCase


@settings(max_examples=50, deadline=None, database=None)
@given(writes=st.lists(st.tuples(KEYS, VALUES, st.floats(1.0, 5.0)), max_size=25))
def test_free_plan_writes_spaced_at_least_a_second_apart_are_all_accepted(writes) -> None:
    clock = VirtualClock()
    kv = KVNamespace(clock, plan="free")
    model: dict[str, str | bytes] = {}
    for key, value, gap in writes:
        kv.put(key, value)
        model[key] = value
        clock.advance(gap)
    assert kv.keys() == sorted(model)
    for key, value in model.items():
        assert kv.get(key, "bytes") == as_bytes(value)
    assert kv.used_today()["write"] == len(writes)


@settings(max_examples=50, deadline=None, database=None)
@given(writes=st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=10))
def test_free_plan_same_instant_rewrite_of_any_key_is_429(writes) -> None:
    kv = KVNamespace(VirtualClock(), plan="free")
    stored: dict[str, str | bytes] = {}
    for key, value in writes:
        if key in stored:
            with pytest.raises(KVRateLimitError):
                kv.put(key, value)
        else:
            kv.put(key, value)
            stored[key] = value
    assert kv.keys() == sorted(stored)
    for key, value in stored.items():
        assert kv.get(key, "bytes") == as_bytes(value)


VALID_KEYS = (
    st.text(min_size=1, max_size=KV_MAX_KEY_BYTES // 4)
    | st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=400, max_size=512)
    | st.text(alphabet="é€😀x", min_size=120, max_size=260).filter(
        lambda key: utf8_length(key) <= KV_MAX_KEY_BYTES
    )
).filter(lambda key: key not in {".", ".."})


@settings(max_examples=100, deadline=None, database=None)
@given(key=VALID_KEYS, value=VALUES)
def test_any_valid_key_round_trips(key: str, value: str | bytes) -> None:
    assert 1 <= utf8_length(key) <= KV_MAX_KEY_BYTES
    kv = KVNamespace(VirtualClock(), plan="unlimited")
    kv.put(key, value, metadata={"n": 1})
    assert kv.get(key, "bytes") == as_bytes(value)
    assert kv.get_with_metadata(key).metadata == {"n": 1}
    assert kv.list(prefix=key).keys == [KVKey(key, None, {"n": 1})]
    kv.delete(key)
    assert kv.get(key) is None


@settings(max_examples=50, deadline=None, database=None)
@given(stem=st.text(max_size=20))
def test_any_key_over_512_bytes_is_rejected_with_its_byte_length(stem: str) -> None:
    key = stem + "x" * max(0, KV_MAX_KEY_BYTES + 1 - utf8_length(stem))
    length = len(key.encode("utf-8"))
    assert length > KV_MAX_KEY_BYTES
    kv = KVNamespace(VirtualClock(), plan="unlimited")
    with pytest.raises(KVValidationError) as excinfo:
        kv.put(key, "v")
    assert str(excinfo.value) == (
        f"KV PUT failed: 414 UTF-8 encoded length of {length} exceeds key length limit of 512."
    )


PREFIX_ALPHABET = "ab/é€😀\uffff"


@settings(max_examples=60, deadline=None, database=None)
@given(
    names=st.sets(st.text(alphabet=PREFIX_ALPHABET, min_size=1, max_size=4), max_size=25),
    prefix=st.text(alphabet=PREFIX_ALPHABET, max_size=2),
    limit=st.integers(1, 7),
)
def test_any_list_prefix_returns_the_sorted_matching_keys(
    names: set[str], prefix: str, limit: int
) -> None:
    kv = KVNamespace(VirtualClock(), plan="unlimited")
    for name in names:
        kv.put(name, "v")
    expected = utf8_sorted(name for name in names if name.startswith(prefix))
    assert listed_names(kv, prefix=prefix, limit=limit) == expected
    assert listed_names(kv, prefix=prefix) == expected


# --- numbers and strings as JavaScript writes them (metadata is measured on that text) --------


@pytest.mark.parametrize(
    ("number", "javascript"),
    [
        (60.0, "60"),
        (-231.5, "-231.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1767571200.5, "1767571200.5"),
        (1e-4, "0.0001"),
        (9.999e-5, "0.00009999"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (9999999999999998.0, "9999999999999998"),
        (1e16, "10000000000000000"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (-0.0, "0"),
    ],
)
def test_numbers_are_written_as_javascript_writes_them(number: float, javascript: str) -> None:
    assert js_number_text(number) == javascript


def test_strings_in_metadata_are_escaped_as_json_stringify_escapes_them() -> None:
    text = js_json_stringify(["é\u2028", '"\\/', "\x00\x1f", "lone \ud800", None, True, False])
    assert text == '["é\u2028","\\"\\\\/","\\u0000\\u001f","lone \\ud800",null,true,false]'
