"""``KVNamespace``: a Workers KV namespace in memory that enforces KV's real limits.

Validation follows workerd and Miniflare (statuses and messages from ``limits.KV_MESSAGES``);
the per-key write rate and the daily quotas, which Miniflare does not enforce, follow
Cloudflare's documented limits. Every operation is recorded in ``ledger``.

Threads: a Worker serves concurrent requests and a data-access layer may use a thread pool,
so one rule keeps a namespace consistent: every operation holds the namespace's ``_lock``
(an ``RLock``) from reading the clock through validation to recording in the ledger, so the
quota, the per-key rate limit, the entries and the ledger change together, one operation
at a time, in clock order. The operations take it in ``put``, ``delete``, ``list`` and
``_read`` (behind ``get``, ``get_with_metadata`` and ``KVLocation``); the inspection helpers
(``keys``, ``expiration_of``, ``used_today``) take it too, so they never see a half-made change.
"""

from __future__ import annotations

import base64
import json
import math
import re
import sys
import threading
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any, Literal

from .clock import VirtualClock
from .faults import FaultInjector, InjectsFaults
from .ledger import Ledger, require_kind, write_hint
from .limits import (
    KV_BINDING_MESSAGES,
    KV_DAILY_QUOTAS,
    KV_FAILED_PREFIX,
    KV_MAX_KEY_BYTES,
    KV_MAX_LIST_LIMIT,
    KV_MAX_METADATA_BYTES,
    KV_MAX_VALUE_BYTES,
    KV_MESSAGES,
    KV_MIN_EXPIRATION_TTL_S,
    KV_PLANS,
    KV_QUOTA_MESSAGE,
    KV_QUOTA_STATUS,
    KV_SAME_KEY_WRITE_INTERVAL_S,
    SECONDS_PER_DAY,
    KVPlan,
)

GetType = Literal["text", "json", "bytes"]
_getframe = sys._getframe
_GET_TYPES = ("text", "json", "bytes")
_QUOTA_METHODS = {"read": "get", "write": "put", "delete": "delete", "list": "list"}
_OPERATIONS = ("get", "put", "delete", "list")


class KVError(Exception):
    """A KV operation Cloudflare would reject; ``status`` and ``message`` are Cloudflare's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class KVValidationError(KVError, ValueError):
    """Bad key, value, metadata, expiration or list option (400, 413 or 414)."""


class KVBindingError(KVValidationError, TypeError):
    """Refused by the Workers binding itself (a JavaScript TypeError): "" or "." keys, or an
    option outside the 32-bit integer range. ``status`` is 400 by our convention."""

    def __init__(self, reason: str, **figures: object) -> None:
        super().__init__(400, KV_BINDING_MESSAGES[reason].format(**figures))


class KVRateLimitError(KVError):
    """More than one write to the same key within a second (429)."""


class KVQuotaError(KVError):
    """A daily operation quota of the plan is used up (resets at 00:00 UTC)."""


def _kv_error(cls: type[KVError], op: str, reason: str, **figures: object) -> KVError:
    status, text = KV_MESSAGES[reason]
    prefix = KV_FAILED_PREFIX.format(op=op, status=status)
    return cls(status, prefix + text.format(**figures))


@dataclass(frozen=True, slots=True)
class KVKey:
    """One key of a ``list`` page; ``expiration`` is absolute epoch seconds."""

    name: str
    expiration: int | None = None
    metadata: Any = None


@dataclass(frozen=True, slots=True)
class KVListResult:
    """A page of ``list``: keys in UTF-8 byte order, and a cursor while more remain."""

    keys: list[KVKey]
    list_complete: bool
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class KVValueWithMetadata:
    """What ``get_with_metadata`` returns: the value (None if absent) and its metadata."""

    value: Any
    metadata: Any = None


def utf8_length(text: str) -> int:
    """UTF-8 byte length as ``Buffer.byteLength`` counts it (lone surrogates count 3)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


#: A key of at most this many characters is within KV_MAX_KEY_BYTES whatever the characters
#: (UTF-8 takes at most 4 bytes a code point), so its length needs no encoding.
_SURELY_SHORT_KEY_CHARS = KV_MAX_KEY_BYTES // 4

_JS_NUMBER = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Infinity)|0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+"
)
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


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
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise KVBindingError("int32_range")
    return value


def _check_option_type(method: str, name: str, raw: object) -> None:
    """Refuse a numeric option of a type a Python Worker cannot pass to the binding.

    JavaScript would read any other object (a ``Decimal``, a list) as NaN, that is 0, and
    the error would then name a 0 the caller never gave; so it is a TypeError naming both.
    """
    if raw is not None and not isinstance(raw, int | float | str):  # bool is an int
        raise TypeError(
            f"KV {method}() {name} must be an int, float, str or bool, got {type(raw).__name__}"
        )


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


class KVNamespace(InjectsFaults):
    """An in-memory Workers KV namespace on a virtual clock, with limits and a ledger.

    ``plan`` picks the daily quotas (``free``, ``paid``, ``unlimited``); ``unlimited`` also
    lifts the 1-write-per-second-per-key rate limit, leaving only validation and recording.
    ``fail()``, ``recover()`` and ``outage()`` make operations fail with a 503 ``KVError``.

    With ``eventual_consistency_s`` > 0, ``kv.at("remote")`` is a view from another location
    that sees the namespace as it was that many seconds ago (Cloudflare documents up to 60 s
    for a write to reach other locations); the namespace itself reads its own writes at once.
    """

    def __init__(
        self,
        clock: VirtualClock,
        *,
        name: str = "CACHE_KV",
        plan: KVPlan = "free",
        ledger: Ledger | None = None,
        eventual_consistency_s: float = 0,
    ) -> None:
        if plan not in KV_PLANS:
            raise ValueError(f"KV plan must be one of {', '.join(KV_PLANS)}, got {plan!r}")
        if not (isinstance(eventual_consistency_s, int | float) and eventual_consistency_s >= 0):
            raise ValueError(
                f"eventual_consistency_s must be >= 0 seconds, got {eventual_consistency_s!r}"
            )
        self.eventual_consistency_s = eventual_consistency_s
        # key -> (entry before the oldest write still propagating, [(write time, entry after)])
        self._propagating: dict[str, tuple[Any, list[tuple[float, Any]]]] = {}
        self.name = name
        self.plan = plan
        self.clock = clock
        self.ledger = Ledger(name) if ledger is None else require_kind(ledger, "kv", "KVNamespace")
        # key -> (value, absolute expiration or None, metadata JSON or None, value bytes)
        self._entries: dict[str, tuple[str | bytes, int | None, str | None, int]] = {}
        self._last_write_at: dict[str, float] = {}
        self._rate_limited = plan != "unlimited"
        # The daily quota: these four fields, _roll_quota_day and _check_quota are all of it
        # (one piece to move out whole when the quota becomes account-wide; the lock that
        # guards it must then be shared with it).
        self._quotas = KV_DAILY_QUOTAS[plan]
        self._quota_day_start = 0.0
        self._quota_day_end = 0.0
        self._used_today = {"read": 0, "write": 0, "delete": 0, "list": 0}
        self.faults = FaultInjector(_OPERATIONS, {"unavailable": _unavailable})
        self._lock = threading.RLock()  # see the module docstring: every operation holds it

    # --- public operations -------------------------------------------------------------

    def put(
        self,
        key: str,
        value: str | bytes,
        *,
        expiration: float | str | None = None,
        expiration_ttl: float | str | None = None,
        metadata: object = None,
    ) -> None:
        """Store ``value`` under ``key``; raises a ``KVError`` and changes nothing if rejected."""
        with self._lock:
            now = self.clock.now()
            try:
                nbytes = self._put(key, value, expiration, expiration_ttl, metadata, now)
            except Exception as exc:
                self.ledger.record("put", _key_text(key), now, 0, False, str(exc))
                raise
            # KV budgets are about puts, so a put from a module whose writes need no stack
            # walk (see WriteHint) appends its row here, in Ledger's row layout, skipping
            # record().
            append_row = self.ledger.append_row
            if append_row is not None:
                caller = _getframe(1)
                hint_globals, via = write_hint.pair
                if caller.f_globals is hint_globals:
                    append_row(
                        ("put", key, now, nbytes, True, None, caller.f_code, caller.f_lasti, via)
                    )
                else:
                    self.ledger.record("put", key, now, nbytes, True)

    def get(self, key: str, type: GetType = "text") -> Any:
        """The value as text, parsed JSON or bytes; None if absent or expired."""
        return self._read(key, type, with_metadata=False)

    def get_with_metadata(self, key: str, type: GetType = "text") -> KVValueWithMetadata:
        """The value and its metadata (both None if absent or expired)."""
        return self._read(key, type, with_metadata=True)

    def delete(self, key: str) -> None:
        """Remove ``key`` (absent keys are fine); counts against the daily delete quota."""
        with self._lock:
            now = self.clock.now()
            try:
                self._validate_key("DELETE", key)
                self._raise_injected_fault("delete")
                self._check_quota("delete", now)
                if self.eventual_consistency_s:
                    self._note_propagating(key, None, now)
                self._entries.pop(key, None)
            except Exception as exc:
                self.ledger.record("delete", _key_text(key), now, 0, False, str(exc))
                raise
            self._used_today["delete"] += 1
            self.ledger.record("delete", key, now, 0, True)

    def list(
        self,
        *,
        prefix: str | None = None,
        limit: int = KV_MAX_LIST_LIMIT,
        cursor: str | None = None,
        _remote: bool = False,
    ) -> KVListResult:
        """One page of live keys in UTF-8 byte order, starting after ``cursor``."""
        with self._lock:
            now = self.clock.now()
            try:
                result = self._list(prefix, limit, cursor, now, remote=_remote)
            except Exception as exc:
                self.ledger.record("list", _key_text(prefix or ""), now, 0, False, str(exc))
                raise
            self._used_today["list"] += 1
            self.ledger.record("list", prefix or "", now, 0, True)
            return result

    # --- inspection helpers for tests ---------------------------------------------------

    def keys(self) -> list[str]:
        """Every live key, sorted; not an operation (not recorded, no quota)."""
        with self._lock:
            now = self.clock.now()
            return sorted(k for k, entry in self._entries.items() if not _expired(entry[1], now))

    def expiration_of(self, key: str) -> int | None:
        """The stored absolute expiration of a live key (None if none or absent); unrecorded."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or _expired(entry[1], self.clock.now()):
                return None
            return entry[1]

    def used_today(self) -> dict[str, int]:
        """Successful operations counted against today's quotas (UTC day of the clock)."""
        with self._lock:
            self._roll_quota_day(self.clock.now())
            return dict(self._used_today)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.keys()

    def __repr__(self) -> str:
        return f"<KVNamespace {self.name} plan={self.plan} keys={len(self._entries)}>"

    # --- internals ----------------------------------------------------------------------

    def _put(
        self,
        key: str,
        value: str | bytes,
        expiration: float | str | None,
        expiration_ttl: float | str | None,
        metadata: object,
        now: float,
    ) -> int:
        self._validate_key("PUT", key)
        if value.__class__ is not str and isinstance(value, str):
            # A str subclass (a str Enum) is stored as its characters, as the DO cache and
            # json.dumps store it; str(value) would be its __str__ ("Color.RED").
            value = str.__str__(value)
        if value.__class__ is str:
            nbytes = len(value) if value.isascii() else utf8_length(value)
        elif isinstance(value, bytes | bytearray | memoryview):
            value = bytes(value)
            nbytes = len(value)
        else:
            raise TypeError(
                "KV put() accepts only strings and bytes-like objects as values, "
                f"got {type(value).__name__}"
            )
        if (
            expiration_ttl.__class__ is int
            and KV_MIN_EXPIRATION_TTL_S <= expiration_ttl <= _INT32_MAX
            and expiration is None
        ):
            expires_at: int | None = math.floor(now) + expiration_ttl  # the common case
        else:
            expires_at = self._expiration(expiration, expiration_ttl, now)
        metadata_json = None if metadata is None else _metadata_json(metadata)
        if nbytes > KV_MAX_VALUE_BYTES:
            raise _kv_error(
                KVValidationError, "PUT", "value_length", length=nbytes, limit=KV_MAX_VALUE_BYTES
            )
        self._raise_injected_fault("put")
        self._check_quota("write", now)
        if self._rate_limited:
            last = self._last_write_at.get(key)
            if last is not None and 0 <= now - last < KV_SAME_KEY_WRITE_INTERVAL_S:
                raise _kv_error(KVRateLimitError, "PUT", "rate_limited")
            self._last_write_at[key] = now
        entry = (value, expires_at, metadata_json, nbytes)
        if self.eventual_consistency_s:  # off by default: the hot path pays one attribute read
            self._note_propagating(key, entry, now)
        self._entries[key] = entry
        self._used_today["write"] += 1
        return nbytes

    # --- eventual consistency -----------------------------------------------------------

    def at(self, location: str) -> KVNamespace | KVLocation:
        """This namespace as seen from ``location``: "local" is itself, any other lags."""
        return self if location == "local" else KVLocation(self, location)

    def _note_propagating(self, key: str, entry: Any, now: float) -> None:
        """Remember a write still travelling to other locations (eventual consistency on)."""
        base, writes = self._propagating.get(key, (self._entries.get(key), []))
        writes.append((now, entry))
        self._propagating[key] = (base, writes)

    def _remote_entry(self, key: str, now: float) -> Any:
        """The entry a lagging location sees: the last write that reached it, if any."""
        known = self._propagating.get(key)
        if known is None:
            return self._entries.get(key)
        cutoff = now - self.eventual_consistency_s
        base, writes = known
        while writes and writes[0][0] <= cutoff:
            base = writes.pop(0)[1]
        if writes:
            self._propagating[key] = (base, writes)
        else:
            del self._propagating[key]
        return base

    def _read(self, key: str, type: str, *, with_metadata: bool, remote: bool = False) -> Any:
        """``get``/``get_with_metadata``, here or from a lagging location (``remote``)."""
        with self._lock:
            now = self.clock.now()
            try:
                if type not in _GET_TYPES:
                    raise ValueError(f"KV get() type must be one of {_GET_TYPES}, got {type!r}")
                self._validate_key("GET", key)
                self._raise_injected_fault("get")
                self._check_quota("read", now)
                entry = self._remote_entry(key, now) if remote else self._entries.get(key)
                if entry is not None and entry[1] is not None and now >= entry[1]:
                    if not remote:
                        del self._entries[key]
                    entry = None
            except Exception as exc:
                self.ledger.record("get", _key_text(key), now, 0, False, str(exc))
                raise
            # From here the read has happened: Cloudflare bills it even when the value then
            # fails to parse as JSON, so it counts and is recorded as a success either way;
            # a parse error is noted on its ledger row, then raised.
            self._used_today["read"] += 1
            value = metadata = None
            nbytes = 0
            parse_error: Exception | None = None
            if entry is not None:
                stored, _, metadata_json, nbytes = entry
                if with_metadata and metadata_json is not None:
                    # Stored metadata is at most KV_MAX_METADATA_BYTES of JSON, so at most 512
                    # levels deep (a level takes at least its 2 brackets): json.loads, which
                    # recurses per level, stays within Python's default limit of 1,000.
                    metadata = json.loads(metadata_json)
                if type == "text" and stored.__class__ is str:
                    value = stored
                else:
                    try:
                        value = _decode(stored, type)
                    except Exception as exc:  # a "json" read of text that does not parse
                        parse_error = exc
            self.ledger.record(
                "get", key, now, nbytes, True, None if parse_error is None else str(parse_error)
            )
            if parse_error is not None:
                raise parse_error
            return KVValueWithMetadata(value, metadata) if with_metadata else value

    def _list(
        self,
        prefix: str | None,
        limit: object,
        cursor: str | None,
        now: float,
        *,
        remote: bool = False,
    ) -> KVListResult:
        # The binding drops a limit below 1 (or unreadable, or infinite) and asks for the
        # default page.
        _check_option_type("list", "limit", limit)
        number = js_number(limit)
        parsed_limit = math.trunc(number) if math.isfinite(number) else 0
        if parsed_limit < 1:
            parsed_limit = KV_MAX_LIST_LIMIT
        if parsed_limit > KV_MAX_LIST_LIMIT:
            raise _kv_error(
                KVValidationError,
                "GET",  # the binding reports list failures as "KV GET failed"
                "list_limit_large",
                raw=parsed_limit,
                limit=KV_MAX_LIST_LIMIT,
            )
        if prefix is not None:
            self._validate_key_length("GET", prefix)
        start_after = _decode_cursor(cursor)
        self._raise_injected_fault("list")
        self._check_quota("list", now)
        for key in [k for k, entry in self._entries.items() if _expired(entry[1], now)]:
            del self._entries[key]
        entries = self._entries
        if remote and self._propagating:
            entries = dict(entries)
            for key in list(self._propagating):
                seen = self._remote_entry(key, now)
                if seen is None or _expired(seen[1], now):
                    entries.pop(key, None)
                else:
                    entries[key] = seen
        wanted = prefix or ""
        names = sorted(k for k in entries if k.startswith(wanted) and k > start_after)
        page = names[:parsed_limit]
        keys = []
        for name in page:
            _, expires_at, metadata_json, _ = entries[name]
            metadata = None if metadata_json is None else json.loads(metadata_json)
            keys.append(KVKey(name, expires_at, metadata))
        if len(names) > parsed_limit:
            return KVListResult(keys, False, _encode_cursor(page[-1]))
        return KVListResult(keys, True, None)

    def _expiration(
        self, expiration: float | str | None, expiration_ttl: float | str | None, now: float
    ) -> int | None:
        _check_option_type("put", "expiration_ttl", expiration_ttl)
        _check_option_type("put", "expiration", expiration)
        whole_now = math.floor(now)
        if expiration_ttl is not None:
            ttl = js_int32_option(expiration_ttl)
            if ttl <= 0:
                raise _kv_error(KVValidationError, "PUT", "ttl_not_positive", raw=ttl)
            if ttl < KV_MIN_EXPIRATION_TTL_S:
                raise _kv_error(
                    KVValidationError,
                    "PUT",
                    "ttl_too_small",
                    raw=ttl,
                    limit=KV_MIN_EXPIRATION_TTL_S,
                )
            return whole_now + ttl
        if expiration is not None:
            at = js_int32_option(expiration)
            if at <= whole_now:
                raise _kv_error(KVValidationError, "PUT", "expiration_past", raw=at)
            if at < whole_now + KV_MIN_EXPIRATION_TTL_S:
                raise _kv_error(
                    KVValidationError,
                    "PUT",
                    "expiration_too_soon",
                    raw=at,
                    limit=KV_MIN_EXPIRATION_TTL_S,
                )
            return at
        return None

    def _validate_key(self, op: str, key: str) -> None:
        if type(key) is str and 2 < len(key) <= _SURELY_SHORT_KEY_CHARS:
            return  # the common case: a key of 3+ chars can't be "", "." or ".." nor too long
        if not isinstance(key, str):
            raise TypeError(f"KV keys must be str, got {type(key).__name__}")
        if key == "":
            raise KVBindingError("key_empty")
        if key == "." or key == "..":
            raise KVBindingError("key_dot", key=key)
        self._validate_key_length(op, key)

    @staticmethod
    def _validate_key_length(op: str, key: str) -> None:
        if not isinstance(key, str):
            raise TypeError(f"KV keys and prefixes must be str, got {type(key).__name__}")
        length = utf8_length(key)
        if length > KV_MAX_KEY_BYTES:
            raise _kv_error(
                KVValidationError, op, "key_length", length=length, limit=KV_MAX_KEY_BYTES
            )

    def _raise_injected_fault(self, op: str) -> None:
        if self.faults.active:
            error = self.faults.take(op)
            if error is not None:
                raise error

    def _roll_quota_day(self, now: float) -> None:
        if not self._quota_day_start <= now < self._quota_day_end:
            self._quota_day_start = now - now % SECONDS_PER_DAY
            self._quota_day_end = self._quota_day_start + SECONDS_PER_DAY
            self._used_today = dict.fromkeys(self._used_today, 0)

    def _check_quota(self, kind: str, now: float) -> None:
        if not self._quota_day_start <= now < self._quota_day_end:
            self._roll_quota_day(now)
        quotas = self._quotas
        if quotas is not None and self._used_today[kind] >= quotas[kind]:
            raise KVQuotaError(
                KV_QUOTA_STATUS, KV_QUOTA_MESSAGE.format(method=_QUOTA_METHODS[kind])
            )


def _unavailable(op: str) -> KVError:
    return _kv_error(KVError, "GET" if op == "list" else op.upper(), "unavailable")


def _expired(expires_at: int | None, now: float) -> bool:
    return expires_at is not None and now >= expires_at


def _key_text(key: object) -> str:
    return key if isinstance(key, str) else repr(key)


def _metadata_json(metadata: object) -> str:
    try:
        text = js_json_stringify(metadata)
    except TypeError as exc:
        raise TypeError(f"KV metadata must be JSON-serializable: {exc}") from None
    length = utf8_length(text)
    if length > KV_MAX_METADATA_BYTES:
        raise _kv_error(
            KVValidationError, "PUT", "metadata_length", length=length, limit=KV_MAX_METADATA_BYTES
        )
    return text


def _decode(stored: str | bytes, type: str) -> Any:
    """A stored value read as ``type``; "json" parses exactly the text a "text" read gives."""
    if type == "text":
        return stored if isinstance(stored, str) else stored.decode("utf-8", "replace")
    if type == "json":
        # Not json.loads(bytes), which would guess UTF-16/32 and raise UnicodeDecodeError on
        # bytes that are not UTF-8: JavaScript decodes them as UTF-8 with U+FFFD, then parses.
        return json.loads(_decode(stored, "text"), parse_constant=_reject_js_constant)
    return stored.encode("utf-8", "surrogatepass") if isinstance(stored, str) else stored


def _reject_js_constant(name: str) -> None:
    raise json.JSONDecodeError(
        f"Unexpected token '{name[0]}', \"{name}\" is not valid JSON", name, 0
    )


def _encode_cursor(last_key: str) -> str:
    return base64.b64encode(last_key.encode("utf-8", "surrogatepass")).decode("ascii")


def _decode_cursor(cursor: str | None) -> str:
    """The key a cursor starts after, decoded as leniently as Node's ``Buffer`` does.

    A cursor we made decodes back to exactly its key, lone surrogates included (encoded
    with "surrogatepass" by ``_encode_cursor``); only bytes no key encodes to (a cursor
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


class KVLocation:
    """A namespace seen from another location: reads lag by ``eventual_consistency_s``.

    Writes go to the namespace itself (KV has one central store); every operation is
    recorded and limited exactly as on the namespace.
    """

    def __init__(self, namespace: KVNamespace, location: str) -> None:
        self.namespace = namespace
        self.location = location

    def get(self, key: str, type: GetType = "text") -> Any:
        """The value as this location sees it (possibly the one before a recent write)."""
        return self.namespace._read(key, type, with_metadata=False, remote=True)

    def get_with_metadata(self, key: str, type: GetType = "text") -> KVValueWithMetadata:
        """Value and metadata as this location sees them."""
        return self.namespace._read(key, type, with_metadata=True, remote=True)

    def list(
        self,
        *,
        prefix: str | None = None,
        limit: int = KV_MAX_LIST_LIMIT,
        cursor: str | None = None,
    ) -> KVListResult:
        """A page of keys as this location sees them."""
        return self.namespace.list(prefix=prefix, limit=limit, cursor=cursor, _remote=True)

    def put(self, key: str, value: str | bytes, **options: Any) -> None:
        """Write through to the namespace."""
        self.namespace.put(key, value, **options)

    def delete(self, key: str) -> None:
        """Delete through to the namespace."""
        self.namespace.delete(key)

    def __repr__(self) -> str:
        return f"<KVLocation {self.location} of {self.namespace.name}>"
