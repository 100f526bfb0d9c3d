"""The Worker's data-access layer: the ``DualCacheDO`` first, Workers KV as the fallback.

``CacheDAL`` is the team's own code: it talks only to the bindings the Worker is given
(``env.CACHE_DO``, the ``DualCacheDO`` namespace, reached through the stub of the one
object named ``CACHE_OBJECT``; ``env.CACHE_KV``; the ``FEATURE_FLAG_DO_CACHE`` var) and
treats any exception a binding raises as that store failing, as Workers code sees a
rejected promise. It follows docs/contract.md of pytest-dualcache section by section; where
the contract forces a choice, a comment names the clause.

What lives where:

- **DO route** (flag ``"true"`` and a ``CACHE_DO`` binding): the value in the object as a
  record, JSON text ``{"j": value's JSON text, "g": generation, "s": stamp, "e": expiry}``
  (a string crosses RPC unchanged); nothing in KV.
- **KV route**: the value's plain JSON text under the key itself, with metadata
  ``{"e": expiry, "g": generation, "r": "kv"}`` (KV's own expiry is only a backstop: its
  floor is 60 s and it counts whole seconds).
- **Route marker** (one KV key under the reserved prefix): the route, a generation bumped
  at every flag transition, and whether the DO route is *degraded* (fallback copies wait
  in KV). Written once per transition or change of the degraded state.
- **Fallback copies**: a put (or, as a tombstone, a delete) the object refused, in KV under
  the key, with metadata ``{"r": "do", "s": stamp, ...}``. Moved into the object by a
  repair once it answers again.

Time is ``time.time()`` and waits are ``asyncio.sleep``, looked up at each call.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

try:  # in a Python Worker: bindings take JavaScript objects, made by Pyodide's to_js
    from js import Object
    from pyodide.ffi import to_js
except ImportError:  # plain CPython (the module imported outside a Workers runtime)
    Object = to_js = None

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The one cache object every isolate of the Worker shares.
CACHE_OBJECT = "cache"
FLAG_VAR = "FEATURE_FLAG_DO_CACHE"
DO_BINDING = "CACHE_DO"
KV_BINDING = "CACHE_KV"
#: Keys under this prefix are this DAL's coordination records, never data.
RESERVED_PREFIX = "\x00dualcache:"
MARKER_KEY = RESERVED_PREFIX + "route"
PROBE_KEY = RESERVED_PREFIX + "probe"

KV_MAX_KEY_BYTES = 512
KV_MIN_EXPIRATION_TTL_S = 60
MAX_TTL_S = 2**31 - 1  # KV's largest expirationTtl; the same limit on both routes (TTL-5)
DO_MAX_VALUE_BYTES = 131_072
RECORD_ROOM_BYTES = 256  # what the DO record and its entry add around the JSON text
#: How long a fallback copy or tombstone stays in KV at least: it must hide an older DO
#: record until a repair has run, even after its own value expired (FB-7).
HIDE_S = 7 * 86_400
#: The longest wait between repair attempts: FB-2 allows 5 minutes after the DO is back.
REPAIR_BACKOFF_MAX_S = 300.0
NO_STAMP: list[float] = [-math.inf, 0]

#: Orders writes made within one clock instant (LOC-1, LOC-2 put twice at one time).
_sequence = itertools.count(1)


class CacheInputError(ValueError):
    """A caller mistake (bad key, ttl or value): raised before any store is touched."""


@dataclass(frozen=True)
class WriteResult:
    """What a put or delete did: ``success`` (FB-6), and the route it took."""

    success: bool
    key: str
    route: str | None = None
    error: str | None = None


class View(NamedTuple):
    """This instance's belief about the route marker, and when it last read it."""

    route: str
    generation: int
    degraded: bool
    checked_at: float


class LocalCopy(NamedTuple):
    """One local-cache entry: JSON text, its expiry, its generation, and when it was fresh."""

    text: str
    expires_at: float
    generation: int
    fresh_at: float


class Found(NamedTuple):
    """What a store answered for a key: text (None: miss or deleted), expiry, stamp."""

    text: str | None
    expires_at: float | None
    stamp: list[float]


MISS = Found(None, None, NO_STAMP)


#: The metadata keys on every KV entry this DAL writes. Any other metadata (none, or a legacy
#: writer's own, of any shape) marks a legacy writer's plain JSON (SER-5).
OUR_METADATA_KEYS = frozenset({"e", "g", "r"})


def is_ours(meta: object) -> bool:
    """Whether ``meta`` is the metadata this DAL writes, not a legacy writer's."""
    return isinstance(meta, dict) and meta.keys() >= OUR_METADATA_KEYS


# --- input checks: the same on both routes, before any store is touched (TTL-5, SER-2/4) ----


def check_key(key: object) -> str:
    """``key`` if KV accepts it and it is not reserved, else ``CacheInputError``."""
    if not isinstance(key, str) or not key:
        raise CacheInputError(f"keys must be non-empty str, got {key!r}")
    if key in (".", ".."):
        raise CacheInputError(f"KV refuses the key {key!r}")
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > KV_MAX_KEY_BYTES:
        raise CacheInputError(f"key is {size} UTF-8 bytes; KV takes at most {KV_MAX_KEY_BYTES}")
    if key.startswith(RESERVED_PREFIX):
        raise CacheInputError(f"keys starting with {RESERVED_PREFIX!r} are reserved")
    return key


def check_ttl(ttl: object) -> int:
    """``ttl`` if it is a positive int (not a bool) of at most ``MAX_TTL_S``."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL_S:
        raise CacheInputError(f"ttl must be an int of 1 to {MAX_TTL_S} seconds, got {ttl!r}")
    return ttl


def encode(value: object) -> str:
    """``value`` as compact strict-JSON text, or ``CacheInputError`` saying why not."""
    seen: set[int] = set()
    stack = [value]
    while stack:  # what json.dumps would silently change: tuples and non-str keys (SER-2)
        item = stack.pop()
        if isinstance(item, tuple):
            raise CacheInputError("a tuple would come back as a list: pass a list")
        if isinstance(item, dict | list) and id(item) not in seen:
            seen.add(id(item))
            if isinstance(item, dict):
                bad = [k for k in item if not isinstance(k, str)]
                if bad:
                    raise CacheInputError(f"JSON object keys must be str, got {bad[0]!r}")
                stack.extend(item.values())
            else:
                stack.extend(item)
    try:
        # allow_nan=False: NaN and infinities are not JSON; sets, bytes and other objects
        # raise TypeError; a cycle raises ValueError.
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise CacheInputError(f"not storable as strict JSON: {exc}") from None
    size = len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size + RECORD_ROOM_BYTES > DO_MAX_VALUE_BYTES:
        # One limit on both routes, so a flag flip never strands a value.
        raise CacheInputError(f"value too large for a DO record ({size} bytes as JSON)")
    return text


def decode(text: str) -> Any:
    """A new object for the stored JSON text on every get (SER-3)."""
    return json.loads(text)


def as_python(value: Any) -> Any:
    """A binding's result as Python: Pyodide hands JavaScript objects over as proxies."""
    to_py = getattr(value, "to_py", None)
    return to_py() if callable(to_py) else value


def js_object(value: dict[str, Any]) -> Any:
    """``value`` as a JavaScript object for a binding (KV metadata): without the conversion
    Pyodide would hand KV a Python proxy, which it cannot store as JSON."""
    if to_js is None or Object is None:
        return value  # no JavaScript here: the bindings take the dict as it is
    return to_js(value, dict_converter=Object.fromEntries)


def is_rate_limited(exc: BaseException) -> bool:
    """Whether a KV error is its one-write-per-key-per-second 429 (FB-5)."""
    return getattr(exc, "status", None) == 429 or "429" in str(exc)


# --- the DAL -------------------------------------------------------------------------------


class CacheDAL:
    """put/get/delete of JSON values with TTLs, on the Durable Object or, flag off, on KV
    (``await dal.put(key, value, ttl=60)``, ``await dal.get(key)``, ``await dal.delete(key)``).
    """

    #: TTL-2: what an omitted ttl means; the contract suite reads this attribute.
    default_ttl = 3600
    local_cache_size = 1024
    kv_attempts = 5
    kv_retry_delay = 0.25

    def __init__(self, env: Any, *, local_cache_ttl: float = 30.0) -> None:
        #: LOC-3: how stale this instance may be about other instances' writes (the suite
        #: reads it). It bounds the local copies and how long a get trusts its view of the
        #: route marker.
        self.local_cache_ttl = local_cache_ttl
        self.env = env
        self._view: View | None = None
        #: Whether ``_view`` is a marker decided but not yet written (see ``_route``).
        self._marker_unsaved = False
        self._local: OrderedDict[str, LocalCopy] = OrderedDict()
        self._repair_due = -math.inf
        self._repair_backoff = 0.5

    # --- the API ------------------------------------------------------------------------------

    async def put(self, key: str, value: object, ttl: int | None = None) -> WriteResult:
        """Store ``value`` for ``ttl`` seconds (``default_ttl`` if omitted)."""
        check_key(key)
        ttl = self.default_ttl if ttl is None else check_ttl(ttl)
        text = encode(value)
        self._local.pop(key, None)  # LOC-1: our own write is visible at once
        result = await self._put(key, text, ttl)
        await self._save_marker()
        return result

    async def _put(self, key: str, text: str, ttl: int) -> WriteResult:
        """The put on the flag's route, once the input is checked (the marker saved after)."""
        view = await self._route(writing=True)
        if view is None:
            return WriteResult(False, key, None, "route marker unreadable; generation unknown")
        if view.route == "kv":
            return await self._kv_write(key, "kv", lambda: self._put_kv_entry(key, text, ttl, view))
        view = await self._repair_if_due(view)
        stamp = self._stamp()
        expires_at = self._now() + ttl
        record = {"j": text, "g": view.generation, "s": stamp, "e": expires_at}
        try:
            await self._stub().set(key, json.dumps(record, ensure_ascii=False), ttl)
        except Exception as exc:
            # FB-3 / FB-7: the put still succeeds, through a fallback copy in KV.
            log.warning("put %r: DO failed (%s); writing a fallback copy to KV", key, exc)
            return await self._fall_back(
                key, view, lambda: self._put_copy(key, text, expires_at, view, stamp)
            )
        if view.degraded:
            # FB-4: an older fallback copy must not outlive this write, or the next DO read
            # failure would serve it.
            await self._best_effort(key, lambda: self._kv.delete(key))
        return WriteResult(True, key, "do")

    async def get(self, key: str) -> Any:
        """The value, or None if absent, expired or unreadable; never an older value."""
        check_key(key)
        view = await self._route(writing=False)
        if view is None:
            return None  # FLIP-4: an instance that cannot read the marker does not guess
        now = self._now()
        local = self._local.get(key)
        if local is not None:
            if (
                local.generation == view.generation
                and now < local.expires_at  # TTL-6: never past the value's TTL
                and now - local.fresh_at < self.local_cache_ttl  # LOC-3
            ):
                self._local.move_to_end(key)
                return decode(local.text)
            del self._local[key]
        if view.route == "kv":
            found = await self._read_kv_entry(key, view)
        else:
            found = await self._read_do_route(key, view)
        if found.text is None:
            return None
        try:
            value = decode(found.text)
        except ValueError:
            log.warning("get %r: stored text is not JSON; answering None", key)
            return None
        if found.expires_at is not None:
            self._remember(key, found.text, found.expires_at)
        return value

    async def delete(self, key: str) -> WriteResult:
        """Remove ``key`` on the flag's route (a tombstone in KV if the object refuses)."""
        check_key(key)
        self._local.pop(key, None)  # LOC-2
        result = await self._delete(key)
        await self._save_marker()
        return result

    async def _delete(self, key: str) -> WriteResult:
        """The delete on the flag's route (the marker saved after, by ``delete``)."""
        view = await self._route(writing=True)
        if view is None:
            return WriteResult(False, key, None, "route marker unreadable; generation unknown")
        if view.route == "kv":
            return await self._kv_write(key, "kv", lambda: self._kv.delete(key))
        view = await self._repair_if_due(view)
        try:
            await self._stub().delete(key)
        except Exception as exc:
            # FB-8: the delete still succeeds, through a tombstone in KV.
            log.warning("delete %r: DO failed (%s); writing a tombstone to KV", key, exc)
            stamp = self._stamp()
            return await self._fall_back(key, view, lambda: self._put_tombstone(key, view, stamp))
        if view.degraded and not await self._best_effort(key, lambda: self._kv.delete(key)):
            # The newer fallback copy is still there and reads would take it over the DO.
            return WriteResult(False, key, "do", "fallback copy not removed")
        return WriteResult(True, key, "do")

    # --- bindings -----------------------------------------------------------------------------

    @property
    def _kv(self) -> Any:
        return getattr(self.env, KV_BINDING)

    def _stub(self) -> Any:
        """The stub of the cache object, made only on the DO route (FB-1: none on KV)."""
        namespace = getattr(self.env, DO_BINDING)
        return namespace.get(namespace.idFromName(CACHE_OBJECT))

    @staticmethod
    def _now() -> float:
        return time.time()

    # --- routing: flag per call, generation through the route marker --------------------

    def _flag_route(self) -> str:
        """FB-1 / FLIP-1: read on every call; only the exact string "true" means on."""
        enabled = getattr(self.env, FLAG_VAR, None) == "true"
        return "do" if enabled and getattr(self.env, DO_BINDING, None) is not None else "kv"

    async def _route(self, *, writing: bool) -> View | None:
        """This instance's view of the route, refreshed from the marker when needed.

        A get trusts the view for ``local_cache_ttl`` seconds while the flag agrees with it.
        A put or delete always re-reads the marker (a KV read, never a write), so it lands
        in the current generation even if other instances flipped and flipped back unseen
        (FB-7, FLIP-4).

        A marker to write (the env's first use, or a flag transition) is written at once by
        a get; a put or delete leaves it to ``_save_marker`` at the end of the call, so that
        a fallback learnt during the call goes in the same write: KV takes one write per
        key per second, and a second marker write in the same second would be refused.
        """
        flag = self._flag_route()
        view, now = self._view, self._now()
        if (
            not writing
            and view is not None
            and view.route == flag
            and now - view.checked_at < self.local_cache_ttl
        ):
            return view
        try:
            marker = await self._read_marker()
        except Exception as exc:
            if view is not None and view.route == flag:
                log.warning("route marker unreadable (%s); keeping this instance's view", exc)
                return view
            log.warning("route marker unreadable (%s); refusing to guess the generation", exc)
            return None
        if marker is None:  # the env's first use: generation 0 on the flag's route
            fresh, unsaved = View(flag, 0, False, now), True
        elif marker.route != flag:  # a flag transition: a new generation (FLIP-2, FLIP-4)
            fresh, unsaved = View(flag, marker.generation + 1, False, now), True
        else:
            fresh, unsaved = marker._replace(checked_at=now), False
        self._set_view(fresh)
        self._marker_unsaved = unsaved
        if not writing:
            await self._save_marker()
        return fresh

    async def _save_marker(self) -> None:
        """Write this instance's view as the marker if ``_route`` left it unwritten."""
        if self._marker_unsaved and self._view is not None:
            await self._write_marker(self._view)

    def _set_view(self, fresh: View) -> None:
        old = self._view
        if old is None or old[:3] != fresh[:3]:
            self._local.clear()  # copies read under another route, generation or state
            if old is None or old.generation != fresh.generation:
                self._repair_due, self._repair_backoff = -math.inf, 0.5
        self._view = fresh

    async def _read_marker(self) -> View | None:
        text = await self._kv.get(MARKER_KEY, type="text")
        if text is None:
            return None
        data = json.loads(text)
        return View(data["route"], data["generation"], data["degraded"], self._now())

    async def _write_marker(self, view: View) -> bool:
        """Record ``view`` as the marker; a failure is logged (other instances may lag, and
        the next put or delete, which re-reads the marker, decides again)."""
        text = json.dumps(
            {"route": view.route, "generation": view.generation, "degraded": view.degraded}
        )
        saved = await self._best_effort(MARKER_KEY, lambda: self._kv.put(MARKER_KEY, text))
        if saved:
            self._marker_unsaved = False
        return saved

    def _stamp(self) -> list[float]:
        """When a DO-route write was made, to order a fallback copy against a DO record."""
        return [self._now(), next(_sequence)]

    # --- reads -------------------------------------------------------------------------------

    async def _get_with_metadata(self, key: str) -> tuple[str | None, Any]:
        """KV's text under ``key`` and its metadata, as Python values."""
        found = await self._kv.getWithMetadata(key, type="text")
        return found.value, as_python(found.metadata)

    async def _read_kv_entry(self, key: str, view: View) -> Found:
        """The KV route: our entry of this generation, or a legacy one before any flip."""
        try:
            text, meta = await self._get_with_metadata(key)
        except Exception as exc:
            log.warning("get %r: KV failed (%s); answering None", key, exc)
            return MISS
        if text is None:
            return MISS
        if not is_ours(meta):
            # SER-5: a legacy writer's plain JSON. It has no generation, so it is only
            # current before the env's first flip (FLIP-2), and no expiry we can read, so it
            # is never kept locally (TTL-6).
            return Found(text, None, NO_STAMP) if view.generation == 0 else MISS
        if meta.get("r") != "kv" or meta.get("g") != view.generation:
            return MISS
        if self._now() >= meta["e"]:  # TTL-1, TTL-3: the logical expiry, not KV's
            return MISS
        return Found(text, meta["e"], NO_STAMP)

    async def _read_copy(self, key: str, view: View) -> Found:
        """The fallback copy of ``key`` in this generation (a tombstone reads as text None)."""
        try:
            text, meta = await self._get_with_metadata(key)
        except Exception as exc:
            log.warning("get %r: KV failed too (%s)", key, exc)
            return MISS
        if text is None or not is_ours(meta):
            return MISS
        if meta.get("r") != "do" or meta.get("g") != view.generation:
            return MISS
        stamp = list(meta["s"])
        if meta.get("t") or self._now() >= meta["e"]:
            return Found(None, None, stamp)  # still hides an older DO record
        return Found(text, meta["e"], stamp)

    async def _read_record(self, key: str, generation: int) -> Found:
        """The object's record of ``key`` in ``generation`` (raises if the object fails)."""
        raw = as_python(await self._stub().get(key))
        if not isinstance(raw, str):
            return MISS
        try:
            record = json.loads(raw)
        except ValueError:
            log.warning("DO record of %r is not JSON; treating it as absent", key)
            return MISS
        if not isinstance(record, dict) or record.get("g") != generation:
            return MISS  # FLIP-2: a record of another generation is a miss
        stamp = list(record["s"])
        if self._now() >= record["e"]:
            return Found(None, None, stamp)
        return Found(record["j"], record["e"], stamp)

    async def _read_do_route(self, key: str, view: View) -> Found:
        view = await self._repair_if_due(view)
        try:
            found = await self._read_record(key, view.generation)
        except Exception as exc:
            # FB-4: fall back to KV; only the DO route's fallback copies count there.
            log.warning("get %r: DO failed (%s); reading its fallback copy in KV", key, exc)
            return await self._read_copy(key, view)
        if not view.degraded:
            return found
        # Degraded: a put or delete the object refused may be newer than its record (FB-3).
        copy = await self._read_copy(key, view)
        return copy if copy.stamp > found.stamp else found

    def _remember(self, key: str, text: str, expires_at: float) -> None:
        """Keep a local copy. It is only as fresh as the view it was read under (LOC-3)."""
        view = self._view
        if view is None or self.local_cache_ttl <= 0 or self.local_cache_size <= 0:
            return
        self._local[key] = LocalCopy(text, expires_at, view.generation, view.checked_at)
        self._local.move_to_end(key)
        while len(self._local) > self.local_cache_size:
            self._local.popitem(last=False)

    # --- writes ------------------------------------------------------------------------------

    async def _retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        """FB-5: KV takes one write per key per second; retry its 429 with backoff."""
        for attempt in range(self.kv_attempts):
            try:
                return await operation()
            except Exception as exc:
                if not is_rate_limited(exc) or attempt == self.kv_attempts - 1:
                    raise
                await asyncio.sleep(self.kv_retry_delay * 2**attempt)
        raise AssertionError("unreachable")

    async def _kv_write(
        self, key: str, route: str, write: Callable[[], Awaitable[object]]
    ) -> WriteResult:
        try:
            await self._retrying(write)
        except Exception as exc:
            return WriteResult(False, key, route, f"KV write failed: {exc}")  # FB-6
        return WriteResult(True, key, route)

    async def _best_effort(self, key: str, write: Callable[[], Awaitable[object]]) -> bool:
        try:
            await self._retrying(write)
        except Exception as exc:
            log.warning("KV write of %r failed (%s)", key, exc)
            return False
        return True

    async def _put_kv_entry(self, key: str, text: str, ttl: int, view: View) -> None:
        # TTL-3, TTL-7: the logical expiry goes in the metadata; KV's own (whole seconds
        # from the whole second now, at least 60) is set one second past it as a backstop.
        metadata = {"e": self._now() + ttl, "g": view.generation, "r": "kv"}
        backstop = min(max(KV_MIN_EXPIRATION_TTL_S, ttl + 1), MAX_TTL_S)
        await self._kv.put(key, text, expirationTtl=backstop, metadata=js_object(metadata))

    async def _put_copy(
        self, key: str, text: str, expires_at: float, view: View, stamp: list[float]
    ) -> None:
        metadata = {"e": expires_at, "g": view.generation, "r": "do", "s": stamp}
        life = min(max(HIDE_S, math.ceil(expires_at - self._now()) + 1), MAX_TTL_S)
        await self._kv.put(key, text, expirationTtl=life, metadata=js_object(metadata))

    async def _put_tombstone(self, key: str, view: View, stamp: list[float]) -> None:
        metadata = {"e": self._now(), "g": view.generation, "r": "do", "s": stamp, "t": 1}
        await self._kv.put(key, "null", expirationTtl=HIDE_S, metadata=js_object(metadata))

    async def _fall_back(
        self, key: str, view: View, write: Callable[[], Awaitable[object]]
    ) -> WriteResult:
        """Write a fallback copy or tombstone, then mark the route degraded for everyone."""
        result = await self._kv_write(key, "kv", write)
        if result.success and not view.degraded:
            degraded = view._replace(degraded=True)
            await self._write_marker(degraded)
            self._set_view(degraded)
        return result

    # --- repair: fallback copies back into the object -----------------------------------

    async def _repair_if_due(self, view: View) -> View:
        """While degraded, move this generation's copies into the object once it answers.

        Attempts back off (1 s, 2 s, ... 5 min) while the object keeps failing, so a long
        outage does not spend KV's daily list quota. Returns the (possibly cleared) view.
        """
        now = self._now()
        if not view.degraded or now < self._repair_due:
            return view
        try:
            await self._stub().get(PROBE_KEY)  # is the object answering? (no KV list if not)
            for key in await self._copy_keys(view.generation):  # FB-9: every page
                await self._move_copy(key, view.generation)
        except Exception as exc:
            self._repair_backoff = min(2 * self._repair_backoff, REPAIR_BACKOFF_MAX_S)
            self._repair_due = now + self._repair_backoff
            log.info("repair postponed %g s: %s", self._repair_backoff, exc)
            return view
        self._repair_due, self._repair_backoff = -math.inf, 0.5
        cleared = view._replace(degraded=False, checked_at=self._now())
        await self._write_marker(cleared)
        self._set_view(cleared)
        return cleared

    async def _copy_keys(self, generation: int) -> list[str]:
        """Every fallback copy of ``generation`` in KV, all pages collected before moving."""
        keys: list[str] = []
        cursor: str | None = None
        while True:
            page = await (self._kv.list(cursor=cursor) if cursor else self._kv.list())
            for entry in page.keys:
                meta = as_python(entry.metadata)
                if is_ours(meta) and meta["r"] == "do" and meta["g"] == generation:
                    keys.append(entry.name)
            if page.list_complete:
                return keys
            cursor = page.cursor

    async def _move_copy(self, key: str, generation: int) -> None:
        """Put the copy in the object if newer than its record, then delete the copy."""
        text, meta = await self._get_with_metadata(key)
        if text is None or not is_ours(meta) or meta["r"] != "do":
            return
        stamp = list(meta["s"])
        record = await self._read_record(key, generation)
        if stamp > record.stamp:
            remaining = meta["e"] - self._now()
            if meta.get("t") or remaining <= 0:
                await self._stub().delete(key)
            else:
                moved = {"j": text, "g": generation, "s": stamp, "e": meta["e"]}
                await self._stub().set(key, json.dumps(moved, ensure_ascii=False), remaining)
        await self._retrying(lambda: self._kv.delete(key))


def make_dal(env: Any) -> CacheDAL:
    """The contract suite's factory: the DAL on the Worker's view of ``env``, whose
    ``CACHE_DO`` is the ``DualCacheDO`` namespace of wrangler.toml."""
    return CacheDAL(env.workers())
