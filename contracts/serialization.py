"""Serialization clauses: strict-JSON round trips, refusals, isolation, keys, legacy KV data."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from .clauses import clause
from .harness import ROUTES, ContractHarness, short, strict_equal

#: Strict JSON as Workers code sees it after JSON.parse: finite floats, str keys, no tuples.
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**256), max_value=2**256)
    | st.sampled_from([2**53 + 1, -(2**63), 2**64, 0.0, -0.0, 5e-324, 1.7976931348623157e308])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from(["é", "日本語", "😀", "\u0000", '"\\/\n', "\u2028"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
NON_JSON_VALUES = [
    pytest.param({1, 2}, id="set"),
    pytest.param(b"bytes", id="bytes"),
    pytest.param(object(), id="object"),
    pytest.param(float("nan"), id="nan"),
    pytest.param(float("inf"), id="inf"),
    pytest.param(float("-inf"), id="-inf"),
    pytest.param((1, 2), id="tuple"),
    pytest.param({1: "a"}, id="int-key"),
    pytest.param({"a": {1, 2}}, id="nested-set"),
    pytest.param([float("nan")], id="nested-nan"),
    pytest.param({"a": [1, float("inf")]}, id="deep-inf"),
]
#: Keys KV accepts: 1 to 512 UTF-8 bytes, not "." or "..". "\x00" starts reserved keys.
KEYS = st.one_of(
    st.text(min_size=1, max_size=128),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=512),
).filter(lambda key: key not in (".", "..") and not key.startswith("\x00"))
BAD_KEYS = [
    pytest.param("", id="empty"),
    pytest.param(".", id="dot"),
    pytest.param("..", id="dotdot"),
    pytest.param("k" * 513, id="513-ascii-bytes"),
    pytest.param("é" * 257, id="514-utf8-bytes"),
    pytest.param("😀" * 128 + "a", id="513-emoji-bytes"),
]
LEGACY_VALUES = [
    pytest.param({"close": 231.5, "tags": ["a", "b"]}, id="dict"),
    pytest.param([1, 2.5, "x", None, True], id="list"),
    pytest.param("crème brûlée 😀", id="non-ascii-str"),
    pytest.param(12345678901234567890, id="big-int"),
    pytest.param(False, id="false"),
]


def same_json(got: object, expected: object) -> bool:
    """Type-exact equality that also tells -0.0 from 0.0 (their JSON texts differ)."""
    return strict_equal(got, expected) and json.dumps(got, sort_keys=True) == json.dumps(
        expected, sort_keys=True
    )


class SerializationClauses:
    """SER-1 to SER-5."""

    @clause("SER-1")
    @pytest.mark.parametrize("route", ROUTES)
    def test_SER_1_strict_json_round_trips_exactly(
        self, contract: ContractHarness, route: str
    ) -> None:
        @contract.hypothesis_settings()
        @given(value=JSON_VALUES)
        @example(value={"big": 2**70, "neg0": -0.0, "one": 1, "onef": 1.0, "t": True, "s": "😀"})
        @example(value=[[], {}, "", 0, -0.0, None, False])
        def round_trip(value: object) -> None:
            contract.reset()
            dal = contract.start(route)
            put = dal.put("ser:1", value)
            assert put.succeeded, f"put of strict JSON {short(value)} must succeed, got {put}"
            got = dal.get("ser:1")
            assert same_json(got, value), f"get must return {value!r} exactly, got {got!r}"
            fresh = contract.instance("fresh").get("ser:1")
            assert same_json(fresh, value), (
                f"a fresh instance must read {value!r} exactly from the store, got {fresh!r}"
            )
            if route == "kv":
                stored = json.loads(contract.kv.get("ser:1"))
                assert same_json(stored, value), f"KV must hold {value!r} as JSON, got {stored!r}"

        round_trip()

    @clause("SER-2")
    @pytest.mark.parametrize("route", ROUTES)
    @pytest.mark.parametrize("value", NON_JSON_VALUES)
    def test_SER_2_non_json_value_fails_and_writes_nothing(
        self, contract: ContractHarness, route: str, value: object
    ) -> None:
        dal = contract.start(route)
        assert dal.put("ser:2", ["kept"]).succeeded, "the JSON put must succeed"
        contract.advance(1)
        mark = contract.mark()
        put = dal.put("ser:2", value)
        assert not put.succeeded, (
            f"put of the non-JSON {value!r} must fail (raise or success=False)"
        )
        assert contract.data_writes_since(mark) == [], (
            f"put of the non-JSON {value!r} must write nothing to either store"
        )
        assert dal.get("ser:2") == ["kept"], f"put of {value!r} must leave the earlier value"
        assert contract.instance("fresh").get("ser:2") == ["kept"], (
            f"after put of {value!r} the store must still hold the earlier value"
        )

    @clause("SER-3")
    @pytest.mark.parametrize("route", ROUTES)
    def test_SER_3_mutating_the_put_value_changes_nothing_stored(
        self, contract: ContractHarness, route: str
    ) -> None:
        dal = contract.start(route)
        value = {"list": [1, 2], "dict": {"a": 1}}
        assert dal.put("ser:3", value).succeeded, "the put must succeed"
        value["list"].append(3)
        value["dict"]["b"] = 2
        value["new"] = True
        expected = {"list": [1, 2], "dict": {"a": 1}}
        assert dal.get("ser:3") == expected, "changing a dict after put must not change the cache"
        items = [{"n": 1}]
        assert dal.put("ser:3b", items).succeeded, "the put must succeed"
        items[0]["n"] = 99
        items.append("extra")
        assert dal.get("ser:3b") == [{"n": 1}], "changing a list after put must not change it"

    @clause("SER-3")
    @pytest.mark.parametrize("route", ROUTES)
    def test_SER_3_mutating_a_returned_value_changes_nothing_stored(
        self, contract: ContractHarness, route: str
    ) -> None:
        dal = contract.start(route)
        assert dal.put("ser:3", {"list": [1, 2], "dict": {"a": 1}}).succeeded, "put must succeed"
        for attempt in range(3):  # the later gets may come from a local cache
            got = dal.get("ser:3")
            assert got == {"list": [1, 2], "dict": {"a": 1}}, (
                f"get #{attempt + 1} must return the stored value although the caller "
                f"changed what earlier gets returned; got {got!r}"
            )
            got["list"].append(attempt)
            got["dict"]["a"] = attempt
            got["new"] = attempt

    @clause("SER-4")
    @pytest.mark.parametrize("route", ROUTES)
    def test_SER_4_every_key_kv_accepts_works(self, contract: ContractHarness, route: str) -> None:
        @contract.hypothesis_settings()
        @given(key=KEYS)
        @example(key="k" * 512)
        @example(key="€" * 170 + "ab")
        @example(key="😀" * 128)
        @example(key="a")
        @example(key="...")
        @example(key=" ")
        def key_works(key: str) -> None:
            contract.reset()
            dal = contract.start(route)
            put = dal.put(key, {"key": key})
            assert put.succeeded, f"put under the KV-valid key {key!r} must succeed, got {put}"
            assert dal.get(key) == {"key": key}, f"get({key!r}) must return what was put"
            assert contract.instance("fresh").get(key) == {"key": key}, (
                f"a fresh instance must read the value under {key!r} from the store"
            )
            if route == "kv":
                assert json.loads(contract.kv.get(key)) == {"key": key}, (
                    f"on the KV route the value must be in KV under the key {key!r} itself"
                )
            dal.delete(key)
            assert dal.get(key) is None, f"after delete({key!r}) get must return None"

        key_works()

    @clause("SER-4")
    @pytest.mark.parametrize("route", ROUTES)
    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_SER_4_key_kv_refuses_fails_and_writes_nothing(
        self, contract: ContractHarness, route: str, key: str
    ) -> None:
        dal = contract.start(route)
        mark = contract.mark()
        put = dal.put(key, "value")
        assert not put.succeeded, f"put under the key {short(key)} must fail: KV refuses it"
        with contextlib.suppress(Exception):  # refusing the key by raising is fine
            dal.delete(key)
        assert contract.data_writes_since(mark) == [], (
            f"put and delete under the key {short(key)} must write nothing to either store"
        )

    @clause("SER-5")
    @pytest.mark.parametrize("value", LEGACY_VALUES)
    def test_SER_5_legacy_kv_writer_is_read(self, contract: ContractHarness, value: object) -> None:
        dal = contract.start("kv")
        contract.kv.put("ser:5", json.dumps(value))
        got = dal.get("ser:5")
        assert strict_equal(got, value), (
            f"a value a legacy writer put as json.dumps text must read back as {value!r}, "
            f"got {got!r}"
        )

    @clause("SER-5")
    @pytest.mark.parametrize("value", LEGACY_VALUES)
    def test_SER_5_legacy_kv_reader_reads_plain_json(
        self, contract: ContractHarness, value: object
    ) -> None:
        dal = contract.start("kv")
        assert dal.put("ser:5", value).succeeded, "the put must succeed"
        text = contract.kv.get("ser:5")
        assert text is not None, "the put must store the value in KV under the key itself"
        stored = json.loads(text)
        assert strict_equal(stored, value), (
            f"a legacy reader's json.loads(kv.get(key)) must give {value!r}, got {stored!r}"
        )

    @clause("SER-5")
    @pytest.mark.parametrize(
        "metadata",
        [
            pytest.param({"written_by": "nightly-job", "version": 2}, id="dict"),
            pytest.param("nightly-job", id="str"),
            pytest.param([1, 2], id="list"),
        ],
    )
    def test_SER_5_legacy_writer_with_its_own_metadata_is_read(
        self, contract: ContractHarness, metadata: object
    ) -> None:
        dal = contract.start("kv")
        contract.kv.put("ser:5", json.dumps({"close": 231.5}), metadata=metadata)
        for instance in (dal, contract.instance("reader")):
            got = instance.get("ser:5")
            assert got == {"close": 231.5}, (
                f"{instance.name}: a legacy writer's JSON text must read back whatever metadata "
                f"it attached (here {metadata!r}: not the DAL's, so the entry is a legacy "
                f"one); got {got!r}"
            )

    @clause("SER-5")
    def test_SER_5_legacy_writer_overwrites_a_dal_value(self, contract: ContractHarness) -> None:
        writer = contract.start("kv")
        assert writer.put("ser:5", "from the DAL").succeeded, "the put must succeed"
        contract.advance(1)
        contract.kv.put("ser:5", json.dumps("from a legacy writer"))
        got = contract.instance("reader").get("ser:5")
        assert got == "from a legacy writer", (
            f"a legacy write over a DAL value must be what a fresh instance reads, got {got!r}"
        )
