"""DurableObjectCache: the seed's ``DualCacheDO`` client as an in-process object for tests.

Strongly consistent, TTLs exact on the virtual clock, Cloudflare's key/value size limits,
fault injection and a throughput limit, over a dict (``MemoryEngine``) or any
redis-protocol server (``RedisEngine``, in ``redis_engine``; what a DO accepts and how an
entry is kept is in ``do_entries``). Every name stays importable from here.

Threads: each public operation of a ``DurableObjectCache`` (``set``, ``get``, ``delete``,
``list``, ``stats``, ``clear``) holds the cache's ``RLock`` from admission through recording,
so operations on one cache never interleave. Each is written as ``with self._lock: try:
... except BaseException as exc: self._record_failure(op, subject, exc); raise``: a failed
operation is one ledger row, whatever refused it, and ``_record_failure`` is that row.

A redis engine whose server stops answering raises ``DurableObjectError`` at the operation,
recorded in the ledger as a failed DO operation; ``lost_servers()`` lists the servers lost.
"""

from __future__ import annotations

import builtins
import json
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Final, Protocol

from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.do_entries import (
    DO_ERRORS,
    MAX_TTL,
    DurableObjectError,
    DurableObjectLimitError,
    Entry,
    checked_key,
    checked_ttl,
    encode_value,
    key_text,
    overloaded,
    utf8,
)
from pytest_dualcache.faults import FaultInjector, InjectsFaults
from pytest_dualcache.ledger import Ledger, require_kind
from pytest_dualcache.limits import DO_MAX_KEY_BYTES, DO_MAX_VALUE_BYTES, DO_SOFT_REQUESTS_PER_S
from pytest_dualcache.redis_engine import (
    RedisEngine,
    close_server_clients,
    forget_lost_servers,
    lost_servers,
)

__all__ = [
    "DOEngine",
    "DOStats",
    "DurableObjectCache",
    "DurableObjectError",
    "DurableObjectLimitError",
    "Entry",
    "MemoryEngine",
    "RedisEngine",
    "close_server_clients",
    "forget_lost_servers",
    "lost_servers",
]

#: Operations that can fail (``stats`` never does).
OPERATIONS: Final = frozenset({"get", "set", "delete", "list"})

_TTL_TYPES: Final = (int, float)
# One code point is at most 4 UTF-8 bytes (3 for a lone surrogate): keys this short fit.
_KEY_FAST_CHARS: Final = DO_MAX_KEY_BYTES // 4
# A JSON string spends at most 6 bytes per code point ("\u001f") plus 2 quotes.
_STR_FAST_CHARS: Final = (DO_MAX_VALUE_BYTES - 2) // 6


@dataclass(frozen=True, slots=True)
class DOStats:
    """Counters of one cache: ``hit_rate`` is hits / gets as a fraction (0.0 before any get)."""

    hits: int
    misses: int
    hit_rate: float
    size: int
    evictions: int


class DOEngine(Protocol):
    """Dumb storage under a DurableObjectCache: no expiry, validation or encoding of its own."""

    def get(self, key: str, /) -> Entry | None:
        """The entry stored under ``key``, or None."""
        ...

    def set(self, key: str, entry: Entry, /) -> Entry | None:
        """Store ``entry`` under ``key`` and return the entry it replaced, or None."""
        ...

    def delete(self, key: str, /) -> Entry | None:
        """Remove ``key`` and return the entry it held, or None."""
        ...

    def items(self, prefix: str = "", /) -> Iterator[tuple[str, float]]:
        """``(key, expires_at)`` of every stored key starting with ``prefix``, in any order."""
        ...

    def clear(self) -> None:
        """Remove every entry this engine stores."""
        ...


class MemoryEngine:
    """Entries in a dict: the default engine, and the fast one."""

    __slots__ = ("_data", "get")

    def __init__(self) -> None:
        self._data: dict[str, Entry] = {}
        # The bound dict.get itself: the hot path of every get pays no Python frame for it.
        self.get = self._data.get

    def set(self, key: str, entry: Entry, /) -> Entry | None:
        """Store ``entry`` under ``key`` and return the entry it replaced, or None."""
        data = self._data
        previous = data.get(key)
        data[key] = entry
        return previous

    def delete(self, key: str, /) -> Entry | None:
        """Remove ``key`` and return the entry it held, or None."""
        return self._data.pop(key, None)

    def items(self, prefix: str = "", /) -> Iterator[tuple[str, float]]:
        """``(key, expires_at)`` of every stored key starting with ``prefix``."""
        snapshot = list(self._data.items())
        return ((k, e[2]) for k, e in snapshot if k.startswith(prefix))

    def clear(self) -> None:
        """Remove every entry."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class DurableObjectCache(InjectsFaults):
    """One Durable Object cache: get/set/delete/list with exact TTLs on a VirtualClock.

    ``fail(times, error="overloaded" | "timeout" | exception, ops=...)``, ``recover()`` and
    ``outage()`` inject failures for fallback tests.
    """

    __slots__ = (
        "_clock",
        "_engine",
        "_engine_get",
        "_evictions",
        "_guarded",
        "_hits",
        "_ledger",
        "_lock",
        "_max_requests_per_s",
        "_misses",
        "_window",
        "_window_count",
        "faults",
        "name",
    )

    def __init__(
        self,
        clock: VirtualClock,
        *,
        engine: DOEngine | None = None,
        name: str = "CACHE_DO",
        max_requests_per_s: int | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        if max_requests_per_s is not None and not _is_positive_int(max_requests_per_s):
            raise ValueError(
                "max_requests_per_s takes a positive int (Cloudflare's soft limit is "
                f"{DO_SOFT_REQUESTS_PER_S}) or None, got {max_requests_per_s!r}"
            )
        self._clock = clock
        self.name = name
        self._engine: DOEngine = MemoryEngine() if engine is None else engine
        self._engine_get = self._engine.get
        self._ledger = (
            Ledger(name, kind="do")
            if ledger is None
            else require_kind(ledger, "do", "DurableObjectCache")
        )
        self._ledger.do_cache = True  # its gets are the DO cache's (see ``Ledger.do_cache``)
        self._max_requests_per_s = max_requests_per_s
        #: Injected failures: ``fail()``, ``recover()`` and ``outage()`` delegate here.
        self.faults = FaultInjector(OPERATIONS, DO_ERRORS)
        self._guarded = max_requests_per_s is not None  # the throughput limit is on
        self._hits = self._misses = self._evictions = 0
        self._window = -math.inf
        self._window_count = 0
        self._lock = threading.RLock()  # see the module docstring: every operation holds it

    @property
    def engine(self) -> DOEngine:
        """The storage engine (MemoryEngine unless one was given)."""
        return self._engine

    @property
    def ledger(self) -> Ledger:
        """Every operation this cache served or refused, with its caller."""
        return self._ledger

    @property
    def clock(self) -> VirtualClock:
        """The virtual clock TTLs and the throughput window are read from."""
        return self._clock

    # --- operations ---------------------------------------------------------------------

    def set(self, key: str, value: object, *, ttl: float) -> None:
        """Store JSON data ``value`` under ``key`` for ``ttl`` seconds; overwriting restarts it."""
        with self._lock:
            try:
                now = self._clock.now()
                if type(key) is not str or not key or len(key) > _KEY_FAST_CHARS:
                    key = checked_key(key)
                if type(ttl) not in _TTL_TYPES or not 0 < ttl <= MAX_TTL:
                    ttl = checked_ttl(ttl)
                if type(value) is str and len(value) <= _STR_FAST_CHARS:
                    text = encode_basestring(value)
                    nbytes = len(text) if text.isascii() else len(utf8(text))
                    entry = (value, False, now + ttl, nbytes)
                else:
                    entry = encode_value(value, now + ttl)
                if self._guarded or self.faults.active:
                    self._admit("set", now)
                previous = self._engine.set(key, entry)
                if previous is not None and now >= previous[2]:
                    self._evictions += 1
                self._ledger.record("set", key, now, entry[3], True, None)
            except BaseException as exc:
                self._record_failure("set", key, exc)
                raise

    def get(self, key: str) -> object | None:
        """The value stored under ``key`` (a fresh copy), or None on a miss or once expired."""
        with self._lock:
            try:
                now = self._clock.now()
                if type(key) is not str or not key or len(key) > _KEY_FAST_CHARS:
                    key = checked_key(key)
                if self._guarded or self.faults.active:
                    self._admit("get", now)
                entry = self._engine_get(key)
                if entry is not None and now >= entry[2]:
                    self._engine.delete(key)
                    self._evictions += 1
                    entry = None
                if entry is None:
                    self._misses += 1
                    self._ledger.record("get", key, now, 0, True, None)
                    return None
                self._hits += 1
                self._ledger.record("get", key, now, entry[3], True, None)
                return json.loads(entry[0]) if entry[1] else entry[0]
            except BaseException as exc:
                self._record_failure("get", key, exc)
                raise

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if a live entry was removed (an expired one counts as absent)."""
        with self._lock:
            try:
                now = self._clock.now()
                if type(key) is not str or not key or len(key) > _KEY_FAST_CHARS:
                    key = checked_key(key)
                if self._guarded or self.faults.active:
                    self._admit("delete", now)
                removed = self._engine.delete(key)
                live = removed is not None and now < removed[2]
                if removed is not None and not live:
                    self._evictions += 1
                self._ledger.record("delete", key, now, 0, True, None)
                return live
            except BaseException as exc:
                self._record_failure("delete", key, exc)
                raise

    def list(self, prefix: str | None = None) -> builtins.list[str]:
        """Live keys starting with ``prefix``, sorted by code point (= UTF-8 byte) order."""
        with self._lock:
            try:
                now = self._clock.now()
                if prefix is None:
                    prefix = ""
                elif not isinstance(prefix, str):
                    raise DurableObjectLimitError(
                        "list() prefix must be a str or None, "
                        f"got {type(prefix).__name__} {prefix!r}"
                    )
                if self._guarded or self.faults.active:
                    self._admit("list", now)
                keys = self._live_keys(prefix, now)
                keys.sort()
                self._ledger.record("list", prefix, now, 0, True, None)
                return keys
            except BaseException as exc:
                self._record_failure("list", prefix, exc)
                raise

    def stats(self) -> DOStats:
        """Hits, misses, hit rate, live entries and TTL evictions (fails only if storage does)."""
        with self._lock:
            size = len(self._live_keys("", self._clock.now()))
            gets = self._hits + self._misses
            return DOStats(
                hits=self._hits,
                misses=self._misses,
                hit_rate=self._hits / gets if gets else 0.0,
                size=size,
                evictions=self._evictions,
            )

    def clear(self) -> None:
        """Drop every entry and zero the stats and the throughput window (faults stay)."""
        with self._lock:
            self._engine.clear()
            self._hits = self._misses = self._evictions = 0
            self._window = -math.inf
            self._window_count = 0

    # --- internals ----------------------------------------------------------------------

    def _record_failure(self, op: str, subject: object, exc: BaseException) -> None:
        """The one ledger row of a failed operation: a refused key, ttl or value, an injected
        fault, the throughput limit or a lost server (``subject``: its key or list prefix)."""
        key = "" if subject is None and op == "list" else key_text(subject)
        self._ledger.record(op, key, self._clock.now(), 0, False, exc)

    def _admit(self, op: str, now: float) -> None:
        """Raise an injected failure or a throughput refusal, else count the call."""
        error = self.faults.take(op)
        if error is not None:
            raise error
        limit = self._max_requests_per_s
        if limit is None:
            return
        window = math.floor(now)
        if window != self._window:
            self._window = window
            self._window_count = 0
        if self._window_count >= limit:
            raise overloaded()
        self._window_count += 1

    def _live_keys(self, prefix: str, now: float) -> builtins.list[str]:
        """Keys under ``prefix`` still alive at ``now``; expired ones met here are purged."""
        live: builtins.list[str] = []
        expired: builtins.list[str] = []
        for key, expires_at in self._engine.items(prefix):
            (live if now < expires_at else expired).append(key)
        for key in expired:
            if self._engine.delete(key) is not None:
                self._evictions += 1
        return live

    def __repr__(self) -> str:
        return f"<DurableObjectCache {self.name} on {type(self._engine).__name__}>"


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
