"""The Worker of a wrangler config, on a test's env: what the ``dualcache_worker`` fixture is.

``WorkerClient.fetch`` sends a request to the Worker's entrypoint (``class
Default(WorkerEntrypoint)``'s ``fetch``, or a module-level ``on_fetch(request, env, ctx)``)
and returns once the request's ``ctx.waitUntil`` work has finished, as a ``WorkerResponse``
a test reads without awaiting. ``scheduled`` runs the cron handler; ``durable_object`` and
``storage`` reach a Durable Object's live instance and what it stored; ``restart`` evicts
an instance and keeps its storage. Sync calls run on the client's own event loop, so the
Durable Objects' ``blockConcurrencyWhile`` work waits on one loop for the client's lifetime.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from .entrypoints import ExecutionContext, relaxed_call
from .http import FetchResponse, Headers, Request, absolute_url
from .wrangler import WorkerModule, WranglerConfig, WranglerConfigError

if TYPE_CHECKING:
    from pytest_dualcache.env import DualCacheEnv

    from .durable_objects import DurableObjectNamespace

#: The origin a path given to ``fetch`` is resolved against (as in Cloudflare's
#: vitest-pool-workers examples, ``SELF.fetch("https://example.com/...")``).
BASE_URL = "https://example.com"


def load_worker(config: WranglerConfig) -> WorkerModule:
    """The Worker module of ``config`` (imported once); a config naming a missing module or
    class is a ``pytest.UsageError`` naming the file and the key."""
    try:
        return config.load()
    except WranglerConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


@dataclass(frozen=True)
class WorkerResponse:
    """A response as a test reads it: ``status``, ``headers``, ``text``, ``json()``."""

    status: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.content.decode("utf-8")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.content)

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status <= 299


@dataclass(frozen=True)
class ScheduledEvent:
    """A cron trigger's ``controller``/``event``: ``cron``, ``scheduledTime`` (epoch ms)."""

    cron: str
    scheduledTime: int
    type: str = "scheduled"


class StorageView:
    """What one Durable Object has stored, read synchronously (not recorded in the ledger)."""

    def __init__(self, namespace: DurableObjectNamespace, name: str) -> None:
        self._namespace = namespace
        self._name = name

    def list(self, prefix: str = "") -> dict[str, Any]:
        """Every stored key under ``prefix`` and a copy of its value, in key order."""
        contents = self._namespace.contents(self._name)
        return {key: value for key, value in contents.items() if key.startswith(prefix)}

    def get(self, key: str) -> Any:
        """A copy of the value stored under ``key``, or None."""
        return self._namespace.contents(self._name).get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._namespace.contents(self._name)

    def __len__(self) -> int:
        return len(self._namespace.contents(self._name))

    @property
    def alarm(self) -> int | None:
        """The alarm's time in epoch milliseconds, or None."""
        return self._namespace.alarm_of(self._name)


class WorkerClient:
    """The Worker of ``config`` on ``env``: a test client and a window on its Durable Objects."""

    def __init__(self, env: DualCacheEnv, config: WranglerConfig) -> None:
        self.env = env
        self.config = config
        self.worker = load_worker(config)
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- handlers -------------------------------------------------------------------------------

    def fetch(
        self,
        path_or_url: str,
        *,
        method: str = "GET",
        headers: Headers = None,
        body: str | bytes | None = None,
    ) -> WorkerResponse:
        """Send a request to the Worker (a path is on ``BASE_URL``); return its response once
        the request's ``waitUntil`` work is done."""
        return self._run(self.fetch_async(path_or_url, method=method, headers=headers, body=body))

    async def fetch_async(
        self,
        path_or_url: str,
        *,
        method: str = "GET",
        headers: Headers = None,
        body: str | bytes | None = None,
    ) -> WorkerResponse:
        """``fetch`` for async tests, on the running event loop."""
        url = BASE_URL + path_or_url if path_or_url.startswith("/") else path_or_url
        request = Request(absolute_url(url), method=method, headers=headers, body=body)
        timed_as = f"{method.upper()} {urlsplit(url).path or '/'}"
        response = await self._call("fetch", "on_fetch", request, timed_as=timed_as)
        if not isinstance(response, FetchResponse):
            raise TypeError(
                f"the Worker's fetch handler returned {type(response).__name__}, not a Response"
            )
        return WorkerResponse(response.status, response.headers, response.content)

    def scheduled(self, cron: str = "* * * * *", *, scheduled_time: float | None = None) -> None:
        """Run the Worker's cron handler (``scheduled``/``on_scheduled``) and its ``waitUntil``
        work; ``scheduled_time`` in epoch seconds (default: the clock's now)."""
        when = self.env.clock.now() if scheduled_time is None else scheduled_time
        event = ScheduledEvent(cron, int(when * 1000))
        self._run(self._call("scheduled", "on_scheduled", event))

    async def _call(
        self, method: str, function: str, argument: Any, *, timed_as: str | None = None
    ) -> Any:
        """The entrypoint's ``method`` (or the module's ``function``) with ``(argument, env,
        ctx)`` as it takes them; then every ``waitUntil`` task of the call.

        ``timed_as`` names the request the handler is, for the latency model (``request``
        blocks): until the handler returns, as a client waits; ``waitUntil`` work runs after
        the response, as in production, and is not part of it.
        """
        ctx = ExecutionContext()
        handler = self._handler(method, function, ctx)
        with self.env.request(timed_as) if timed_as else nullcontext():
            result = relaxed_call(handler, argument, self.env.workers(), ctx)
            if isinstance(result, Awaitable):
                result = await result
        await ctx.settle()
        return result

    def _handler(self, method: str, function: str, ctx: ExecutionContext) -> Callable[..., Any]:
        entrypoint = self.worker.entrypoint
        if entrypoint is not None and callable(getattr(entrypoint, method, None)):
            return getattr(entrypoint(ctx, self.env.workers()), method)
        handler = getattr(self.worker.module, function, None) if self.worker.module else None
        if callable(handler):
            return handler
        pytest.fail(
            f"{self.config.where('main')}: the Worker has no {method} handler (a method of "
            f"class Default(WorkerEntrypoint), or a module-level {function})",
            pytrace=False,
        )

    # --- its Durable Objects ----------------------------------------------------------------

    def namespace(self, binding: str) -> DurableObjectNamespace:
        """The Durable Object namespace bound as ``binding``."""
        try:
            return self.env.durable_objects[binding]
        except KeyError:
            bound = ", ".join(sorted(self.env.durable_objects)) or "none"
            raise KeyError(
                f"{binding!r} is not a Durable Object binding of {self.config.path} "
                f"(bound: {bound})"
            ) from None

    def durable_object(self, binding: str, name: str) -> Any:
        """The live instance of the object ``name`` of ``binding`` (made now if none is live)."""
        return self.namespace(binding).instance(name)

    def storage(self, binding: str, name: str) -> StorageView:
        """A synchronous view of what the object ``name`` of ``binding`` has stored."""
        return StorageView(self.namespace(binding), name)

    def restart(self, binding: str, name: str | None = None) -> None:
        """Evict the live instance of ``name`` (every one if None); its storage stays."""
        self.namespace(binding).restart(name)

    # --- the loop of sync calls -------------------------------------------------------------

    def _run(self, coroutine: Awaitable[Any]) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            close = getattr(coroutine, "close", None)
            if close is not None:
                close()
            raise RuntimeError(
                "dualcache_worker's sync calls cannot run inside a running event loop: in an "
                "async test use `await dualcache_worker.fetch_async(...)`"
            )
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coroutine)

    def close(self) -> None:
        """Close the client's event loop."""
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def __repr__(self) -> str:
        bindings = sorted(self.env.durable_objects)
        return f"<WorkerClient {self.config.path} durable_objects={bindings}>"
