"""DurableObjectCache on both engines: TTLs, limits, isolation, faults, throughput, ledger."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from pytest_dualcache.clock import DEFAULT_START, VirtualClock
from pytest_dualcache.durable import (
    DOEngine,
    DOStats,
    DurableObjectCache,
    DurableObjectError,
    DurableObjectLimitError,
    MemoryEngine,
    RedisEngine,
)
from pytest_dualcache.ledger import Ledger
from pytest_dualcache.limits import (
    DO_MAX_KEY_BYTES,
    DO_MAX_VALUE_BYTES,
    DO_MESSAGES,
    DO_SOFT_REQUESTS_PER_S,
)

ENGINES = ["memory", "redis"]


#: A real Redis server for the redis engine (CI sets it); fakeredis without it.
REDIS_URL = os.environ.get("DUALCACHE_REDIS_URL")


def make_engine(kind: str) -> DOEngine:
    if kind == "memory":
        return MemoryEngine()
    return RedisEngine.on_server(REDIS_URL) if REDIS_URL else RedisEngine()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(params=ENGINES)
def cache(request: pytest.FixtureRequest, clock: VirtualClock) -> Iterator[DurableObjectCache]:
    cache = DurableObjectCache(clock, engine=make_engine(request.param))
    yield cache
    cache.clear()  # a real Redis server keeps what a test leaves


def key_too_long(length: int) -> str:
    return DO_MESSAGES["key_length"].format(limit=DO_MAX_KEY_BYTES, length=length)


def value_too_long(length: int) -> str:
    return DO_MESSAGES["value_length"].format(limit=DO_MAX_VALUE_BYTES, length=length)


# --- TTL --------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [1, 10, 0.1, 2.5, 86_400])
def test_entry_is_readable_until_exactly_ttl(
    cache: DurableObjectCache, clock: VirtualClock, ttl: float
) -> None:
    cache.set("k", "v", ttl=ttl)
    clock.set(DEFAULT_START + ttl - 1e-3)
    assert cache.get("k") == "v"
    clock.set(DEFAULT_START + ttl)
    assert cache.get("k") is None
    assert cache.list() == []


def test_overwrite_restarts_ttl(cache: DurableObjectCache, clock: VirtualClock) -> None:
    cache.set("k", "old", ttl=10)
    clock.advance(8)
    cache.set("k", "new", ttl=10)
    clock.advance(8)
    assert cache.get("k") == "new"
    clock.advance(2)
    assert cache.get("k") is None


def test_shorter_overwrite_shortens_ttl(cache: DurableObjectCache, clock: VirtualClock) -> None:
    cache.set("k", 1, ttl=100)
    cache.set("k", 2, ttl=1)
    clock.advance(1)
    assert cache.get("k") is None


@pytest.mark.parametrize(
    "ttl", [0, -1, 0.0, -0.5, True, False, math.nan, math.inf, -math.inf, "60", None, 10**400]
)
def test_bad_ttl_is_refused_and_named(cache: DurableObjectCache, ttl: Any) -> None:
    cache.set("k", "before", ttl=60)
    with pytest.raises(DurableObjectLimitError, match="ttl") as info:
        cache.set("k", "after", ttl=ttl)
    assert isinstance(info.value, ValueError)
    assert repr(ttl)[:20] in str(info.value)
    assert cache.get("k") == "before"


def test_int_and_float_ttls_are_accepted(cache: DurableObjectCache, clock: VirtualClock) -> None:
    cache.set("int", 1, ttl=3)
    cache.set("float", 1, ttl=3.0)
    cache.set("tiny", 1, ttl=1e-3)
    cache.set("huge", 1, ttl=1e300)
    clock.advance(2)
    assert cache.list() == ["float", "huge", "int"]


# --- values -----------------------------------------------------------------------------

JSON_VALUES = [
    None,
    True,
    False,
    0,
    -7,
    10**40,
    1.5,
    -0.0,
    1e-320,
    1.7976931348623157e308,
    "",
    "plain",
    'quote " backslash \\ newline \n',
    "é 😀 \u2028",
    "lone \ud800 surrogate",
    [],
    {},
    [1, "a", None, [True, {"x": 2.5}]],
    {"nested": {"list": [1, 2, 3], "empty": {}, "é": "😀"}, "n": None},
]


@pytest.mark.parametrize("value", JSON_VALUES, ids=repr)
def test_json_values_round_trip_with_their_types(cache: DurableObjectCache, value: object) -> None:
    cache.set("k", value, ttl=60)
    got = cache.get("k")
    assert repr(got) == repr(value)  # repr tells 1 / 1.0 / True and 0.0 / -0.0 apart


class Color:
    pass


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ((1, 2), "tuple"),
        ([1, (2, 3)], r"value\[1\] is a tuple"),
        ({"a": ("b",)}, r"value\['a'\] is a tuple"),
        ({1, 2}, "set"),
        (frozenset({1}), "frozenset"),
        (b"bytes", "bytes"),
        (bytearray(b"x"), "bytearray"),
        (Color(), "Color"),
        (1 + 2j, "complex"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        ([1.0, math.nan], r"value\[1\] is nan"),
        ({"a": {"b": math.inf}}, r"value\['a'\]\['b'\] is inf"),
        ({1: "a"}, "int key 1"),
        ({"ok": {None: 1}}, "NoneType key None"),
        ({True: 1}, "bool key True"),
        ({("a",): 1}, "tuple key"),
        ({"a": 1, 1: "b"}, "int key 1"),
    ],
    # Stable ids (no object addresses), so pytest-xdist workers collect the same tests.
    ids=lambda item: "" if isinstance(item, str) else type(item).__name__,
)
def test_non_json_values_are_refused_and_named(
    cache: DurableObjectCache, value: object, problem: str
) -> None:
    cache.set("k", {"previous": [1]}, ttl=60)
    with pytest.raises(DurableObjectLimitError, match=problem) as info:
        cache.set("k", value, ttl=60)
    assert isinstance(info.value, ValueError)
    assert cache.get("k") == {"previous": [1]}
    with pytest.raises(DurableObjectLimitError):
        cache.set("fresh", value, ttl=60)
    assert cache.get("fresh") is None
    assert cache.list() == ["k"]


def test_tuple_message_says_why(cache: DurableObjectCache) -> None:
    with pytest.raises(DurableObjectLimitError, match="come back as lists"):
        cache.set("k", (1, 2), ttl=60)


def test_circular_value_is_refused(cache: DurableObjectCache) -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(DurableObjectLimitError, match="cycles"):
        cache.set("k", loop, ttl=60)


def test_subclasses_of_json_types_come_back_as_plain_types(cache: DurableObjectCache) -> None:
    class Label(str):
        pass

    class Count(int):
        pass

    cache.set("s", Label("x"), ttl=60)
    cache.set("l", [Label("x"), Count(3)], ttl=60)
    assert type(cache.get("s")) is str
    assert [type(item) for item in cache.get("l")] == [str, int]  # type: ignore[union-attr]


def test_mutating_what_was_set_or_got_changes_nothing(cache: DurableObjectCache) -> None:
    value = {"list": [1, 2], "inner": {"a": 1}}
    cache.set("k", value, ttl=60)
    value["list"].append(3)  # type: ignore[attr-defined]
    value["new"] = True
    got = cache.get("k")
    assert got == {"list": [1, 2], "inner": {"a": 1}}
    got["inner"]["a"] = 99  # type: ignore[index]
    got["list"].clear()  # type: ignore[index]
    again = cache.get("k")
    assert again == {"list": [1, 2], "inner": {"a": 1}}
    assert again is not got


# --- size limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "nbytes"),
    [
        ("a" * 2048, 2048),
        ("é" * 1024, 2048),
        ("€" * 682 + "ab", 2048),
        ("😀" * 512, 2048),
        ("a" * 2049, 2049),
        ("é" * 1024 + "a", 2049),
        ("€" * 683, 2049),
        ("😀" * 512 + "a", 2049),
    ],
    ids=lambda v: f"{v[:2]}*{len(v)}" if isinstance(v, str) else str(v),
)
def test_key_limit_is_in_utf8_bytes(cache: DurableObjectCache, key: str, nbytes: int) -> None:
    assert len(key.encode()) == nbytes
    assert DO_MAX_KEY_BYTES == 2048
    if nbytes <= DO_MAX_KEY_BYTES:
        cache.set(key, "v", ttl=60)
        assert cache.get(key) == "v"
        assert cache.list() == [key]
        assert cache.delete(key) is True
        return
    for call in (
        lambda: cache.set(key, "v", ttl=60),
        lambda: cache.get(key),
        lambda: cache.delete(key),
    ):
        with pytest.raises(DurableObjectLimitError) as info:
            call()
        assert str(info.value) == key_too_long(nbytes)
    assert cache.list() == []


@pytest.mark.parametrize("key", ["", 1, None, b"k", ("k",)], ids=repr)
def test_keys_must_be_non_empty_str(cache: DurableObjectCache, key: Any) -> None:
    for call in (
        lambda: cache.set(key, "v", ttl=60),
        lambda: cache.get(key),
        lambda: cache.delete(key),
    ):
        with pytest.raises(DurableObjectLimitError, match="Keys must"):
            call()


def test_list_prefix_must_be_str(cache: DurableObjectCache) -> None:
    with pytest.raises(DurableObjectLimitError, match="prefix"):
        cache.list(1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "nbytes"),
    [
        ("a" * (DO_MAX_VALUE_BYTES - 2), DO_MAX_VALUE_BYTES),
        ("a" * (DO_MAX_VALUE_BYTES - 1), DO_MAX_VALUE_BYTES + 1),
        ("é" * ((DO_MAX_VALUE_BYTES - 2) // 2), DO_MAX_VALUE_BYTES),
        ("é" * ((DO_MAX_VALUE_BYTES - 2) // 2) + "a", DO_MAX_VALUE_BYTES + 1),
        ('"' * ((DO_MAX_VALUE_BYTES - 2) // 2), DO_MAX_VALUE_BYTES),  # each escapes to \"
        ('"' * ((DO_MAX_VALUE_BYTES - 2) // 2) + "a", DO_MAX_VALUE_BYTES + 1),
        ({"k": "a" * (DO_MAX_VALUE_BYTES - 8)}, DO_MAX_VALUE_BYTES),  # {"k":"…"}
        ({"k": "a" * (DO_MAX_VALUE_BYTES - 7)}, DO_MAX_VALUE_BYTES + 1),
        (["é" * ((DO_MAX_VALUE_BYTES - 4) // 2)], DO_MAX_VALUE_BYTES),  # ["…"]
        (["é" * ((DO_MAX_VALUE_BYTES - 4) // 2), 1], DO_MAX_VALUE_BYTES + 2),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, int) else str(v),
)
def test_value_limit_is_the_json_text_in_utf8_bytes(
    cache: DurableObjectCache, value: object, nbytes: int
) -> None:
    assert DO_MAX_VALUE_BYTES == 131_072
    if nbytes <= DO_MAX_VALUE_BYTES:
        cache.set("k", value, ttl=60)
        assert cache.get("k") == value
        assert cache.ledger.records[-1].bytes == nbytes
        return
    cache.set("k", "previous", ttl=60)
    with pytest.raises(DurableObjectLimitError) as info:
        cache.set("k", value, ttl=60)
    assert str(info.value) == value_too_long(nbytes)
    assert cache.get("k") == "previous"


# --- delete, list, stats, clear ---------------------------------------------------------


def test_delete_says_whether_a_live_entry_went(
    cache: DurableObjectCache, clock: VirtualClock
) -> None:
    assert cache.delete("missing") is False
    cache.set("k", "v", ttl=5)
    assert cache.delete("k") is True
    assert cache.delete("k") is False
    assert cache.get("k") is None
    cache.set("k", "v", ttl=5)
    clock.advance(5)
    assert cache.delete("k") is False
    assert cache.stats().evictions == 1


def test_list_is_sorted_by_code_point_and_filters_by_prefix(
    cache: DurableObjectCache, clock: VirtualClock
) -> None:
    keys = ["b", "a", "ab", "aa", "é", "z", "😀", "\uffff", "A", "a b", "\ud800"]
    for key in keys:
        cache.set(key, key, ttl=10)
    cache.set("ax", "short", ttl=1)
    clock.advance(1)
    listed = cache.list()
    assert listed == sorted(keys)
    assert listed == sorted(keys, key=lambda k: k.encode("utf-8", "surrogatepass"))
    assert cache.list("a") == ["a", "a b", "aa", "ab"]
    assert cache.list("") == listed
    assert cache.list("é") == ["é"]
    assert cache.list("nothing") == []


def test_list_prefix_with_glob_characters_is_literal(cache: DurableObjectCache) -> None:
    for key in ["x*1", "x?2", "x[3]", "xa", "x\\y", "x]"]:
        cache.set(key, 1, ttl=60)
    assert cache.list("x*") == ["x*1"]
    assert cache.list("x?") == ["x?2"]
    assert cache.list("x[") == ["x[3]"]
    assert cache.list("x\\") == ["x\\y"]
    assert cache.list("x]") == ["x]"]
    assert len(cache.list("x")) == 6


def test_stats_count_hits_misses_size_and_evictions(
    cache: DurableObjectCache, clock: VirtualClock
) -> None:
    assert cache.stats() == DOStats(hits=0, misses=0, hit_rate=0.0, size=0, evictions=0)
    cache.set("a", 1, ttl=10)
    cache.set("b", 2, ttl=1)
    cache.set("c", 3, ttl=1)
    cache.set("d", 4, ttl=1)
    cache.set("e", 5, ttl=1)
    assert cache.get("a") == 1
    assert cache.get("zz") is None
    assert cache.stats() == DOStats(hits=1, misses=1, hit_rate=0.5, size=5, evictions=0)
    clock.advance(1)
    assert cache.get("b") is None  # expired: a miss and an eviction
    cache.set("c", 33, ttl=10)  # set over an expired entry evicts it
    assert cache.delete("d") is False  # delete of an expired entry evicts it
    stats = cache.stats()  # finds "e" expired and evicts it
    assert stats == DOStats(hits=1, misses=2, hit_rate=1 / 3, size=2, evictions=4)
    assert cache.stats().evictions == 4  # counted once per entry
    assert cache.get("b") is None
    assert cache.stats().evictions == 4


def test_list_evicts_only_under_its_prefix(cache: DurableObjectCache, clock: VirtualClock) -> None:
    cache.set("a1", 1, ttl=1)
    cache.set("b1", 1, ttl=1)
    clock.advance(1)
    assert cache.list("a") == []
    assert cache.stats().evictions == 2  # "a1" by list, "b1" by stats


def test_stats_is_frozen(cache: DurableObjectCache) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        cache.stats().hits = 3  # type: ignore[misc]


def test_clear_drops_entries_and_counters(cache: DurableObjectCache) -> None:
    cache.set("a", 1, ttl=10)
    cache.get("a")
    cache.get("b")
    cache.clear()
    assert cache.get("a") is None
    assert cache.list() == []
    assert cache.stats() == DOStats(hits=0, misses=1, hit_rate=0.0, size=0, evictions=0)


# --- fault injection --------------------------------------------------------------------


def test_fail_times_then_recovers_by_itself(cache: DurableObjectCache) -> None:
    cache.set("k", "v", ttl=60)
    cache.fail(times=2)
    with pytest.raises(DurableObjectError):
        cache.set("k", "changed", ttl=60)
    with pytest.raises(DurableObjectError):
        cache.get("k")
    assert cache.get("k") == "v"
    cache.set("k", "w", ttl=60)
    assert cache.get("k") == "w"


def test_fail_without_times_lasts_until_recover(cache: DurableObjectCache) -> None:
    cache.fail()
    for _ in range(5):
        with pytest.raises(DurableObjectError):
            cache.list()
    cache.recover()
    assert cache.list() == []


def test_fail_ops_only_fails_those_operations(cache: DurableObjectCache) -> None:
    cache.set("k", "v", ttl=60)
    cache.fail(ops={"set"})
    with pytest.raises(DurableObjectError):
        cache.set("k", "changed", ttl=60)
    assert cache.get("k") == "v"
    assert cache.list() == ["k"]
    assert cache.delete("k") is True
    cache.recover()
    cache.fail(times=1, ops="delete")
    cache.set("k", "v", ttl=60)
    with pytest.raises(DurableObjectError):
        cache.delete("k")
    assert cache.delete("k") is True


def test_fail_times_counts_only_matching_operations(cache: DurableObjectCache) -> None:
    cache.fail(times=1, ops=["get"])
    cache.set("k", "v", ttl=60)
    cache.list()
    with pytest.raises(DurableObjectError):
        cache.get("k")
    assert cache.get("k") == "v"


def test_outage_fails_everything_inside_the_block(cache: DurableObjectCache) -> None:
    cache.set("k", "v", ttl=60)
    with cache.outage():
        for call in (
            lambda: cache.get("k"),
            lambda: cache.set("k", "x", ttl=60),
            lambda: cache.delete("k"),
            lambda: cache.list(),
        ):
            with pytest.raises(DurableObjectError) as info:
                call()
            assert info.value.overloaded
        assert cache.stats().size == 1  # stats never fails
    assert cache.get("k") == "v"


def test_outage_restores_earlier_failure_and_survives_exceptions(
    cache: DurableObjectCache,
) -> None:
    cache.fail(ops={"set"})
    with pytest.raises(KeyError), cache.outage(ops={"get"}, error="timeout"):
        with pytest.raises(DurableObjectError, match="timeout"):
            cache.get("k")
        raise KeyError("boom")
    assert cache.get("k") is None
    with pytest.raises(DurableObjectError):
        cache.set("k", 1, ttl=1)
    cache.recover()
    cache.set("k", 1, ttl=1)


def test_injected_errors_carry_workerd_attributes(cache: DurableObjectCache) -> None:
    cache.fail(times=1)
    with pytest.raises(DurableObjectError) as overloaded:
        cache.get("k")
    assert str(overloaded.value) == DO_MESSAGES["overloaded"]
    assert overloaded.value.overloaded is True
    assert overloaded.value.retryable is True
    assert not isinstance(overloaded.value, DurableObjectLimitError)

    cache.fail(times=1, error="timeout")
    with pytest.raises(DurableObjectError) as timeout:
        cache.get("k")
    assert str(timeout.value) == DO_MESSAGES["timeout"]
    assert timeout.value.overloaded is False
    assert timeout.value.retryable is True

    custom = ConnectionResetError("socket closed")
    cache.fail(times=1, error=custom)
    with pytest.raises(ConnectionResetError) as raised:
        cache.get("k")
    assert raised.value is custom


def test_limit_errors_are_not_retryable() -> None:
    error = DurableObjectLimitError("bad")
    assert isinstance(error, DurableObjectError)
    assert isinstance(error, ValueError)
    assert error.overloaded is False
    assert error.retryable is False


def test_caller_mistakes_win_over_injected_failure(cache: DurableObjectCache) -> None:
    with cache.outage():
        with pytest.raises(DurableObjectLimitError):
            cache.set("k", {1, 2}, ttl=60)
        with pytest.raises(DurableObjectLimitError):
            cache.get("")
        with pytest.raises(DurableObjectLimitError):
            cache.set("k", 1, ttl=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"times": 0}, "times"),
        ({"times": -1}, "times"),
        ({"times": True}, "times"),
        ({"times": 1.5}, "times"),
        ({"error": "meltdown"}, "meltdown"),
        ({"ops": {"flush"}}, "flush"),
        ({"ops": set()}, "ops"),
        ({"ops": {"stats"}}, "stats"),
    ],
)
def test_bad_fail_arguments_are_refused(
    cache: DurableObjectCache, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        cache.fail(**kwargs)
    assert cache.list() == []  # nothing was armed


# --- throughput -------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_throughput_limit_per_virtual_second(clock: VirtualClock, engine: str) -> None:
    limited = DurableObjectCache(clock, engine=make_engine(engine), max_requests_per_s=3)
    limited.set("a", 1, ttl=60)
    limited.get("a")
    limited.list()
    with pytest.raises(DurableObjectError) as info:
        limited.get("a")
    assert info.value.overloaded and info.value.retryable
    assert str(info.value) == DO_MESSAGES["overloaded"]
    clock.set(DEFAULT_START + 0.999)
    with pytest.raises(DurableObjectError):
        limited.delete("a")  # still the same second; refusals do not count
    clock.set(DEFAULT_START + 1)
    assert limited.get("a") == 1
    assert limited.stats().size == 1  # stats is not a request
    assert limited.delete("a") is True
    assert limited.get("a") is None
    with pytest.raises(DurableObjectError):
        limited.get("a")


def test_soft_limit_figure_is_accepted_and_default_is_unlimited(clock: VirtualClock) -> None:
    soft = DurableObjectCache(clock, max_requests_per_s=DO_SOFT_REQUESTS_PER_S)
    free = DurableObjectCache(clock)
    for index in range(DO_SOFT_REQUESTS_PER_S):
        soft.set(f"k{index}", index, ttl=60)
        free.set(f"k{index}", index, ttl=60)
    with pytest.raises(DurableObjectError):
        soft.get("k0")
    for _ in range(DO_SOFT_REQUESTS_PER_S):
        assert free.get("k0") == 0


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "1000"])
def test_bad_throughput_limit_is_refused(clock: VirtualClock, bad: Any) -> None:
    with pytest.raises(ValueError, match="max_requests_per_s"):
        DurableObjectCache(clock, max_requests_per_s=bad)


# --- ledger -----------------------------------------------------------------------------


def test_ledger_records_every_operation_with_its_caller(
    cache: DurableObjectCache, clock: VirtualClock
) -> None:
    cache.set("k", "hé", ttl=60)
    cache.get("k")
    cache.get("missing")
    cache.list("k")
    cache.list()
    cache.delete("k")
    with pytest.raises(DurableObjectLimitError):
        cache.set("k", (1,), ttl=60)
    cache.fail(times=1, ops={"get"})
    with pytest.raises(DurableObjectError):
        cache.get("k")
    clock.advance(1)
    cache.stats()
    rows = [(r.op, r.key, r.bytes, r.ok) for r in cache.ledger]
    assert rows == [
        ("set", "k", 5, True),  # "hé" in JSON is 5 UTF-8 bytes
        ("get", "k", 5, True),
        ("get", "missing", 0, True),
        ("list", "k", 0, True),
        ("list", "", 0, True),
        ("delete", "k", 0, True),
        ("set", "k", 0, False),
        ("get", "k", 0, False),
    ]
    records = cache.ledger.records
    assert [r.error for r in records[:6]] == [None] * 6
    assert "tuple" in (records[6].error or "")
    assert records[7].error == DO_MESSAGES["overloaded"]
    assert {r.at for r in records} == {DEFAULT_START}
    assert {r.store for r in records} == {"CACHE_DO"}
    assert {Path(r.call_site.filename) for r in records} == {Path(__file__)}
    assert {r.call_site.function for r in records} == {
        "test_ledger_records_every_operation_with_its_caller"
    }


def test_ledger_records_refused_keys_and_throughput(clock: VirtualClock) -> None:
    ledger = Ledger("SESSIONS", kind="do")
    cache = DurableObjectCache(clock, name="SESSIONS", ledger=ledger, max_requests_per_s=1)
    assert cache.ledger is ledger
    with pytest.raises(DurableObjectLimitError):
        cache.get(7)  # type: ignore[arg-type]
    cache.get("a")
    with pytest.raises(DurableObjectError):
        cache.get("b")
    assert [(r.op, r.key, r.ok, r.error) for r in ledger] == [
        ("get", "7", False, "Keys must be str, got int 7"),
        ("get", "a", True, None),
        ("get", "b", False, DO_MESSAGES["overloaded"]),
    ]


# --- engines ----------------------------------------------------------------------------


def test_importing_durable_does_not_import_redis() -> None:
    code = (
        "import sys, pytest_dualcache.durable\n"
        "assert 'redis' not in sys.modules and 'fakeredis' not in sys.modules, 'imported'\n"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1]
    )


def test_redis_engines_are_isolated_by_prefix(clock: VirtualClock) -> None:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    client.set("unrelated", "keep")
    one = DurableObjectCache(clock, engine=RedisEngine(client, prefix="one:"))
    two = DurableObjectCache(clock, engine=RedisEngine(client, prefix="two*:"))
    one.set("k", 1, ttl=60)
    two.set("k", 2, ttl=60)
    assert (one.get("k"), two.get("k")) == (1, 2)
    # Expiry is ours, on the virtual clock; redis only holds a day-long cleanup TTL.
    assert client.ttl("one:k") == 86_400
    two.clear()
    assert one.get("k") == 1
    assert two.list() == []
    assert client.get("unrelated") == b"keep"
    assert sorted(client.keys()) == [b"one:k", b"unrelated"]


def test_redis_engine_keeps_floats_and_expiry_exact(clock: VirtualClock) -> None:
    engine = RedisEngine()
    cache = DurableObjectCache(clock, engine=engine)
    cache.set("k", 0.1 + 0.2, ttl=1 / 3)
    assert cache.get("k") == 0.1 + 0.2
    entry = engine.get("k")
    assert entry is not None
    assert entry[2] == DEFAULT_START + 1 / 3


@pytest.mark.parametrize("engine", ENGINES)
def test_engines_are_dumb_storage(engine: str) -> None:
    store = make_engine(engine)
    entry = ("v", False, 5.0, 3)
    assert store.get("k") is None
    assert store.set("k", entry) is None
    assert store.set("k", ("[1]", True, 6.0, 3)) == entry
    assert sorted(store.items()) == [("k", 6.0)]
    assert store.delete("k") == ("[1]", True, 6.0, 3)
    assert store.delete("k") is None
    store.set("k", entry)
    store.clear()
    assert list(store.items()) == []


# --- state machine ----------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
KEYS = st.sampled_from(["a", "ab", "b", "é", "😀"])


class DurableCacheMachine(RuleBasedStateMachine):
    """The cache against a dict of (value, expires_at), purging expired entries as it does."""

    engine_kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.cache = DurableObjectCache(self.clock, engine=make_engine(self.engine_kind))
        self.model: dict[str, tuple[object, float]] = {}
        self.hits = self.misses = self.evictions = 0

    def _purge(self, keys: Iterable[str]) -> None:
        now = self.clock.now()
        for key in list(keys):
            if key in self.model and now >= self.model[key][1]:
                del self.model[key]
                self.evictions += 1

    @rule(key=KEYS, value=VALUES, ttl=st.sampled_from([0.5, 1, 2, 3.25]))
    def put(self, key: str, value: object, ttl: float) -> None:
        self._purge([key])
        self.model[key] = (value, self.clock.now() + ttl)
        self.cache.set(key, value, ttl=ttl)

    @rule(key=KEYS)
    def fetch(self, key: str) -> None:
        self._purge([key])
        if key in self.model:
            self.hits += 1
            expected = self.model[key][0]
        else:
            self.misses += 1
            expected = None
        assert repr(self.cache.get(key)) == repr(expected)

    @rule(key=KEYS)
    def remove(self, key: str) -> None:
        self._purge([key])
        expected = self.model.pop(key, None) is not None
        assert self.cache.delete(key) is expected

    @rule(prefix=st.sampled_from(["", "a", "b", "é", "z"]))
    def list_keys(self, prefix: str) -> None:
        self._purge(k for k in list(self.model) if k.startswith(prefix))
        expected = sorted(k for k in self.model if k.startswith(prefix))
        assert self.cache.list(prefix) == expected

    @rule(seconds=st.sampled_from([0, 0.25, 0.5, 1, 2]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def check_stats(self) -> None:
        self._purge(self.model.copy())
        stats = self.cache.stats()
        assert stats.size == len(self.model)
        assert (stats.hits, stats.misses, stats.evictions) == (
            self.hits,
            self.misses,
            self.evictions,
        )

    def teardown(self) -> None:
        self.cache.clear()


class MemoryCacheMachine(DurableCacheMachine):
    engine_kind = "memory"


class RedisCacheMachine(DurableCacheMachine):
    engine_kind = "redis"


# max_examples from the loaded profile (tests/conftest.py): quick by default, deep in CI.
MACHINE_SETTINGS = settings(stateful_step_count=30, deadline=None)
TestMemoryCacheMachine = MemoryCacheMachine.TestCase
TestMemoryCacheMachine.settings = MACHINE_SETTINGS
TestRedisCacheMachine = RedisCacheMachine.TestCase
TestRedisCacheMachine.settings = MACHINE_SETTINGS
