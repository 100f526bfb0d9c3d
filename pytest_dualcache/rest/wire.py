"""The HTTP side of the emulated API: requests and responses as plain data, and the envelope.

``Request`` and ``Response`` are what ``KVRestApp.handle`` takes and gives, whichever way a
request arrived (WSGI from the loopback server, or a client's transport hook in this
process). ``envelope`` and ``error_response`` write Cloudflare's v4 JSON envelope
(``success``, ``errors``, ``messages``, ``result``, ``result_info``); ``multipart_fields``
reads the ``multipart/form-data`` body of a write with metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qs

from ..ledger import Caller
from ..limits import REST_ERRORS, RESTError

_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    413: "Payload Too Large",
    414: "URI Too Long",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


@dataclass
class Request:
    """One API request: method, percent-decoded path, query, headers (lower-case), body."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    #: The Python code that sent it (a request from this process), else None.
    caller: Caller | None = None
    #: The client's address, for a request that came over a socket.
    client: str = ""

    @classmethod
    def of(
        cls,
        method: str,
        path: str,
        query_string: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        **extra: Any,
    ) -> Request:
        """A request from its parts (``path`` already percent-decoded)."""
        query = parse_qs(query_string, keep_blank_values=True)
        lowered = {name.lower(): value for name, value in headers}
        return cls(method.upper(), path, query, lowered, body, **extra)

    def arg(self, name: str) -> str | None:
        """The first value of query parameter ``name``, None if absent."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    """One API response: status, headers, body."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def status_line(self) -> str:
        """``"404 Not Found"``, as WSGI's ``start_response`` wants it."""
        return f"{self.status} {_REASONS.get(self.status, 'Unknown')}"

    def json(self) -> Any:
        """The body parsed as JSON (for tests and failure messages)."""
        return json.loads(self.body)


def envelope(
    result: object,
    *,
    status: int = 200,
    result_info: Mapping[str, object] | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """A successful v4 envelope around ``result``."""
    body: dict[str, object] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        body["result_info"] = dict(result_info)
    return _json_response(status, body, headers)


def error_response(
    error: RESTError,
    *,
    chain: list[dict[str, object]] | None = None,
    headers: Iterable[tuple[str, str]] = (),
    **figures: object,
) -> Response:
    """A failed v4 envelope: ``error``'s status, and its code and message in ``errors``."""
    entry: dict[str, object] = {"code": error.code, "message": error.message.format(**figures)}
    if chain:
        entry["error_chain"] = chain
    body = {"success": False, "errors": [entry], "messages": [], "result": None}
    return _json_response(error.status, body, headers)


def named_error(name: str, **figures: object) -> Response:
    """``error_response`` of ``limits.REST_ERRORS[name]``."""
    return error_response(REST_ERRORS[name], **figures)


def _json_response(status: int, body: object, headers: Iterable[tuple[str, str]]) -> Response:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, data, [("Content-Type", "application/json"), *headers])


def multipart_fields(content_type: str, body: bytes) -> dict[str, bytes] | None:
    """The named fields of a ``multipart/form-data`` body, None if it has no boundary."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        return None
    fields: dict[str, bytes] = {}
    for part in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if part.startswith(b"--"):  # the closing delimiter
            break
        head, _, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        disposition = Message()
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            disposition[name.strip()] = value.strip()
        field_name = disposition.get_param("name", header="content-disposition")
        if isinstance(field_name, str):
            fields[field_name] = content.removesuffix(b"\r\n")
    return fields
