"""Fallback clauses: routing by the flag, KV writes kept off the DO route, degraded stores."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from pytest_dualcache.kv_quota import DailyQuota
from pytest_dualcache.limits import KV_MAX_LIST_LIMIT

from .clauses import clause
from .harness import (
    COORDINATION_PREFIX,
    EPSILON,
    ROUTES,
    ContractHarness,
    DALHandle,
    delete_succeeded,
    reported_success,
    short,
)

OTHER_ROUTE = {"do": "kv", "kv": "do"}
#: How long after a DO outage ends an instance may still pay KV writes for it (FB-2): a DAL
#: may back off repairs up to this long. FB-2 checks 1 s past it, so a backoff capped at
#: exactly 300 s passes whichever way the DAL compares its due time.
REPAIR_WINDOW_S = 300


def kv_writes(contract: ContractHarness, mark: tuple[int, ...]) -> list[str]:
    """Keys of the successful KV puts and deletes since ``mark``."""
    return [record.key for record in contract.ops_since(mark, store="kv", ops=("put", "delete"))]


def do_write_failure(contract: ContractHarness, kind: str) -> AbstractContextManager[None]:
    """The DO refusing writes: ``"fail"`` (sets and deletes fail till recovered) or ``"outage"``."""
    if kind == "outage":
        return contract.do.outage()

    @contextmanager
    def failing() -> Iterator[None]:
        contract.do.fail(ops=("set", "delete"))
        try:
            yield
        finally:
            contract.do.recover()

    return failing()


def do_read_failure(contract: ContractHarness, kind: str) -> AbstractContextManager[None]:
    """The DO refusing reads: ``"fail"`` (fail(ops="get") until recovered) or ``"outage"``."""
    return contract.do.outage(ops="get" if kind == "fail" else None)


def data_kv_writes(contract: ContractHarness, mark: tuple[int, ...]) -> list[str]:
    """``kv_writes`` without the DAL's coordination keys."""
    return [key for key in kv_writes(contract, mark) if not key.startswith(COORDINATION_PREFIX)]


def get_or_error(dal: DALHandle, key: str) -> tuple[object, BaseException | None]:
    """``(value, None)``, or ``(None, error)`` if the get raised."""
    try:
        return dal.get(key), None
    except Exception as exc:
        return None, exc


def checked_readable(
    contract: ContractHarness, dal: DALHandle, key: str, value: object, put_at: float, ttl: float
) -> None:
    """``value`` reads back, from ``dal`` and fresh instances, at four instants up to ttl - ε."""
    start, until = contract.clock.now(), put_at + ttl - EPSILON
    for index, fraction in enumerate((0.0, 1 / 3, 2 / 3, 1.0)):
        contract.advance_to(until if fraction == 1.0 else start + (until - start) * fraction)
        elapsed = f"{contract.clock.now() - put_at:.3f} s after it (ttl {ttl:g} s)"
        assert dal.get(key) == value, f"a put that reported success must be readable {elapsed}"
        reader = contract.instance(f"reader{index}")
        assert reader.get(key) == value, (
            f"a fresh instance must read a put that reported success {elapsed}"
        )


class FallbackClauses:
    """FB-1 to FB-10."""

    @clause("FB-1")
    def test_FB_1_flag_off_writes_go_to_kv_and_never_touch_the_do(
        self, contract: ContractHarness
    ) -> None:
        dal = contract.start("kv")
        mark = contract.mark()
        assert dal.put("fb1:a", [1, 2, 3]).succeeded
        contract.advance(1)
        assert dal.get("fb1:a") == [1, 2, 3]
        dal.delete("fb1:a")
        assert dal.get("fb1:a") is None
        assert contract.ops_since(mark, store="do", ok=None) == [], "no DO operation with flag off"
        kv_puts = contract.ops_since(mark, store="kv", ops=("put",))
        assert [r.key for r in kv_puts if r.key == "fb1:a"], "the put must reach KV"

    @clause("FB-1")
    def test_FB_1_first_call_after_a_rollback_is_a_get_that_skips_the_do(
        self, contract: ContractHarness
    ) -> None:
        dal = contract.start("do")
        assert dal.put("fb1:a", "on-do").succeeded, "the put on the DO route must succeed"
        assert dal.get("fb1:a") == "on-do", "the put on the DO route must be readable"
        contract.advance(1)
        contract.use_route("kv")
        mark = contract.mark()
        got = dal.get("fb1:a")
        do_ops = [r.describe() for r in contract.ops_since(mark, store="do", ok=None)]
        assert do_ops == [], (
            f"the first call after disabling the flag is a get: it must not touch the DO; "
            f"got {do_ops}"
        )
        assert got in (None, "on-do"), f"get must return the latest value or None, got {got!r}"
        assert dal.put("fb1:a", "on-kv").succeeded, "the put with the flag off must succeed"
        assert json.loads(contract.kv.get("fb1:a")) == "on-kv", "the put must reach KV"
        assert contract.ops_since(mark, store="do", ok=None) == [], "no DO operation, flag off"

    @clause("FB-2")
    def test_FB_2_do_route_writes_nothing_to_kv_but_coordination(
        self, contract: ContractHarness
    ) -> None:
        mark = contract.mark()
        instances = [contract.start("do")] + [contract.instance(name) for name in "BCD"]
        keys = [f"fb2:{n}" for n in range(5)]
        for step in range(40):
            key = keys[step % len(keys)]
            dal = instances[step % len(instances)]
            assert dal.put(key, {"step": step}, ttl=90).succeeded, "a put must succeed"
            assert dal.get(key) == {"step": step}, "a get must return the latest put"
            if step % 7 == 6:
                dal.delete(key)
                assert dal.get(key) is None, "a deleted key must read None"
            contract.advance(7.5)
        written = kv_writes(contract, mark)
        assert not set(written) & set(keys), (
            f"with the flag on and the DO healthy no data key may be written to KV; got {written}"
        )
        assert len(written) <= 2, (
            f"with the flag on, four instances and no flip, at most 2 coordination writes to KV "
            f"are allowed (the env's first use is one transition); got {len(written)}: {written}"
        )

    @clause("FB-2")
    def test_FB_2_each_do_period_stays_within_the_coordination_budget(
        self, contract: ContractHarness
    ) -> None:
        dal = contract.start("do")
        keys = ["fb2:a", "fb2:b", "fb2:c"]
        for period, route in enumerate(["do", "kv", "do", "kv", "do"]):
            contract.use_route(route)
            mark = contract.mark()
            for instance in (dal, contract.instance(f"P{period}")):
                for step, key in enumerate(keys):
                    assert instance.put(key, [period, step]).succeeded, f"a put on {route} failed"
                    assert instance.get(key) == [period, step], f"a get on {route} must read it"
                    contract.advance(1)
                instance.delete(keys[0])
                contract.advance(61)
                assert instance.get(keys[1]) == [period, 1], f"a get on {route} must read it"
            if route != "do":
                continue
            written = kv_writes(contract, mark)
            assert not set(written) & set(keys), (
                f"DO period {period}: no data key may be written to KV; got {written}"
            )
            assert len(written) <= 2, (
                f"DO period {period}: one flag transition allows at most 2 coordination writes "
                f"to KV, whatever the number of instances; got {len(written)}: {written}"
            )

    @clause("FB-2")
    @pytest.mark.parametrize("failure", ["fail", "outage"])
    def test_FB_2_zero_kv_writes_again_after_a_do_outage(
        self, contract: ContractHarness, failure: str
    ) -> None:
        dal, other = contract.start("do"), contract.instance("B")
        keys = ["fb2:a", "fb2:b", "fb2:c"]
        for key in keys:
            assert dal.put(key, "before").succeeded, "a put with the DO healthy must succeed"
        contract.advance(1)
        with do_write_failure(contract, failure):
            assert dal.put(keys[0], "during").succeeded, "a put the DO refused must succeed"
            assert other.put(keys[1], "during").succeeded, "a put the DO refused must succeed"
            with contextlib.suppress(Exception):  # FB-8's business
                dal.delete(keys[2])  # a delete the DAL has to catch up on, too
        contract.advance(REPAIR_WINDOW_S + 1)
        instances = [dal, other, contract.instance("C")]
        for instance in instances:  # each instance's first call may still repair
            assert instance.get(keys[0]) == "during", "the put made in the outage must be read"
        mark = contract.mark()
        for step in range(12):
            instance, key = instances[step % len(instances)], keys[step % len(keys)]
            assert instance.put(key, step).succeeded, "a put with the DO healthy must succeed"
            assert instance.get(key) == step, "a get must return the latest put"
            if step % 4 == 3:
                instance.delete(key)
            contract.advance(7.5)
        written = kv_writes(contract, mark)
        assert written == [], (
            f"{REPAIR_WINDOW_S} s after a DO outage, with the DO healthy and every instance "
            f"past its first call, no operation may write or delete in KV; got {written}"
        )

    @clause("FB-3")
    @pytest.mark.parametrize("failure", ["fail", "outage"])
    def test_FB_3_put_succeeds_via_kv_while_do_refuses_writes(
        self, contract: ContractHarness, failure: str
    ) -> None:
        dal = contract.start("do")
        read, unread = "fb3:read", "fb3:unread"  # only the first is read during the failure
        for key in (read, unread):
            assert dal.put(key, "old").succeeded, "the put with the DO healthy must succeed"
        contract.advance(1)
        with do_write_failure(contract, failure):
            for key in (read, unread):
                mark = contract.mark()
                put = dal.put(key, "new")
                assert put.succeeded, (
                    f"a put must succeed via KV while the DO refuses writes: {put}"
                )
                data = [
                    k for k in kv_writes(contract, mark) if not k.startswith(COORDINATION_PREFIX)
                ]
                assert data, "a put the DO refused must be written to KV"
            assert dal.get(read) == "new", "the put must be readable while the DO is down"
            assert contract.instance("B").get(unread) == "new", (
                "a fresh instance must read the put while the DO is down, not the older DO copy"
            )
        for when in ("at once", "2 s"):
            for key in (unread, read):
                assert dal.get(key) == "new", (
                    f"{when} after the DO recovers, get({key!r}) must return the put made while "
                    "it was down, not the older DO copy"
                )
                assert contract.instance("C").get(key) == "new", (
                    f"{when} after the DO recovers, a fresh instance must not read the older copy"
                )
            contract.advance(2)

    @clause("FB-3")
    def test_FB_3_put_the_do_refuses_right_after_an_outage_is_read(
        self, contract: ContractHarness
    ) -> None:
        dal = contract.start("do")
        for key, value in (("fb3:gone", "x"), ("fb3", "old")):
            assert dal.put(key, value).succeeded, "the put with the DO healthy must succeed"
        contract.advance(1)
        with contract.do.outage(), contextlib.suppress(Exception):  # FB-8's business
            dal.delete("fb3:gone")  # leaves a delete for the DAL to catch up on
        contract.advance(1)
        contract.do.fail(times=1, ops="set")
        put = dal.put("fb3", "new")
        assert put.succeeded, f"a put the DO refused must succeed via KV: {put}"
        contract.do.recover()
        for when in ("at once", "2 s later"):
            for instance in (dal, contract.instance("B")):
                got = instance.get("fb3")
                assert got == "new", (
                    f"{when}: the put the DO refused just after an outage must be read, not "
                    f"the older 'old' or None; {instance.name} got {got!r}"
                )
            contract.advance(2)

    @clause("FB-4")
    @pytest.mark.parametrize("failure", ["fail", "outage"])
    def test_FB_4_get_falls_back_to_kv_while_do_refuses_reads(
        self, contract: ContractHarness, failure: str
    ) -> None:
        dal = contract.start("do")
        assert dal.put("fb4", {"v": 1}).succeeded, "the put with the DO healthy must succeed"
        reader = contract.instance("B")
        with do_read_failure(contract, failure):
            for instance in (reader, dal):
                mark = contract.mark()
                got, error = get_or_error(instance, "fb4")
                assert error is None, f"get must not raise while the DO refuses reads: {error!r}"
                assert got in (None, {"v": 1}), f"get must return None or the latest value: {got!r}"
                if instance is reader:  # a fresh instance has no local copy to answer from
                    kv_reads = contract.ops_since(mark, store="kv", ops=("get",), ok=None)
                    assert [r for r in kv_reads if not r.key.startswith(COORDINATION_PREFIX)], (
                        "a get the DO refused must fall back to a KV read of the data"
                    )

    @clause("FB-4")
    @pytest.mark.parametrize("failure", ["fail", "outage"])
    def test_FB_4_read_fallback_returns_the_kv_copy_not_an_older_value(
        self, contract: ContractHarness, failure: str
    ) -> None:
        dal = contract.start("do")
        assert dal.put("fb4", "old").succeeded, "the put with the DO healthy must succeed"
        contract.advance(1)
        with do_write_failure(contract, "fail"):
            assert dal.put("fb4", "new").succeeded, "a put the DO refused must succeed via KV"
        with do_read_failure(contract, failure):
            for instance in (dal, contract.instance("B")):
                got, error = get_or_error(instance, "fb4")
                assert error is None, f"get must not raise while the DO refuses reads: {error!r}"
                assert got == "new", (
                    f"{instance.name}: get must return the latest value 'new' (its put "
                    f"reported success, FB-7) from KV while the DO refuses reads, never None "
                    f"or the older 'old'; got {got!r}"
                )

    @clause("FB-4")
    @pytest.mark.parametrize("failure", ["fail", "outage"])
    @pytest.mark.parametrize("change", ["put", "delete"])
    @pytest.mark.parametrize("changer", ["writer", "idle-instance"])
    def test_FB_4_read_fallback_never_returns_a_copy_a_later_write_replaced(
        self, contract: ContractHarness, changer: str, change: str, failure: str
    ) -> None:
        dal = contract.start("do")
        other = dal
        if changer == "idle-instance":  # its view of the route predates the outage
            other = contract.instance("B")
            assert other.get("fb4") is None, "nothing was written yet"
        with do_write_failure(contract, "fail"):
            assert dal.put("fb4", "old").succeeded, "a put the DO refused must succeed via KV"
        contract.advance(1)
        # The next DO write is refused: a repair's (the copy stays, the route degraded) or,
        # for a DAL that repairs later, the put's own (which then falls back again).
        contract.do.fail(1, ops="set")
        if change == "put":
            assert other.put("fb4", "new").succeeded, "the put after the outage must succeed"
            allowed: tuple[object, ...] = ("new", None)
        else:
            assert delete_succeeded(other, "fb4"), "the delete after the outage must succeed"
            allowed = (None,)
        contract.do.recover()
        by = (
            ""
            if other is dal
            else f" by {other.name}, whose view of the route predated the outage,"
        )
        with do_read_failure(contract, failure):
            for instance in (dal, contract.instance("C")):
                got, error = get_or_error(instance, "fb4")
                assert error is None, f"get must not raise while the DO refuses reads: {error!r}"
                assert got in allowed, (
                    f"{instance.name}: get must return {' or '.join(map(repr, allowed))} while "
                    f"the DO refuses reads, never 'old', the fallback copy the {change}{by} "
                    f"replaced (a {change} the DO takes while copies wait in KV must remove its "
                    f"key's copy); got {got!r}"
                )

    @clause("FB-5")
    @pytest.mark.parametrize("writers", ["one-instance", "two-instances"])
    @pytest.mark.parametrize("gap", [0.0, 0.5, 0.999])
    def test_FB_5_two_puts_within_a_second_both_succeed_later_wins(
        self, contract: ContractHarness, gap: float, writers: str
    ) -> None:
        dal = contract.start("kv")
        other = dal if writers == "one-instance" else contract.instance("B")
        first = dal.put("fb5", "first")
        contract.advance(gap)
        second = other.put("fb5", "second")
        assert first.succeeded and second.succeeded, (
            f"two puts {gap:g} s apart must both succeed (retry KV's 429): {first}, {second}"
        )
        assert other.get("fb5") == "second", "the later put must win"
        assert json.loads(contract.kv.get("fb5")) == "second", "KV must hold the later put"
        assert contract.instance("C").get("fb5") == "second", "a fresh instance must read it"

    @clause("FB-5")
    def test_FB_5_a_burst_of_puts_to_one_key_keeps_the_last(
        self, contract: ContractHarness
    ) -> None:
        dal = contract.start("kv")
        outcomes = [dal.put("fb5", n) for n in range(4)]
        assert all(outcome.succeeded for outcome in outcomes), (
            f"every put of a burst to one key must succeed: {outcomes}"
        )
        assert dal.get("fb5") == 3, "the last put of the burst must win"
        assert json.loads(contract.kv.get("fb5")) == 3, "KV must hold the last put of the burst"

    @clause("FB-6")
    @pytest.mark.parametrize("route", ROUTES)
    def test_FB_6_both_stores_down_put_fails_get_is_never_wrong(
        self, contract: ContractHarness, route: str
    ) -> None:
        dal = contract.start(route)
        assert dal.put("fb6", "previous").succeeded, "the put with both stores up must succeed"
        assert dal.get("fb6") == "previous", "the put must be readable"
        contract.advance(1)
        with contract.do.outage(), contract.kv.outage():
            put = dal.put("fb6", "failed")
            assert not put.succeeded, f"a put with both stores down must report failure: {put}"
            late = contract.instance("late").put("fb6", "failed")  # starts with both down
            assert not late.succeeded, (
                f"a put from an instance started with both stores down must report failure: {late}"
            )
            for instance in (dal, contract.instance("B")):
                got, _ = get_or_error(instance, "fb6")
                assert got in (None, "previous"), (
                    f"{instance.name}: with both stores down get must raise, return None or the "
                    f"previous value, never the failed put's; got {got!r}"
                )
        for instance in (dal, contract.instance("C")):
            got = instance.get("fb6")
            assert got in (None, "previous"), (
                f"{instance.name}: after recovery the put that reported failure must not "
                f"appear; got {got!r}"
            )

    @clause("FB-6")
    @pytest.mark.parametrize("route", ROUTES)
    def test_FB_6_a_failed_first_put_never_appears(
        self, contract: ContractHarness, route: str
    ) -> None:
        dal = contract.start(route)
        assert dal.get("fb6:other") is None, "an unwritten key must read None"
        with contract.do.outage(), contract.kv.outage():
            put = dal.put("fb6", "failed")
            assert not put.succeeded, f"a put with both stores down must report failure: {put}"
            got, _ = get_or_error(dal, "fb6")
            assert got is None, f"a put that reported failure must not be readable: {got!r}"
        for instance in (dal, contract.instance("B")):
            got = instance.get("fb6")
            assert got is None, (
                f"{instance.name}: after recovery a put that reported failure must not appear; "
                f"got {got!r}"
            )

    @clause("FB-6")
    @pytest.mark.parametrize("route", ROUTES)
    def test_FB_6_both_stores_down_delete_fails_and_removes_nothing(
        self, contract: ContractHarness, route: str
    ) -> None:
        dal = contract.start(route)
        assert dal.put("fb6", "kept").succeeded, "the put with both stores up must succeed"
        contract.advance(1)
        with contract.do.outage(), contract.kv.outage():
            for instance in (dal, contract.instance("B")):  # B starts with both stores down
                assert not delete_succeeded(instance, "fb6"), (
                    f"{instance.name}: a delete with both stores down reached neither: it "
                    "must raise or report failure, never success"
                )
        for instance in (dal, contract.instance("B")):
            got = instance.get("fb6")
            assert got == "kept", (
                f"{instance.name}: after recovery a delete that failed must have removed "
                f"nothing; got {got!r}"
            )

    @clause("FB-7")
    def test_FB_7_put_survives_a_do_outage_after_it(self, contract: ContractHarness) -> None:
        dal = contract.start("do")
        start = contract.clock.now()
        assert dal.put("fb7", "kept", ttl=300).succeeded, "the put must succeed"
        contract.advance(10)
        with contract.do.outage():
            assert dal.put("fb7:other", "during").succeeded, "a put during the outage must succeed"
            got, error = get_or_error(dal, "fb7")
            assert error is None and got in (None, "kept"), (
                f"during the outage get must return None or the value, got {got!r} {error!r}"
            )
            contract.advance(5)
            with contextlib.suppress(Exception):  # deletes the DO refuses may fail: not FB-7
                dal.delete("fb7:gone")
        contract.advance(5)
        checked_readable(contract, dal, "fb7", "kept", start, 300)
        contract.advance_to(start + 300)
        assert dal.get("fb7") is None, "the value must be gone at its ttl"
        assert contract.instance("late").get("fb7") is None, "the value must be gone at its ttl"

    @clause("FB-7")
    def test_FB_7_put_through_a_partial_do_failure_lasts_its_ttl(
        self, contract: ContractHarness
    ) -> None:
        dal = contract.start("do")
        assert dal.put("fb7:warm", 0).succeeded, "the first put must succeed"
        contract.advance(1)
        contract.do.fail(times=1, ops="set")
        start = contract.clock.now()
        put = dal.put("fb7", "kept", ttl=300)
        end = contract.clock.now()
        assert put.succeeded, f"a put whose first DO write failed must still succeed: {put}"
        checked_readable(contract, dal, "fb7", "kept", start, 300)
        contract.advance_to(end + 300)
        assert dal.get("fb7") is None, "the value must be gone at its ttl"
        assert contract.instance("late").get("fb7") is None, "the value must be gone at its ttl"

    @clause("FB-7")
    @pytest.mark.parametrize("route", ROUTES)
    def test_FB_7_a_failed_put_loses_nothing(self, contract: ContractHarness, route: str) -> None:
        dal = contract.start(route)
        assert dal.put("fb7", "kept", ttl=600).succeeded, "the put must succeed"
        contract.advance(1)
        with contract.do.outage(), contract.kv.outage():
            put = dal.put("fb7", "lost")
            assert not put.succeeded, f"a put with both stores down must report failure: {put}"
        contract.advance(1)
        got = dal.get("fb7")
        assert got == "kept", (
            f"a put that failed is not a later write: the earlier successful put must still "
            f"be readable, got {short(got)}"
        )
        assert contract.instance("B").get("fb7") == "kept", (
            "a fresh instance must still read the earlier successful put"
        )

    @clause("FB-7")
    @pytest.mark.parametrize("failure", ["fail", "outage"])
    def test_FB_7_readable_until_ttl_across_do_write_failure(
        self, contract: ContractHarness, failure: str
    ) -> None:
        dal = contract.start("do")
        assert dal.put("fb7:warm", 0).succeeded, "the first put must succeed"
        contract.advance(1)
        start = contract.clock.now()
        with do_write_failure(contract, failure):
            put = dal.put("fb7", "kept", ttl=120)
            end = contract.clock.now()
            assert put.succeeded, f"a put the DO refused must succeed via KV: {put}"
            contract.advance(30)
        checked_readable(contract, dal, "fb7", "kept", start, 120)
        contract.advance_to(end + 120)
        assert dal.get("fb7") is None, "the value must be gone at its ttl"
        assert contract.instance("late").get("fb7") is None, "the value must be gone at its ttl"

    @clause("FB-7")
    @pytest.mark.parametrize("first", ROUTES)
    def test_FB_7_put_after_idling_through_flips_is_kept(
        self, contract: ContractHarness, first: str
    ) -> None:
        idle = contract.start(first)
        assert idle.put("fb7", "v0").succeeded, "the first put must succeed"
        assert idle.get("fb7") == "v0", "the first put must be readable"
        busy = contract.instance("B")
        route = first
        for step in range(2):  # on-off-on (or off-on-off) while the first instance idles
            route = OTHER_ROUTE[route]
            contract.use_route(route)
            contract.advance(1)
            assert busy.put("fb7:busy", step).succeeded, "the busy instance's put must succeed"
        start = contract.clock.now()
        assert idle.put("fb7", "kept", ttl=300).succeeded, "the idle instance's put must succeed"
        for reader in (idle, busy):
            got = reader.get("fb7")
            assert got == "kept", (
                f"{reader.name}: a put made by an instance that idled through two flips "
                f"reported success, so it must be readable; got {short(got)}"
            )
        checked_readable(contract, idle, "fb7", "kept", start, 300)

    @clause("FB-7")
    def test_FB_7_puts_of_an_outage_read_back_the_moment_it_ends(
        self, contract: ContractHarness
    ) -> None:
        dal = contract.start("do")
        assert dal.put("fb7:before", "fb7:before").succeeded, "the put before must succeed"
        keys = ("fb7:first", "fb7:second")
        with contract.do.outage():
            for key in keys:
                assert dal.put(key, key).succeeded, "a put during the outage must succeed via KV"
                contract.advance(0.5)
        # No time passes once the DO is back: a DAL that backs off retrying its repair has not
        # moved the copies yet, so a get finds the DO answering without them (and a key put
        # before the outage has a DO record and no copy).
        for instance in (dal, contract.instance("B")):
            for key in (*keys, "fb7:before"):
                got = instance.get(key)
                assert got == key, (
                    f"{instance.name}: the moment the DO is back, {key!r} (put "
                    f"{'before' if key == 'fb7:before' else 'during'} the outage, reported "
                    f"success) must read back {key!r}, also before any repair has moved the "
                    f"outage's puts into the DO (the DO answering 'no record' does not hide a "
                    f"fallback copy, nor a missing copy the DO's record); got {got!r}"
                )

    @clause("FB-7")
    def test_FB_7_a_put_the_do_took_outlives_an_older_copy_kv_would_not_remove(
        self, contract: ContractHarness
    ) -> None:
        dal = contract.start("do")
        with do_write_failure(contract, "fail"):
            assert dal.put("fb7", "old").succeeded, "a put the DO refused must succeed via KV"
        contract.advance(1)
        # KV refuses the next two deletes: a repair's removal of the copy and the put's own.
        contract.kv.fail(2, ops="delete")
        put = dal.put("fb7", "new")
        contract.kv.recover()
        contract.advance(2)  # past a repair's first backoff
        allowed = ("new",) if reported_success(put) else ("new", "old")
        for instance in (dal, contract.instance("B")):
            got = instance.get("fb7")
            assert got in allowed, (
                f"{instance.name}: the put of 'new' went to the DO and reported success while "
                f"KV refused to remove the older fallback copy 'old'; that copy must never "
                f"overwrite or outrank it (compare when each was written); got {got!r}"
            )

    @clause("FB-8")
    @pytest.mark.parametrize("failure", ["fail", "outage"])
    def test_FB_8_delete_succeeds_via_kv_while_do_refuses_writes(
        self, contract: ContractHarness, failure: str
    ) -> None:
        dal = contract.start("do")
        read, unread = "fb8:read", "fb8:unread"  # only the first is read during the failure
        for key in (read, unread):
            assert dal.put(key, "old").succeeded, "the put with the DO healthy must succeed"
        assert dal.get(read) == "old", "the put must be readable"
        contract.advance(1)
        with do_write_failure(contract, failure):
            for key in (read, unread):
                mark = contract.mark()
                try:
                    result = dal.delete(key)
                except Exception as exc:
                    raise AssertionError(
                        f"a delete must succeed via KV while the DO refuses writes; it raised "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                assert reported_success(result), (
                    f"a delete must succeed via KV while the DO refuses writes: {result!r}"
                )
                assert data_kv_writes(contract, mark), (
                    "a delete the DO refused must be recorded in KV"
                )
            assert dal.get(read) is None, "the delete must be read while the DO is down"
            assert contract.instance("B").get(unread) is None, (
                "a fresh instance must read the delete while the DO is down, not the DO copy"
            )
        for when in ("at once", "2 s"):
            for key in (unread, read):
                for instance in (dal, contract.instance("C")):
                    got = instance.get(key)
                    assert got is None, (
                        f"{when} after the DO recovers, {instance.name}.get({key!r}) must "
                        f"return None (deleted while it was down), not the older {got!r}"
                    )
            contract.advance(2)

    @clause("FB-9")
    def test_FB_9_every_put_of_a_long_outage_reads_back_after_it(
        self, contract: ContractHarness
    ) -> None:
        if contract.kv.plan == "free":  # more than 1,000 KV writes a day need a paid plan
            contract.kv.quota = DailyQuota("paid")
        dal = contract.start("do")
        keys = [f"fb9:{n:04d}" for n in range(KV_MAX_LIST_LIMIT + 1)]
        with contract.do.outage():
            for key in keys:
                put = dal.put(key, key)
                assert put.succeeded, f"a put during the outage must succeed via KV: {put}"
        contract.advance(1)
        reader = contract.instance("B")
        missing = [key for key in keys if reader.get(key) != key]
        assert missing == [], (
            f"once the DO is back, all {len(keys)} puts made during the outage (more than one "
            f"KV list page) must read back; {len(missing)} did not: {missing[:5]}"
        )

    @clause("FB-10")
    def test_FB_10_an_instance_in_use_keeps_the_do_route_through_a_kv_outage(
        self, contract: ContractHarness
    ) -> None:
        dal = contract.start("do")
        assert dal.put("fb10", "before").succeeded, "the put with both stores healthy must succeed"
        assert dal.get("fb10") == "before", "the put must be readable"
        contract.advance(1)
        with contract.kv.outage():
            # Twice: at once, and after any view of the route the DAL keeps has aged out.
            for when, step in (("at once", 0), ("2 minutes later", 120)):
                contract.advance(step)
                value = f"during, {when}"
                put = dal.put("fb10", value)
                assert reported_success(put), (
                    f"{when} into a KV outage, with the DO healthy, a put on an instance that "
                    f"has served calls must succeed on the DO (KV is the fallback, not a "
                    f"dependency of the DO route); got {put!r}"
                )
                got, error = get_or_error(dal, "fb10")
                assert error is None and got == value, (
                    f"{when} into a KV outage, get must read the put {value!r} from the DO; "
                    f"got {got!r} {error!r}"
                )
                assert delete_succeeded(dal, "fb10:other"), (
                    f"{when} into a KV outage, a delete on the DO route must succeed"
                )
        got = contract.instance("B").get("fb10")
        assert got == "during, 2 minutes later", (
            f"after the KV outage, a fresh instance must read the last put; got {got!r}"
        )
