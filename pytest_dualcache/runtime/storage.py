"""``ctx.storage``: a Durable Object's key-value storage API and its alarm, as workerd has them.

Each call does its work when it is made and returns an already-settled awaitable, as the
Workers storage API applies operations in call order: ``self.storage.setAlarm(t)`` works
without ``await`` (Cloudflare's own Python examples do that), and ``await`` gives the
result or raises the refusal. Values are kept as structured clones, measured as V8
serializes them, and refused with workerd's messages by the class's storage backend
(``limits.DO_STORAGE_LIMITS``). A refused call changes nothing. The data
(``StoredObject``) belongs to the namespace, so it outlives the instance: a restarted
object finds it again. Every call is a ledger row attributed to the code that made it.
"""

from __future__ import annotations

import builtins
import datetime as _dt
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.do_entries import DurableObjectLimitError, utf8
from pytest_dualcache.jsvalues import js_number_text
from pytest_dualcache.ledger import Caller, Ledger, capture_caller, run_as
from pytest_dualcache.limits import (
    DO_MESSAGES,
    DO_STORAGE_LIMITS,
    DO_STORAGE_MESSAGES,
    DO_STORAGE_VALUE_SLACK_BYTES,
)

from .clone import clone_for_storage, js_date, v8_serialized_size
from .ffi import JsDict, JsException, JsTypeError, as_js

_LIST_OPTIONS = frozenset(
    {"start", "startAfter", "end", "prefix", "reverse", "limit", "allowConcurrency", "noCache"}
)
_WRITE_OPTIONS = frozenset({"allowConcurrency", "allowUnconfirmed", "noCache"})
_UNIX_EPOCH = _dt.datetime(1970, 1, 1)


class StorageLimitError(DurableObjectLimitError, JsException):
    """A key, value or batch the storage backend refuses (a JavaScript ``RangeError``)."""

    name = "RangeError"


class SqliteTooBigError(StorageLimitError):
    """A key and value past a SQLite-backed object's row limit (a JavaScript ``Error``)."""

    name = "Error"


def record_as(caller: Caller, ledger: Ledger, *row: Any) -> None:
    """Append ``row`` (``Ledger.record``'s arguments) to ``ledger``, attributed to ``caller``."""
    run_as(caller, _record, ledger, *row)


def _record(ledger: Ledger, *row: Any) -> None:
    ledger.record(*row)  # its walk meets ``run_as`` next, and takes ``caller`` from it


class Settled:
    """The awaitable a storage call returns: its result, or its refusal raised on ``await``."""

    __slots__ = ("_error", "_result")

    def __init__(self, result: Any = None, error: BaseException | None = None) -> None:
        self._result = result
        self._error = error

    def __await__(self) -> Generator[Any, None, Any]:
        if self._error is not None:
            raise self._error
        return self._result
        yield  # unreachable: makes this a generator that finishes without suspending


@dataclass
class StoredObject:
    """What one Durable Object keeps across restarts: its values and its alarm."""

    #: Key to ``(structured clone, V8 size)``.
    values: dict[str, tuple[Any, int]] = field(default_factory=dict)
    #: The alarm's time in epoch milliseconds, or None.
    alarm_ms: int | None = None


def js_millis(value: object) -> int:
    """A JS time argument (epoch ms, or a ``datetime``) as whole epoch milliseconds."""
    if isinstance(value, _dt.datetime):
        return (js_date(value) - _UNIX_EPOCH) // _dt.timedelta(milliseconds=1)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JsTypeError(
            "setAlarm() takes epoch milliseconds or a datetime, "
            f"got {type(value).__name__} {value!r}"
        )
    return int(value)


def _key(key: object, method: str) -> str:
    """A storage key: a str, or a number as JavaScript's ``String()`` writes it."""
    if isinstance(key, str):
        return key
    if isinstance(key, int | float) and not isinstance(key, bool):
        return js_number_text(key)
    raise JsTypeError(f"{method}() takes string keys, got {type(key).__name__} {key!r}")


def _options(
    options: Mapping[str, Any] | None,
    keywords: dict[str, Any],
    allowed: frozenset[str],
    method: str,
) -> dict[str, Any]:
    """A JS options object given as a dict, as keywords, or both."""
    merged = dict(options or {})
    merged.update(keywords)
    unknown = set(merged) - allowed
    if unknown:
        raise JsTypeError(f"{method}() got unknown options {sorted(unknown)}")
    return merged


class DurableObjectStorage:
    """``ctx.storage`` of one Durable Object (the asynchronous key-value API and alarms).

    ``backend`` is the migration key of the class's storage: ``new_classes`` or
    ``new_sqlite_classes``. ``on_alarm`` is told the alarm's new time (ms or None).
    """

    def __init__(
        self,
        data: StoredObject,
        *,
        backend: str,
        clock: VirtualClock,
        ledger: Ledger,
        has_alarm_handler: bool,
        on_alarm: Callable[[int | None], None],
    ) -> None:
        self._data = data
        self._limits = DO_STORAGE_LIMITS[backend]
        self._clock = clock
        self._ledger = ledger
        self._has_alarm_handler = has_alarm_handler
        self._on_alarm = on_alarm

    # --- key-value API ----------------------------------------------------------------------

    def get(
        self, keys: str | Iterable[str], options: Mapping[str, Any] | None = None, **keywords: Any
    ) -> Settled:
        """``await get(key)``: the value or None; ``await get([keys])``: a dict of those found."""
        caller, now = capture_caller(stacklevel=2), self._clock.now()
        try:
            _options(options, keywords, _WRITE_OPTIONS, "get")
            if isinstance(keys, str | int | float):
                key = _key(keys, "get")
                self._check_key(key)
                stored = self._data.values.get(key)
                record_as(caller, self._ledger, "get", key, now, stored[1] if stored else 0, True)
                return Settled(None if stored is None else as_js(clone_for_storage(stored[0])))
            wanted = sorted({_key(key, "get") for key in keys})
            self._check_batch(len(wanted))
            for key in wanted:
                self._check_key(key)
            found = JsDict()
            for key in wanted:
                stored = self._data.values.get(key)
                record_as(caller, self._ledger, "get", key, now, stored[1] if stored else 0, True)
                if stored is not None:
                    found[key] = clone_for_storage(stored[0])
            return Settled(found)
        except Exception as exc:
            return self._refused(caller, "get", keys, exc)

    def put(
        self,
        key_or_entries: str | Mapping[str, Any],
        value: Any = None,
        options: Mapping[str, Any] | None = None,
        **keywords: Any,
    ) -> Settled:
        """``await put(key, value)`` or ``await put({key: value, ...})`` (at most 128 pairs)."""
        caller, now = capture_caller(stacklevel=2), self._clock.now()
        try:
            if isinstance(key_or_entries, Mapping):
                _options(value, keywords, _WRITE_OPTIONS, "put")
                self._check_batch(len(key_or_entries))
                pairs = [(_key(k, "put"), v) for k, v in key_or_entries.items() if v is not None]
            else:
                _options(options, keywords, _WRITE_OPTIONS, "put")
                if value is None:  # Pyodide passes None as undefined
                    raise JsTypeError(DO_STORAGE_MESSAGES["put_undefined"])
                pairs = [(_key(key_or_entries, "put"), value)]
            checked = [(key, self._checked_value(key, item)) for key, item in pairs]
            for key, stored in checked:  # every pair passed: write them all
                self._data.values[key] = stored
                record_as(caller, self._ledger, "put", key, now, stored[1], True)
            return Settled()
        except Exception as exc:
            return self._refused(caller, "put", key_or_entries, exc)

    def delete(
        self, keys: str | Iterable[str], options: Mapping[str, Any] | None = None, **keywords: Any
    ) -> Settled:
        """``await delete(key)``: whether it existed; ``await delete([keys])``: how many did."""
        caller, now = capture_caller(stacklevel=2), self._clock.now()
        try:
            _options(options, keywords, _WRITE_OPTIONS, "delete")
            single = isinstance(keys, str | int | float)
            names = [_key(keys, "delete")] if single else [_key(k, "delete") for k in keys]  # type: ignore[union-attr]
            if not single:
                self._check_batch(len(names))
            for key in names:
                self._check_key(key)
            removed = 0
            for key in names:
                removed += self._data.values.pop(key, None) is not None
                record_as(caller, self._ledger, "delete", key, now, 0, True)
            return Settled(removed == 1 if single else removed)
        except Exception as exc:
            return self._refused(caller, "delete", keys, exc)

    def deleteAll(self, options: Mapping[str, Any] | None = None, **keywords: Any) -> Settled:
        """``await deleteAll()``: every key, and the alarm (workerd's current behaviour)."""
        caller, now = capture_caller(stacklevel=2), self._clock.now()
        try:
            _options(options, keywords, _WRITE_OPTIONS, "deleteAll")
            self._data.values.clear()
            self._set_alarm(None)
            record_as(caller, self._ledger, "deleteAll", "", now, 0, True)
            return Settled()
        except Exception as exc:
            return self._refused(caller, "deleteAll", "", exc)

    def list(self, options: Mapping[str, Any] | None = None, **keywords: Any) -> Settled:
        """``await list(prefix=, start=, startAfter=, end=, reverse=, limit=)``: a dict in key
        order (reversed with ``reverse``); options as keywords or one dict."""
        caller, now = capture_caller(stacklevel=2), self._clock.now()
        try:
            chosen = _options(options, keywords, _LIST_OPTIONS, "list")
            limit = chosen.get("limit")
            if limit is not None and limit <= 0:
                raise JsTypeError(DO_STORAGE_MESSAGES["list_limit"])
            if chosen.get("start") is not None and chosen.get("startAfter") is not None:
                raise JsTypeError(DO_STORAGE_MESSAGES["list_start_after"])
            keys = self._listed_keys(chosen)
            found = JsDict((key, clone_for_storage(self._data.values[key][0])) for key in keys)
            nbytes = sum(self._data.values[key][1] for key in keys)
            record_as(caller, self._ledger, "list", chosen.get("prefix") or "", now, nbytes, True)
            return Settled(found)
        except Exception as exc:
            return self._refused(caller, "list", "", exc)

    def sync(self) -> Settled:
        """``await sync()``: writes here are durable at once."""
        return Settled()

    @property
    def sql(self) -> Any:
        """Not emulated: SQL storage is outside pytest-dualcache's runtime for now."""
        raise AttributeError(
            "ctx.storage.sql is not emulated by pytest-dualcache: only the key-value storage "
            "API and alarms are"
        )

    # --- alarms -------------------------------------------------------------------------------

    def getAlarm(self, options: Mapping[str, Any] | None = None, **keywords: Any) -> Settled:
        """``await getAlarm()``: the alarm's epoch milliseconds, or None."""
        caller, now = capture_caller(stacklevel=2), self._clock.now()
        record_as(caller, self._ledger, "getAlarm", "", now, 0, True)
        return Settled(self._data.alarm_ms)

    def setAlarm(
        self, scheduled: Any, options: Mapping[str, Any] | None = None, **keywords: Any
    ) -> Settled:
        """``setAlarm(epoch_ms | datetime)``: one alarm per object; a past time means now."""
        caller, now = capture_caller(stacklevel=2), self._clock.now()
        try:
            _options(options, keywords, _WRITE_OPTIONS, "setAlarm")
            millis = js_millis(scheduled)
            if millis <= 0:
                raise JsTypeError(DO_STORAGE_MESSAGES["alarm_time"])
            if not self._has_alarm_handler:
                raise JsTypeError(DO_STORAGE_MESSAGES["alarm_handler"])
            millis = max(millis, int(now * 1000))
            self._set_alarm(millis)
            when = _UNIX_EPOCH + _dt.timedelta(milliseconds=millis)
            record_as(caller, self._ledger, "setAlarm", f"{when.isoformat()}Z", now, 0, True)
            return Settled()
        except Exception as exc:
            return self._refused(caller, "setAlarm", "", exc)

    def deleteAlarm(self, options: Mapping[str, Any] | None = None, **keywords: Any) -> Settled:
        """``await deleteAlarm()``: no alarm from now on (a no-op without one)."""
        caller, now = capture_caller(stacklevel=2), self._clock.now()
        self._set_alarm(None)
        record_as(caller, self._ledger, "deleteAlarm", "", now, 0, True)
        return Settled()

    # --- internals ----------------------------------------------------------------------------

    def _set_alarm(self, millis: int | None) -> None:
        self._data.alarm_ms = millis
        self._on_alarm(millis)

    def _refused(self, caller: Caller, op: str, subject: object, exc: Exception) -> Settled:
        """The one ledger row of a refused call; the refusal is raised on ``await``."""
        if isinstance(subject, str):
            key = subject
        elif isinstance(subject, Mapping | builtins.list | tuple | set):
            key = f"<{len(subject)} keys>"
        else:
            key = repr(subject)
        record_as(caller, self._ledger, op, key, self._clock.now(), 0, False, exc)
        return Settled(error=exc)

    def _check_batch(self, count: int) -> None:
        limit = self._limits.max_batch_keys
        if count > limit:
            raise StorageLimitError(
                DO_STORAGE_MESSAGES["batch_size"].format(limit=limit, count=count)
            )

    def _check_key(self, key: str, value_size: int = 0) -> None:
        """Refuse a key past the backend's key size (with ``value_size``: its row size)."""
        length = len(utf8(key))
        limit = self._limits.max_key_bytes
        if limit is not None and length > limit:
            raise StorageLimitError(DO_MESSAGES["key_length"].format(limit=limit, length=length))
        row_limit = self._limits.max_key_value_bytes
        if row_limit is not None and length + value_size > row_limit:
            raise SqliteTooBigError(DO_STORAGE_MESSAGES["sqlite_too_big"])

    def _checked_value(self, key: str, value: Any) -> tuple[Any, int]:
        """``(clone, V8 size)`` of a value to store under ``key``, or the backend's refusal."""
        copy = clone_for_storage(value)
        size = v8_serialized_size(copy)
        self._check_key(key, size)
        limit = self._limits.max_value_bytes
        if limit is not None and size > limit + DO_STORAGE_VALUE_SLACK_BYTES:
            raise StorageLimitError(DO_MESSAGES["value_length"].format(limit=limit, length=size))
        return copy, size

    def _listed_keys(self, chosen: dict[str, Any]) -> builtins.list[str]:
        """The keys ``list`` returns for its options, in the order it returns them."""
        prefix = chosen.get("prefix") or ""
        start, after, end = chosen.get("start"), chosen.get("startAfter"), chosen.get("end")
        keys = sorted(
            key
            for key in self._data.values
            if key.startswith(prefix)
            and (start is None or key >= start)
            and (after is None or key > after)
            and (end is None or key < end)
        )
        if chosen.get("reverse"):
            keys.reverse()
        limit = chosen.get("limit")
        return keys if limit is None else keys[: int(limit)]

    def __repr__(self) -> str:
        return f"<DurableObjectStorage {len(self._data.values)} keys>"
