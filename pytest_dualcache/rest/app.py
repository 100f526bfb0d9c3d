"""``KVRestApp``: Cloudflare's Workers KV REST API as a WSGI app over ``KVNamespace`` objects.

It serves the KV endpoints of ``/client/v4`` (values, metadata, keys, bulk write, delete and
get, and the namespaces list) with the v4 envelope, checks credentials and the API's rate
limit (``auth``), and runs every KV operation on the same ``KVNamespace`` a Worker's binding
uses, so limits, quotas and the ledger are shared. Each operation runs under
``ledger.run_as`` with the request's caller: the Python code that sent it (captured by the
client hook, ``routing``), or for a request that came over a socket, its client address,
which is no data-access module and so counts as a bypass unless allowed.

WSGI, not ASGI: the namespaces are synchronous, a sync client (``requests``, ``httpx.Client``
inside async code too) must reach the app without an event loop, the caller's stack must
still be there when the operation is recorded, and the standard library serves WSGI on a
loopback socket (``server``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..kv import KVError, KVNamespace
from ..kv_validation import (
    expiration_at,
    metadata_json,
    stored_value,
    validate_key,
    validate_value_length,
)
from ..ledger import Caller, CallSite, run_as
from ..limits import (
    KV_MAX_LIST_LIMIT,
    REST_API_BASE_PATH,
    REST_BULK_DELETE_MAX_KEYS,
    REST_BULK_GET_MAX_KEYS,
    REST_BULK_MAX_REQUEST_BYTES,
    REST_BULK_WRITE_MAX_PAIRS,
    REST_KV_ERROR_CODES,
    REST_NAMESPACES_PER_PAGE,
    RESTError,
)
from ..recorder import current_recorder
from .auth import Credentials
from .wire import Request, Response, envelope, error_response, multipart_fields, named_error

_T = TypeVar("_T")
_NAMESPACES = re.compile(
    r"/accounts/(?P<account>[^/]+)/storage/kv/namespaces(?:/(?P<namespace>[^/]+)(?P<rest>/.*)?)?"
)
_KEYED = re.compile(r"/(?P<kind>values|metadata)/(?P<key>.+)", re.DOTALL)
_KV_PREFIX = re.compile(r"KV [A-Z_]+ failed: \d+ ")


class BadRequest(Exception):
    """A body or option the API cannot read: a 400 with ``REST_ERRORS["bad_request"]``."""


class KVRestApp:
    """The KV REST API of one account whose namespaces are ``namespaces()`` (id -> namespace)."""

    def __init__(
        self,
        account_id: str,
        namespaces: Callable[[], Mapping[str, KVNamespace]],
        credentials: Credentials,
    ) -> None:
        self.account_id = account_id
        self.namespaces = namespaces
        self.credentials = credentials
        #: Every request answered: (method, path, status), oldest first.
        self.log: list[tuple[str, str, int]] = []

    # --- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """The WSGI entry point (the loopback server, or any WSGI host)."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = [
            (name[5:].replace("_", "-"), value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        ]
        if environ.get("CONTENT_TYPE"):
            headers.append(("Content-Type", environ["CONTENT_TYPE"]))
        # PEP 3333: PATH_INFO holds the percent-decoded bytes as latin-1 text.
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        request = Request.of(
            environ["REQUEST_METHOD"],
            environ.get("SCRIPT_NAME", "") + path,
            environ.get("QUERY_STRING", ""),
            headers,
            body,
            caller=environ.get("dualcache.caller"),
            client=environ.get("REMOTE_ADDR", ""),
        )
        response = self.handle(request)
        start_response(response.status_line, response.headers)
        return [response.body]

    # --- dispatch ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request."""
        response = self._answer(request)
        self.log.append((request.method, request.path, response.status))
        return response

    def _answer(self, request: Request) -> Response:
        identity, refusal = self.credentials.authenticate(request)
        if refusal is not None:
            return refusal
        refusal = self.credentials.admit(identity)
        if refusal is not None:
            return refusal
        path = request.path.removeprefix(REST_API_BASE_PATH)
        match = _NAMESPACES.fullmatch(path) if path != request.path else None
        if match is None:
            return named_error("no_route", path=request.path)
        if match["account"] != self.account_id:
            return named_error("auth_error")  # a credential that may not use this account
        try:
            if match["namespace"] is None:
                if request.method == "GET":
                    return self._list_namespaces(request)
                return _no_route(request)
            namespace = self.namespaces().get(match["namespace"])
            if namespace is None:
                return named_error("namespace_not_found")
            return self._route(request, namespace, match["namespace"], match["rest"] or "")
        except KVError as exc:
            return _kv_error(exc)
        except BadRequest as exc:
            return named_error("bad_request", detail=str(exc))

    def _route(
        self, request: Request, namespace: KVNamespace, namespace_id: str, rest: str
    ) -> Response:
        method = request.method
        keyed = _KEYED.fullmatch(rest)
        if keyed is not None and keyed["kind"] == "values":
            handler = {"GET": self._read, "PUT": self._write, "DELETE": self._delete}.get(method)
            if handler is not None:
                return handler(request, namespace, keyed["key"])
        elif keyed is not None and method == "GET":
            return self._metadata(request, namespace, keyed["key"])
        routes: dict[tuple[str, str], Callable[[Request, KVNamespace], Response]] = {
            ("GET", "/keys"): self._list_keys,
            ("PUT", "/bulk"): self._bulk_write,
            ("DELETE", "/bulk"): self._bulk_delete,
            ("POST", "/bulk/delete"): self._bulk_delete,
            ("POST", "/bulk/get"): self._bulk_get,
        }
        handler = routes.get((method, rest))
        if handler is not None:
            return handler(request, namespace)
        if rest == "" and method == "GET":
            return envelope(_namespace_json(namespace_id, namespace))
        return _no_route(request)

    def _run(self, request: Request, work: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``work(*args)`` (a namespace method), attributed to the request's caller."""
        return run_as(_caller_of(request), work, *args, **kwargs)

    # --- single keys --------------------------------------------------------------------------

    def _write(self, request: Request, namespace: KVNamespace, key: str) -> Response:
        value, metadata = request.body, None
        content_type = request.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            fields = multipart_fields(content_type, request.body)
            if fields is None or "value" not in fields:
                raise BadRequest("a multipart write needs a 'value' part")
            value = fields["value"]
            if "metadata" in fields:
                metadata = _json_of(fields["metadata"], "the 'metadata' part")
        self._run(
            request,
            namespace.put,
            key,
            value,
            expiration=request.arg("expiration"),
            expiration_ttl=request.arg("expiration_ttl"),
            metadata=metadata,
        )
        return envelope({})

    def _read(self, request: Request, namespace: KVNamespace, key: str) -> Response:
        found = self._run(request, namespace.get_with_metadata, key, "bytes")
        if found.value is None:
            return named_error("key_not_found")
        headers = [("Content-Type", "application/octet-stream")]
        expiration = namespace.expiration_of(key)
        if expiration is not None:
            headers.append(("Expiration", str(expiration)))
        return Response(200, found.value, headers)

    def _metadata(self, request: Request, namespace: KVNamespace, key: str) -> Response:
        found = self._run(request, namespace.get_with_metadata, key, "bytes")
        if found.value is None:
            return named_error("key_not_found")
        return envelope(found.metadata)

    def _delete(self, request: Request, namespace: KVNamespace, key: str) -> Response:
        self._run(request, namespace.delete, key)
        return envelope({})

    def _list_keys(self, request: Request, namespace: KVNamespace) -> Response:
        limit = request.arg("limit")
        page = self._run(
            request,
            namespace.list,
            prefix=request.arg("prefix") or None,
            limit=KV_MAX_LIST_LIMIT if limit is None else limit,
            cursor=request.arg("cursor") or None,
        )
        keys = [_key_json(key.name, key.expiration, key.metadata) for key in page.keys]
        return envelope(keys, result_info={"count": len(keys), "cursor": page.cursor or ""})

    # --- bulk ---------------------------------------------------------------------------------

    def _bulk_write(self, request: Request, namespace: KVNamespace) -> Response:
        if len(request.body) > REST_BULK_MAX_REQUEST_BYTES:
            # The gateway answers by status alone, with no KV error code (wrangler-legacy's
            # ``give_status_code_context``).
            return Response(413, b"Payload Too Large", [("Content-Type", "text/plain")])
        pairs = _json_of(request.body, "the body")
        if not isinstance(pairs, list) or not all(isinstance(p, dict) for p in pairs):
            raise BadRequest("the body must be a JSON array of key-value pair objects")
        if len(pairs) > REST_BULK_WRITE_MAX_PAIRS:
            raise BadRequest(
                f"a bulk write takes at most {REST_BULK_WRITE_MAX_PAIRS} pairs, got {len(pairs)}"
            )
        writes = [_bulk_pair(pair, namespace.clock.now()) for pair in pairs]
        done, failed = 0, []
        for key, value, options in writes:  # one write per pair, as Cloudflare bills it
            try:
                self._run(request, namespace.put, key, value, **options)
                done += 1
            except KVError:  # 429 (same key, quota) or 503: the API reports it, retry it
                failed.append(key)
        return envelope({"successful_key_count": done, "unsuccessful_keys": failed})

    def _bulk_delete(self, request: Request, namespace: KVNamespace) -> Response:
        keys = _json_of(request.body, "the body")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise BadRequest("the body must be a JSON array of key names")
        if len(keys) > REST_BULK_DELETE_MAX_KEYS:
            raise BadRequest(
                f"a bulk delete takes at most {REST_BULK_DELETE_MAX_KEYS} keys, got {len(keys)}"
            )
        done, failed = 0, []
        for key in keys:
            try:
                self._run(request, namespace.delete, key)
                done += 1
            except KVError:
                failed.append(key)
        return envelope({"successful_key_count": done, "unsuccessful_keys": failed})

    def _bulk_get(self, request: Request, namespace: KVNamespace) -> Response:
        query = _json_of(request.body, "the body")
        keys = query.get("keys") if isinstance(query, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise BadRequest("the body must be an object with 'keys', an array of key names")
        if len(keys) > REST_BULK_GET_MAX_KEYS:
            raise BadRequest(
                f"a bulk get takes at most {REST_BULK_GET_MAX_KEYS} keys, got {len(keys)}"
            )
        kind = query.get("type", "text")
        if kind not in ("text", "json"):
            raise BadRequest(f"type must be 'text' or 'json', got {kind!r}")
        with_metadata = bool(query.get("withMetadata", False))
        values: dict[str, object] = {}
        for key in keys:
            found = self._run(request, namespace.get_with_metadata, key, "text")
            value = found.value
            if value is not None and kind == "json":
                value = _json_of(value.encode("utf-8"), f"the value of {key!r}")
            if with_metadata and found.value is not None:
                entry = {"value": value, "metadata": found.metadata}
                expiration = namespace.expiration_of(key)
                if expiration is not None:
                    entry["expiration"] = expiration
                values[key] = entry
            else:
                values[key] = value
        return envelope({"values": values})

    # --- namespaces ----------------------------------------------------------------------------

    def _list_namespaces(self, request: Request) -> Response:
        every = [_namespace_json(ns_id, ns) for ns_id, ns in self.namespaces().items()]
        page = _positive(request.arg("page"), 1)
        per_page = _positive(request.arg("per_page"), REST_NAMESPACES_PER_PAGE)
        if request.arg("order") in ("id", "title"):
            order = request.arg("order") or "id"
            every.sort(key=lambda ns: str(ns[order]))
        if request.arg("direction") == "desc":
            every.reverse()
        shown = every[(page - 1) * per_page : page * per_page]
        info = {
            "page": page,
            "per_page": per_page,
            "count": len(shown),
            "total_count": len(every),
            "total_pages": math.ceil(len(every) / per_page),
        }
        return envelope(shown, result_info=info)


def _caller_of(request: Request) -> Caller:
    """The request's Python caller; for one over a socket, its client address (a bypass)."""
    if request.caller is not None:
        return request.caller
    site = CallSite(f"<cloudflare-api client {request.client or 'unknown'}>", 0, request.method)
    return Caller(site, "" if current_recorder().classifying else None)


def _kv_error(exc: KVError) -> Response:
    """A KV refusal as the API answers it: KV's status and message, and its error code."""
    message = _KV_PREFIX.sub("", exc.message, count=1)
    code = REST_KV_ERROR_CODES.get(exc.status, REST_KV_ERROR_CODES[400])
    return error_response(RESTError(exc.status, code, "{message}"), message=message)


def _no_route(request: Request) -> Response:
    return named_error("no_route", path=request.path)


def _json_of(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(f"{what} is not valid JSON") from None


def _bulk_pair(pair: Mapping[str, Any], now: float) -> tuple[str, str | bytes, dict[str, Any]]:
    """One pair of a bulk write, checked as a single write would be (nothing written yet)."""
    key, value = pair.get("key"), pair.get("value")
    if not isinstance(key, str) or not isinstance(value, str):
        raise BadRequest("each pair needs a string 'key' and a string 'value'")
    stored: str | bytes = value
    if pair.get("base64"):
        try:
            stored = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise BadRequest(f"the value of {key!r} is not valid base64") from None
    options = {
        "expiration": pair.get("expiration"),
        "expiration_ttl": pair.get("expiration_ttl"),
        "metadata": pair.get("metadata"),
    }
    validate_key("PUT", key)
    validate_value_length(stored_value(stored)[1])
    expiration_at(options["expiration"], options["expiration_ttl"], now)
    if options["metadata"] is not None:
        metadata_json(options["metadata"])
    return key, stored, options


def _key_json(name: str, expiration: int | None, metadata: object) -> dict[str, object]:
    """A listed key as the API writes it: ``expiration`` and ``metadata`` only when set."""
    entry: dict[str, object] = {"name": name}
    if expiration is not None:
        entry["expiration"] = expiration
    if metadata is not None:
        entry["metadata"] = metadata
    return entry


def _namespace_json(namespace_id: str, namespace: KVNamespace) -> dict[str, object]:
    return {"id": namespace_id, "title": namespace.name, "supports_url_encoding": True}


def _positive(text: str | None, default: int) -> int:
    try:
        value = int(text) if text is not None else default
    except ValueError:
        raise BadRequest(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise BadRequest(f"expected a positive integer, got {text!r}")
    return value
