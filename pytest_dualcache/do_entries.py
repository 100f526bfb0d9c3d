"""A Durable Object cache entry: what a DO accepts as key, ttl and value, and how it is kept.

``Entry`` is what an engine stores per key; ``encode_value`` makes one from a value,
refusing what a Durable Object refuses (Cloudflare's key and value sizes, non-JSON data)
with a ``DurableObjectLimitError`` in workerd's words. ``DurableObjectError`` is every
other failure of a DO operation (an injected fault, the throughput limit, a lost server).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Final

from pytest_dualcache.jsondata import NotJSONData, json_problem, strict_json_text
from pytest_dualcache.limits import DO_MAX_KEY_BYTES, DO_MAX_VALUE_BYTES, DO_MESSAGES

__all__ = [
    "DO_ERRORS",
    "MAX_TTL",
    "DurableObjectError",
    "DurableObjectLimitError",
    "Entry",
    "checked_key",
    "checked_ttl",
    "encode_value",
    "key_text",
    "overloaded",
    "utf8",
]

#: What an engine stores per key: ``(data, is_json, expires_at, nbytes)``. ``data`` is the
#: value itself for a str/int/float/bool/None, or its compact JSON text when ``is_json``;
#: ``nbytes`` is the UTF-8 size of the value's JSON text.
Entry = tuple[Any, bool, float, int]

#: The longest ttl a DO takes: any finite number of seconds.
MAX_TTL: Final = sys.float_info.max


class DurableObjectError(Exception):
    """A Durable Object operation failed; ``overloaded``/``retryable`` say how, as in workerd."""

    def __init__(self, message: str, *, overloaded: bool = False, retryable: bool = False) -> None:
        super().__init__(message)
        self.overloaded = overloaded
        self.retryable = retryable


class DurableObjectLimitError(DurableObjectError, ValueError):
    """The caller passed something a Durable Object refuses: bad key, value or ttl."""


def utf8(text: str) -> bytes:
    """``text`` as UTF-8; lone surrogates (a JS string, hence a DO key, may hold them) kept."""
    return text.encode("utf-8", "surrogatepass")


def key_text(key: object) -> str:
    """``key`` as a ledger row names it: the plain str, or the repr of a non-str."""
    return str.__str__(key) if isinstance(key, str) else repr(key)


def checked_key(key: object) -> str:
    """``key`` as a plain str if a DO accepts it as a cache key, else DurableObjectLimitError."""
    if not isinstance(key, str):
        raise DurableObjectLimitError(f"Keys must be str, got {type(key).__name__} {key!r}")
    if not key:
        raise DurableObjectLimitError("Keys must not be empty")
    length = len(utf8(key))
    if length > DO_MAX_KEY_BYTES:
        raise DurableObjectLimitError(
            DO_MESSAGES["key_length"].format(limit=DO_MAX_KEY_BYTES, length=length)
        )
    return str.__str__(key)


def checked_ttl(ttl: object) -> float:
    """``ttl`` as a float if it is a finite number of seconds > 0, else DurableObjectLimitError."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise DurableObjectLimitError(
            f"ttl must be a number of seconds > 0, got {type(ttl).__name__} {ttl!r}"
        )
    try:
        seconds = float(ttl)
    except OverflowError:
        seconds = math.inf
    if not 0 < seconds <= MAX_TTL:
        raise DurableObjectLimitError(f"ttl must be a finite number of seconds > 0, got {ttl!r}")
    return seconds


def encode_value(value: object, expires_at: float) -> Entry:
    """The entry for ``value``: scalars as themselves, anything else as checked JSON text."""
    if type(value) is str or type(value) is bool or value is None:
        text = json.dumps(value, ensure_ascii=False)
    elif type(value) is int:
        try:
            text = str(value)
        except ValueError as exc:  # beyond sys.get_int_max_str_digits(): json cannot write it
            raise DurableObjectLimitError(
                f"int value is too large to serialize as JSON: {exc}"
            ) from None
    elif type(value) is float:
        if not math.isfinite(value):
            raise DurableObjectLimitError(json_problem(value) or "value is not finite")
        text = repr(value)
    else:
        text = _container_text(value)
        _check_size(text)
        return (text, True, expires_at, _size(text))
    _check_size(text)
    return (value, False, expires_at, _size(text))


def _container_text(value: object) -> str:
    """Compact JSON text for ``value``, refusing anything that would not come back equal."""
    try:
        return strict_json_text(value)
    except NotJSONData as exc:
        raise DurableObjectLimitError(str(exc)) from None


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(utf8(text))


def _check_size(text: str) -> None:
    # Cheap bound first: every code point is at most 4 UTF-8 bytes.
    if len(text) * 4 <= DO_MAX_VALUE_BYTES:
        return
    length = _size(text)
    if length > DO_MAX_VALUE_BYTES:
        raise DurableObjectLimitError(
            DO_MESSAGES["value_length"].format(limit=DO_MAX_VALUE_BYTES, length=length)
        )


def overloaded() -> DurableObjectError:
    """The error of an overloaded Durable Object (workerd's message), retryable."""
    return DurableObjectError(DO_MESSAGES["overloaded"], overloaded=True, retryable=True)


#: The failures ``fail(error=...)`` injects by name.
DO_ERRORS: Final = {
    "overloaded": lambda op: overloaded(),
    "timeout": lambda op: DurableObjectError(DO_MESSAGES["timeout"], retryable=True),
}
