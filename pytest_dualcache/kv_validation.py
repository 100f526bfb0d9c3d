"""What a KV operation accepts: one validator per rule, in the binding's order and words.

Each function checks one thing (a key, a value, an expiration, metadata, a list limit or
cursor) and returns what the namespace stores, or raises the error workerd would.
"""

from __future__ import annotations

import base64
import math
import re

from .jsvalues import js_int32_option, js_json_stringify, js_number, utf8_length
from .kv_errors import KVBindingError, KVValidationError, kv_error
from .limits import (
    KV_MAX_KEY_BYTES,
    KV_MAX_LIST_LIMIT,
    KV_MAX_METADATA_BYTES,
    KV_MAX_VALUE_BYTES,
    KV_MIN_EXPIRATION_TTL_S,
)

#: What a numeric option may be (bool is an int). Tuples made once: ``int | float | str``
#: in a function builds a new union on every call.
_OPTION_TYPES = (int, float, str)
_BYTES_LIKE = (bytes, bytearray, memoryview)


def check_option_type(method: str, name: str, raw: object) -> None:
    """Refuse a numeric option of a type a Python Worker cannot pass to the binding.

    JavaScript would read any other object (a ``Decimal``, a list) as NaN, that is 0, and
    the error would then name a 0 the caller never gave; so it is a TypeError naming both.
    """
    if raw is not None and not isinstance(raw, _OPTION_TYPES):
        raise TypeError(
            f"KV {method}() {name} must be an int, float, str or bool, got {type(raw).__name__}"
        )


def validate_key(op: str, key: object) -> None:
    """A key is a str, not "", "." or "..", and at most ``KV_MAX_KEY_BYTES`` of UTF-8."""
    if not isinstance(key, str):
        raise TypeError(f"KV keys must be str, got {type(key).__name__}")
    if key == "":
        raise KVBindingError("key_empty")
    if key == "." or key == "..":
        raise KVBindingError("key_dot", key=key)
    validate_key_length(op, key)


def validate_key_length(op: str, key: object) -> None:
    """A key or list prefix is a str of at most ``KV_MAX_KEY_BYTES`` of UTF-8."""
    if not isinstance(key, str):
        raise TypeError(f"KV keys and prefixes must be str, got {type(key).__name__}")
    length = utf8_length(key)
    if length > KV_MAX_KEY_BYTES:
        raise kv_error(KVValidationError, op, "key_length", length=length, limit=KV_MAX_KEY_BYTES)


def stored_value(value: object) -> tuple[str | bytes, int]:
    """The value as stored (a str, or bytes from any bytes-like object) and its byte length.

    A str subclass (a str Enum) is stored as its characters, as the DO cache and json.dumps
    store it; str(value) would be its __str__ ("Color.RED").
    """
    if isinstance(value, str):
        text = str.__str__(value)
        return text, utf8_length(text)
    if isinstance(value, _BYTES_LIKE):
        data = bytes(value)
        return data, len(data)
    raise TypeError(
        "KV put() accepts only strings and bytes-like objects as values, "
        f"got {type(value).__name__}"
    )


def validate_value_length(nbytes: int) -> None:
    """A value is at most ``KV_MAX_VALUE_BYTES``."""
    if nbytes > KV_MAX_VALUE_BYTES:
        raise kv_error(
            KVValidationError, "PUT", "value_length", length=nbytes, limit=KV_MAX_VALUE_BYTES
        )


def expiration_at(expiration: object, expiration_ttl: object, now: float) -> int | None:
    """The absolute expiry a put asks for (``expiration_ttl`` wins), None for none."""
    check_option_type("put", "expiration_ttl", expiration_ttl)
    check_option_type("put", "expiration", expiration)
    whole_now = math.floor(now)
    if expiration_ttl is not None:
        ttl = js_int32_option(expiration_ttl)
        if ttl <= 0:
            raise kv_error(KVValidationError, "PUT", "ttl_not_positive", raw=ttl)
        if ttl < KV_MIN_EXPIRATION_TTL_S:
            raise kv_error(
                KVValidationError, "PUT", "ttl_too_small", raw=ttl, limit=KV_MIN_EXPIRATION_TTL_S
            )
        return whole_now + ttl
    if expiration is not None:
        at = js_int32_option(expiration)
        if at <= whole_now:
            raise kv_error(KVValidationError, "PUT", "expiration_past", raw=at)
        if at < whole_now + KV_MIN_EXPIRATION_TTL_S:
            raise kv_error(
                KVValidationError,
                "PUT",
                "expiration_too_soon",
                raw=at,
                limit=KV_MIN_EXPIRATION_TTL_S,
            )
        return at
    return None


def metadata_json(metadata: object) -> str:
    """Metadata as the JSON text KV stores and measures: at most ``KV_MAX_METADATA_BYTES``."""
    try:
        text = js_json_stringify(metadata)
    except TypeError as exc:
        raise TypeError(f"KV metadata must be JSON-serializable: {exc}") from None
    length = utf8_length(text)
    if length > KV_MAX_METADATA_BYTES:
        raise kv_error(
            KVValidationError, "PUT", "metadata_length", length=length, limit=KV_MAX_METADATA_BYTES
        )
    return text


def list_limit(limit: object) -> int:
    """The page size a list asks for; below 1, unreadable or infinite is the default page."""
    check_option_type("list", "limit", limit)
    number = js_number(limit)
    parsed = math.trunc(number) if math.isfinite(number) else 0
    if parsed < 1:
        parsed = KV_MAX_LIST_LIMIT
    if parsed > KV_MAX_LIST_LIMIT:
        raise kv_error(
            KVValidationError,
            "GET",  # the binding reports list failures as "KV GET failed"
            "list_limit_large",
            raw=parsed,
            limit=KV_MAX_LIST_LIMIT,
        )
    return parsed


def encode_cursor(last_key: str) -> str:
    """The cursor of a page that ended at ``last_key``."""
    return base64.b64encode(last_key.encode("utf-8", "surrogatepass")).decode("ascii")


def decode_cursor(cursor: object) -> str:
    """The key a cursor starts after, decoded as leniently as Node's ``Buffer`` does.

    A cursor we made decodes back to exactly its key, lone surrogates included (encoded
    with "surrogatepass" by ``encode_cursor``); only bytes no key encodes to (a cursor
    made up by hand) are read as U+FFFD, as Node reads them.
    """
    if cursor is None:
        return ""
    if not isinstance(cursor, str):
        raise TypeError(f"KV list() cursor must be str, got {type(cursor).__name__}")
    alphabet = re.sub(r"[^A-Za-z0-9+/]", "", cursor.replace("-", "+").replace("_", "/"))
    raw = base64.b64decode(alphabet + "=" * (-len(alphabet) % 4)) if len(alphabet) % 4 != 1 else b""
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")
