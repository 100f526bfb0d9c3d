"""``ctx.storage``: the key-value API, its limits by backend with workerd's messages, alarms,
and a ledger row per operation attributed to the code that made it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from typing import Any

import pytest

from pytest_dualcache.clock import DEFAULT_START, VirtualClock
from pytest_dualcache.do_entries import DurableObjectLimitError
from pytest_dualcache.ledger import Ledger
from pytest_dualcache.runtime.ffi import JsDict, JsException
from pytest_dualcache.runtime.storage import (
    DurableObjectStorage,
    SqliteTooBigError,
    StorageLimitError,
    StoredObject,
)

NOW_MS = int(DEFAULT_START * 1000)


def result(call: Awaitable[Any]) -> Any:
    """What awaiting an (already settled) storage call gives, without an event loop."""
    steps = call.__await__()
    try:
        steps.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("a storage call suspended")


class Storage:
    """A storage over fresh data, with what it told the namespace about its alarm."""

    def __init__(self, backend: str = "new_classes", *, alarm_handler: bool = True) -> None:
        self.clock = VirtualClock()
        self.data = StoredObject()
        self.ledger = Ledger("LISTS", kind="do")
        self.alarms: list[int | None] = []
        self.api = DurableObjectStorage(
            self.data,
            backend=backend,
            clock=self.clock,
            ledger=self.ledger,
            has_alarm_handler=alarm_handler,
            on_alarm=self.alarms.append,
        )


@pytest.fixture
def kv() -> Storage:
    return Storage("new_classes")


@pytest.fixture
def sqlite() -> Storage:
    return Storage("new_sqlite_classes")


# --- the key-value API --------------------------------------------------------------------------


def test_put_then_get(kv):
    assert result(kv.api.put("count", 3)) is None
    assert result(kv.api.get("count")) == 3
    assert result(kv.api.get("missing")) is None


def test_values_are_copies_and_objects_carry_to_py(kv):
    value = {"tags": ["a"]}
    result(kv.api.put("profile", value))
    value["tags"].append("b")
    stored = result(kv.api.get("profile"))
    assert isinstance(stored, JsDict) and stored.to_py() == {"tags": ["a"]}
    stored["tags"].append("c")
    assert result(kv.api.get("profile")).to_py() == {"tags": ["a"]}


def test_batch_put_get_and_delete(kv):
    result(kv.api.put({"b": 2, "a": 1, "c": 3}))
    found = result(kv.api.get(["c", "a", "zzz"]))
    assert list(found.items()) == [("a", 1), ("c", 3)]
    assert result(kv.api.delete(["a", "b", "nope"])) == 2
    assert result(kv.api.delete("c")) is True
    assert result(kv.api.delete("c")) is False


def test_a_call_takes_effect_without_await(kv):
    kv.api.put("k", "v")  # as Cloudflare's examples call setAlarm: no await
    assert result(kv.api.get("k")) == "v"


def test_number_keys_are_javascript_strings(kv):
    result(kv.api.put(1, "one"))
    assert list(result(kv.api.list())) == ["1"]


def test_put_none_is_an_undefined_value(kv):
    with pytest.raises(TypeError, match=r"put\(\) called with undefined value\.$"):
        result(kv.api.put("k", None))


def test_list_options_as_keywords_or_one_dict(kv):
    result(kv.api.put({key: key.upper() for key in ["a", "b1", "b2", "b3", "c"]}))
    assert list(result(kv.api.list(prefix="b"))) == ["b1", "b2", "b3"]
    assert list(result(kv.api.list({"prefix": "b", "reverse": True, "limit": 2}))) == ["b3", "b2"]
    assert list(result(kv.api.list(start="b2", end="c"))) == ["b2", "b3"]
    assert list(result(kv.api.list(startAfter="b2"))) == ["b3", "c"]
    assert result(kv.api.list(limit=1)).to_py() == {"a": "A"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit": 0}, r"List limit must be positive\.$"),
        ({"start": "a", "startAfter": "a"}, "both start and startAfter"),
        ({"colour": 1}, "unknown options"),
    ],
)
def test_list_refusals(kv, options, message):
    with pytest.raises(TypeError, match=message):
        result(kv.api.list(options))


def test_delete_all_clears_values_and_the_alarm(kv):
    result(kv.api.put("k", 1))
    result(kv.api.setAlarm(NOW_MS + 1000))
    result(kv.api.deleteAll())
    assert kv.data.values == {} and kv.data.alarm_ms is None
    assert kv.alarms == [NOW_MS + 1000, None]


def test_sync_and_sql(kv):
    assert result(kv.api.sync()) is None
    with pytest.raises(AttributeError, match=r"ctx\.storage\.sql is not emulated"):
        _ = kv.api.sql


# --- limits by backend ---------------------------------------------------------------------------


def test_key_value_backed_key_limit_is_2048_bytes(kv):
    result(kv.api.put("k" * 2048, 1))
    with pytest.raises(StorageLimitError) as refused:
        result(kv.api.put("k" * 2049, 1))
    assert str(refused.value) == (
        "RangeError: Keys cannot be larger than 2048 bytes. A key of size 2049 was provided."
    )
    assert isinstance(refused.value, DurableObjectLimitError)
    assert list(kv.data.values) == ["k" * 2048]
    with pytest.raises(StorageLimitError, match="Keys cannot be larger"):
        result(kv.api.get("é" * 1025))


def test_key_value_backed_value_limit_is_workerds_serialized_size(kv):
    result(kv.api.put("fits", "a" * 131_100))  # 131,106 serialized: the limit plus 34
    with pytest.raises(StorageLimitError) as refused:
        result(kv.api.put("big", "a" * 131_101))
    assert refused.value.message == (
        "Values cannot be larger than 131072 bytes. A value of size 131107 was provided."
    )
    assert "big" not in kv.data.values


@pytest.mark.parametrize("backend", ["new_classes", "new_sqlite_classes"])
def test_batches_hold_at_most_128_keys(backend):
    storage = Storage(backend)
    message = r"^RangeError: Maximum number of key value pairs is 128\. 129 pairs were provided\.$"
    keys = [f"k{i}" for i in range(129)]
    for call in (
        lambda: storage.api.put(dict.fromkeys(keys, 1)),
        lambda: storage.api.get(keys),
        lambda: storage.api.delete(keys),
    ):
        with pytest.raises(StorageLimitError, match=message):
            result(call())
    assert storage.data.values == {}
    result(storage.api.put(dict.fromkeys(keys[:128], 1)))
    assert len(storage.data.values) == 128


def test_a_refused_batch_writes_nothing(kv):
    with pytest.raises(StorageLimitError):
        result(kv.api.put({"ok": 1, "k" * 3000: 2}))
    assert kv.data.values == {}


def test_sqlite_backed_limits_key_and_value_together(sqlite):
    result(sqlite.api.put("k" * 5000, "v" * 200_000))  # past the key-value backend's limits
    value = "v" * 1_999_993  # serialized: 6 bytes of tag and length, then the characters
    result(sqlite.api.put("k", value))  # 1 + 1,999,999 bytes: exactly 2 MB
    with pytest.raises(SqliteTooBigError) as refused:
        result(sqlite.api.put("kk", value))
    assert str(refused.value) == "Error: string or blob too big: SQLITE_TOOBIG"
    assert isinstance(refused.value, JsException)
    assert "kk" not in sqlite.data.values


# --- alarms ------------------------------------------------------------------------------------


def test_set_get_and_delete_the_alarm(kv):
    assert result(kv.api.getAlarm()) is None
    result(kv.api.setAlarm(NOW_MS + 5000))
    assert result(kv.api.getAlarm()) == NOW_MS + 5000
    result(kv.api.setAlarm(dt.datetime(2026, 1, 5, 0, 1, tzinfo=dt.UTC)))
    assert result(kv.api.getAlarm()) == NOW_MS + 60_000
    result(kv.api.deleteAlarm())
    assert result(kv.api.getAlarm()) is None
    assert kv.alarms == [NOW_MS + 5000, NOW_MS + 60_000, None]


def test_an_alarm_in_the_past_is_set_for_now(kv):
    result(kv.api.setAlarm(1000))
    assert result(kv.api.getAlarm()) == NOW_MS


@pytest.mark.parametrize(
    ("time", "message"),
    [(0, r"alarm time <= 0"), ("soon", "epoch milliseconds or a datetime")],
)
def test_set_alarm_refusals(kv, time, message):
    with pytest.raises(TypeError, match=message):
        result(kv.api.setAlarm(time))


def test_set_alarm_needs_an_alarm_handler():
    storage = Storage(alarm_handler=False)
    with pytest.raises(TypeError, match=r"must have an alarm\(\) handler in order to call"):
        result(storage.api.setAlarm(NOW_MS + 1))


# --- the ledger -----------------------------------------------------------------------------------


def test_every_operation_is_a_row_attributed_to_its_caller(kv):
    result(kv.api.put("count", 7))
    result(kv.api.get(["count", "other"]))
    result(kv.api.list(prefix="c"))
    kv.api.setAlarm(NOW_MS + 1000)
    rows = kv.ledger.records
    assert [(r.op, r.key, r.bytes, r.ok) for r in rows] == [
        ("put", "count", 4, True),
        ("get", "count", 4, True),
        ("get", "other", 0, True),
        ("list", "c", 4, True),
        ("setAlarm", "2026-01-05T00:00:01Z", 0, True),
    ]
    assert {r.store_kind for r in rows} == {"do"}
    assert {(r.call_site.filename, r.call_site.function) for r in rows} == {
        (__file__, "test_every_operation_is_a_row_attributed_to_its_caller")
    }


def test_a_refused_operation_is_one_failed_row(kv):
    with pytest.raises(StorageLimitError):
        result(kv.api.put({f"k{i}": i for i in range(200)}))
    (row,) = kv.ledger.records
    assert (row.op, row.key, row.ok) == ("put", "<200 keys>", False)
    assert row.error_type == "StorageLimitError"
    assert row.call_site.function == "test_a_refused_operation_is_one_failed_row"
