"""Sending aiohttp clients to the emulated API: ``httpx_aiohttp``'s transport and aiohttp's
connector (part of ``routing``, which installs these hooks with its own).

Two clients are routed, each at its own seam, patched on the class as ``routing`` does:

- ``httpx_aiohttp.AiohttpTransport.handle_async_request``: the transport of the ``cloudflare``
  SDK's ``DefaultAioHttpClient()`` (an ``httpx.AsyncBaseTransport`` that is not
  ``httpx.AsyncHTTPTransport``). This hook is the async httpx hook (``httpx_route_async``):
  the SDK's requests never reach aiohttp, and do not depend on aiohttp's internals.
- ``aiohttp.BaseConnector.connect``, for ``aiohttp.ClientSession`` used directly. For a
  request to the API it hands back a connection to an in-memory socket: aiohttp writes the
  request there as it would to the network (its own headers, body encoding, multipart), the
  app answers it, and aiohttp parses the answer into its own ``ClientResponse`` (cookies,
  ``raise_for_status``, decompression and all). ``connect`` is a documented method that every
  session's requests await, whatever their connector (TCP, unix socket, a user's subclass);
  the caller is still on the stack there.

  Why not ``ClientSession._request`` (what aioresponses patches): a hook there would have
  to turn ``data=``/``json=``/``FormData`` into the bytes aiohttp would send, and build a
  ``ClientResponse`` by hand, whose constructor changes between aiohttp releases (3.14 added
  an argument). Below the connector aiohttp does both itself, and this hook needs only
  ``Connection(connector, key, protocol, loop)`` and ``ResponseHandler(loop=...)`` (tested
  on aiohttp 3.10 and 3.14). A user's aioresponses keeps working beside it: it patches
  ``ClientSession._request``, above this hook, so what it answers never reaches a connector.
  A refused request raises ``RequestRefused`` from ``connect``; recent aiohttp releases
  report it as a ``ClientOSError`` caused by it.

Neither library is imported unless it is installed (``aiohttp_hooks`` runs when a routing
starts). A routed aiohttp request is parsed with ``h11`` (httpcore's HTTP/1.1 parser, there
with the ``[rest]`` extra's httpx).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from ..ledger import Caller
from ..limits import REST_API_HOST
from .routing import (
    ClientRouting,
    _below,
    _current,
    _Entered,
    _pristine,
    _replaced,
    httpx_route_async,
    request_caller,
)
from .wire import Request, Response

# --- httpx_aiohttp (the SDK's DefaultAioHttpClient) ----------------------------------------


def _session_mocked() -> bool:
    """Whether a user's mock (aioresponses) stands in for ``ClientSession._request``."""
    from aiohttp import ClientSession

    current = ClientSession.__dict__.get("_request")
    return not _pristine(current, "aiohttp.client")


def _aiohttp_transport_mocked_below() -> bool:
    """Whether a mock answers below the ``AiohttpTransport`` hook, so other hosts may pass."""
    below = _replaced["httpx_aiohttp"]
    return not _pristine(below, "httpx_aiohttp.transport") or _session_mocked()


async def _aiohttp_transport_handle(self: Any, request: Any) -> Any:
    """``httpx_aiohttp.AiohttpTransport.handle_async_request`` while routing."""
    return await httpx_route_async("httpx_aiohttp", self, request, _aiohttp_transport_mocked_below)


# --- aiohttp (a ClientSession used directly) ------------------------------------------------


async def _aiohttp_connect(self: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
    """``aiohttp.BaseConnector.connect`` while routing."""
    routing = _current()
    if routing is not None:
        decision = routing.decide(req.url.host or "", req.url.path)
        if decision == "api":
            return _in_process_connection(self, req, routing, request_caller())
        if decision == "refuse" and _pristine(_replaced["aiohttp"], "aiohttp.connector"):
            raise routing.refuse(str(req.url))
    below = _below("aiohttp")
    with _Entered("aiohttp"):
        return await below(self, req, *args, **kwargs)


def _in_process_connection(connector: Any, req: Any, routing: ClientRouting, caller: Caller) -> Any:
    """A connection for one request, whose socket is the app (closed after the answer)."""
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.connector import Connection

    loop = asyncio.get_running_loop()
    protocol = ResponseHandler(loop=loop)
    protocol.connection_made(_AppSocket(loop, protocol, routing.serve, caller))
    protocol.force_close()  # never pooled: the next request connects (and is attributed) anew
    return Connection(connector, req.connection_key, protocol, loop)


class _AppSocket(asyncio.Transport):
    """An in-memory socket: the request aiohttp writes is served, the answer read back."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol: asyncio.Protocol,
        serve: Callable[[Request], Response],
        caller: Caller,
    ) -> None:
        import h11

        super().__init__()
        self._loop, self._protocol, self._serve, self._caller = loop, protocol, serve, caller
        self._parser = h11.Connection(h11.SERVER)
        self._head: Any = None
        self._body = bytearray()
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        import h11

        if self._closing:
            return
        self._parser.receive_data(bytes(data))
        while (event := self._parser.next_event()) is not h11.NEED_DATA:
            if isinstance(event, h11.Request):
                self._head = event
                if self._parser.they_are_waiting_for_100_continue:  # aiohttp's expect100=True
                    self._reply(b"HTTP/1.1 100 Continue\r\n\r\n")
            elif isinstance(event, h11.Data):
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self._answer()
                return

    def _answer(self) -> None:
        head = self._head
        target = urlsplit(head.target.decode("ascii"))  # origin-form, or absolute (a proxy)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers]
        method = head.method.decode("ascii")
        request = Request.of(
            method,
            unquote(target.path),
            target.query,
            headers,
            bytes(self._body),
            caller=self._caller,
        )
        self._reply(_http_bytes(self._serve(request), head=method == "HEAD"))

    def _reply(self, data: bytes) -> None:
        """Hand ``data`` to aiohttp's protocol once the write that asked for it returns."""
        self._loop.call_soon(self._protocol.data_received, data)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (REST_API_HOST, 443) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0

    def is_reading(self) -> bool:
        return not self._closing

    def pause_reading(self) -> None:
        """Nothing to pause: the answer is handed over whole."""

    def resume_reading(self) -> None:
        """Nothing to resume."""


def _http_bytes(response: Response, head: bool = False) -> bytes:
    """``response`` as an HTTP/1.1 message with a ``Content-Length``, closing the connection
    (without the body when it answers a ``HEAD``)."""
    headers = [
        (k, v) for k, v in response.headers if k.lower() not in ("content-length", "connection")
    ]
    headers += [("Content-Length", str(len(response.body))), ("Connection", "close")]
    lines = [f"HTTP/1.1 {response.status_line}", *(f"{k}: {v}" for k, v in headers)]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + (b"" if head else response.body)


# --- installing -----------------------------------------------------------------------------


def aiohttp_hooks() -> list[tuple[str, type, str, Callable[..., Any]]]:
    """(name, class, method, replacement) of each aiohttp hook whose library is installed."""
    hooks: list[tuple[str, type, str, Callable[..., Any]]] = []
    try:
        from aiohttp import BaseConnector
    except ImportError:
        return hooks
    hooks.append(("aiohttp", BaseConnector, "connect", _aiohttp_connect))
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:
        pass
    else:
        hooks.append(
            (
                "httpx_aiohttp",
                AiohttpTransport,
                "handle_async_request",
                _aiohttp_transport_handle,
            )
        )
    return hooks
