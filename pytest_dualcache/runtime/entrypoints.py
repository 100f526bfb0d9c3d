"""The classes a Python Worker extends (``WorkerEntrypoint``, ``DurableObject``) and its ``ctx``.

As in workerd's ``workers`` module, both take ``(ctx, env)`` and keep them as ``self.ctx``
and ``self.env``. ``ExecutionContext`` is a handler's ``ctx``: work handed to
``waitUntil`` runs on the event loop and ``settle()`` waits for it, so a test can see what
a request left behind. ``relaxed_call`` is how workerd calls the runtime's own handlers
(``fetch``, ``alarm``): with only as many arguments as the method takes.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

_T = TypeVar("_T")
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
#: Positional arguments a function takes and the names it takes (None: any number, any name).
_Shape = tuple[int | None, frozenset[str] | None]


class WorkerEntrypoint:
    """Base class of a Worker's entrypoint (``class Default(WorkerEntrypoint)``)."""

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env


class DurableObject:
    """Base class of a Durable Object class: ``ctx`` is its ``DurableObjectState``."""

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env


def handler(func: Callable[..., _T]) -> Callable[..., _T]:
    """The SDK's decorator for module-level handlers: arguments here are Python already."""
    return func


async def _awaited(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


class ExecutionContext:
    """A handler's ``ctx``: ``waitUntil`` work is kept, and ``settle()`` waits for all of it.

    A failure in that work does not reach the handler's caller (as on Cloudflare, where it
    is only logged); ``settle()`` raises the first one, so a test does not miss it.
    """

    def __init__(self) -> None:
        self._pending: list[asyncio.Future[Any]] = []
        self._failures: list[BaseException] = []

    def waitUntil(self, awaitable: Awaitable[Any]) -> None:
        """Keep ``awaitable`` running after the handler returns (now, with no loop running)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            try:
                asyncio.run(_awaited(awaitable))
            except Exception as exc:
                self._failures.append(exc)
            return
        self._pending.append(asyncio.ensure_future(awaitable))

    def passThroughOnException(self) -> None:
        """Accepted: a test has no origin server to fall back to, so nothing changes."""

    @property
    def pending(self) -> int:
        """How many ``waitUntil`` tasks have not finished."""
        return sum(1 for task in self._pending if not task.done())

    async def settle(self) -> None:
        """Wait for every ``waitUntil`` task (and those they add); raise the first failure."""
        while self._pending:
            task = self._pending.pop(0)
            try:
                await task
            except Exception as exc:
                self._failures.append(exc)
        if self._failures:
            first, self._failures = self._failures[0], []
            raise first


def relaxed_call(func: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """``func(*args, **kwargs)`` without the arguments it does not take (Pyodide's
    ``relaxed_call``, how workerd calls ``alarm(alarm_info)`` and ``fetch(request)``)."""
    bound = getattr(func, "__self__", None) is not None and not isinstance(func, type)
    shape = _shape(getattr(func, "__func__", func) if bound else func, bound)
    if shape is None:  # a builtin without a signature: pass everything
        return func(*args, **kwargs)
    positional, named = shape
    if positional is not None:
        args = args[:positional]
    if named is not None:
        kwargs = {name: value for name, value in kwargs.items() if name in named}
    return func(*args, **kwargs)


@functools.lru_cache(maxsize=1024)
def _shape(func: Callable[..., Any], bound: bool) -> _Shape | None:
    """How many positional arguments ``func`` takes and which names (None: any), without the
    bound ``self``; None when it has no signature. Cached: handlers are called per request."""
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    if bound and parameters and parameters[0].kind in _POSITIONAL:
        parameters = parameters[1:]
    kinds = {parameter.kind for parameter in parameters}
    positional = None
    if inspect.Parameter.VAR_POSITIONAL not in kinds:
        positional = sum(1 for parameter in parameters if parameter.kind in _POSITIONAL)
    named = None
    if inspect.Parameter.VAR_KEYWORD not in kinds:
        named = frozenset(
            p.name for p in parameters if p.kind is not inspect.Parameter.POSITIONAL_ONLY
        )
    return positional, named
