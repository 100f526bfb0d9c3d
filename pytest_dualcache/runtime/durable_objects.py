"""A team's own Durable Object class, run in-process: its namespace, calls and alarms.

``DurableObjectNamespace`` is the binding (``env.COUNTER``): ``idFromName``, ``newUniqueId``,
``idFromString``, ``get``/``getByName``. Awaiting ``stub.method(*args)`` calls the method on
the one live instance for that id, made on first use with ``(ctx, env)``; arguments and
results are structured clones (``clone``). Ids are workerd's: 32 bytes as 64 hex digits, the
second half a MAC of the first under the namespace's key, so an id from another namespace
is refused. Alarms fire on the virtual clock (``VirtualClock.call_at``); one that raises is
retried with Cloudflare's backoff. ``restart()`` drops live instances and keeps storage.
``fail()``/``outage()`` make calls fail in the caller with the runtime's errors; ``ops``
names ``"rpc"`` (every method), ``"fetch"`` or the class's methods by name (``ops="set"``:
only ``stub.set(...)`` fails, as a DO cache's ``fail(ops="set")``). Every call
is a row in ``ledger`` (kind "do") when it completes: ``rpc`` (key ``name:method``),
``fetch`` (``name:METHOD url``), ``alarm`` (``name``), beside the storage rows.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any

from pytest_dualcache.clock import TimerHandle, VirtualClock
from pytest_dualcache.do_entries import DurableObjectError
from pytest_dualcache.faults import FaultInjector, InjectsFaults
from pytest_dualcache.ledger import Caller, Ledger, capture_caller, require_kind
from pytest_dualcache.limits import (
    DO_ALARM_FIRST_RETRY_DELAY_S,
    DO_ALARM_MAX_RETRIES,
    DO_DEFAULT_STORAGE_BACKEND,
    DO_MESSAGES,
    DO_RUNTIME_MESSAGES,
    DO_STORAGE_LIMITS,
)

from .clone import clone_for_rpc, clone_for_storage
from .entrypoints import relaxed_call
from .ffi import RUNTIME_CLOCK, JsDict, JsException, JsTypeError
from .http import FetchResponse, Request
from .objects import DurableObjectId, DurableObjectState, DurableObjectStub, LiveObject
from .storage import DurableObjectStorage, StoredObject, record_as

#: What ``fail()``/``outage()`` can make fail: method calls and ``stub.fetch``.
OPERATIONS = frozenset({"rpc", "fetch"})


class DurableObjectRuntimeError(DurableObjectError, JsException):
    """An error of the Durable Objects runtime itself, with workerd's flags: ``overloaded``
    (do not retry), ``retryable`` (safe to retry an idempotent call)."""


#: The failures ``fail(error=...)`` injects by name.
RUNTIME_ERRORS: dict[str, Callable[[str], BaseException]] = {
    "overloaded": lambda op: DurableObjectRuntimeError(
        DO_MESSAGES["overloaded"], overloaded=True, retryable=True
    ),
    "disconnected": lambda op: DurableObjectRuntimeError(
        DO_RUNTIME_MESSAGES["disconnected"], retryable=True
    ),
}


class DurableObjectNamespace(InjectsFaults):
    """A Durable Object binding over a user's class (``cls(ctx, env)``), on one clock.

    ``storage_backend`` is the class's migration key, ``new_sqlite_classes`` (default) or
    ``new_classes``; its limits are in ``limits.DO_STORAGE_LIMITS``.
    """

    def __init__(
        self,
        cls: type,
        env: Any,
        clock: VirtualClock,
        *,
        binding: str | None = None,
        storage_backend: str = DO_DEFAULT_STORAGE_BACKEND,
        ledger: Ledger | None = None,
        unique_key: str | None = None,
    ) -> None:
        if storage_backend not in DO_STORAGE_LIMITS:
            raise ValueError(
                f"storage_backend takes one of {sorted(DO_STORAGE_LIMITS)} (the wrangler "
                f"migration key), got {storage_backend!r}"
            )
        self.cls = cls
        self.env = env
        self.binding = binding or cls.__name__
        self.storage_backend = storage_backend
        self._clock = clock
        self._ledger = (
            Ledger(self.binding, kind="do")
            if ledger is None
            else require_kind(ledger, "do", "DurableObjectNamespace")
        )
        self.faults = FaultInjector(OPERATIONS | rpc_methods(cls), RUNTIME_ERRORS)
        key_source = unique_key or f"{cls.__module__}.{cls.__qualname__}"
        self._key = hashlib.sha256(key_source.encode()).digest()
        self._unique_ids = 0
        self._names: dict[str, str] = {}  # hex id -> the name it was made from
        self._ids_by_name: dict[str, DurableObjectId] = {}
        self._stored: dict[str, StoredObject] = {}
        self._live_objects: dict[str, LiveObject] = {}
        self._alarm_timers: dict[str, TimerHandle] = {}

    @property
    def ledger(self) -> Ledger:
        """Every call and storage operation on this namespace's objects, with its caller."""
        return self._ledger

    @property
    def clock(self) -> VirtualClock:
        """The virtual clock alarms fire on and ``Date.now()`` reads."""
        return self._clock

    # --- the binding's API (JavaScript names) ---------------------------------------------------

    def idFromName(self, name: str) -> DurableObjectId:
        """The id for ``name``: the same name always gives the same id."""
        if not isinstance(name, str):
            raise JsTypeError(f"idFromName() takes a string, got {type(name).__name__}")
        known = self._ids_by_name.get(name)
        if known is not None:  # a Worker asks per request; the MACs need not be redone
            return known
        head = hmac.new(self._key, name.encode("utf-8", "surrogatepass"), "sha256").digest()
        object_id = self._ids_by_name[name] = self._id(head[:16], name)
        self._names[object_id.toString()] = name
        return object_id

    def newUniqueId(
        self, options: Mapping[str, Any] | None = None, **keywords: Any
    ) -> DurableObjectId:
        """A new id no other call returns (``jurisdiction`` is accepted and ignored)."""
        self._unique_ids += 1
        seed = self._key + b"unique" + self._unique_ids.to_bytes(8, "big")
        return self._id(hashlib.sha256(seed).digest()[:16], None)

    def idFromString(self, text: str) -> DurableObjectId:
        """The id written as ``text`` (64 hex digits), if it belongs to this namespace."""
        try:
            raw = bytes.fromhex(text) if isinstance(text, str) and len(text) == 64 else b""
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise JsTypeError(DO_RUNTIME_MESSAGES["invalid_id"])
        if not hmac.compare_digest(raw[16:], self._mac(raw[:16])):
            raise JsTypeError(DO_RUNTIME_MESSAGES["foreign_id"])
        return DurableObjectId(raw, self._key, None)

    def get(
        self, object_id: DurableObjectId, options: Mapping[str, Any] | None = None
    ) -> DurableObjectStub:
        """The stub of the object with ``object_id`` (no call is made until one is awaited)."""
        if not isinstance(object_id, DurableObjectId):
            raise JsTypeError(
                "Failed to execute 'get' on 'DurableObjectNamespace': parameter 1 is not of "
                "type 'DurableObjectId'."
            )
        if object_id._namespace_key != self._key:
            raise JsTypeError(DO_RUNTIME_MESSAGES["foreign_id"])
        return DurableObjectStub(self, object_id)

    def getByName(self, name: str, options: Mapping[str, Any] | None = None) -> DurableObjectStub:
        """``get(idFromName(name))``."""
        return self.get(self.idFromName(name), options)

    # --- for tests ------------------------------------------------------------------------------

    def restart(self, target: str | DurableObjectId | None = None) -> None:
        """Evict the live instance for ``target`` (a name or id; None: every one), as a
        deploy or an eviction does. Its storage and alarm stay; the next call makes a new one."""
        hexes = list(self._live_objects) if target is None else [self._hex(target)]
        for object_hex in hexes:
            live = self._live_objects.pop(object_hex, None)
            if live is not None:
                live.state._close()

    def close(self) -> None:
        """Evict every instance and cancel every alarm: the env this namespace belongs to is
        gone, and its alarms must not fire on a clock a later env reuses."""
        self.restart()
        for timer in self._alarm_timers.values():
            timer.cancel()
        self._alarm_timers.clear()

    def instance(self, target: str | DurableObjectId) -> Any:
        """The live instance for ``target`` (a name or id), made now if there is none."""
        return self._live(self._object_id(target)).instance

    def contents(self, target: str | DurableObjectId) -> dict[str, Any]:
        """A copy of what ``target`` (a name or id) has stored, in key order."""
        stored = self._stored.get(self._hex(target))
        if stored is None:
            return {}
        return {key: clone_for_storage(stored.values[key][0]) for key in sorted(stored.values)}

    def alarm_of(self, target: str | DurableObjectId) -> int | None:
        """The alarm of ``target`` (a name or id) in epoch milliseconds, or None."""
        stored = self._stored.get(self._hex(target))
        return None if stored is None else stored.alarm_ms

    def label(self, object_id: DurableObjectId) -> str:
        """How ledger rows name an object: the name it was made from, else its hex id."""
        return self._names.get(object_id.toString(), object_id.toString())

    # --- calls ----------------------------------------------------------------------------------

    async def _rpc(
        self, object_id: DurableObjectId, method: str, args: tuple[Any, ...], caller: Caller
    ) -> Any:
        """An RPC call: faults, argument clone, the method on the live instance, result clone."""
        now = self._clock.now()
        key = f"{self.label(object_id)}:{method}"
        try:
            self._admit("rpc", method)
            copied = [clone_for_rpc(arg) for arg in args]
            live = self._live(object_id)
            function = getattr(live.instance, method, None)
            if not callable(function):
                raise JsTypeError(DO_RUNTIME_MESSAGES["no_method"].format(name=method))
            result = clone_for_rpc(await self._run(live, partial(function, *copied)))
        except Exception as exc:
            record_as(caller, self._ledger, "rpc", key, now, 0, False, exc)
            raise
        record_as(caller, self._ledger, "rpc", key, now, 0, True)
        return result

    async def _fetch(
        self,
        object_id: DurableObjectId,
        resource: str | Request,
        init: dict[str, Any],
        caller: Caller,
    ) -> FetchResponse:
        """``stub.fetch``: the object's ``fetch(request)``; the caller gets its own response."""
        now = self._clock.now()
        key = f"{self.label(object_id)}:{resource}"
        try:
            request = Request(resource, **init)
            key = f"{self.label(object_id)}:{request._method} {request.url}"
            self._admit("fetch")
            live = self._live(object_id)
            handler = getattr(live.instance, "fetch", None)
            if not callable(handler):
                raise JsTypeError(DO_RUNTIME_MESSAGES["no_method"].format(name="fetch"))
            response = await self._run(live, partial(relaxed_call, handler, request))
            if not isinstance(response, FetchResponse):
                raise JsTypeError(
                    "Incorrect type for Promise: the Promise did not resolve to 'Response'."
                )
            copy = response.clone()
        except Exception as exc:
            record_as(caller, self._ledger, "fetch", key, now, 0, False, exc)
            raise
        record_as(caller, self._ledger, "fetch", key, now, len(copy.content), True)
        return copy

    def _admit(self, op: str, method: str | None = None) -> None:
        """Raise the injected failure of ``op`` (or of the RPC ``method``), if any."""
        if self.faults.active:
            error = (self.faults.take(method) if method else None) or self.faults.take(op)
            if error is not None:
                raise error

    async def _run(self, live: LiveObject, call: Callable[[], Any]) -> Any:
        """``call()`` on the object once its door is open, awaited if it returns an awaitable.

        A ``blockConcurrencyWhile`` callback that failed resets the object, as on Cloudflare.
        """
        try:
            await live.state._wait_for_blockers()
        except BaseException:
            self._evict(live)
            raise
        with self._running():
            result = call()
            if isinstance(result, Awaitable):
                result = await result
        return result

    @contextmanager
    def _running(self) -> Iterator[None]:
        """User code runs with ``js.Date.now()`` reading this namespace's clock."""
        token = RUNTIME_CLOCK.set(self._clock)
        try:
            yield
        finally:
            RUNTIME_CLOCK.reset(token)

    # --- objects ----------------------------------------------------------------------------------

    def _live(self, object_id: DurableObjectId) -> LiveObject:
        """The live instance for ``object_id``, constructed with ``(ctx, env)`` if needed."""
        object_hex = object_id.toString()
        live = self._live_objects.get(object_hex)
        if live is not None:
            return live
        stored = self._stored.setdefault(object_hex, StoredObject())
        storage = DurableObjectStorage(
            stored,
            backend=self.storage_backend,
            clock=self._clock,
            ledger=self._ledger,
            has_alarm_handler=callable(getattr(self.cls, "alarm", None)),
            on_alarm=partial(self._schedule_alarm, object_id, retry_count=0),
        )
        live = self._live_objects[object_hex] = LiveObject(DurableObjectState(object_id, storage))
        try:
            with self._running():
                live.instance = self.cls(live.state, self.env)
        except BaseException:
            self._evict(live)
            raise
        return live

    def _evict(self, live: LiveObject) -> None:
        object_hex = live.state.id.toString()
        if self._live_objects.get(object_hex) is live:
            del self._live_objects[object_hex]
        live.state._close()

    def _id(self, head: bytes, name: str | None) -> DurableObjectId:
        return DurableObjectId(head + self._mac(head), self._key, name)

    def _mac(self, head: bytes) -> bytes:
        """The id's second half: a MAC of its first under the namespace key (as workerd)."""
        return hmac.new(self._key, head, "sha256").digest()[:16]

    def _object_id(self, target: str | DurableObjectId) -> DurableObjectId:
        if isinstance(target, DurableObjectId):
            return self.get(target).id
        return self.idFromName(target)

    def _hex(self, target: str | DurableObjectId) -> str:
        return self._object_id(target).toString()

    # --- alarms ---------------------------------------------------------------------------------

    def _schedule_alarm(
        self, object_id: DurableObjectId, millis: int | None, retry_count: int
    ) -> None:
        """(Re)arm the clock timer of ``object_id``'s alarm; None disarms it."""
        object_hex = object_id.toString()
        previous = self._alarm_timers.pop(object_hex, None)
        if previous is not None:
            previous.cancel()
        if millis is None:
            return
        self._alarm_timers[object_hex] = self._clock.call_at(
            millis / 1000,
            partial(self._fire_alarm, object_id, millis, retry_count),
            name=f"alarm() of {self.binding} {self.label(object_id)!r}",
        )

    def _fire_alarm(self, object_id: DurableObjectId, millis: int, retry_count: int) -> Any:
        """Run the object's ``alarm(alarm_info)``: sync handlers now, async ones as the
        coroutine returned (the clock awaits it, or runs it on a fresh event loop)."""
        object_hex = object_id.toString()
        self._alarm_timers.pop(object_hex, None)
        stored = self._stored[object_hex]
        stored.alarm_ms = None  # running: getAlarm() is None unless the handler sets one
        caller, now = capture_caller(stacklevel=2), self._clock.now()
        info = JsDict(retryCount=retry_count, isRetry=retry_count > 0)
        finish = partial(self._alarm_finished, object_id, retry_count, caller, now)
        try:
            live = self._live(object_id)
            handler = live.instance.alarm
            if live.state.blocked or inspect.iscoroutinefunction(handler):
                return _run_until_it_waits(
                    self._alarm_async(live, partial(relaxed_call, handler, info), finish)
                )
            with self._running():
                result = relaxed_call(handler, info)
        except Exception as exc:
            finish(exc)
            return None
        if isinstance(result, Awaitable):
            return _run_until_it_waits(self._alarm_async(live, lambda: result, finish))
        finish(None)
        return None

    async def _alarm_async(
        self, live: LiveObject, call: Callable[[], Any], finish: Callable[[Exception | None], None]
    ) -> None:
        try:
            await self._run(live, call)
        except Exception as exc:
            finish(exc)
        else:
            finish(None)

    def _alarm_finished(
        self,
        object_id: DurableObjectId,
        retry_count: int,
        caller: Caller,
        at: float,
        error: Exception | None,
    ) -> None:
        """The alarm's ledger row; a failure is retried from 2 s, doubling, 6 times at most,
        unless the handler set a new alarm before it failed."""
        record_as(caller, self._ledger, "alarm", self.label(object_id), at, 0, error is None, error)
        stored = self._stored[object_id.toString()]
        if error is None or retry_count >= DO_ALARM_MAX_RETRIES or stored.alarm_ms is not None:
            return
        delay_ms = round(DO_ALARM_FIRST_RETRY_DELAY_S * 1000 * 2**retry_count)
        stored.alarm_ms = int(self._clock.now() * 1000) + delay_ms
        self._schedule_alarm(object_id, stored.alarm_ms, retry_count + 1)

    def __repr__(self) -> str:
        return (
            f"<DurableObjectNamespace {self.binding} of {self.cls.__name__}, "
            f"{len(self._live_objects)} live, {self.storage_backend}>"
        )


def _run_until_it_waits(coroutine: Coroutine[Any, Any, Any]) -> Awaitable[Any] | None:
    """Run ``coroutine`` as far as it goes without waiting: None when it finished (an alarm
    over storage calls, which never wait, finishes so even inside a running event loop, where
    the clock could not start another), else an awaitable of the rest for the clock to run."""
    try:
        yielded = coroutine.send(None)
    except StopIteration:
        return None
    return _awaited(_resumed(coroutine, yielded))


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


@types.coroutine
def _resumed(coroutine: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """The rest of a coroutine that stopped at ``yielded``, as an awaitable."""
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:
            try:
                yielded = coroutine.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                yielded = coroutine.send(sent)
            except StopIteration as done:
                return done.value


def rpc_methods(cls: type) -> frozenset[str]:
    """The public methods of ``cls`` a stub can call (its handlers ``fetch``/``alarm`` aside)."""
    return frozenset(
        name
        for name in dir(cls)
        if not name.startswith("_")
        and name not in ("fetch", "alarm")
        and callable(getattr(cls, name, None))
    )


def build_namespaces(
    bindings: Mapping[str, tuple[type, str]], *, env: Any, clock: VirtualClock
) -> dict[str, DurableObjectNamespace]:
    """One namespace per binding name, from ``{binding: (user_class, storage_backend)}``
    (the backend a wrangler migration key: ``new_classes`` or ``new_sqlite_classes``)."""
    return {
        binding: DurableObjectNamespace(cls, env, clock, binding=binding, storage_backend=backend)
        for binding, (cls, backend) in bindings.items()
    }
