"""``HandwrittenDAL``: a Durable Object cache in front of Workers KV, written from scratch.

It follows docs/contract.md section by section and imports nothing from pytest_dualcache:
it talks to the bindings a Worker gets (``env.kv``, ``env.do``, the flag var, a clock) and
treats any exception a binding raises as that store failing, as Workers code sees a
rejected promise. Where the contract forces a choice, a comment names the clause.

What lives where:

- **DO route** (flag ``"true"`` and a DO binding): the value in the DO as a record
  ``{"j": JSON text, "g": generation, "s": stamp, "e": expiry}``; nothing in KV.
- **KV route**: the value's plain JSON text under the key itself, with metadata
  ``{"e": expiry, "g": generation, "r": "kv"}`` (KV's own expiry is only a backstop: its
  floor is 60 s).
- **Route marker** (one KV key under the reserved prefix): the route, a generation bumped
  at every flag transition, and whether the DO route is *degraded* (fallback copies wait
  in KV). Written once per transition or change of the degraded state.
- **Fallback copies**: a put (or, as a tombstone, a delete) the DO refused, in KV under the
  key, with metadata ``{"r": "do", "s": stamp, ...}``. Moved into the DO by a repair once
  the DO answers again.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

FLAG_VAR = "FEATURE_FLAG_DO_CACHE"
#: The contract suite treats keys under this prefix as coordination records, not data.
RESERVED_PREFIX = "\x00dualcache:"
MARKER_KEY = RESERVED_PREFIX + "route"
PROBE_KEY = RESERVED_PREFIX + "probe"

KV_MAX_KEY_BYTES = 512
KV_MIN_EXPIRATION_TTL_S = 60
MAX_TTL_S = 2**31 - 1  # KV's largest expiration_ttl; the same limit on both routes (TTL-5)
DO_MAX_VALUE_BYTES = 131_072
RECORD_ROOM_BYTES = 256  # what the DO record adds around the JSON text
#: How long a fallback copy or tombstone stays in KV at least: it must hide an older DO
#: record until a repair has run, even after its own value expired.
HIDE_S = 7 * 86_400
#: The longest wait between repair attempts: FB-2 allows 5 minutes after the DO is back.
REPAIR_BACKOFF_MAX_S = 300.0
NO_STAMP: list[float] = [-math.inf, 0]

_sequence = itertools.count(1)


class CacheInputError(ValueError):
    """A caller mistake (bad key, ttl or value): raised before any store is touched."""


@dataclass(frozen=True)
class WriteResult:
    """What a put or delete did. The contract reads ``success`` (FB-6)."""

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
    while stack:  # what json.dumps would silently change: tuples and non-str keys
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
        # allow_nan=False: NaN and infinities are not JSON (SER-2); sets, bytes and other
        # objects raise TypeError; a cycle raises ValueError.
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


# --- the DAL -------------------------------------------------------------------------------


class HandwrittenDAL:
    """put/get/delete over ``env.do`` (flag on) and ``env.kv`` (flag off or DO failing)."""

    #: TTL-2: what an omitted ttl means; the suite reads this attribute.
    default_ttl = 3600
    #: LOC-3: how stale this instance may be about other instances' writes (the suite reads
    #: it). It bounds both the local copies and how long a get trusts its view of the marker.
    local_cache_ttl = 30.0
    local_cache_size = 1024
    kv_attempts = 5
    kv_retry_delay = 0.25

    def __init__(self, env: Any) -> None:
        self.env = env
        self.kv = env.kv
        self.clock = env.clock
        self._view: View | None = None
        self._local: OrderedDict[str, LocalCopy] = OrderedDict()
        self._repair_due = -math.inf
        self._repair_backoff = 0.5

    # --- the API ------------------------------------------------------------------------------

    def put(self, key: str, value: object, ttl: int | None = None) -> WriteResult:
        """Store ``value`` for ``ttl`` seconds (``default_ttl`` if omitted)."""
        check_key(key)
        ttl = self.default_ttl if ttl is None else check_ttl(ttl)
        text = encode(value)
        self._local.pop(key, None)  # LOC-1: our own write is visible at once
        view = self._route(writing=True)
        if view is None:
            return WriteResult(False, key, None, "route marker unreadable; generation unknown")
        if view.route == "kv":
            return self._kv_write(key, "kv", lambda: self._put_kv_entry(key, text, ttl, view))
        view = self._repair_if_due(view)
        stamp = self._stamp()
        expires_at = self._now() + ttl
        record = {"j": text, "g": view.generation, "s": stamp, "e": expires_at}
        try:
            self.env.do.set(key, record, ttl=ttl)
        except Exception as exc:
            # FB-3 / FB-7: the put still succeeds, through a fallback copy in KV.
            log.warning("put %r: DO failed (%s); writing a fallback copy to KV", key, exc)
            return self._fall_back(
                key, view, lambda: self._put_copy(key, text, expires_at, view, stamp)
            )
        if view.degraded:
            # An older fallback copy must not outlive this write: during the next DO outage
            # a read would fall back to it.
            self._best_effort(key, lambda: self.kv.delete(key))
        return WriteResult(True, key, "do")

    def get(self, key: str) -> Any:
        """The value, or None if absent, expired or unreadable; never an older value."""
        check_key(key)
        view = self._route(writing=False)
        if view is None:
            return None  # a fresh instance that cannot read the marker does not guess
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
            found = self._read_kv_entry(key, view)
        else:
            found = self._read_do_route(key, view)
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

    def delete(self, key: str) -> WriteResult:
        """Remove ``key`` on the flag's route (a tombstone in KV if the DO refuses)."""
        check_key(key)
        self._local.pop(key, None)  # LOC-2
        view = self._route(writing=True)
        if view is None:
            return WriteResult(False, key, None, "route marker unreadable; generation unknown")
        if view.route == "kv":
            return self._kv_write(key, "kv", lambda: self.kv.delete(key))
        view = self._repair_if_due(view)
        try:
            self.env.do.delete(key)
        except Exception as exc:
            log.warning("delete %r: DO failed (%s); writing a tombstone to KV", key, exc)
            stamp = self._stamp()
            return self._fall_back(key, view, lambda: self._put_tombstone(key, view, stamp))
        if view.degraded and not self._best_effort(key, lambda: self.kv.delete(key)):
            # The newer fallback copy is still there and reads would take it over the DO.
            return WriteResult(False, key, "do", "fallback copy not removed")
        return WriteResult(True, key, "do")

    # --- routing: flag per call, generation through the route marker --------------------

    def _now(self) -> float:
        return self.clock.now()

    def _flag_route(self) -> str:
        """FB-1 / FLIP-1: read on every call; only the exact string "true" means on."""
        enabled = getattr(self.env, FLAG_VAR, None) == "true"
        return "do" if enabled and getattr(self.env, "do", None) is not None else "kv"

    def _route(self, *, writing: bool) -> View | None:
        """This instance's view of the route, refreshed from the marker when needed.

        A get trusts the view for ``local_cache_ttl`` seconds while the flag agrees with it.
        A put or delete always re-reads the marker (a KV read, never a write), so it lands
        in the current generation even if other instances flipped and flipped back unseen.
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
            marker = self._read_marker()
        except Exception as exc:
            if view is not None and view.route == flag:
                log.warning("route marker unreadable (%s); keeping this instance's view", exc)
                return view
            log.warning("route marker unreadable (%s); refusing to guess the generation", exc)
            return None
        if marker is None:  # the env's first use: generation 0 on the flag's route
            fresh = View(flag, 0, False, now)
            self._write_marker(fresh)
        elif marker.route != flag:  # a flag transition: a new generation (FLIP-2, FLIP-4)
            fresh = View(flag, marker.generation + 1, False, now)
            self._write_marker(fresh)
        else:
            fresh = marker._replace(checked_at=now)
        self._set_view(fresh)
        return fresh

    def _set_view(self, fresh: View) -> None:
        old = self._view
        if old is None or old[:3] != fresh[:3]:
            self._local.clear()  # copies read under another route, generation or state
            if old is None or old.generation != fresh.generation:
                self._repair_due, self._repair_backoff = -math.inf, 0.5
        self._view = fresh

    def _read_marker(self) -> View | None:
        text = self.kv.get(MARKER_KEY)
        if text is None:
            return None
        data = json.loads(text)
        return View(data["route"], data["generation"], data["degraded"], self._now())

    def _write_marker(self, view: View) -> bool:
        """Record ``view`` as the marker; a failure is logged (other instances may lag)."""
        text = json.dumps(
            {"route": view.route, "generation": view.generation, "degraded": view.degraded}
        )
        return self._best_effort(MARKER_KEY, lambda: self.kv.put(MARKER_KEY, text))

    def _stamp(self) -> list[float]:
        """When a DO-route write was made, to order a fallback copy against a DO record."""
        return [self._now(), next(_sequence)]

    # --- reads -------------------------------------------------------------------------------

    def _read_kv_entry(self, key: str, view: View) -> Found:
        """The KV route: our entry of this generation, or a legacy one before any flip."""
        try:
            found = self.kv.get_with_metadata(key)
        except Exception as exc:
            log.warning("get %r: KV failed (%s); answering None", key, exc)
            return MISS
        text, meta = found.value, found.metadata
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

    def _read_copy(self, key: str, view: View) -> Found:
        """The fallback copy of ``key`` in this generation (a tombstone reads as text None)."""
        try:
            found = self.kv.get_with_metadata(key)
        except Exception as exc:
            log.warning("get %r: KV failed too (%s)", key, exc)
            return MISS
        meta = found.metadata
        if found.value is None or not is_ours(meta):
            return MISS
        if meta.get("r") != "do" or meta.get("g") != view.generation:
            return MISS
        if meta.get("t") or self._now() >= meta["e"]:
            return Found(None, None, meta["s"])  # still hides an older DO record
        return Found(found.value, meta["e"], meta["s"])

    def _read_do_route(self, key: str, view: View) -> Found:
        view = self._repair_if_due(view)
        try:
            record = self.env.do.get(key)
        except Exception as exc:
            # FB-4: fall back to KV; only the DO route's fallback copies count there.
            log.warning("get %r: DO failed (%s); reading its fallback copy in KV", key, exc)
            return self._read_copy(key, view)
        found = MISS
        if isinstance(record, dict) and record.get("g") == view.generation:
            found = Found(record["j"], record["e"], record["s"])
        if not view.degraded:
            return found
        # Degraded: a put or delete the DO refused may be newer than its record (FB-3).
        copy = self._read_copy(key, view)
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

    def _retrying(self, operation: Callable[[], T]) -> T:
        """FB-5: KV takes one write per key per second; retry its 429 with backoff."""
        for attempt in range(self.kv_attempts):
            try:
                return operation()
            except Exception as exc:
                if getattr(exc, "status", None) != 429 or attempt == self.kv_attempts - 1:
                    raise
                self.clock.sleep(self.kv_retry_delay * 2**attempt)
        raise AssertionError("unreachable")

    def _kv_write(self, key: str, route: str, write: Callable[[], object]) -> WriteResult:
        try:
            self._retrying(write)
        except Exception as exc:
            return WriteResult(False, key, route, f"KV write failed: {exc}")  # FB-6
        return WriteResult(True, key, route)

    def _best_effort(self, key: str, write: Callable[[], object]) -> bool:
        try:
            self._retrying(write)
        except Exception as exc:
            log.warning("KV write of %r failed (%s)", key, exc)
            return False
        return True

    def _put_kv_entry(self, key: str, text: str, ttl: int, view: View) -> None:
        # TTL-3: the logical expiry goes in the metadata; KV's own (whole seconds from the
        # whole second now, at least 60) is set one second past it as a backstop.
        metadata = {"e": self._now() + ttl, "g": view.generation, "r": "kv"}
        backstop = min(max(KV_MIN_EXPIRATION_TTL_S, ttl + 1), MAX_TTL_S)
        self.kv.put(key, text, expiration_ttl=backstop, metadata=metadata)

    def _put_copy(
        self, key: str, text: str, expires_at: float, view: View, stamp: list[float]
    ) -> None:
        metadata = {"e": expires_at, "g": view.generation, "r": "do", "s": stamp}
        life = min(max(HIDE_S, math.ceil(expires_at - self._now()) + 1), MAX_TTL_S)
        self.kv.put(key, text, expiration_ttl=life, metadata=metadata)

    def _put_tombstone(self, key: str, view: View, stamp: list[float]) -> None:
        metadata = {"e": self._now(), "g": view.generation, "r": "do", "s": stamp, "t": 1}
        self.kv.put(key, "null", expiration_ttl=HIDE_S, metadata=metadata)

    def _fall_back(self, key: str, view: View, write: Callable[[], object]) -> WriteResult:
        """Write a fallback copy or tombstone, then mark the route degraded for everyone."""
        result = self._kv_write(key, "kv", write)
        if result.success and not view.degraded:
            degraded = view._replace(degraded=True)
            self._write_marker(degraded)
            self._set_view(degraded)
        return result

    # --- repair: fallback copies back into the DO ---------------------------------------

    def _repair_if_due(self, view: View) -> View:
        """While degraded, move this generation's copies into the DO once it answers.

        Attempts back off (1 s, 2 s, ... 5 min) while the DO keeps failing, so a long
        outage does not spend KV's daily list quota. Returns the (possibly cleared) view.
        """
        now = self._now()
        if not view.degraded or now < self._repair_due:
            return view
        try:
            self.env.do.get(PROBE_KEY)  # is the DO answering at all? (no KV list if not)
            for key in self._copy_keys(view.generation):  # every page of the listing
                self._move_copy(key, view.generation)
        except Exception as exc:
            self._repair_backoff = min(2 * self._repair_backoff, REPAIR_BACKOFF_MAX_S)
            self._repair_due = now + self._repair_backoff
            log.info("repair postponed %g s: %s", self._repair_backoff, exc)
            return view
        self._repair_due, self._repair_backoff = -math.inf, 0.5
        cleared = view._replace(degraded=False, checked_at=self._now())
        self._write_marker(cleared)
        self._set_view(cleared)
        return cleared

    def _copy_keys(self, generation: int) -> list[str]:
        keys: list[str] = []
        cursor = None
        while True:
            page = self.kv.list(cursor=cursor)
            for entry in page.keys:
                meta = entry.metadata
                if is_ours(meta) and meta["r"] == "do" and meta["g"] == generation:
                    keys.append(entry.name)
            if page.list_complete:
                return keys
            cursor = page.cursor

    def _move_copy(self, key: str, generation: int) -> None:
        """Put the copy in the DO if newer than the DO's record, then delete the copy."""
        found = self.kv.get_with_metadata(key)
        meta = found.metadata
        if found.value is None or not is_ours(meta) or meta["r"] != "do":
            return
        record = self.env.do.get(key)
        do_stamp = NO_STAMP
        if isinstance(record, dict) and record.get("g") == generation:
            do_stamp = record["s"]
        if meta["s"] > do_stamp:
            remaining = meta["e"] - self._now()
            if meta.get("t") or remaining <= 0:
                self.env.do.delete(key)
            else:
                moved = {"j": found.value, "g": generation, "s": meta["s"], "e": meta["e"]}
                self.env.do.set(key, moved, ttl=remaining)
        self._retrying(lambda: self.kv.delete(key))


def make_dal(env: Any) -> HandwrittenDAL:
    """The factory the plugin calls with each test's env."""
    return HandwrittenDAL(env)
