"""Local-cache clauses: an instance sees its own writes at once, other instances' within a bound."""

from __future__ import annotations

import json

import pytest

from .clauses import clause
from .fallback import do_write_failure
from .harness import EPSILON, ROUTES, ContractHarness, DALHandle, delete_succeeded


def legacy_read(contract: ContractHarness, key: str) -> object:
    """What a legacy reader, ``json.loads(kv.get(key))``, finds in KV (None if nothing)."""
    text = contract.kv.get(key)
    return None if text is None else json.loads(text)


#: Why a DAL may read "v1" back in LOC-1's DO-refused test: both puts share one instant.
SAME_INSTANT_HINT = (
    ". Both puts were made at the same virtual instant: a DAL that orders its KV fallback "
    "copy against the DO's record by time alone sees a tie, and the older 'v1' wins it. "
    "Order writes by time and a sequence number (see docs/contract.md, LOC-1)"
)


def written(writer: DALHandle, change: str) -> object:
    """Make A's second write (a put of "v2" or a delete) and return what B must come to read."""
    if change == "put":
        put = writer.put("loc3", "v2")
        assert put.succeeded, f"the second put must succeed: {put}"
        return "v2"
    assert delete_succeeded(writer, "loc3"), (
        "the delete must succeed (with the DO refusing writes too: FB-8), and LOC-3 then "
        "checks when instance B reads it"
    )
    assert writer.get("loc3") is None, "A must read its own delete at once"
    return None


def checked_seen_within_bound(
    contract: ContractHarness, reader: DALHandle, new: object, change: str, reads: str
) -> None:
    """B reads "v1" or ``new`` (never back) until its local_cache_ttl, then ``new`` only.

    A read lands late when the DAL itself moved the clock past the instant it was due at (a
    backoff on the virtual clock); it is judged at the time it was made.
    """
    written_at = contract.clock.now()
    bound = reader.local_cache_ttl
    fractions = (0, 0.25, 0.5, 0.75) if reads == "early" else (0.5,)
    instants = [bound * fraction for fraction in fractions] + [bound - EPSILON]
    seen_new = False
    for due in [at for at in instants if 0 <= at < bound] + [bound]:
        late_by = contract.advance_to(written_at + due)
        elapsed = due + late_by
        got = reader.get("loc3")
        late = f" (due at {due:g} s; the DAL's own sleeps made it late)" if late_by else ""
        if elapsed >= bound:
            assert got == new, (
                f"B declares local_cache_ttl={bound:g} s, so {elapsed:g} s after A's {change}"
                f"{late} it must read {new!r}; got {got!r}"
            )
            continue
        assert got in ("v1", new), (
            f"{elapsed:g} s after A's {change}{late}, B must read 'v1' or {new!r}, got {got!r}"
        )
        assert not seen_new or got == new, (
            f"{elapsed:g} s after A's {change}{late}, B went back to 'v1' after reading {new!r}"
        )
        seen_new = got == new


class LocalCacheClauses:
    """LOC-1 to LOC-3."""

    @clause("LOC-1")
    @pytest.mark.parametrize("route", ROUTES)
    def test_LOC_1_put_after_a_cached_get_is_read_at_once(
        self, contract: ContractHarness, route: str
    ) -> None:
        dal = contract.start(route)
        assert dal.put("loc1", "v1").succeeded, "the first put must succeed"
        assert dal.get("loc1") == "v1" and dal.get("loc1") == "v1", "the put must be readable"
        if route == "kv":
            contract.advance(1)  # KV takes one write per second per key
        assert dal.put("loc1", "v2").succeeded, "the second put must succeed"
        assert dal.get("loc1") == "v2", "after a cached get, a put must be read at once"
        assert contract.instance("fresh").get("loc1") == "v2", "the store must hold the put"
        if route == "kv":
            assert legacy_read(contract, "loc1") == "v2", "KV must hold the put"

    @clause("LOC-1")
    @pytest.mark.parametrize("route", ROUTES)
    def test_LOC_1_put_after_a_cached_miss_is_read_at_once(
        self, contract: ContractHarness, route: str
    ) -> None:
        dal = contract.start(route)
        assert dal.get("loc1") is None and dal.get("loc1") is None, "an unwritten key is a miss"
        assert dal.put("loc1", "v1").succeeded, "the put must succeed"
        assert dal.get("loc1") == "v1", "after a get that missed, a put must be read at once"

    @clause("LOC-2")
    @pytest.mark.parametrize("route", ROUTES)
    def test_LOC_2_delete_after_a_cached_get_is_read_at_once(
        self, contract: ContractHarness, route: str
    ) -> None:
        dal = contract.start(route)
        assert dal.put("loc2", {"v": 1}).succeeded, "the put must succeed"
        assert dal.get("loc2") == {"v": 1} and dal.get("loc2") == {"v": 1}, "it must be readable"
        if route == "kv":
            contract.advance(1)
        dal.delete("loc2")
        assert dal.get("loc2") is None, "after a cached get, a delete must be read at once"
        assert contract.instance("fresh").get("loc2") is None, "the store must not hold it"
        if route == "kv":
            assert legacy_read(contract, "loc2") is None, "a legacy reader must not find it in KV"

    @clause("LOC-1")
    @pytest.mark.parametrize("failure", ["fail", "outage"])
    def test_LOC_1_put_the_do_refused_is_read_at_once(
        self, contract: ContractHarness, failure: str
    ) -> None:
        dal = contract.start("do")
        assert dal.put("loc1", "v1").succeeded, "the first put must succeed"
        assert dal.get("loc1") == "v1" and dal.get("loc1") == "v1", "the put must be readable"
        with do_write_failure(contract, failure):
            assert dal.put("loc1", "v2").succeeded, "a put the DO refused must succeed via KV"
            got = dal.get("loc1")
            assert got == "v2", (
                f"after a cached get, a put the DO refused must be read at once; got {got!r}"
                + SAME_INSTANT_HINT * (got == "v1")
            )
        got = dal.get("loc1")
        assert got == "v2", (
            f"the put the DO refused must still be read once the DO recovers; got {got!r}"
            + SAME_INSTANT_HINT * (got == "v1")
        )

    @clause("LOC-2")
    @pytest.mark.parametrize("failure", ["fail", "outage"])
    def test_LOC_2_delete_the_do_refused_is_read_at_once(
        self, contract: ContractHarness, failure: str
    ) -> None:
        dal = contract.start("do")
        assert dal.put("loc2", "v1").succeeded, "the put must succeed"
        assert dal.get("loc2") == "v1" and dal.get("loc2") == "v1", "the put must be readable"
        with do_write_failure(contract, failure):
            assert delete_succeeded(dal, "loc2"), (
                "a delete the DO refuses must succeed via KV (FB-8), and LOC-2 then checks it "
                "is read at once; a DAL that waives FB-8 waives this LOC-2 test too"
            )
            assert dal.get("loc2") is None, "after a cached get, a delete must be read at once"
        assert dal.get("loc2") is None, "the delete must still hold once the DO recovers"
        assert contract.instance("fresh").get("loc2") is None, "the DO copy must not come back"

    @clause("LOC-3")
    @pytest.mark.parametrize("reads", ["early", "late"])
    @pytest.mark.parametrize("route", ROUTES)
    @pytest.mark.parametrize("change", ["put", "delete"])
    def test_LOC_3_other_instance_sees_a_write_within_its_local_cache_ttl(
        self, contract: ContractHarness, route: str, change: str, reads: str
    ) -> None:
        writer = contract.start(route)
        reader = contract.instance("B")
        assert writer.put("loc3", "v1").succeeded, "the first put must succeed"
        assert reader.get("loc3") == "v1", "instance B must read A's put"
        if route == "kv":
            contract.advance(1)
        new = written(writer, change)
        checked_seen_within_bound(contract, reader, new, change, reads)

    @clause("LOC-3")
    @pytest.mark.parametrize(
        "reads",
        [
            "early",
            "late",
        ],
    )
    @pytest.mark.parametrize("change", ["put", "delete"])
    def test_LOC_3_other_instance_sees_a_write_the_do_refused_within_its_bound(
        self, contract: ContractHarness, change: str, reads: str
    ) -> None:
        writer = contract.start("do")
        reader = contract.instance("B")
        assert writer.put("loc3", "v1").succeeded, "the first put must succeed"
        assert reader.get("loc3:other") is None, "instance B is running, not yet reading loc3"
        contract.advance(1)
        contract.do.fail(ops=("set", "delete"))
        new = written(writer, change)
        contract.do.recover()
        checked_seen_within_bound(contract, reader, new, change, reads)
