"""Structured clone as a Python Worker meets it: RPC arguments and results, storage values.

What crosses a Durable Object RPC call goes through workerd's ``python_to_rpc`` and
``python_from_rpc`` (``src/pyodide/internal/workers-api``) and V8's serializer between them:
``str``, numbers, ``bool``, ``None``, lists, dicts (any scalar keys), sets, ``bytes`` (back
as a ``memoryview``), ``datetime`` (back naive, in UTC, to the millisecond: a JS ``Date``),
exceptions (back as ``Exception("Error: ...")``), ``Request`` and ``Response``. Tuples,
bytearrays and functions are refused with the SDK's ``TypeError``; any other object with
V8's ``DataCloneError`` naming its type. A value stored with ``ctx.storage.put`` is what
``to_js`` makes of it: tuples become lists, bytes stay bytes, and the same refusals.

``v8_serialized_size`` is the length of V8's serialization of a cloned value, which is what
workerd measures a stored value by (``ValueSerializer``, format version 15).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Awaitable
from types import FunctionType
from typing import Any

from .ffi import DataCloneError, JsRangeError
from .http import FetchResponse, Request

_SCALARS = frozenset({str, int, float, bool, type(None)})
_UNIX_EPOCH = _dt.datetime(1970, 1, 1)
_UTC_EPOCH = _UNIX_EPOCH.replace(tzinfo=_dt.UTC)
_ONE_US = _dt.timedelta(microseconds=1)


def clone_for_rpc(value: Any) -> Any:
    """What the other side of an RPC call receives for ``value``."""
    return _Cloner(rpc=True).copy(value)


def clone_for_storage(value: Any) -> Any:
    """What ``ctx.storage`` keeps (and hands back) for ``value``."""
    return _Cloner(rpc=False).copy(value)


def not_serializable(value: object) -> DataCloneError:
    """V8's refusal of ``value`` (workerd ``jsg/ser.c++``), naming its Python type."""
    return DataCloneError(
        f'Could not serialize object of type "{type(value).__name__}". '
        "This type does not support serialization."
    )


def js_date(value: _dt.datetime) -> _dt.datetime:
    """``value`` after a trip through a JS ``Date``: whole milliseconds, naive, in UTC (a
    naive value is read as UTC, the time zone Workers run in)."""
    if value.tzinfo is None:
        micros = (value - _UNIX_EPOCH) // _ONE_US
    else:
        micros = (value - _UTC_EPOCH) // _ONE_US
    millis = micros // 1000 if micros >= 0 else -(-micros // 1000)  # JS truncates to zero
    return _UNIX_EPOCH + _dt.timedelta(milliseconds=millis)


class _Cloner:
    """One structured clone: shared and cyclic containers are copied once, as V8 does."""

    def __init__(self, *, rpc: bool) -> None:
        self.rpc = rpc
        self.copies: dict[int, Any] = {}

    def copy(self, value: Any) -> Any:
        try:
            return self._copy(value)
        except RecursionError:
            raise JsRangeError("Maximum call stack size exceeded") from None

    def _copy(self, value: Any) -> Any:
        kind = type(value)
        if kind in _SCALARS:
            return value
        if self.rpc:
            self._refuse_for_rpc(value)
        if isinstance(value, bool | int):  # an IntEnum crosses as its number
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, str):
            return str.__str__(value)
        known = self.copies.get(id(value))
        if known is not None:
            return known
        if isinstance(value, list | tuple):
            copied: list[Any] = []
            self.copies[id(value)] = copied
            copied.extend(self._copy(item) for item in value)
            return copied
        if isinstance(value, dict):
            mapping: dict[Any, Any] = {}
            self.copies[id(value)] = mapping
            for key, item in value.items():
                mapping[self._key(key)] = self._copy(item)
            return mapping
        if isinstance(value, set | frozenset):
            members: set[Any] = set()
            self.copies[id(value)] = members
            members.update(self._key(item) for item in value)
            return members
        if isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            return memoryview(data) if self.rpc else data
        if isinstance(value, _dt.datetime):
            return js_date(value)
        if self.rpc and isinstance(value, FetchResponse | Request):
            return value.clone()
        if self.rpc and isinstance(value, Exception):
            return Exception(f"Error: {value}")
        raise not_serializable(value)

    def _key(self, key: Any) -> Any:
        """A dict key or set member: a scalar, or a ``datetime``, or a refusal."""
        if type(key) in _SCALARS:
            return key
        if isinstance(key, _dt.datetime):
            return js_date(key)
        if isinstance(key, int | float | str):
            return self._copy(key)
        if self.rpc:
            self._refuse_for_rpc(key)
        raise not_serializable(key)

    @staticmethod
    def _refuse_for_rpc(value: Any) -> None:
        """The SDK's own refusals (``_raise_on_disabled_type``), before V8 sees the value."""
        if isinstance(value, tuple | bytearray | FunctionType):
            raise TypeError(f"{type(value)} cannot be sent over RPC.")
        if isinstance(value, Awaitable):
            raise TypeError(f"Awaitable {type(value)} cannot be sent over RPC.")


# --- V8's serialized size ------------------------------------------------------------------

#: V8's small integers with pointer compression: 31 bits.
_SMI_MIN, _SMI_MAX = -(2**30), 2**30 - 1
#: Python ints past JavaScript's safe integers become BigInts in Pyodide.
_SAFE_INT = 2**53 - 1
_ARRAY_INDEX_MAX = 2**32 - 2


def v8_serialized_size(value: Any) -> int:
    """Bytes of V8's serialization of a cloned ``value``, header included."""
    measure = _V8Size()
    measure.add(value)
    return measure.size


def _varint(number: int) -> int:
    return max(1, (number.bit_length() + 6) // 7)


class _V8Size:
    """A running count of ``ValueSerializer``'s output, object ids and alignment included."""

    def __init__(self) -> None:
        self.size = 2  # kVersion tag and the version (15) as a varint
        self.ids: dict[int, int] = {}
        self.next_id = 0

    def add(self, value: Any) -> None:
        if value is None or value is True or value is False:
            self.size += 1  # undefined (Pyodide's None), true, false: one tag
        elif isinstance(value, int):
            self._integer(value)
        elif isinstance(value, float):
            self._number(value)
        elif isinstance(value, str):
            self._string(value)
        elif isinstance(value, _dt.datetime):
            self.next_id += 1
            self.size += 9  # kDate and a double
        elif isinstance(value, bytes | memoryview):
            length = len(value)
            self.next_id += 2  # the ArrayBuffer, then the Uint8Array over it
            self.size += 1 + _varint(length) + length + 3 + _varint(length) + 1
        elif not self._seen(value):
            self._container(value)

    def _seen(self, container: Any) -> bool:
        """True (a back-reference written) if ``container`` was written before."""
        known = self.ids.get(id(container))
        if known is not None:
            self.size += 1 + _varint(known)
            return True
        self.ids[id(container)] = self.next_id
        self.next_id += 1
        return False

    def _container(self, value: Any) -> None:
        if isinstance(value, list):
            self.size += 1 + _varint(len(value))  # kBeginDenseJSArray, length
            for item in value:
                self.add(item)
            self.size += 1 + 1 + _varint(len(value))  # kEndDenseJSArray, 0 properties, length
        elif isinstance(value, dict) and all(isinstance(key, str) for key in value):
            self.size += 1  # kBeginJSObject
            for key, item in value.items():
                self._property_key(key)
                self.add(item)
            self.size += 1 + _varint(len(value))  # kEndJSObject, property count
        elif isinstance(value, dict):
            self.size += 1  # kBeginJSMap
            for key, item in value.items():
                self.add(key)
                self.add(item)
            self.size += 1 + _varint(2 * len(value))  # kEndJSMap, entries * 2
        else:  # a set
            self.size += 1  # kBeginJSSet
            for item in value:
                self.add(item)
            self.size += 1 + _varint(len(value))  # kEndJSSet, size

    def _property_key(self, key: str) -> None:
        """An object's key: array indices ("0", "17") are written as numbers."""
        if key.isdigit() and key.isascii() and (key == "0" or key[0] != "0"):
            index = int(key)
            if index <= _ARRAY_INDEX_MAX:
                self._integer(index)
                return
        self._string(key)

    def _integer(self, value: int) -> None:
        if _SMI_MIN <= value <= _SMI_MAX:
            zigzag = 2 * value if value >= 0 else -2 * value - 1
            self.size += 1 + _varint(zigzag)  # kInt32
        elif -_SAFE_INT <= value <= _SAFE_INT:
            self.size += 9  # kDouble
        else:  # kBigInt, a bitfield (sign, byte length), 64-bit digits
            digits = (abs(value).bit_length() + 63) // 64
            self.size += 1 + _varint(16 * digits + (value < 0)) + 8 * digits

    def _number(self, value: float) -> None:
        """A float: V8 keeps an integral one in small-integer range as one (not -0.0)."""
        negative_zero = value == 0 and math.copysign(1, value) < 0
        if value.is_integer() and _SMI_MIN <= value <= _SMI_MAX and not negative_zero:
            self._integer(int(value))
        else:
            self.size += 9  # kDouble (NaN, infinities and -0.0 too)

    def _string(self, text: str) -> None:
        try:
            length = len(text.encode("latin-1"))
        except UnicodeEncodeError:
            byte_length = len(text.encode("utf-16-le", "surrogatepass"))
            if (self.size + 1 + _varint(byte_length)) & 1:
                self.size += 1  # kPadding: V8 aligns two-byte string data
            self.size += 1 + _varint(byte_length) + byte_length
        else:
            self.size += 1 + _varint(length) + length  # kOneByteString
