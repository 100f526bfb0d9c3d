"""``KVNamespace``: a Workers KV namespace in memory that enforces KV's real limits.

Validation follows workerd and Miniflare (statuses and messages from ``limits.KV_MESSAGES``;
the rules are in ``kv_validation``, JavaScript's value semantics in ``jsvalues``); the
per-key write rate and the daily quotas (``kv_quota``), which Miniflare does not enforce,
follow Cloudflare's documented limits. Eventual consistency is ``kv_consistency``'s. Every
operation is recorded in ``ledger``.

Threads: a Worker serves concurrent requests and a data-access layer may use a thread pool,
so one rule keeps a namespace consistent: every operation holds the namespace's ``_lock``
(an ``RLock``, its quota's: namespaces sharing a daily quota share it) from reading the
clock through validation to recording in the ledger, so the quota, the per-key rate limit,
the entries and the ledger change together, one operation at a time, in clock order. The
operations take it in ``put``, ``delete``, ``_list_operation`` and ``_read`` (behind
``get``, ``get_with_metadata``, ``list`` and ``KVLocation``); the inspection helpers
(``keys``, ``expiration_of``, ``used_today``) take it too, so they never see a half-made
change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from .clock import VirtualClock
from .faults import FaultInjector, InjectsFaults
from .jsvalues import js_int32_option, js_json_stringify, js_number, js_number_text, utf8_length
from .kv_consistency import KVLocation, PropagationLog
from .kv_errors import (
    KVBindingError,
    KVError,
    KVQuotaError,
    KVRateLimitError,
    KVValidationError,
    kv_error,
)
from .kv_quota import DailyQuota
from .kv_validation import (
    decode_cursor,
    encode_cursor,
    expiration_at,
    list_limit,
    metadata_json,
    stored_value,
    validate_key,
    validate_key_length,
    validate_value_length,
)
from .ledger import Ledger, require_kind
from .limits import (
    KV_MAX_LIST_LIMIT,
    KV_OPERATIONS,
    KV_PLANS,
    KV_SAME_KEY_WRITE_INTERVAL_S,
    KVPlan,
)

__all__ = [
    "GetType",
    "KVBindingError",
    "KVError",
    "KVKey",
    "KVListResult",
    "KVLocation",
    "KVNamespace",
    "KVQuotaError",
    "KVRateLimitError",
    "KVValidationError",
    "KVValueWithMetadata",
    "js_int32_option",
    "js_json_stringify",
    "js_number",
    "js_number_text",
    "utf8_length",
]

GetType = Literal["text", "json", "bytes"]
_GET_TYPES = ("text", "json", "bytes")
#: What the namespace keeps per key: value, absolute expiry or None, metadata JSON or None,
#: value bytes.
Entry = tuple[str | bytes, int | None, str | None, int]


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
        quota: DailyQuota | None = None,
    ) -> None:
        if plan not in KV_PLANS:
            raise ValueError(f"KV plan must be one of {', '.join(KV_PLANS)}, got {plan!r}")
        if not (isinstance(eventual_consistency_s, int | float) and eventual_consistency_s >= 0):
            raise ValueError(
                f"eventual_consistency_s must be >= 0 seconds, got {eventual_consistency_s!r}"
            )
        self.eventual_consistency_s = eventual_consistency_s
        #: The writes other locations do not see yet; None when consistency is immediate.
        self.propagation = (
            PropagationLog(eventual_consistency_s) if eventual_consistency_s else None
        )
        self.name = name
        self.plan = plan
        self.clock = clock
        self.ledger = Ledger(name) if ledger is None else require_kind(ledger, "kv", "KVNamespace")
        self._entries: dict[str, Entry] = {}
        self._last_write_at: dict[str, float] = {}
        self._rate_limited = plan != "unlimited"
        if quota is not None and quota.plan != plan:
            raise ValueError(f"a shared quota of plan {quota.plan!r} cannot count a {plan!r} one")
        #: Today's operations; shared by the namespaces of one account (see ``kv_quota``).
        self.quota = DailyQuota(plan) if quota is None else quota
        self.faults = FaultInjector(tuple(KV_OPERATIONS), {"unavailable": _unavailable})
        self._lock = self.quota.lock  # see the module docstring: every operation holds it

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
                self.ledger.record("put", _key_text(key), now, 0, False, exc)
                raise
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
                validate_key("DELETE", key)
                self._raise_injected_fault("delete")
                self.quota.check("delete", now)
                self._write(key, None, now)
            except Exception as exc:
                self.ledger.record("delete", _key_text(key), now, 0, False, exc)
                raise
            self.quota.count("delete")
            self.ledger.record("delete", key, now, 0, True)

    def list(
        self,
        *,
        prefix: str | None = None,
        limit: int = KV_MAX_LIST_LIMIT,
        cursor: str | None = None,
    ) -> KVListResult:
        """One page of live keys in UTF-8 byte order, starting after ``cursor``."""
        return self._list_operation(prefix, limit, cursor)

    def at(self, location: str) -> KVNamespace | KVLocation:
        """This namespace as seen from ``location``: "local" is itself, any other lags."""
        return self if location == "local" else KVLocation(self, location)

    # --- inspection helpers for tests ---------------------------------------------------

    def keys(self) -> list[str]:
        """Every live key, sorted; not an operation (not recorded, no quota)."""
        with self._lock:
            now = self.clock.now()
            return sorted(k for k, entry in self._entries.items() if not _expired(entry, now))

    def expiration_of(self, key: str) -> int | None:
        """The stored absolute expiration of a live key (None if none or absent); unrecorded."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or _expired(entry, self.clock.now()):
                return None
            return entry[1]

    def used_today(self) -> dict[str, int]:
        """Successful operations counted against today's quotas (UTC day of the clock)."""
        with self._lock:
            return self.quota.used_today(self.clock.now())

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
        """Validate and store one put (the lock held); returns the value's bytes."""
        validate_key("PUT", key)
        stored, nbytes = stored_value(value)
        expires_at = expiration_at(expiration, expiration_ttl, now)
        metadata_text = None if metadata is None else metadata_json(metadata)
        validate_value_length(nbytes)
        self._raise_injected_fault("put")
        self.quota.check("put", now)
        if self._rate_limited:
            last = self._last_write_at.get(key)
            if last is not None and 0 <= now - last < KV_SAME_KEY_WRITE_INTERVAL_S:
                raise kv_error(KVRateLimitError, "PUT", "rate_limited")
            self._last_write_at[key] = now
        self._write(key, (stored, expires_at, metadata_text, nbytes), now)
        self.quota.count("put")
        return nbytes

    def _write(self, key: str, entry: Entry | None, now: float) -> None:
        """Store ``entry`` under ``key`` (None deletes it), telling other locations."""
        if self.propagation is not None:
            self.propagation.note_write(key, self._entries.get(key), entry, now)
        if entry is None:
            self._entries.pop(key, None)
        else:
            self._entries[key] = entry

    def _entry(self, key: str, now: float) -> Entry | None:
        """The entry for ``key`` here; an expired one is dropped and reads as absent."""
        entry = self._entries.get(key)
        if entry is not None and _expired(entry, now):
            del self._entries[key]
            return None
        return entry

    def _read(
        self, key: str, type: str, *, with_metadata: bool, seen_from: KVLocation | None = None
    ) -> Any:
        """``get``/``get_with_metadata``, here or as another location sees it (``seen_from``)."""
        with self._lock:
            now = self.clock.now()
            try:
                if type not in _GET_TYPES:
                    raise ValueError(f"KV get() type must be one of {_GET_TYPES}, got {type!r}")
                validate_key("GET", key)
                self._raise_injected_fault("get")
                self.quota.check("get", now)
                if seen_from is None:
                    entry = self._entry(key, now)
                else:
                    entry = seen_from._entry(key, now)
                    entry = None if entry is not None and _expired(entry, now) else entry
            except Exception as exc:
                self.ledger.record("get", _key_text(key), now, 0, False, exc)
                raise
            # From here the read has happened: Cloudflare bills it even when the value then
            # fails to parse as JSON, so it counts and is recorded as a success either way;
            # a parse error is noted on its ledger row, then raised.
            self.quota.count("get")
            value = metadata = None
            nbytes = 0
            parse_error: Exception | None = None
            if entry is not None:
                stored, _, metadata_text, nbytes = entry
                if with_metadata and metadata_text is not None:
                    # Stored metadata is at most KV_MAX_METADATA_BYTES of JSON, so at most 512
                    # levels deep (a level takes at least its 2 brackets): json.loads, which
                    # recurses per level, stays within Python's default limit of 1,000.
                    metadata = json.loads(metadata_text)
                try:
                    value = _decode(stored, type)
                except Exception as exc:  # a "json" read of text that does not parse
                    parse_error = exc
            self.ledger.record("get", key, now, nbytes, True, parse_error)
            if parse_error is not None:
                raise parse_error
            return KVValueWithMetadata(value, metadata) if with_metadata else value

    def _list_operation(
        self,
        prefix: str | None,
        limit: object,
        cursor: str | None,
        *,
        seen_from: KVLocation | None = None,
    ) -> KVListResult:
        """``list``, here or as another location sees it (``seen_from``)."""
        with self._lock:
            now = self.clock.now()
            try:
                result = self._list(prefix, limit, cursor, now, seen_from)
            except Exception as exc:
                self.ledger.record("list", _key_text(prefix or ""), now, 0, False, exc)
                raise
            self.quota.count("list")
            self.ledger.record("list", prefix or "", now, 0, True)
            return result

    def _list(
        self,
        prefix: str | None,
        limit: object,
        cursor: str | None,
        now: float,
        seen_from: KVLocation | None,
    ) -> KVListResult:
        """Validate and page one list (the lock held)."""
        page_size = list_limit(limit)
        if prefix is not None:
            validate_key_length("GET", prefix)
        start_after = decode_cursor(cursor)
        self._raise_injected_fault("list")
        self.quota.check("list", now)
        for key in [k for k, entry in self._entries.items() if _expired(entry, now)]:
            del self._entries[key]
        entries = self._entries if seen_from is None else seen_from._entries(now)
        wanted = prefix or ""
        names = sorted(k for k in entries if k.startswith(wanted) and k > start_after)
        page = names[:page_size]
        keys = []
        for name in page:
            _, expires_at, metadata_text, _ = entries[name]
            metadata = None if metadata_text is None else json.loads(metadata_text)
            keys.append(KVKey(name, expires_at, metadata))
        if len(names) > page_size:
            return KVListResult(keys, False, encode_cursor(page[-1]))
        return KVListResult(keys, True, None)

    def _raise_injected_fault(self, op: str) -> None:
        if self.faults.active:
            error = self.faults.take(op)
            if error is not None:
                raise error


def _unavailable(op: str) -> KVError:
    return kv_error(KVError, "GET" if op == "list" else op.upper(), "unavailable")


def _expired(entry: Entry, now: float) -> bool:
    return entry[1] is not None and now >= entry[1]


def _key_text(key: object) -> str:
    return key if isinstance(key, str) else repr(key)


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
