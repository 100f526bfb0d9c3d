"""Structured clone of RPC arguments, results and stored values, and V8's size of a value."""

from __future__ import annotations

import datetime as dt

import pytest

from pytest_dualcache.runtime.clone import (
    clone_for_rpc,
    clone_for_storage,
    js_date,
    v8_serialized_size,
)
from pytest_dualcache.runtime.ffi import DataCloneError, JsRangeError
from pytest_dualcache.runtime.http import Response


class CustomType:
    def __init__(self) -> None:
        self.x = 42


def my_function() -> None:
    pass


@pytest.mark.parametrize(
    "value",
    ["text", 42, 1.25, True, False, None, [1, "a", None], {"key": 42}, {1: "one"}, {1, 2}],
)
def test_rpc_round_trips_python_values(value):
    copy = clone_for_rpc(value)
    assert copy == value and type(copy) is type(value)


def test_a_clone_is_a_copy_that_keeps_shared_and_cyclic_structure():
    shared = {"n": 1}
    value: list = [shared, shared]
    value.append(value)
    copy = clone_for_rpc(value)
    assert copy[0] is copy[1] and copy[0] is not shared and copy[2] is copy
    copy[0]["n"] = 2
    assert shared == {"n": 1}


def test_bytes_cross_rpc_as_a_memoryview_and_are_stored_as_bytes():
    assert isinstance(clone_for_rpc(b"binary"), memoryview)
    assert clone_for_rpc(memoryview(b"abc")) == memoryview(b"abc")
    assert clone_for_storage(b"binary") == b"binary"
    assert clone_for_storage(bytearray(b"ab")) == b"ab"


def test_a_datetime_comes_back_naive_in_utc_to_the_millisecond():
    naive = dt.datetime(2026, 1, 5, 12, 0, 0, 123456)
    assert clone_for_rpc(naive) == dt.datetime(2026, 1, 5, 12, 0, 0, 123000)
    aware = dt.datetime(2026, 1, 5, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert clone_for_storage(aware) == dt.datetime(2026, 1, 5, 12, 0)
    assert js_date(dt.datetime(1969, 12, 31, 23, 59, 59, 999999)).microsecond == 0


def test_exceptions_and_responses_cross_rpc():
    error = clone_for_rpc(ValueError("boom"))
    assert type(error) is Exception and str(error) == "Error: boom"
    response = Response("body")
    copy = clone_for_rpc(response)
    assert copy is not response and copy.content == b"body"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ((1, 2, 3), "<class 'tuple'>"),
        (bytearray(b"ab"), "<class 'bytearray'>"),
        (lambda x: x, "<class 'function'>"),
        (my_function, "<class 'function'>"),
        ([(1, 2)], "<class 'tuple'>"),
        ({"test": (1, 2)}, "<class 'tuple'>"),
    ],
)
def test_the_sdk_refuses_tuples_bytearrays_and_functions_over_rpc(value, shown):
    with pytest.raises(TypeError, match=rf"^{shown} cannot be sent over RPC\.$"):
        clone_for_rpc(value)


def test_awaitables_are_refused_over_rpc():
    async def work() -> None:
        pass

    coroutine = work()
    with pytest.raises(TypeError, match="Awaitable <class 'coroutine'> cannot be sent over RPC"):
        clone_for_rpc(coroutine)
    coroutine.close()


@pytest.mark.parametrize(
    ("value", "name"),
    [(CustomType(), "CustomType"), (complex(1, 2), "complex"), (range(3), "range")],
)
def test_other_objects_are_a_data_clone_error_naming_their_type(value, name):
    for clone in (clone_for_rpc, clone_for_storage):
        with pytest.raises(DataCloneError) as refused:
            clone(value)
        assert str(refused.value) == (
            f'DataCloneError: Could not serialize object of type "{name}". '
            "This type does not support serialization."
        )


def test_storage_takes_what_to_js_converts():
    assert clone_for_storage((1, (2, 3))) == [1, [2, 3]]
    with pytest.raises(DataCloneError, match='"function"'):
        clone_for_storage({"f": my_function})
    with pytest.raises(DataCloneError, match='"Response"'):
        clone_for_storage(Response("x"))
    with pytest.raises(DataCloneError, match='"tuple"'):
        clone_for_storage({(1, 2): "tuple key"})


def test_deep_nesting_is_javascripts_stack_overflow():
    value: list = []
    for _ in range(5000):
        value = [value]
    with pytest.raises(JsRangeError, match="Maximum call stack size exceeded"):
        clone_for_storage(value)


# Each size was measured with Node 20's ``v8.serialize`` (V8 11.3), which writes the same
# format as workerd's storage (the header is the same 2 bytes); workerd's V8 keeps 31-bit
# small integers (pointer compression), so 2**30 is a double there.
@pytest.mark.parametrize(
    ("value", "size"),
    [
        (2, 4),
        (-5, 4),
        (2**30 - 1, 8),
        (2**40, 11),
        (1.5, 11),
        (-0.0, 11),
        (2**64, 20),
        (-(2**64), 20),
        ("hello", 9),
        ("héllo", 9),
        ("日本語", 10),
        ("😀", 8),
        ("a" * 131072, 131078),
        ({"k": "日本語"}, 16),
        ([None, "日本"], 15),  # two-byte string data at an odd offset: one byte of kPadding
        (["a", "日本語"], 19),
        ({"ab": "日本"}, 16),
        (["日本", "ab", "日本語"], 25),
        ([1, "a", None], 13),
        ([None, 1], 10),
        ({"a": 1, "1": 2, "b": [True, False]}, 24),
        ({"x": {"y": {"z": "w"}}}, 23),
        ({1: "one", 2: "two"}, 19),
        ({1, 2, 3}, 11),
        (dt.datetime(1970, 1, 1), 11),
        (b"\x01\x02\x03", 12),
    ],
)
def test_v8_serialized_size_matches_v8(value, size):
    assert v8_serialized_size(value) == size


def test_a_repeated_container_is_a_back_reference():
    inner = {"a": 1}
    assert v8_serialized_size([inner, inner]) == v8_serialized_size([inner]) + 2
