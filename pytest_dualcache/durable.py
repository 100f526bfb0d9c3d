"""DurableObjectCache: the seed's ``DualCacheDO`` client as an in-process object for tests.

Strongly consistent, TTLs exact on the virtual clock, Cloudflare's key/value size limits,
fault injection and a throughput limit, over a dict or any redis-protocol server.

Threads: each public operation of a ``DurableObjectCache`` (``set``, ``get``, ``delete``,
``list``, ``stats``, ``clear``) holds the cache's ``RLock`` from admission through recording,
so operations on one cache never interleave (``_serialized`` is that rule, in one place).

A redis engine whose server stops answering raises ``DurableObjectError`` at the operation,
recorded in the ledger as a failed DO operation; ``lost_servers()`` lists the servers lost.
"""

from __future__ import annotations

import builtins
import functools
import json
import math
import re
import sys
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.faults import FaultInjector, InjectsFaults
from pytest_dualcache.jsondata import json_problem
from pytest_dualcache.ledger import Ledger, require_kind
from pytest_dualcache.limits import (
    DO_MAX_KEY_BYTES,
    DO_MAX_VALUE_BYTES,
    DO_MESSAGES,
    DO_SOFT_REQUESTS_PER_S,
)

if TYPE_CHECKING:
    import redis

__all__ = [
    "DOEngine",
    "DOStats",
    "DurableObjectCache",
    "DurableObjectError",
    "DurableObjectLimitError",
    "Entry",
    "MemoryEngine",
    "RedisEngine",
    "forget_lost_servers",
    "lost_servers",
]

F = TypeVar("F", bound=Callable[..., Any])

#: What an engine stores per key: ``(data, is_json, expires_at, nbytes)``. ``data`` is the
#: value itself for a str/int/float/bool/None, or its compact JSON text when ``is_json``;
#: ``nbytes`` is the UTF-8 size of the value's JSON text.
Entry = tuple[Any, bool, float, int]

#: Operations that can fail (``stats`` never does).
OPERATIONS: Final = frozenset({"get", "set", "delete", "list"})

_SCALARS: Final = (str, int, float, bool, type(None))
_TTL_TYPES: Final = (int, float)
_MAX_TTL: Final = sys.float_info.max
# One code point is at most 4 UTF-8 bytes (3 for a lone surrogate): keys this short fit.
_KEY_FAST_CHARS: Final = DO_MAX_KEY_BYTES // 4
# A JSON string spends at most 6 bytes per code point ("\u001f") plus 2 quotes.
_STR_FAST_CHARS: Final = (DO_MAX_VALUE_BYTES - 2) // 6
_JSON_SEPARATORS: Final = (",", ":")


class DurableObjectError(Exception):
    """A Durable Object operation failed; ``overloaded``/``retryable`` say how, as in workerd."""

    def __init__(self, message: str, *, overloaded: bool = False, retryable: bool = False) -> None:
        super().__init__(message)
        self.overloaded = overloaded
        self.retryable = retryable


class DurableObjectLimitError(DurableObjectError, ValueError):
    """The caller passed something a Durable Object refuses: bad key, value or ttl."""


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


_LOST_SERVERS: dict[str, str] = {}


def lost_servers() -> list[str]:
    """One message per Redis server lost in this process (URL redacted, first error)."""
    return list(_LOST_SERVERS.values())


def forget_lost_servers() -> None:
    """Empty the ``lost_servers()`` record (a new session, or a test that lost one on purpose)."""
    _LOST_SERVERS.clear()


@functools.cache
def _connection_errors() -> tuple[type[BaseException], ...]:
    """What redis-py raises when the server is gone: refused, reset, timed out (imported late)."""
    from redis.exceptions import ConnectionError, TimeoutError

    return (ConnectionError, TimeoutError, OSError)


def _answering(method: F) -> F:
    """``method`` of a RedisEngine, with a server that stopped answering as a DurableObjectError."""

    @functools.wraps(method)
    def call(self: RedisEngine, *args: Any) -> Any:
        try:
            return method(self, *args)
        except _connection_errors() as exc:  # evaluated only once something was raised
            message = f"Redis server {self.server} stopped answering: {exc}"
            if self.url is not None:
                _LOST_SERVERS.setdefault(self.server, message)
            raise DurableObjectError(message) from exc

    return call  # type: ignore[return-value]


class RedisEngine:
    """Entries as redis strings under ``prefix``, one per key, via any ``redis.Redis`` client.

    Expiry is decided by the DurableObjectCache against the virtual clock, never by the
    server's clock, so this engine and MemoryEngine agree exactly. The server's clock only
    cleans up: every key carries a real-time TTL of ``cleanup_after_s`` (a day by default),
    far beyond any test, so a run that crashed before ``clear()`` leaves nothing behind for
    long. ``clear()`` deletes only keys under ``prefix`` (SCAN, never FLUSHDB). Needs redis
    >= 6.2 (``SET ... GET``, ``GETDEL``); the default client is a private in-process fakeredis.

    A server that stops answering (refused, reset, timed out) makes every call raise
    ``DurableObjectError`` naming it; given its ``url`` (``on_server`` does), the engine also
    adds it to ``lost_servers()``.
    """

    __slots__ = ("_key_prefix", "cleanup_after_s", "client", "prefix", "server", "url")

    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        prefix: str = "dualcache:do:",
        cleanup_after_s: int = 86_400,
        url: str | None = None,
    ) -> None:
        if client is None:
            import fakeredis  # lazily: importing this module must not import redis

            client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        self.client = client
        self.prefix = prefix
        self.cleanup_after_s = cleanup_after_s
        #: The server's URL as given (None: not known), and as errors name it (no password).
        self.url = url
        self.server = _server_name(client) if url is None else _redact_url(url)
        self._key_prefix = _utf8(prefix)

    @classmethod
    def on_server(cls, url: str) -> RedisEngine:
        """An engine on the server at ``url`` under a fresh prefix of its own.

        Engines on one URL share one connection pool; distinct prefixes keep tests, and
        pytest-xdist workers, from seeing each other's keys.
        """
        client = _SERVER_CLIENTS.get(url)
        if client is None:
            import redis as redis_module

            client = _SERVER_CLIENTS[url] = redis_module.Redis.from_url(url)
        return cls(client, prefix=f"dualcache:{uuid.uuid4().hex}:", url=url)

    @_answering
    def get(self, key: str, /) -> Entry | None:
        """The entry stored under ``key``, or None."""
        return _decode_entry(self.client.get(self._key_prefix + _utf8(key)))

    @_answering
    def set(self, key: str, entry: Entry, /) -> Entry | None:
        """Store ``entry`` under ``key`` and return the entry it replaced, or None."""
        raw = self.client.set(
            self._key_prefix + _utf8(key), _encode_entry(entry), ex=self.cleanup_after_s, get=True
        )
        return _decode_entry(raw)

    @_answering
    def delete(self, key: str, /) -> Entry | None:
        """Remove ``key`` and return the entry it held, or None."""
        return _decode_entry(self.client.getdel(self._key_prefix + _utf8(key)))

    @_answering
    def items(self, prefix: str = "", /) -> Iterator[tuple[str, float]]:
        """``(key, expires_at)`` of every stored key starting with ``prefix``."""
        cut = len(self._key_prefix)
        names = list(self._scan(self._key_prefix + _utf8(prefix)))
        if not names:
            return iter(())
        raws = self.client.mget(names)
        return (
            (name[cut:].decode("utf-8", "surrogatepass"), float(raw.split(b"|", 2)[1]))
            for name, raw in zip(names, raws, strict=True)
            if raw is not None
        )

    @_answering
    def clear(self) -> None:
        """Delete every key under this engine's prefix, and nothing else."""
        names = list(self._scan(self._key_prefix))
        for start in range(0, len(names), 500):
            self.client.delete(*names[start : start + 500])

    def _scan(self, prefix: bytes) -> Iterator[bytes]:
        return self.client.scan_iter(match=_glob_escape(prefix) + b"*", count=500)

    def __repr__(self) -> str:
        return f"RedisEngine({self.client!r}, prefix={self.prefix!r})"


_SERVER_CLIENTS: dict[str, Any] = {}
_URL_PASSWORD: Final = re.compile(r"(?i)(?<=[?&;])(password=)[^&;#]*")


def _redact_url(url: str) -> str:
    """``url`` with any password (``user:PASSWORD@`` or ``?password=``) shown as ``***``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        url = url.replace(parts.netloc, f"{parts.username or ''}:***@{host}", 1)
    return _URL_PASSWORD.sub(r"\1***", url)


def _server_name(client: Any) -> str:
    """How errors name the server of a client whose URL is not known."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    if "server" in kwargs:
        return "(in-process fakeredis)"
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def close_server_clients() -> None:
    """Close the connection pools ``RedisEngine.on_server`` opened (at the session's end)."""
    while _SERVER_CLIENTS:
        _, client = _SERVER_CLIENTS.popitem()
        client.close()


def _utf8(text: str) -> bytes:
    # surrogatepass: a JS string (hence a DO key) may hold lone surrogates; keep them.
    return text.encode("utf-8", "surrogatepass")


def _glob_escape(raw: bytes) -> bytes:
    return b"".join(b"\\" + bytes([c]) if c in b"*?[]\\" else bytes([c]) for c in raw)


def _encode_entry(entry: Entry) -> bytes:
    data, is_json, expires_at, nbytes = entry
    if is_json:
        flag, text = b"j", data
    else:
        flag, text = b"v", json.dumps(data, ensure_ascii=False)
    # repr round-trips a float exactly.
    return b"%s|%s|%d|%s" % (flag, repr(expires_at).encode(), nbytes, _utf8(text))


def _decode_entry(raw: bytes | None) -> Entry | None:
    if raw is None:
        return None
    flag, expires_at, nbytes, text = raw.split(b"|", 3)
    data = text.decode("utf-8", "surrogatepass")
    if flag == b"j":
        return (data, True, float(expires_at), int(nbytes))
    return (json.loads(data), False, float(expires_at), int(nbytes))


def _serialized(method: F) -> F:
    """``method`` under the cache's lock; if it is an operation that failed, one failed record.

    The locking rule of the module docstring lives here, and so does the recording of every
    failure (a refused key, ttl or value, an injected fault, the throughput limit, a lost
    server): a failed operation is one ledger row, whatever refused it.
    """
    op = method.__name__
    recorded = op in OPERATIONS
    subject_name = "prefix" if op == "list" else "key"

    @functools.wraps(method)
    def run(self: DurableObjectCache, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                return method(self, *args, **kwargs)
            except BaseException as exc:
                if recorded:
                    subject = args[0] if args else kwargs.get(subject_name)
                    key = "" if subject is None and op == "list" else _key_text(subject)
                    self._ledger.record(op, key, self._clock.now(), 0, False, str(exc))
                raise

    return run  # type: ignore[return-value]


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
        self._max_requests_per_s = max_requests_per_s
        #: Injected failures: ``fail()``, ``recover()`` and ``outage()`` delegate here.
        self.faults = FaultInjector(OPERATIONS, _DO_ERRORS)
        self._guarded = max_requests_per_s is not None  # the throughput limit is on
        self._hits = self._misses = self._evictions = 0
        self._window = -math.inf
        self._window_count = 0
        self._lock = threading.RLock()  # see the module docstring: one rule, in _serialized

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

    @_serialized
    def set(self, key: str, value: object, *, ttl: float) -> None:
        """Store JSON data ``value`` under ``key`` for ``ttl`` seconds; overwriting restarts it."""
        now = self._clock.now()
        if type(key) is not str or not key or len(key) > _KEY_FAST_CHARS:
            key = _checked_key(key)
        if type(ttl) not in _TTL_TYPES or not 0 < ttl <= _MAX_TTL:
            ttl = _checked_ttl(ttl)
        if type(value) is str and len(value) <= _STR_FAST_CHARS:
            text = encode_basestring(value)
            entry = (value, False, now + ttl, len(text) if text.isascii() else len(_utf8(text)))
        else:
            entry = _encode_value(value, now + ttl)
        if self._guarded or self.faults.active:
            self._admit("set", now)
        previous = self._engine.set(key, entry)
        if previous is not None and now >= previous[2]:
            self._evictions += 1
        self._ledger.record("set", key, now, entry[3], True, None)

    @_serialized
    def get(self, key: str) -> object | None:
        """The value stored under ``key`` (a fresh copy), or None on a miss or once expired."""
        now = self._clock.now()
        if type(key) is not str or not key or len(key) > _KEY_FAST_CHARS:
            key = _checked_key(key)
        if self._guarded or self.faults.active:
            self._admit("get", now)
        entry = self._engine_get(key)
        if entry is None:
            self._misses += 1
            self._ledger.record("get", key, now, 0, True, None)
            return None
        if now >= entry[2]:
            self._engine.delete(key)
            self._evictions += 1
            self._misses += 1
            self._ledger.record("get", key, now, 0, True, None)
            return None
        self._hits += 1
        self._ledger.record("get", key, now, entry[3], True, None)
        return json.loads(entry[0]) if entry[1] else entry[0]

    @_serialized
    def delete(self, key: str) -> bool:
        """Remove ``key``; True if a live entry was removed (an expired one counts as absent)."""
        now = self._clock.now()
        if type(key) is not str or not key or len(key) > _KEY_FAST_CHARS:
            key = _checked_key(key)
        if self._guarded or self.faults.active:
            self._admit("delete", now)
        removed = self._engine.delete(key)
        live = removed is not None and now < removed[2]
        if removed is not None and not live:
            self._evictions += 1
        self._ledger.record("delete", key, now, 0, True, None)
        return live

    @_serialized
    def list(self, prefix: str | None = None) -> builtins.list[str]:
        """Live keys starting with ``prefix``, sorted by code point (= UTF-8 byte) order."""
        now = self._clock.now()
        if prefix is None:
            prefix = ""
        elif not isinstance(prefix, str):
            raise DurableObjectLimitError(
                f"list() prefix must be a str or None, got {type(prefix).__name__} {prefix!r}"
            )
        if self._guarded or self.faults.active:
            self._admit("list", now)
        keys = self._live_keys(prefix, now)
        keys.sort()
        self._ledger.record("list", prefix, now, 0, True, None)
        return keys

    @_serialized
    def stats(self) -> DOStats:
        """Hits, misses, hit rate, live entries and TTL evictions (fails only if storage does)."""
        size = len(self._live_keys("", self._clock.now()))
        gets = self._hits + self._misses
        return DOStats(
            hits=self._hits,
            misses=self._misses,
            hit_rate=self._hits / gets if gets else 0.0,
            size=size,
            evictions=self._evictions,
        )

    @_serialized
    def clear(self) -> None:
        """Drop every entry and zero the stats and the throughput window (faults stay)."""
        self._engine.clear()
        self._hits = self._misses = self._evictions = 0
        self._window = -math.inf
        self._window_count = 0

    # --- fault injection ----------------------------------------------------------------

    # --- internals ----------------------------------------------------------------------

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
            raise _overloaded()
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


# --- validation and encoding ------------------------------------------------------------


def _checked_key(key: object) -> str:
    """``key`` as a plain str if a DO accepts it as a cache key, else DurableObjectLimitError."""
    if not isinstance(key, str):
        raise DurableObjectLimitError(f"Keys must be str, got {type(key).__name__} {key!r}")
    if not key:
        raise DurableObjectLimitError("Keys must not be empty")
    length = len(_utf8(key))
    if length > DO_MAX_KEY_BYTES:
        raise DurableObjectLimitError(
            DO_MESSAGES["key_length"].format(limit=DO_MAX_KEY_BYTES, length=length)
        )
    return str.__str__(key)


def _checked_ttl(ttl: object) -> float:
    """``ttl`` as a float if it is a finite number of seconds > 0, else DurableObjectLimitError."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise DurableObjectLimitError(
            f"ttl must be a number of seconds > 0, got {type(ttl).__name__} {ttl!r}"
        )
    try:
        seconds = float(ttl)
    except OverflowError:
        seconds = math.inf
    if not 0 < seconds <= _MAX_TTL:
        raise DurableObjectLimitError(f"ttl must be a finite number of seconds > 0, got {ttl!r}")
    return seconds


def _encode_value(value: object, expires_at: float) -> Entry:
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
        text = json.dumps(value, separators=_JSON_SEPARATORS, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise DurableObjectLimitError(json_problem(value) or f"value is not JSON: {exc}") from None
    # Tuples and non-str dict keys serialize but come back changed; the round trip is also
    # the cheapest complete check.
    if json.loads(text) != value:
        raise DurableObjectLimitError(
            json_problem(value) or "value does not come back equal from JSON"
        )
    return text


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(_utf8(text))


def _check_size(text: str) -> None:
    # Cheap bound first: every code point is at most 4 UTF-8 bytes.
    if len(text) * 4 <= DO_MAX_VALUE_BYTES:
        return
    length = _size(text)
    if length > DO_MAX_VALUE_BYTES:
        raise DurableObjectLimitError(
            DO_MESSAGES["value_length"].format(limit=DO_MAX_VALUE_BYTES, length=length)
        )


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _key_text(key: object) -> str:
    return str.__str__(key) if isinstance(key, str) else repr(key)


def _overloaded() -> DurableObjectError:
    return DurableObjectError(DO_MESSAGES["overloaded"], overloaded=True, retryable=True)


_DO_ERRORS: Final = {
    "overloaded": lambda op: _overloaded(),
    "timeout": lambda op: DurableObjectError(DO_MESSAGES["timeout"], retryable=True),
}
