"""``Request``, ``Response`` and ``fetch`` of the ``workers`` module, without a network.

The shapes are the Python Workers SDK's (workerd ``src/pyodide/internal/workers-api``):
``Response(body, status=..., status_text=..., headers=...)`` with ``Response.json(data)``
as a constructor and ``await response.json()``/``text()``/``bytes()`` as readers (a body
reads once), ``Request(url, method=..., headers=..., body=...)`` with ``url``, ``method``
(an ``HTTPMethod``) and ``headers`` (an ``http.client.HTTPMessage``). The checks are the
Fetch API's as workerd words them. ``fetch`` is importable, as Cloudflare's examples import
it, and refuses to run: a test under pytest-dualcache has no network.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from http import HTTPMethod, HTTPStatus
from http.client import HTTPMessage
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .ffi import JsRangeError, JsTypeError

#: Statuses whose response has no body (Fetch spec "null body status").
NULL_BODY_STATUSES = frozenset({101, 204, 205, 304})
_BODY_USED = "Body already used"  # the SDK's OSError text (workers-api ``_raise_if_failed``)
_REQUEST_OPTIONS = frozenset(
    {"method", "headers", "body", "redirect", "cf", "cache", "signal", "integrity"}
)

Headers = Mapping[str, str] | Iterable[tuple[str, str]] | HTTPMessage | None


class NoNetworkError(RuntimeError):
    """``workers.fetch`` was called: tests under pytest-dualcache never reach the network."""


def header_pairs(headers: Headers) -> list[tuple[str, str]]:
    """``headers`` as ``(lower-case name, value)`` pairs, as the JS ``Headers`` keeps them."""
    if headers is None:
        return []
    if isinstance(headers, HTTPMessage | Mapping):
        items: Iterable[Any] = headers.items()
    elif isinstance(headers, list | tuple):
        items = headers
    else:
        raise TypeError("Received unexpected type for headers argument")
    pairs = []
    for pair in items:
        name, value = pair
        pairs.append((str(name).lower(), str(value).strip()))
    return pairs


def _encoded(body: object, owner: str) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes):
        return bytes(body)
    raise TypeError(f"Unsupported type in {owner}: {type(body).__name__}")


class _Body:
    """A body that reads once, as a Fetch API body does."""

    _body: bytes | None
    body_used: bool

    def _take(self) -> bytes:
        if self.body_used:
            raise OSError(_BODY_USED)
        self.body_used = True
        return self._body or b""

    async def bytes(self) -> bytes:
        """The body's bytes (reads the body)."""
        return self._take()

    async def text(self) -> str:
        """The body as UTF-8 text (reads the body)."""
        return self._take().decode("utf-8", "replace")

    async def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON (reads the body); keywords go to ``json.loads``."""
        return json.loads(self._take().decode("utf-8"), **kwargs)

    @property
    def content(self) -> bytes:
        """The body's bytes without reading it (ours, for test assertions)."""
        return self._body or b""


class FetchResponse(_Body):
    """A response: ``status``, ``status_text``, ``headers`` (a dict), ``ok``, and its body."""

    def __init__(
        self, status: int, status_text: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> None:
        self.status = status
        self.status_text = status_text
        self._headers = headers
        self._body = body
        self.body_used = False
        self.url = ""

    @property
    def headers(self) -> dict[str, str]:
        """Lower-case names to values, repeated names joined by ", " (as JS ``Headers``)."""
        joined: dict[str, str] = {}
        for name, value in self._headers:
            joined[name] = f"{joined[name]}, {value}" if name in joined else value
        return joined

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status <= 299

    @property
    def js_object(self) -> FetchResponse:
        """The object RPC sends: this one."""
        return self

    def clone(self) -> FetchResponse:
        """A copy with an unread body (a used body cannot be cloned)."""
        if self.body_used:
            raise OSError(_BODY_USED)
        copy = object.__new__(type(self))
        FetchResponse.__init__(copy, self.status, self.status_text, list(self._headers), self._body)
        return copy

    def raise_for_status(self) -> None:
        """Raise OSError for a 4xx or 5xx status, as Pyodide's ``FetchResponse`` does."""
        if 400 <= self.status <= 599:
            kind = "Client" if self.status < 500 else "Server"
            raise OSError(f"{self.status} {kind} Error: {self.status_text} for url: {self.url}")

    def __repr__(self) -> str:
        content_type = self.headers.get("content-type")
        suffix = f", content_type={content_type!r}" if content_type else ""
        return f"{type(self).__name__}(status={self.status}{suffix})"


class _JsonConstructorOrReader:
    """``Response.json(data)`` builds a JSON response; ``await response.json()`` reads one."""

    def __get__(self, instance: Response | None, owner: type[Response]) -> Any:
        if instance is None:
            return owner.from_json
        return instance._read_json


class Response(FetchResponse):
    """The response a handler returns: ``Response(body, status=..., headers=...)``."""

    json = _JsonConstructorOrReader()

    def __init__(
        self,
        body: str | bytes | None = None,
        status: HTTPStatus | int | None = None,
        status_text: str = "",
        headers: Headers = None,
        web_socket: Any = None,
    ) -> None:
        data = _encoded(body, "Response")
        code = 200 if status is None else int(status)
        if not 200 <= code <= 599:
            raise JsRangeError(
                "Responses may only be constructed with status codes in the range 200 to 599, "
                "inclusive."
            )
        if any(ord(char) < 0x20 for char in status_text):
            raise JsTypeError("Invalid statusText")
        if code in NULL_BODY_STATUSES and data:
            raise JsTypeError(
                "Response with null body status (101, 204, 205, or 304) cannot have a body."
            )
        pairs = header_pairs(headers)
        if isinstance(body, str) and not any(name == "content-type" for name, _ in pairs):
            pairs.append(("content-type", "text/plain;charset=UTF-8"))
        super().__init__(code, status_text, pairs, data)

    @staticmethod
    def from_json(
        data: Any,
        status: HTTPStatus | int = HTTPStatus.OK,
        status_text: str = "",
        headers: Headers = None,
    ) -> Response:
        """A JSON response (``json.dumps(data)``, ``content-type: application/json``)."""
        pairs = header_pairs(headers)
        if not any(name == "content-type" for name, _ in pairs):
            pairs.append(("content-type", "application/json"))
        return Response(json.dumps(data), status=status, status_text=status_text, headers=pairs)

    @staticmethod
    def redirect(url: str, status: HTTPStatus | int = HTTPStatus.FOUND) -> Response:
        """A redirect to ``url`` (``status`` one of 301, 302, 303, 307, 308)."""
        if int(status) not in (301, 302, 303, 307, 308):
            raise JsRangeError(f"Invalid status code: {int(status)}")
        return Response(None, status=status, headers={"location": url})

    def replace_body(self, body: str | bytes | None) -> Response:
        """A response with this one's status and headers and a new body."""
        return Response(body, self.status, self.status_text, list(self._headers))

    async def _read_json(self, **kwargs: Any) -> Any:
        return await _Body.json(self, **kwargs)


def absolute_url(url: str) -> str:
    """``url`` as the JS ``URL`` parser keeps it (scheme and host in lower case, path at
    least "/"); a relative URL is the TypeError ``new Request`` throws."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise JsTypeError(f"Invalid URL: {url}")
    netloc = parts.netloc.lower()
    return urlunsplit(
        (parts.scheme.lower(), netloc, parts.path or "/", parts.query, parts.fragment)
    )


class Request(_Body):
    """A request: ``url``, ``method``, ``headers`` and a body read with ``await text()``."""

    def __init__(self, input: str | Request, **options: Any) -> None:
        unknown = set(options) - _REQUEST_OPTIONS
        if unknown:
            raise TypeError(f"Request() got unknown options {sorted(unknown)}")
        base = input if isinstance(input, Request) else None
        if base is not None and base.body_used:
            raise OSError(_BODY_USED)
        self.url = base.url if base is not None else absolute_url(str(input))
        method = options.get("method", base._method if base is not None else "GET")
        self._method = str(method.value if isinstance(method, HTTPMethod) else method)
        if self._method.upper() in HTTPMethod.__members__:
            self._method = self._method.upper()
        headers = options.get("headers")
        if headers is not None:
            self._headers = header_pairs(headers)
        else:
            self._headers = list(base._headers) if base is not None else []
        body = options.get("body", base._body if base is not None else None)
        self._body = _encoded(body, "Request")
        if self._body is not None and self._method in ("GET", "HEAD"):
            raise JsTypeError("Request with a GET or HEAD method cannot have a body.")
        if isinstance(body, str) and not any(name == "content-type" for name, _ in self._headers):
            self._headers.append(("content-type", "text/plain;charset=UTF-8"))
        self.body_used = False

    @property
    def method(self) -> HTTPMethod | str:
        """The method, an ``HTTPMethod`` (a str) for the standard ones."""
        return HTTPMethod[self._method] if self._method in HTTPMethod.__members__ else self._method

    @property
    def headers(self) -> HTTPMessage:
        """The headers as an ``http.client.HTTPMessage`` (a fresh one each time)."""
        message = HTTPMessage()
        for name, value in self._headers:
            message[name] = value
        return message

    @property
    def js_object(self) -> Request:
        """The object RPC sends: this one."""
        return self

    def clone(self) -> Request:
        """A copy with an unread body."""
        return Request(self)

    def __repr__(self) -> str:
        return f"Request(method={self._method!r}, url={self.url!r})"


async def fetch(resource: str | Request, **options: Any) -> Response:
    """Refuse: there is no network under pytest-dualcache (importable for user modules)."""
    url = resource.url if isinstance(resource, Request) else str(resource)
    raise NoNetworkError(
        f"workers.fetch({url!r}) was not sent: code under pytest-dualcache has no network. "
        "Reach other Workers through their bindings, or replace the call in your test "
        "(monkeypatch the function that fetches)."
    )
