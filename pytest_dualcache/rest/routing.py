"""Sending real HTTP clients to the emulated API: ``httpx``, ``requests`` and ``aiohttp`` at
their transports.

While a ``ClientRouting`` is active, every ``httpx.HTTPTransport`` and
``httpx.AsyncHTTPTransport`` (the transports of ``httpx.Client`` and ``httpx.AsyncClient``,
and so of the clients the ``cloudflare`` SDK builds) and every ``requests`` ``HTTPAdapter``
sends requests for ``https://api.cloudflare.com/client/v4`` to the app, in this process; so
do ``httpx_aiohttp``'s ``AiohttpTransport`` (the SDK's ``DefaultAioHttpClient()``) and
``aiohttp.ClientSession``, when installed, by the hooks of ``aiohttp_routing``.

Why these hooks: they are the libraries' own seams between a client and the network
(``BaseTransport.handle_request``, ``HTTPAdapter.send``, aiohttp's ``BaseConnector.connect``),
patched on the classes, so clients built before the fixture are caught too and no client
needs a ``transport=`` or ``mount``.
A mocking library (respx, responses) would do the same patching with a dependency and its
own rules for unmatched requests; the users' own respx, responses and aioresponses keep
working beside these hooks instead: respx patches ``httpcore`` below them, responses
``HTTPAdapter.send`` and aioresponses ``ClientSession._request``, so requests they match
never reach the network.

Every other host is refused with ``RequestRefused`` (never sent), except loopback hosts (the
fixture's own ``url`` server among them) and requests a user's mock is there to answer.
Each routed request carries its caller: the first frame outside the clients, the SDK and
this package, found here while the caller's frames are still on the stack.
"""

from __future__ import annotations

import importlib.util
import io
import ipaddress
import os
import sys
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from ..ledger import UNKNOWN_CALL_SITE, Caller, capture_caller, run_as
from ..limits import REST_API_BASE_PATH, REST_API_HOST
from .wire import Request, Response

#: Libraries whose frames stand between a request and the code that made it.
_CLIENT_PACKAGES = (
    "httpx",
    "httpcore",
    "requests",
    "urllib3",
    "cloudflare",
    "anyio",
    "sniffio",
    "respx",
    "responses",
    "asyncio",
    "aiohttp",
    "httpx_aiohttp",
)
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RUN_AS_CODE = run_as.__code__


class RequestRefused(ConnectionError):
    """A request to a host other than the emulated API or loopback, refused unsent."""


def _client_dirs() -> tuple[str, ...]:
    """Folders of the client libraries (those installed), of this package and of a few stdlib
    helpers the clients call through."""
    folders = [_PACKAGE_DIR + os.sep]
    for name in _CLIENT_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            folders.extend(os.path.join(p, "") for p in spec.submodule_search_locations)
    stdlib = os.path.dirname(os.__file__)
    folders += [os.path.join(stdlib, name) for name in ("contextlib.py", "functools.py")]
    return tuple(folders)


_CLIENT_DIRS = _client_dirs()


def request_caller() -> Caller:
    """The caller of the request being sent: the first frame outside the clients' code.

    A walk that reaches ``ledger.run_as`` (work a DAL scheduled on a thread pool) lets
    ``capture_caller`` take the logical caller from there.
    """
    frame = sys._getframe(1)
    depth = 1
    while frame is not None:
        code = frame.f_code
        if code is _RUN_AS_CODE or not code.co_filename.startswith(_CLIENT_DIRS):
            # stacklevel counts from capture_caller: 1 is this function, depth + 1 the frame.
            return capture_caller(classify=True, stacklevel=depth + 1)
        frame = frame.f_back
        depth += 1
    return Caller(UNKNOWN_CALL_SITE, None)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (IPv4 and IPv6)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ClientRouting:
    """Sends httpx, requests and aiohttp traffic for the Cloudflare API to ``serve`` while
    active."""

    def __init__(self, serve: Callable[[Request], Response]) -> None:
        self.serve = serve
        #: URLs refused while active (kept so a swallowed refusal is still reported).
        self.refused: list[str] = []

    def start(self) -> None:
        """Route from now on (the innermost active routing wins)."""
        with _lock:
            _install()
            _active.append(self)

    def stop(self) -> None:
        """Stop routing; the hooks come off when no routing is active."""
        with _lock:
            if self in _active:
                _active.remove(self)
            if not _active:
                _uninstall()

    def decide(self, host: str, path: str) -> str:
        """``"api"`` (serve it), ``"pass"`` (loopback: send it) or ``"refuse"``."""
        if host.lower() == REST_API_HOST:
            wanted = path == REST_API_BASE_PATH or path.startswith(REST_API_BASE_PATH + "/")
            return "api" if wanted else "refuse"
        return "pass" if is_loopback(host) else "refuse"

    def refuse(self, url: str) -> RequestRefused:
        """The error for a request that may not leave the process (and note it)."""
        self.refused.append(url)
        return RequestRefused(
            f"dualcache cloudflare_api refused {url}: while it is active only "
            f"https://{REST_API_HOST}{REST_API_BASE_PATH} (the emulator) and loopback hosts "
            "are reachable; mock other hosts with respx, responses or aioresponses"
        )


_lock = threading.RLock()
_active: list[ClientRouting] = []
#: What each hook replaced, by hook name, while installed.
_replaced: dict[str, Any] = {}
#: What each hook replaced the first time: a mock that wrapped a hook and was then wrapped
#: by it again would make a cycle, so a hook re-entered on one thread calls this instead.
_first_replaced: dict[str, Any] = {}
_entered = threading.local()


def _below(name: str) -> Any:
    """What hook ``name`` hands a request on to (see ``_first_replaced``)."""
    depth = getattr(_entered, name, 0)
    return _first_replaced[name] if depth else _replaced[name]


class _Entered:
    """Marks hook ``name`` as running on this thread while the request goes on below it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        setattr(_entered, self.name, getattr(_entered, self.name, 0) + 1)

    def __exit__(self, *exc: object) -> None:
        setattr(_entered, self.name, getattr(_entered, self.name) - 1)


def _current() -> ClientRouting | None:
    return _active[-1] if _active else None


def _pristine(function: object, module: str) -> bool:
    """Whether ``function`` is the library's own (not a mock's stand-in or wrapper)."""
    return getattr(function, "__module__", None) == module and not hasattr(function, "__wrapped__")


# --- httpx ---------------------------------------------------------------------------------


def _httpx_request(request: Any, body: bytes) -> Request:
    url = request.url
    return Request.of(
        request.method,
        url.path,
        url.query.decode("ascii"),
        request.headers.multi_items(),
        body,
        caller=request_caller(),
    )


def _httpx_response(response: Response, request: Any) -> Any:
    import httpx

    return httpx.Response(
        response.status, headers=response.headers, content=response.body, request=request
    )


def _httpx_mocked_below(sync: bool) -> bool:
    """Whether a mock (respx) answers below the httpx hook, so other hosts may pass."""
    import httpcore

    name = "handle_request" if sync else "handle_async_request"
    below = _replaced["httpx_sync" if sync else "httpx_async"]
    if not _pristine(below, "httpx._transports.default"):
        return True
    pool = httpcore.ConnectionPool if sync else httpcore.AsyncConnectionPool
    side = "_sync" if sync else "_async"
    return not _pristine(pool.__dict__.get(name), f"httpcore.{side}.connection_pool")


def _httpx_handle_request(self: Any, request: Any) -> Any:
    """``httpx.HTTPTransport.handle_request`` while routing."""
    routing = _current()
    if routing is not None:
        decision = routing.decide(request.url.host, request.url.path)
        if decision == "api":
            served = routing.serve(_httpx_request(request, request.read()))
            return _httpx_response(served, request)
        if decision == "refuse" and not _httpx_mocked_below(sync=True):
            raise routing.refuse(str(request.url))
    below = _below("httpx_sync")
    with _Entered("httpx_sync"):
        return below(self, request)


async def _httpx_handle_async_request(self: Any, request: Any) -> Any:
    """``httpx.AsyncHTTPTransport.handle_async_request`` while routing."""
    return await httpx_route_async(
        "httpx_async", self, request, lambda: _httpx_mocked_below(sync=False)
    )


async def httpx_route_async(
    name: str, transport: Any, request: Any, mocked_below: Callable[[], bool]
) -> Any:
    """The body of async httpx transport hook ``name``: serve the API, refuse another host
    (unless ``mocked_below()``: a user's mock answers below the hook) or hand it below."""
    routing = _current()
    if routing is not None:
        decision = routing.decide(request.url.host, request.url.path)
        if decision == "api":
            served = routing.serve(_httpx_request(request, await request.aread()))
            return _httpx_response(served, request)
        if decision == "refuse" and not mocked_below():
            raise routing.refuse(str(request.url))
    below = _below(name)
    with _Entered(name):
        return await below(transport, request)


# --- requests ------------------------------------------------------------------------------


def _body_bytes(body: object) -> bytes:
    """A prepared request's body as bytes (it may be str, bytes, a file or an iterable)."""
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    read = getattr(body, "read", None)
    if read is not None:
        data = read()
        return data.encode("utf-8") if isinstance(data, str) else data
    return b"".join(c.encode("utf-8") if isinstance(c, str) else c for c in body)  # type: ignore[attr-defined]


def _requests_send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
    """``requests.adapters.HTTPAdapter.send`` while routing."""
    routing = _current()
    if routing is not None:
        parts = urlsplit(request.url)
        path = unquote(parts.path)
        decision = routing.decide(parts.hostname or "", path)
        if decision == "api":
            served = routing.serve(
                Request.of(
                    request.method,
                    path,
                    parts.query,
                    request.headers.items(),
                    _body_bytes(request.body),
                    caller=request_caller(),
                )
            )
            return _requests_response(self, request, served)
        if decision == "refuse" and _pristine(_replaced["requests"], "requests.adapters"):
            raise routing.refuse(request.url)
    below = _below("requests")
    with _Entered("requests"):
        return below(self, request, *args, **kwargs)


def _requests_response(adapter: Any, request: Any, response: Response) -> Any:
    from urllib3 import HTTPResponse

    raw = HTTPResponse(
        body=io.BytesIO(response.body),
        headers=response.headers,
        status=response.status,
        reason=response.status_line.partition(" ")[2],
        preload_content=False,
        decode_content=False,
    )
    return adapter.build_response(request, raw)


# --- installing the hooks -------------------------------------------------------------------


def _hooks() -> list[tuple[str, type, str, Callable[..., Any]]]:
    """(name, class, method, replacement) of each hook whose library is installed."""
    hooks: list[tuple[str, type, str, Callable[..., Any]]] = []
    try:
        import httpx
    except ImportError:
        pass
    else:
        hooks.append(("httpx_sync", httpx.HTTPTransport, "handle_request", _httpx_handle_request))
        hooks.append(
            (
                "httpx_async",
                httpx.AsyncHTTPTransport,
                "handle_async_request",
                _httpx_handle_async_request,
            )
        )
    try:
        from requests.adapters import HTTPAdapter
    except ImportError:
        pass
    else:
        hooks.append(("requests", HTTPAdapter, "send", _requests_send))
    from .aiohttp_routing import aiohttp_hooks

    return hooks + aiohttp_hooks()


def _install() -> None:
    """Put each hook on its class, keeping what it replaces (once; re-done if displaced)."""
    for name, cls, method, hook in _hooks():
        current = cls.__dict__.get(method)
        if current is not hook:
            _replaced[name] = current
            _first_replaced.setdefault(name, current)
            setattr(cls, method, hook)


def _uninstall() -> None:
    """Give each class back what its hook replaced, unless a mock has since replaced ours."""
    for name, cls, method, hook in _hooks():
        if cls.__dict__.get(method) is hook and name in _replaced:
            setattr(cls, method, _replaced.pop(name))
