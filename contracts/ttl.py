"""TTL clauses: expiry exact on both routes, defaults, sub-minute TTLs, overwrites, bad TTLs."""

from __future__ import annotations

import json
import math

import pytest

from pytest_dualcache.limits import KV_MAX_EXPIRATION_TTL_S, KV_MIN_EXPIRATION_TTL_S

from .clauses import clause
from .harness import ROUTES, ContractHarness, PutOutcome

EPSILON = 0.001  # the smallest clock step the clauses take: one millisecond before a deadline
INVALID_TTLS = [
    pytest.param(0, id="zero"),
    pytest.param(-1, id="negative"),
    pytest.param(True, id="bool"),
    pytest.param(1.5, id="float"),
    pytest.param("60", id="str"),
    pytest.param(KV_MAX_EXPIRATION_TTL_S + 1, id="above-max"),
]


def refusal(put: PutOutcome) -> str:
    """How a put was refused: the exception type it raised, or its reported failure."""
    return "success=False" if put.error is None else f"raised {type(put.error).__name__}"


class TTLClauses:
    """TTL-1 to TTL-7."""

    @clause("TTL-1")
    @pytest.mark.parametrize("route", ROUTES)
    @pytest.mark.parametrize("start_offset", [0.0, 0.5], ids=["on-the-second", "mid-second"])
    def test_TTL_1_readable_until_ttl_gone_at_ttl(
        self, contract: ContractHarness, route: str, start_offset: float
    ) -> None:
        dal = contract.start(route)
        contract.advance(start_offset)
        assert dal.put("ttl:1", {"v": 1}, ttl=120).succeeded
        contract.advance(119.999)
        assert dal.get("ttl:1") == {"v": 1}, "the value must be readable while elapsed < ttl"
        contract.advance(0.001)
        assert dal.get("ttl:1") is None, "the value must be gone once elapsed >= ttl"

    @clause("TTL-2")
    @pytest.mark.parametrize("route", ROUTES)
    def test_TTL_2_omitted_ttl_means_the_declared_default(
        self, contract: ContractHarness, route: str
    ) -> None:
        dal = contract.start(route)
        default = dal.default_ttl
        put = dal.put("ttl:2", "default")
        assert put.succeeded, f"a put without a ttl must succeed, got {put}"
        contract.advance(default - EPSILON)
        assert dal.get("ttl:2") == "default", (
            f"without a ttl the value must live for the declared default ({default:g} s); "
            f"it was gone {EPSILON:g} s before"
        )
        assert contract.instance("fresh").get("ttl:2") == "default", (
            "a fresh instance must read the value from the store just before the default ttl"
        )
        contract.advance(EPSILON)
        assert dal.get("ttl:2") is None, (
            f"without a ttl the value must be gone at the declared default ({default:g} s)"
        )

    @clause("TTL-3")
    @pytest.mark.parametrize("ttl", [30, 1])
    def test_TTL_3_sub_minute_ttl_on_kv_expires_at_ttl(
        self, contract: ContractHarness, ttl: int
    ) -> None:
        dal = contract.start("kv")
        put = dal.put("ttl:3", [ttl], ttl=ttl)
        assert put.succeeded, f"put with ttl={ttl} (below KV's 60 s floor) must succeed, got {put}"
        assert contract.kv.get("ttl:3") is not None, "the value must be stored in KV"
        contract.advance(ttl - EPSILON)
        assert dal.get("ttl:3") == [ttl], f"the value must be readable until {ttl} s"
        assert contract.instance("fresh").get("ttl:3") == [ttl], (
            f"a fresh instance must read the value from KV until {ttl} s"
        )
        contract.advance(EPSILON)
        assert dal.get("ttl:3") is None, f"a ttl={ttl} value must be gone at {ttl} s, not at 60 s"
        assert contract.instance("late").get("ttl:3") is None, (
            f"a fresh instance must not read a ttl={ttl} value at {ttl} s from KV"
        )

    @clause("TTL-4")
    @pytest.mark.parametrize("route", ROUTES)
    def test_TTL_4_overwrite_restarts_the_ttl(self, contract: ContractHarness, route: str) -> None:
        dal = contract.start(route)
        assert dal.put("ttl:4", "first", ttl=100).succeeded, "the first put must succeed"
        contract.advance(50)
        second_at = contract.clock.now()
        assert dal.put("ttl:4", "second", ttl=100).succeeded, "the overwrite must succeed"
        contract.advance_to(second_at + 100 - EPSILON)
        assert dal.get("ttl:4") == "second", (
            "an overwrite must restart the ttl: the second value must be readable 99.999 s "
            "after it was written (149.999 s after the first)"
        )
        contract.advance(EPSILON)
        assert dal.get("ttl:4") is None, "the overwritten value must be gone 100 s after it"

    @clause("TTL-5")
    @pytest.mark.parametrize("route", ROUTES)
    @pytest.mark.parametrize("ttl", INVALID_TTLS)
    def test_TTL_5_invalid_ttl_fails_and_writes_nothing(
        self, contract: ContractHarness, route: str, ttl: object
    ) -> None:
        dal = contract.start(route)
        assert dal.put("ttl:5", "kept", ttl=600).succeeded, "the valid put must succeed"
        contract.advance(1)
        mark = contract.mark()
        put = dal.put("ttl:5", "bad", ttl=ttl)
        assert not put.succeeded, f"put with ttl={ttl!r} must fail (raise or success=False)"
        assert contract.data_writes_since(mark) == [], (
            f"put with ttl={ttl!r} must write nothing to either store"
        )
        assert dal.get("ttl:5") == "kept", f"put with ttl={ttl!r} must leave the earlier value"
        assert contract.instance("fresh").get("ttl:5") == "kept", (
            f"after put with ttl={ttl!r} the store must still hold the earlier value"
        )

    @clause("TTL-5")
    @pytest.mark.parametrize("ttl", INVALID_TTLS)
    def test_TTL_5_invalid_ttl_is_refused_the_same_way_on_both_routes(
        self, contract: ContractHarness, ttl: object
    ) -> None:
        outcomes = {}
        for route in ROUTES:
            contract.use_route(route)
            outcomes[route] = contract.instance(f"on-{route}").put("ttl:5", "bad", ttl=ttl)
        assert not any(put.succeeded for put in outcomes.values()), (
            f"put with ttl={ttl!r} must fail on both routes, got {outcomes}"
        )
        assert refusal(outcomes["do"]) == refusal(outcomes["kv"]), (
            f"put with ttl={ttl!r} must be refused the same way on both routes: "
            f"{refusal(outcomes['do'])} on the DO route, {refusal(outcomes['kv'])} on KV"
        )

    @clause("TTL-5")
    @pytest.mark.parametrize("route", ROUTES)
    def test_TTL_5_the_largest_ttl_is_accepted(self, contract: ContractHarness, route: str) -> None:
        dal = contract.start(route)
        put = dal.put("ttl:5", "long", ttl=KV_MAX_EXPIRATION_TTL_S)
        assert put.succeeded, (
            f"put with ttl={KV_MAX_EXPIRATION_TTL_S} (2**31 - 1, KV's largest) must succeed: {put}"
        )
        contract.advance(86_400)
        assert dal.get("ttl:5") == "long", "a value with the largest ttl must read back a day later"

    @clause("TTL-6")
    @pytest.mark.parametrize("route", ROUTES)
    def test_TTL_6_value_read_just_before_ttl_is_not_served_at_ttl(
        self, contract: ContractHarness, route: str
    ) -> None:
        dal = contract.start(route)
        assert dal.put("ttl:6", {"n": 6}, ttl=120).succeeded, "the put must succeed"
        assert dal.get("ttl:6") == {"n": 6}, "the value must be readable at once"
        contract.advance(120 - EPSILON)
        assert dal.get("ttl:6") == {"n": 6}, "the value must be readable until its ttl"
        contract.advance(EPSILON)
        assert dal.get("ttl:6") is None, (
            "a value read 1 ms before its ttl must not be served from a local cache at its ttl"
        )

    @clause("TTL-6")
    @pytest.mark.parametrize("route", ROUTES)
    def test_TTL_6_ttl_shorter_than_the_local_cache_ttl_still_ends(
        self, contract: ContractHarness, route: str
    ) -> None:
        dal = contract.start(route)
        ttl = max(1, int(dal.local_cache_ttl // 2)) if dal.local_cache_ttl else 30
        assert dal.put("ttl:6", "short", ttl=ttl).succeeded, f"put with ttl={ttl} must succeed"
        assert dal.get("ttl:6") == "short", "the value must be readable at once"
        contract.advance(ttl)
        assert dal.get("ttl:6") is None, (
            f"a value with ttl={ttl} must be gone at {ttl} s even though the DAL may keep "
            f"local copies for {dal.local_cache_ttl:g} s"
        )

    @clause("TTL-6")
    def test_TTL_6_legacy_kv_value_is_not_served_past_its_expiration(
        self, contract: ContractHarness
    ) -> None:
        dal = contract.start("kv")
        contract.kv.put("ttl:6", json.dumps("legacy"), expiration_ttl=60)
        contract.advance(60 - EPSILON)
        assert dal.get("ttl:6") == "legacy", "a legacy KV value must be readable until it expires"
        contract.advance(EPSILON)
        assert contract.kv.get("ttl:6") is None, "KV itself has expired the legacy value"
        got = dal.get("ttl:6")
        assert got is None, (
            f"a legacy value read 1 ms before KV expired it must not be served from a local "
            f"cache after; got {got!r}"
        )

    @clause("TTL-7")
    @pytest.mark.parametrize("ttl", [1, 59, 60, 3600])
    def test_TTL_7_kv_entry_expires_in_kv_soon_after_its_ttl(
        self, contract: ContractHarness, ttl: int
    ) -> None:
        dal = contract.start("kv")
        contract.advance(0.5)  # mid-second, where rounding the expiration up would show
        assert dal.put("ttl:7", "v", ttl=ttl).succeeded, f"put with ttl={ttl} must succeed"
        written_at = contract.clock.now()
        allowed = max(KV_MIN_EXPIRATION_TTL_S, math.ceil(ttl) + 1)
        listed = {key.name: key.expiration for key in contract.kv.list(prefix="ttl:7").keys}
        assert "ttl:7" in listed, "a put on the KV route must store its key in KV"
        expiration = listed["ttl:7"]
        assert expiration is not None and expiration <= written_at + allowed, (
            f"a KV entry put with ttl={ttl} must carry a KV expiration at most {allowed} s after "
            f"the write (epoch {written_at + allowed:g}); kv.list() shows {expiration!r}"
        )
        if ttl >= KV_MIN_EXPIRATION_TTL_S:
            contract.advance_to(written_at + ttl + 1)
            assert contract.kv.get("ttl:7") is None, (
                f"a legacy reader must not find a ttl={ttl} value in KV 1 s past its ttl"
            )
