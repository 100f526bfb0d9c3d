"""Flip clauses: the flag is obeyed at the next call and a flip never brings an old value back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .clauses import clause
from .fallback import get_or_error
from .harness import COORDINATION_PREFIX, ROUTES, ContractHarness, DALHandle

OTHER_ROUTE = {"do": "kv", "kv": "do"}
FLIP_KEYS = ("flip:a", "flip:b")
#: Steps of one instance's traffic: (action, key or clock move).
FLIP_STEPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["put", "get", "delete"]), st.sampled_from(FLIP_KEYS)),
        st.tuples(st.just("flip"), st.none()),
        st.tuples(st.just("wait"), st.sampled_from([0.5, 1.0, 61.0])),
    ),
    max_size=24,
)


def checked_get(dal: DALHandle, key: str, latest: object, older: list[object]) -> object:
    """``dal.get(key)``, asserted to be the latest value for ``key`` or None."""
    got = dal.get(key)
    if got is None or got == latest:
        return got
    if got in older:
        raise AssertionError(
            f"{dal.name}.get({key!r}) returned the older value {got!r}; the latest write was "
            f"{latest!r} (None: deleted), so only that or None is allowed"
        )
    raise AssertionError(f"{dal.name}.get({key!r}) returned {got!r}, which was never written")


class FlipClauses:
    """FLIP-1 to FLIP-4."""

    @clause("FLIP-1")
    @pytest.mark.parametrize("first", ROUTES)
    def test_FLIP_1_next_call_after_a_flip_follows_the_flag(
        self, contract: ContractHarness, first: str
    ) -> None:
        dal = contract.start(first)
        assert dal.put("flip1:warm", 0).succeeded, "the first put must succeed"
        assert dal.get("flip1:warm") == 0, "the first put must be readable"
        route = first
        for step in range(1, 5):
            route = OTHER_ROUTE[route]
            contract.advance(1)
            contract.use_route(route)
            mark = contract.mark()
            assert dal.get(f"flip1:unread{step}") is None, "an unwritten key must read None"
            do_reads = contract.ops_since(mark, store="do", ok=None)
            if route == "kv":
                assert do_reads == [], (
                    f"the first call after disabling the flag is a get: it must not touch the "
                    f"DO; got {[r.describe() for r in do_reads]}"
                )
            else:
                assert do_reads, (
                    "the first call after enabling the flag is a get: it must read the DO"
                )
            key = f"flip1:{step}"
            assert dal.put(key, step).succeeded, f"the first put after the flip to {route} failed"
            assert dal.get(key) == step, f"the put after the flip to {route} must be readable"
            kv_keys = [r.key for r in contract.ops_since(mark, store="kv", ops=("put", "delete"))]
            if route == "kv":
                dal.delete("flip1:warm")
                do_ops = [r.describe() for r in contract.ops_since(mark, store="do", ok=None)]
                assert do_ops == [], (
                    f"after disabling the flag no DO operation may happen: {do_ops}"
                )
                assert key in kv_keys, "after disabling the flag the put must land in KV"
                assert json.loads(contract.kv.get(key)) == step, "KV must hold the put as JSON"
            else:
                assert contract.writes_since(mark, "do"), (
                    "after enabling the flag the put must land in the DO"
                )
                assert key not in kv_keys, (
                    "after enabling the flag the put must not be written to KV"
                )
                data = [k for k in kv_keys if not k.startswith(COORDINATION_PREFIX)]
                assert data == [], f"after enabling the flag no data may be written to KV: {data}"

    @clause("FLIP-2")
    @pytest.mark.parametrize("first", ROUTES)
    @pytest.mark.parametrize("change", ["put", "delete"])
    def test_FLIP_2_flip_and_back_never_reads_the_value_before(
        self, contract: ContractHarness, first: str, change: str
    ) -> None:
        dal = contract.start(first)
        assert dal.put("flip2", "v1").succeeded, f"the put on {first} must succeed"
        assert dal.get("flip2") == "v1", f"the put on {first} must be readable"
        contract.use_route(OTHER_ROUTE[first])
        contract.advance(1)
        if change == "put":
            assert dal.put("flip2", "v2").succeeded, "the put after the flip must succeed"
            assert dal.get("flip2") == "v2", "the put after the flip must be readable"
        else:
            dal.delete("flip2")
            assert dal.get("flip2") is None, "the delete after the flip must be read at once"
        contract.use_route(first)
        allowed = ("v2", None) if change == "put" else (None,)
        for reader in (dal, contract.instance("fresh")):
            got = reader.get("flip2")
            assert got in allowed, (
                f"{reader.name}: after v1 on {first}, flip, {change}, flip back, get must return "
                f"{' or '.join(map(repr, allowed))}, never the older 'v1'; got {got!r}"
            )

    @clause("FLIP-2")
    @pytest.mark.parametrize("change", ["put", "delete"])
    def test_FLIP_2_legacy_kv_value_stays_older_after_a_rollback(
        self, contract: ContractHarness, change: str
    ) -> None:
        contract.kv.put("flip2", json.dumps("legacy"))  # KV data from before the DAL
        dal = contract.start("do")
        if change == "put":
            assert dal.put("flip2", "v1").succeeded, "the put on the DO route must succeed"
            assert dal.get("flip2") == "v1", "the put on the DO route must be readable"
        else:
            dal.delete("flip2")
            assert dal.get("flip2") is None, "the delete on the DO route must be read at once"
        contract.advance(1)
        contract.use_route("kv")
        allowed = ("v1", None) if change == "put" else (None,)
        for reader in (dal, contract.instance("fresh")):
            got = reader.get("flip2")
            assert got in allowed, (
                f"{reader.name}: after the DO-route {change} and a rollback, get must return "
                f"{' or '.join(map(repr, allowed))}, never the older legacy KV value; got {got!r}"
            )

    @clause("FLIP-2")
    def test_FLIP_2_any_traffic_with_flips_reads_latest_or_none(
        self, contract: ContractHarness
    ) -> None:
        @contract.hypothesis_settings()
        @given(first=st.sampled_from(ROUTES), steps=FLIP_STEPS)
        def traffic(first: str, steps: list[tuple[str, object]]) -> None:
            contract.reset()
            dal = contract.start(first)
            latest: dict[str, object] = dict.fromkeys(FLIP_KEYS)
            older: dict[str, list[object]] = {key: [] for key in FLIP_KEYS}
            for number, (action, arg) in enumerate(steps):
                if action == "flip":
                    contract.use_route(OTHER_ROUTE[contract.route])
                elif action == "wait":
                    contract.advance(float(arg))  # type: ignore[arg-type]
                elif action == "get":
                    checked_get(dal, str(arg), latest[str(arg)], older[str(arg)])
                else:
                    key = str(arg)
                    older[key].append(latest[key])
                    if action == "put":
                        put = dal.put(key, number)
                        assert put.succeeded, f"put with healthy stores must succeed: {put}"
                        latest[key] = number
                    else:
                        dal.delete(key)
                        latest[key] = None
            for key in FLIP_KEYS:
                checked_get(dal, key, latest[key], older[key])

        traffic()

    @clause("FLIP-3")
    @pytest.mark.parametrize("instances", [1, 2])
    def test_FLIP_3_rollback_mid_traffic_raises_nothing_loses_nothing(
        self, contract: ContractHarness, instances: int
    ) -> None:
        dals = [contract.start("do")] + [contract.instance(f"B{n}") for n in range(1, instances)]
        after_flip: dict[str, int] = {}
        for step in range(30):
            if step == 15:
                contract.use_route("kv")
            dal = dals[step % len(dals)]
            key = f"flip3:{step % 5}"
            put = dal.put(key, step, ttl=3600)
            assert put.succeeded and put.error is None, (
                f"a put during the rollback must succeed without raising: {put}"
            )
            assert dal.get(key) == step, "a put during the rollback must be read back at once"
            dal.get(f"flip3:{(step + 2) % 5}")  # raising here breaks the clause
            if step >= 15:
                after_flip[key] = step
            contract.advance(0.4)
        contract.advance(max(dal.local_cache_ttl for dal in dals))
        readers = [*dals, contract.instance("fresh")]
        for key, value in after_flip.items():
            assert json.loads(contract.kv.get(key)) == value, (
                f"after the rollback KV must hold the latest write {value!r} of {key!r}"
            )
            for reader in readers:
                got = reader.get(key)
                assert got == value, (
                    f"{reader.name}: the write {value!r} of {key!r} after the rollback must be "
                    f"readable afterwards, got {got!r}"
                )

    @clause("FLIP-4")
    @pytest.mark.parametrize("first", ROUTES)
    def test_FLIP_4_fresh_instances_after_flips_never_read_older(
        self, contract: ContractHarness, first: str
    ) -> None:
        dal = contract.start(first)
        assert dal.put("flip4", "v0").succeeded, f"the put on {first} must succeed"
        latest: object = "v0"
        older: list[object] = []
        route = first
        for n in range(1, 7):
            route = OTHER_ROUTE[route]
            contract.use_route(route)
            contract.advance(1)
            deploy = contract.instance(f"I{n}")
            checked_get(deploy, "flip4", latest, older)
            older.append(latest)
            if n == 3:
                deploy.delete("flip4")
                latest = None
            else:
                assert deploy.put("flip4", f"v{n}").succeeded, f"the put of I{n} must succeed"
                latest = f"v{n}"
            assert deploy.get("flip4") == latest, f"I{n} must read its own write"
        older.append(latest)  # the first instance, idle through every flip, writes last
        assert dal.put("flip4", "v-idle").succeeded, "the put of the idle first instance failed"
        latest = "v-idle"
        contract.use_route(OTHER_ROUTE[route])
        contract.advance(1)
        checked_get(contract.instance("I7"), "flip4", latest, older)

    @clause("FLIP-4")
    @pytest.mark.parametrize("first", ROUTES)
    def test_FLIP_4_instance_started_during_a_kv_outage_never_reads_older(
        self, contract: ContractHarness, first: str
    ) -> None:
        dal = contract.start(first)
        assert dal.put("flip4", "v1").succeeded, f"the put on {first} must succeed"
        contract.use_route(OTHER_ROUTE[first])
        contract.advance(1)
        assert contract.instance("B").put("flip4", "v2").succeeded, "the put of B must succeed"
        contract.use_route(first)
        contract.advance(1)
        with contract.kv.outage():
            deploy = contract.instance("C")
            got, _ = get_or_error(deploy, "flip4")  # refusing to answer is fine, v1 is not
            assert got in (None, "v2"), (
                f"C, deployed after the flips while KV is down, must read 'v2' or None, never "
                f"the older 'v1'; got {got!r}"
            )
        got = deploy.get("flip4")
        assert got in (None, "v2"), (
            f"after KV recovers, C must read 'v2' or None, never the older 'v1'; got {got!r}"
        )
