"""What a Worker and a Durable Object hold of one object: its id, its ``ctx``, a stub.

``DurableObjectId`` is workerd's: 32 bytes shown as 64 hex digits. ``DurableObjectState``
is the object's ``ctx``: ``id``, ``storage``, ``waitUntil`` and ``blockConcurrencyWhile``,
whose callback runs before any other call reaches the object. ``DurableObjectStub`` turns
``await stub.method(*args)`` and ``await stub.fetch(...)`` into calls on the namespace,
attributed to the code that made them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from pytest_dualcache.ledger import capture_caller

from .entrypoints import ExecutionContext
from .http import FetchResponse, Request
from .storage import DurableObjectStorage, Settled

if TYPE_CHECKING:
    from .durable_objects import DurableObjectNamespace


class DurableObjectId:
    """A Durable Object's id: ``toString()`` (64 hex digits), ``name`` (None if unnamed)."""

    __slots__ = ("_hex", "_namespace_key", "name")

    def __init__(self, raw: bytes, namespace_key: bytes, name: str | None) -> None:
        self._hex = raw.hex()
        self._namespace_key = namespace_key
        self.name = name

    def toString(self) -> str:
        """The id as 64 lower-case hex digits."""
        return self._hex

    def equals(self, other: object) -> bool:
        """Whether ``other`` is the same id."""
        return isinstance(other, DurableObjectId) and other._hex == self._hex

    def __eq__(self, other: object) -> bool:
        return self.equals(other)

    def __hash__(self) -> int:
        return hash(self._hex)

    def __str__(self) -> str:
        return self._hex

    def __repr__(self) -> str:
        named = f" name={self.name!r}" if self.name is not None else ""
        return f"<DurableObjectId {self._hex}{named}>"


class DurableObjectState(ExecutionContext):
    """A Durable Object's ``ctx``: ``id``, ``storage``, ``blockConcurrencyWhile``, ``waitUntil``."""

    def __init__(self, object_id: DurableObjectId, storage: DurableObjectStorage) -> None:
        super().__init__()
        self.id = object_id
        self.storage = storage
        self._blockers: list[asyncio.Future[Any]] = []

    def blockConcurrencyWhile(self, callback: Callable[[], Any]) -> Awaitable[Any]:
        """Run ``callback`` before any other call reaches this object; await its result.

        With no event loop running (the object made from sync code) it runs to completion
        at once; otherwise calls wait at the object's door until it has finished.
        """
        result = callback() if callable(callback) else callback
        if not isinstance(result, Awaitable):
            return Settled(result)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return Settled(asyncio.run(_awaited(result)))
        blocker = asyncio.ensure_future(result)
        self._blockers.append(blocker)
        return blocker

    @property
    def blocked(self) -> bool:
        """Whether a ``blockConcurrencyWhile`` callback has yet to finish."""
        return any(not blocker.done() for blocker in self._blockers)

    async def _wait_for_blockers(self) -> None:
        """Wait at the door: every pending ``blockConcurrencyWhile``, in order."""
        while self._blockers:
            blocker = self._blockers[0]
            await blocker
            if self._blockers and self._blockers[0] is blocker:
                self._blockers.pop(0)

    def _close(self) -> None:
        for blocker in self._blockers:
            blocker.cancel()
        self._blockers.clear()


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class LiveObject:
    """One running instance of a Durable Object class and its ``ctx``."""

    __slots__ = ("instance", "state")

    def __init__(self, state: DurableObjectState) -> None:
        self.state = state
        self.instance: Any = None


class DurableObjectStub:
    """A stub: ``await stub.method(*args)`` is an RPC call, ``await stub.fetch(...)`` a request."""

    __slots__ = ("_namespace", "id")

    def __init__(self, namespace: DurableObjectNamespace, object_id: DurableObjectId) -> None:
        self._namespace = namespace
        self.id = object_id

    @property
    def name(self) -> str | None:
        """The name the id was made from (``getByName``/``idFromName``), else None."""
        return self.id.name

    def fetch(self, resource: str | Request, **init: Any) -> Awaitable[FetchResponse]:
        """``await stub.fetch(url_or_request, method=..., headers=..., body=...)``."""
        return self._namespace._fetch(self.id, resource, init, capture_caller(stacklevel=2))

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method.startswith("__") and method.endswith("__"):
            raise AttributeError(method)
        return partial(_call_method, self._namespace, self.id, method)

    def __repr__(self) -> str:
        return f"<DurableObjectStub {self._namespace.binding} {self._namespace.label(self.id)}>"


def _call_method(
    namespace: DurableObjectNamespace,
    object_id: DurableObjectId,
    method: str,
    *args: Any,
    **kwargs: Any,
) -> Awaitable[Any]:
    """``stub.<method>(*args)``: the RPC call's coroutine, attributed to its caller."""
    if kwargs:
        raise TypeError(
            f"{method}() over Durable Object RPC takes positional arguments only (JavaScript "
            f"RPC has no keyword arguments), got {sorted(kwargs)}"
        )
    return namespace._rpc(object_id, method, args, capture_caller(stacklevel=2))
