"""JavaScript value semantics the Workers binding applies to what a Python Worker passes.

``Number()`` of an option, the 32-bit integer options, ``String()`` of a number and
``JSON.stringify`` (KV measures metadata on exactly that text), and UTF-8 lengths as
``Buffer.byteLength`` counts them.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from .kv_errors import KVBindingError

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def utf8_length(text: str) -> int:
    """UTF-8 byte length as ``Buffer.byteLength`` counts it (lone surrogates count 3)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


_JS_NUMBER = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Infinity)|0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+"
)


def js_number(raw: object) -> float:
    """JavaScript ``Number(raw)`` for what a Python Worker can pass: NaN when unreadable."""
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, int):
        return _int_number(raw)
    if isinstance(raw, float):
        return float(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if text == "":
            return 0.0
        if not _JS_NUMBER.fullmatch(text):
            return math.nan
        if text[:2].lower() in ("0x", "0o", "0b"):
            return _int_number(int(text, 0))
        return float(text.replace("Infinity", "inf"))  # float() itself gives inf past 1.8e308
    return math.nan


def _int_number(value: int) -> float:
    """``Number`` of an integer: the nearest float, or an infinity past the float range."""
    try:
        return float(value)
    except OverflowError:  # JavaScript's Number(10n ** 400n) is Infinity, not an error
        return math.inf if value > 0 else -math.inf


def js_int32_option(raw: object) -> int:
    """A numeric option as the Workers binding passes it on: ``Number()``, NaN and infinities
    as 0, truncated; outside the 32-bit range it refuses the call (a TypeError)."""
    if isinstance(raw, int):
        value = int(raw)  # already whole: range-checked exactly, however large (no float)
    else:
        number = js_number(raw)
        if not math.isfinite(number):
            return 0
        value = math.trunc(number)
    if not INT32_MIN <= value <= INT32_MAX:
        raise KVBindingError("int32_range")
    return value


def js_number_text(raw: object) -> str:
    """``String(raw)`` as JavaScript writes it: 60.0 is "60", 1e-7 is "1e-7", inf "Infinity"."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if not isinstance(raw, float):
        return str(raw)
    if math.isnan(raw):
        return "NaN"
    if math.isinf(raw):
        return "Infinity" if raw > 0 else "-Infinity"
    if raw == 0:
        return "0"
    if 1e-4 <= abs(raw) < 1e16:
        # Here repr is plain notation with the same shortest round-trip digits JavaScript
        # picks; only an integral value's ".0" is not JavaScript's.
        text = repr(raw)
        return text[:-2] if text.endswith(".0") else text
    # ECMAScript Number::toString: the shortest round-trip digits (as repr finds them),
    # laid out in plain notation for 1e-7 < |x| < 1e21 and in exponent notation otherwise.
    sign = "-" if raw < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(raw))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k, n = len(digits), len(digits) + int(exponent)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        mantissa = digits[0] + (f".{digits[1:]}" if k > 1 else "")
        text = f"{mantissa}e{'+' if n > 0 else '-'}{abs(n - 1)}"
    return sign + text


def js_json_stringify(value: object) -> str:
    """Compact JSON as ``JSON.stringify`` writes it (numbers in JS form, no spaces).

    Used for KV metadata, whose 1,024-byte limit is measured on exactly this text. NaN and
    infinities, which JavaScript would silently turn into null, are refused instead. It
    walks containers with its own stack, not recursion: nesting of any depth gets its full
    text (so a 10,000-deep list is the metadata size error, with its exact length).
    """
    text = _scalar_json(value)
    if text is not None:
        return text
    parts: list[str] = []
    append = parts.append
    open_containers: list[tuple[Any, bool, int]] = []  # (item iterator, is a dict, id)
    active: set[int] = set()  # ids of the containers being written: a repeat is a cycle
    while True:  # `value` is a container to open
        ident = id(value)
        if ident in active:
            raise TypeError("Converting circular structure to JSON")
        active.add(ident)
        is_dict = isinstance(value, dict)
        append("{" if is_dict else "[")
        items = iter(value.items() if is_dict else value)  # type: ignore[attr-defined]
        first = True
        while True:
            for item in items:
                if first:
                    first = False
                else:
                    append(",")
                if is_dict:
                    name, item = item
                    if not isinstance(name, str):
                        raise TypeError(f"JSON object keys must be str, got {type(name).__name__}")
                    append(_string_json(name))
                    append(":")
                text = _scalar_json(item)
                if text is None:
                    break  # a nested container: open it, come back to `items` after it
                append(text)
            else:  # this container is done: close it and resume its parent
                append("}" if is_dict else "]")
                active.discard(ident)
                if not open_containers:
                    return "".join(parts)
                items, is_dict, ident = open_containers.pop()
                first = False
                continue
            open_containers.append((items, is_dict, ident))
            value = item
            break


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


_JSON_CONSTANTS = {None: "null", True: "true", False: "false"}


def _string_json(value: str) -> str:
    """A string as JSON.stringify quotes it; a str subclass (a str Enum) by its characters."""
    text = encode_basestring(str.__str__(value))  # what json.dumps(..., ensure_ascii=False) writes
    if not text.isascii():
        text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def _scalar_json(value: object) -> str | None:
    """The JSON text of a non-container; None for a list, tuple or dict (the caller opens it)."""
    if value is None or value is True or value is False:
        return _JSON_CONSTANTS[value]
    if isinstance(value, str):
        return _string_json(value)
    if isinstance(value, int):
        return int.__repr__(value)  # an IntEnum by its digits, as json.dumps writes it
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{value!r} is not JSON: JSON has no NaN or infinity")
        return js_number_text(value)
    if isinstance(value, list | tuple | dict):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
