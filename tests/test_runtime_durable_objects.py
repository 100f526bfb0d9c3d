"""A user's Durable Object class behind a ``DurableObjectNamespace``: ids, stubs, RPC, fetch,
``blockConcurrencyWhile``, ``waitUntil``, restarts, faults and the ledger."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.do_entries import DurableObjectError
from pytest_dualcache.runtime.durable_objects import (
    DurableObjectNamespace,
    DurableObjectRuntimeError,
    build_namespaces,
)
from pytest_dualcache.runtime.entrypoints import DurableObject
from pytest_dualcache.runtime.ffi import DataCloneError, Date, JsException
from pytest_dualcache.runtime.http import Request, Response
from pytest_dualcache.runtime.objects import DurableObjectStub

run = asyncio.run


class Counter(DurableObject):
    """A counter kept in storage, loaded once per instance inside blockConcurrencyWhile."""

    constructed = 0

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        type(self).constructed += 1
        self.value = -1

        async def load() -> None:
            await asyncio.sleep(0)  # a real suspension: other calls must wait for it
            self.value = await ctx.storage.get("value") or 0

        ctx.blockConcurrencyWhile(load)

    async def increment(self, by: int = 1) -> int:
        self.value += by
        await self.ctx.storage.put("value", self.value)
        return self.value

    def peek(self) -> int:  # a sync RPC method
        return self.value

    def echo(self, value: Any) -> Any:
        return value

    def mutate(self, record: dict[str, Any]) -> dict[str, Any]:
        record["touched"] = True
        return record

    def unclonable(self) -> Any:
        return object()

    def now(self) -> list[float]:
        return [time.time(), Date.now()]

    async def fetch(self, request: Request) -> Response:
        return Response(f"{request.method} {request.url} value={self.value}")


class NotAResponse(DurableObject):
    async def fetch(self, request: Request) -> str:
        return "plain text"


class BrokenLoad(DurableObject):
    attempts = 0

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        type(self).attempts += 1

        async def load() -> None:
            if type(self).attempts == 1:
                raise RuntimeError("storage hiccup")

        ctx.blockConcurrencyWhile(load)

    def ping(self) -> str:
        return "pong"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def namespace(clock) -> DurableObjectNamespace:
    Counter.constructed = 0
    return DurableObjectNamespace(Counter, {"NAME": "env"}, clock, binding="COUNTER")


# --- ids -----------------------------------------------------------------------------------------


def test_id_from_name_is_stable_and_64_hex_digits(namespace):
    first, again = namespace.idFromName("alpha"), namespace.idFromName("alpha")
    assert first == again and first.equals(again) and hash(first) == hash(again)
    assert len(first.toString()) == 64 and int(first.toString(), 16) >= 0
    assert str(first) == first.toString() and first.name == "alpha"
    assert namespace.idFromName("beta") != first


def test_ids_belong_to_their_namespace(namespace, clock):
    other = DurableObjectNamespace(BrokenLoad, None, clock)
    assert other.idFromName("alpha") != namespace.idFromName("alpha")
    foreign = other.idFromName("alpha").toString()
    with pytest.raises(TypeError, match=r"Durable Object ID is not valid for this namespace\.$"):
        namespace.idFromString(foreign)
    with pytest.raises(TypeError, match="not valid for this namespace"):
        namespace.get(other.idFromName("alpha"))


def test_id_from_string_round_trips_and_checks_its_input(namespace):
    made = namespace.newUniqueId()
    parsed = namespace.idFromString(made.toString())
    assert parsed == made and parsed.name is None
    for bad in ["abc", "g" * 64, 123]:
        with pytest.raises(TypeError, match="Invalid Durable Object ID: must be 64 hex digits"):
            namespace.idFromString(bad)  # type: ignore[arg-type]


def test_new_unique_ids_differ(namespace):
    ids = {namespace.newUniqueId().toString() for _ in range(50)}
    assert len(ids) == 50


def test_get_takes_an_id_not_a_string(namespace):
    with pytest.raises(TypeError, match="parameter 1 is not of type 'DurableObjectId'"):
        namespace.get("alpha")  # type: ignore[arg-type]


# --- RPC -----------------------------------------------------------------------------------------


def test_rpc_reaches_one_live_instance_made_on_first_call(namespace):
    stub = namespace.getByName("alpha")
    assert isinstance(stub, DurableObjectStub) and stub.name == "alpha"
    assert Counter.constructed == 0  # a stub sends nothing

    async def calls() -> list[int]:
        return [await stub.increment(2), await stub.increment(), await stub.peek()]

    assert run(calls()) == [2, 3, 3]
    assert Counter.constructed == 1
    assert namespace.instance("alpha").env == {"NAME": "env"}


def test_arguments_and_results_are_copies(namespace):
    record = {"id": 1}
    returned = run(namespace.getByName("a").mutate(record))
    assert record == {"id": 1} and returned == {"id": 1, "touched": True}
    assert isinstance(run(namespace.getByName("a").echo(b"raw")), memoryview)


def test_unclonable_arguments_and_results_are_refused(namespace):
    stub = namespace.getByName("a")
    with pytest.raises(DataCloneError, match='type "VirtualClock"'):
        run(stub.echo(VirtualClock()))
    with pytest.raises(TypeError, match="<class 'tuple'> cannot be sent over RPC"):
        run(stub.echo((1, 2)))
    with pytest.raises(DataCloneError, match='type "object"'):
        run(stub.unclonable())


def test_unknown_methods_and_keyword_arguments(namespace):
    stub = namespace.getByName("a")
    with pytest.raises(TypeError, match=r"^TypeError: Method nope does not exist$"):
        run(stub.nope())
    with pytest.raises(TypeError, match="positional arguments only"):
        stub.increment(by=2)
    with pytest.raises(AttributeError):
        _ = stub.__wrapped__


# --- fetch ---------------------------------------------------------------------------------------


def test_stub_fetch_with_a_url_or_a_request(namespace):
    stub = namespace.getByName("a")
    response = run(stub.fetch("https://counter.example/value", method="POST", body="x"))
    assert run(response.text()) == "POST https://counter.example/value value=0"
    again = run(stub.fetch(Request("https://counter.example/")))
    assert again.status == 200 and again.content.startswith(b"GET ")


def test_a_fetch_that_returns_no_response_is_workerds_type_error(clock):
    namespace = DurableObjectNamespace(NotAResponse, None, clock)
    with pytest.raises(TypeError, match="did not resolve to 'Response'"):
        run(namespace.getByName("a").fetch("https://x.example/"))


# --- blockConcurrencyWhile, waitUntil, restart ---------------------------------------------------


def test_calls_wait_for_the_constructors_block_concurrency_while(namespace):
    async def calls() -> list[int]:
        stub = namespace.getByName("a")
        await stub.increment(5)
        namespace.restart("a")
        return list(await asyncio.gather(stub.peek(), stub.increment(1), stub.peek()))

    assert run(calls()) == [5, 6, 6]  # never the -1 the constructor starts from


def test_an_instance_made_from_sync_code_runs_its_block_at_once(namespace):
    assert namespace.instance("fresh").value == 0


def test_awaiting_block_concurrency_while_gives_the_callbacks_result(namespace):
    ctx = namespace.instance("a").ctx

    async def work() -> Any:
        async def callback() -> int:
            return 42

        return await ctx.blockConcurrencyWhile(callback), await ctx.blockConcurrencyWhile(
            lambda: "sync"
        )

    assert run(work()) == (42, "sync")


def test_a_failed_block_concurrency_while_resets_the_object(clock):
    BrokenLoad.attempts = 0
    namespace = DurableObjectNamespace(BrokenLoad, None, clock)
    stub = namespace.getByName("a")

    async def calls() -> str:
        with pytest.raises(RuntimeError, match="storage hiccup"):
            await stub.ping()
        return await stub.ping()

    assert run(calls()) == "pong"
    assert BrokenLoad.attempts == 2


def test_wait_until_work_runs_and_settle_waits_for_it(namespace):
    ctx = namespace.instance("a").ctx
    done: list[str] = []

    async def later(fail: bool) -> None:
        await asyncio.sleep(0)
        if fail:
            raise ValueError("background failure")
        done.append("ran")

    async def handler() -> None:
        ctx.waitUntil(later(False))
        ctx.waitUntil(later(True))
        assert ctx.pending == 2
        with pytest.raises(ValueError, match="background failure"):
            await ctx.settle()

    run(handler())
    assert done == ["ran"]
    ctx.waitUntil(later(False))  # no loop running: done at once
    assert done == ["ran", "ran"]


def test_restart_keeps_storage_and_makes_a_new_instance(namespace):
    stub = namespace.getByName("a")
    run(stub.increment(4))
    before = namespace.instance("a")
    namespace.restart("a")
    assert namespace.instance("a") is not before
    assert run(stub.peek()) == 4
    assert namespace.contents("a") == {"value": 4}
    namespace.restart()
    assert Counter.constructed == 2 and run(stub.increment()) == 5


# --- faults --------------------------------------------------------------------------------------


def test_fail_makes_the_next_calls_fail_in_the_caller(namespace):
    stub = namespace.getByName("a")
    namespace.fail(times=1)
    with pytest.raises(DurableObjectRuntimeError) as refused:
        run(stub.increment())
    error = refused.value
    assert str(error) == "Error: Durable Object is overloaded. Too many requests queued."
    assert error.overloaded and error.retryable
    assert isinstance(error, DurableObjectError) and isinstance(error, JsException)
    assert run(stub.increment()) == 1  # worn off; the failed call changed nothing


def test_an_outage_of_fetch_only_disconnects_fetch(namespace):
    stub = namespace.getByName("a")
    with namespace.outage(error="disconnected", ops="fetch"):
        with pytest.raises(DurableObjectError, match=r"^Error: Network connection lost\.$"):
            run(stub.fetch("https://a.example/"))
        assert run(stub.increment()) == 1
    assert run(stub.fetch("https://a.example/")).status == 200


# --- the ledger, the clock -----------------------------------------------------------------------


def test_calls_and_storage_operations_are_rows_with_their_callers(namespace):
    stub = namespace.getByName("a")
    run(stub.increment(2))
    namespace.fail(times=1)
    with pytest.raises(DurableObjectError):
        run(stub.peek())
    this_test = "test_calls_and_storage_operations_are_rows_with_their_callers"
    rows = [(r.op, r.key, r.ok, r.call_site.function) for r in namespace.ledger.records]
    assert rows == [
        ("get", "value", True, "load"),
        ("put", "value", True, "increment"),
        ("rpc", "a:increment", True, this_test),
        ("rpc", "a:peek", False, this_test),
    ]
    assert namespace.ledger.kind == "do" and namespace.ledger.store == "COUNTER"
    assert namespace.ledger.records[-1].error_type == "DurableObjectRuntimeError"


def test_a_task_made_from_a_stub_call_is_attributed_to_its_maker(namespace):
    async def maker() -> None:
        await asyncio.create_task(namespace.getByName("a").peek())

    run(maker())
    assert namespace.ledger.records[-1].call_site.function == "maker"


def test_code_in_a_durable_object_reads_the_virtual_clock(namespace, clock):
    stub = namespace.getByName("a")
    clock.advance(90)
    with clock.freeze():
        wall, millis = run(stub.now())
    assert wall == clock.now() and millis == int(clock.now() * 1000)


# --- building namespaces -------------------------------------------------------------------------


def test_build_namespaces_from_a_binding_map(clock):
    env = object()
    built = build_namespaces(
        {"COUNTER": (Counter, "new_classes"), "OTHER": (BrokenLoad, "new_sqlite_classes")},
        env=env,
        clock=clock,
    )
    assert {name: ns.storage_backend for name, ns in built.items()} == {
        "COUNTER": "new_classes",
        "OTHER": "new_sqlite_classes",
    }
    assert built["COUNTER"].env is env and built["COUNTER"].clock is clock
    assert built["COUNTER"].ledger.store == "COUNTER"
    with pytest.raises(ValueError, match="storage_backend takes one of"):
        build_namespaces({"X": (Counter, "new_kv_classes")}, env=env, clock=clock)
    assert "COUNTER of Counter" in repr(built["COUNTER"])
