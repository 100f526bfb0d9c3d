"""The reference ``CacheAbstraction``: the seed's DO-first, KV-fallback wrapper, done right.

It is both the model the contract suite describes and the proof that the contract can be
met. ``AsyncCacheAbstraction`` is its ``async`` face for Workers-style code.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .durable import DurableObjectError
from .env import DualCacheEnv, is_do_cache_enabled
from .jsondata import json_problem
from .kv import KVError, KVRateLimitError, utf8_length
from .limits import DO_MAX_VALUE_BYTES, KV_MAX_KEY_BYTES, KV_MIN_EXPIRATION_TTL_S
from .limits import KV_MAX_EXPIRATION_TTL_S as MAX_TTL_S  # the largest ttl, on both routes

log = logging.getLogger("pytest_dualcache.abstraction")

#: Keys under this prefix belong to the abstraction's own bookkeeping; callers can't use them.
RESERVED_PREFIX = "\x00dualcache:"
ROUTE_MARKER_KEY = RESERVED_PREFIX + "route"
#: Room kept in a DO value for the record around the cached value (generation, stamp, expiry).
RECORD_OVERHEAD_BYTES = 128
#: The largest value (as JSON) the abstraction accepts, on either route.
MAX_VALUE_BYTES = DO_MAX_VALUE_BYTES - RECORD_OVERHEAD_BYTES
#: The longest wait between two repair attempts while the DO keeps failing.
REPAIR_BACKOFF_MAX_S = 300.0
#: How long a KV tombstone (a delete made while the DO was down) outlives the DO copy it hides.
TOMBSTONE_TTL_S = 7 * 86_400

_stamps = itertools.count(1)
T = TypeVar("T")


class CacheInputError(ValueError):
    """A caller mistake (bad key, ttl or value): raised at once, with both stores untouched."""


class _MarkerUnavailable(Exception):
    """The route marker cannot be read and this instance has no view of it yet."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a put or delete did: ``route`` is "do" or "kv" (None if it was never sent)."""

    success: bool
    key: str
    ttl: int | None = None
    route: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Where writes went and how reads were served, for this instance."""

    writes: dict[str, int]
    route_share: dict[str, float]
    reads: int
    local_hits: int
    do_hits: int
    do_misses: int
    do_hit_rate: float
    fallbacks: int
    retries: int
    coordination_writes: int


@dataclass(frozen=True, slots=True)
class _RouteView:
    """What this instance believes about the route: which, which generation, degraded or not."""

    route: str
    generation: int
    degraded: bool
    checked_at: float


class CacheAbstraction:
    """One cache API over a Durable Object cache (primary) and Workers KV (fallback).

    Routing: every call reads ``is_do_cache_enabled(env)``, so a flag flip takes effect at the
    next call. With the flag off everything goes to KV and the DO is never touched. With it
    on, writes go to the DO; a DO error falls back to KV (the put still succeeds), and reads
    fall back to KV when the DO errors. A DO miss does not read through to KV: KV holds only
    the DO route's fallback copies, which are found another way (below), so a miss stays a
    miss and a deleted value cannot come back from an old KV copy.

    No stale reads across flips, at one KV write per flag transition and none per operation:
    a route marker in KV (under a reserved key) holds the current route and a generation
    number. The first instance to see the flag disagree with the marker bumps the generation
    and writes the marker (the first use of an env writes generation 0). Every entry carries
    the generation it was written in (DO entries inside their stored record, KV entries in
    their metadata) and an entry of another generation is ignored. So after on-off-on the DO
    entries written before the off period are misses, never stale values, whichever instance
    reads them. Every put and delete re-reads the marker first (a KV read, never a write);
    a get trusts this instance's view of it for ``local_cache_ttl`` seconds (re-reading at
    once when its own flag read disagrees): that is also how stale a read may be about other
    instances' writes, the promise LOC-3 checks.

    DO outages: a put or delete the DO refuses is written to KV as a fallback copy (a delete
    as a tombstone) stamped with the write time, and the marker is set to *degraded*. While
    degraded, reads on the DO route consult both stores and take the newer stamp. The first
    DO call that succeeds while degraded repairs: it moves every newer fallback copy into
    the DO, deletes the copies, and clears the flag.

    KV stores plain JSON text, so legacy ``json.loads(kv.get(key))`` readers and legacy
    writers interoperate; entries without metadata (legacy writes) are read on the KV route
    while the env has never flipped (generation 0), and never kept in the local cache.
    TTLs below KV's 60 s floor expire on time: the logical expiry sits in the metadata and is
    checked on read, while KV's own expiry is set a little later as a backstop.

    An in-process local cache (bounded LRU, ``local_cache_size`` entries, each kept at most
    ``local_cache_ttl`` seconds from this instance's last look at the marker, never past its
    TTL) is invalidated by this instance's puts and deletes and emptied when the route, the
    generation or the degraded state changes.
    """

    def __init__(
        self,
        env: DualCacheEnv,
        *,
        default_ttl: int = 3600,
        local_cache_ttl: float = 60.0,
        local_cache_size: int = 1024,
        max_kv_attempts: int = 5,
        kv_retry_delay: float = 0.25,
    ) -> None:
        self.env = env
        self.default_ttl = _checked_ttl(default_ttl, "default_ttl")
        if not local_cache_ttl >= 0:
            raise CacheInputError(f"local_cache_ttl must be >= 0 seconds, got {local_cache_ttl!r}")
        if not isinstance(local_cache_size, int) or local_cache_size < 0:
            raise CacheInputError(f"local_cache_size must be an int >= 0, got {local_cache_size!r}")
        if (
            isinstance(max_kv_attempts, bool)
            or not isinstance(max_kv_attempts, int)
            or (max_kv_attempts < 1)
        ):
            raise CacheInputError(f"max_kv_attempts must be an int >= 1, got {max_kv_attempts!r}")
        if not kv_retry_delay >= 0:
            raise CacheInputError(f"kv_retry_delay must be >= 0 seconds, got {kv_retry_delay!r}")
        self.local_cache_ttl = local_cache_ttl
        self.local_cache_size = local_cache_size
        self.max_kv_attempts = max_kv_attempts
        self.kv_retry_delay = kv_retry_delay
        self._view: _RouteView | None = None
        self._repair_due_at = -math.inf
        self._repair_backoff = 0.5  # doubled before each wait: the first wait is 1 s
        self._local: OrderedDict[str, tuple[str, float, float, int]] = OrderedDict()
        self._counts: Counter[str] = Counter()

    # --- the API --------------------------------------------------------------------------

    def put(self, key: str, value: object, *, ttl: int | None = None) -> WriteResult:
        """Store ``value`` (strict JSON) for ``ttl`` seconds (default ``default_ttl``)."""
        _check_key(key)
        ttl = self.default_ttl if ttl is None else _checked_ttl(ttl, "ttl")
        text = _json_text(value)
        self._local.pop(key, None)
        try:
            view = self._sync_route(writing=True)
        except _MarkerUnavailable as exc:
            return WriteResult(False, key, ttl, None, str(exc))
        stamp = [self._now(), next(_stamps)]
        expires_at = self._now() + ttl
        if view.route == "kv":
            return self._guarded_write(
                key,
                ttl,
                "kv",
                lambda: self._kv_put(key, text, expires_at, view, stamp, ttl=ttl),
            )
        self._repair_if_degraded()
        record = {"v": value, "g": view.generation, "s": stamp, "e": expires_at}
        try:
            self.env.do.set(key, record, ttl=ttl)
        except DurableObjectError as exc:
            log.debug("put %r -> kv (DO failed: %s; fallback copy)", key, exc)
            self._counts["fallbacks"] += 1
            return self._guarded_write(
                key, ttl, "kv", lambda: self._fallback_copy(key, text, expires_at, view, stamp)
            )
        log.debug("put %r -> do (flag on)", key)
        self._counts["writes_do"] += 1
        if self._view_degraded():  # an older fallback copy must not outlive this write
            self._guarded_write(key, None, "kv", lambda: self.env.kv.delete(key))
        return WriteResult(True, key, ttl, "do")

    def get(self, key: str) -> Any:
        """The value, or None if absent, expired or unreadable; never a stale one."""
        _check_key(key)
        self._counts["reads"] += 1
        try:
            view = self._sync_route()
        except _MarkerUnavailable as exc:
            log.warning("get %r answered None: %s", key, exc)
            return None
        cached = self._local_get(key, view)
        if cached is not None:
            self._counts["local_hits"] += 1
            return json.loads(cached)
        text, expires_at = self._read(key, view)
        if text is not None and self.local_cache_ttl > 0 and self.local_cache_size > 0:
            self._local_put(key, text, expires_at, view)
        return None if text is None else json.loads(text)

    def delete(self, key: str) -> WriteResult:
        """Remove ``key`` on the current route (and its fallback copy while degraded)."""
        _check_key(key)
        self._local.pop(key, None)
        try:
            view = self._sync_route(writing=True)
        except _MarkerUnavailable as exc:
            return WriteResult(False, key, None, None, str(exc))
        if view.route == "kv":
            log.debug("delete %r -> kv (flag off)", key)
            return self._guarded_write(key, None, "kv", lambda: self.env.kv.delete(key))
        self._repair_if_degraded()
        try:
            self.env.do.delete(key)
        except DurableObjectError as exc:
            log.debug("delete %r -> kv tombstone (DO failed: %s)", key, exc)
            self._counts["fallbacks"] += 1
            stamp = [self._now(), next(_stamps)]
            return self._guarded_write(key, None, "kv", lambda: self._tombstone(key, view, stamp))
        log.debug("delete %r -> do (flag on)", key)
        if self._view_degraded():
            self._guarded_write(key, None, "kv", lambda: self.env.kv.delete(key))
        return WriteResult(True, key, None, "do")

    def list(self, prefix: str | None = None) -> list[str]:
        """Live keys on the current route, sorted, optionally under ``prefix``."""
        try:
            view = self._sync_route()
            names: set[str] = set()
            if view.route == "kv":
                names.update(key.name for key in self._kv_pages(prefix))
            else:
                do_failed = False
                try:
                    names.update(self.env.do.list(prefix))
                except DurableObjectError as exc:
                    log.debug("list -> kv fallback copies only (DO failed: %s)", exc)
                    do_failed = True
                if do_failed or view.degraded:
                    names.update(key.name for key in self._kv_pages(prefix) if _is_copy(key, view))
        except (_MarkerUnavailable, KVError) as exc:
            log.warning("list answered []: %s", exc)
            return []
        return sorted(
            name
            for name in names
            if not name.startswith(RESERVED_PREFIX)
            and self._read(name, view, counting=False)[0] is not None
        )

    def stats(self) -> CacheStats:
        """Route share of writes, local hits, DO hit rate, fallbacks and retries."""
        counts = self._counts
        writes = {"do": counts["writes_do"], "kv": counts["writes_kv"]}
        total = sum(writes.values())
        do_reads = counts["do_hits"] + counts["do_misses"]
        return CacheStats(
            writes=writes,
            route_share={route: n / total if total else 0.0 for route, n in writes.items()},
            reads=counts["reads"],
            local_hits=counts["local_hits"],
            do_hits=counts["do_hits"],
            do_misses=counts["do_misses"],
            do_hit_rate=counts["do_hits"] / do_reads if do_reads else 0.0,
            fallbacks=counts["fallbacks"],
            retries=counts["retries"],
            coordination_writes=counts["coordination_writes"],
        )

    # --- routing and the marker -------------------------------------------------------------

    def _now(self) -> float:
        return self.env.clock.now()

    def _sync_route(self, *, writing: bool = False) -> _RouteView:
        """This instance's view of the route, re-read from the KV marker when it may be stale.

        Writes always re-read it (a KV read, never a write), so a write lands in the current
        generation even when other instances flipped the route back and forth unseen.
        """
        flag_route = "do" if is_do_cache_enabled(self.env) else "kv"
        view, now = self._view, self._now()
        if (
            not writing
            and view is not None
            and view.route == flag_route
            and now - view.checked_at < self.local_cache_ttl
        ):
            return view
        marker = self._read_marker()
        if marker is None:
            fresh = _RouteView(flag_route, 0, False, now)
            reason = "first use of this env"
        elif marker.route != flag_route:
            fresh = _RouteView(flag_route, marker.generation + 1, False, now)
            reason = f"flag moved from {marker.route} to {flag_route}"
        else:
            fresh = _RouteView(marker.route, marker.generation, marker.degraded, now)
            reason = ""
        if reason:
            log.debug("route -> %s generation %d (%s)", flag_route, fresh.generation, reason)
            self._write_marker(fresh)
        if view is None or (view.route, view.generation, view.degraded) != (
            fresh.route,
            fresh.generation,
            fresh.degraded,
        ):
            self._local.clear()
        self._view = fresh
        return fresh

    def _read_marker(self) -> _RouteView | None:
        """The marker in KV (None if there is none yet).

        Unreadable, it is this instance's last view when it has one; a fresh instance cannot
        know the generation then, so it raises rather than guess (a guess could resurrect
        old entries or write into a dead generation).
        """
        try:
            text = self.env.kv.get(ROUTE_MARKER_KEY)
        except KVError as exc:
            if self._view is None:
                raise _MarkerUnavailable(f"route marker unreadable: {exc}") from None
            log.warning("route marker unreadable (%s); keeping this instance's view", exc)
            return self._view
        if text is None:
            return None
        data = json.loads(text)
        return _RouteView(data["route"], data["generation"], data["degraded"], self._now())

    def _write_marker(self, view: _RouteView) -> None:
        text = json.dumps(
            {"route": view.route, "generation": view.generation, "degraded": view.degraded}
        )
        try:
            self._kv_retrying(lambda: self.env.kv.put(ROUTE_MARKER_KEY, text))
        except KVError as exc:
            log.warning("route marker not written (%s); other instances may lag", exc)
            return
        self._counts["coordination_writes"] += 1

    def _set_degraded(self, view: _RouteView, degraded: bool) -> _RouteView:
        fresh = _RouteView(view.route, view.generation, degraded, self._now())
        self._write_marker(fresh)
        self._view = fresh
        return fresh

    # --- reads ------------------------------------------------------------------------------

    def _read(
        self, key: str, view: _RouteView, *, counting: bool = True
    ) -> tuple[str | None, float]:
        """The current JSON text for ``key`` and its expiry, or (None, 0).

        ``counting=False`` (list's checks) leaves the DO hit and fallback counters alone.
        """
        if view.route == "kv":
            return self._kv_copy(key, view, "kv")
        self._repair_if_degraded()
        try:
            record = self.env.do.get(key)
        except DurableObjectError as exc:
            log.debug("get %r -> kv (DO failed: %s)", key, exc)
            self._counts["fallbacks"] += counting
            return self._kv_copy(key, view, "do")
        if counting:
            self._counts["do_hits" if record is not None else "do_misses"] += 1
        do_text: str | None = None
        do_stamp: list[float] = [-math.inf, 0]
        do_expiry = 0.0
        if record is not None and record.get("g") == view.generation:
            # Written by a put that checked it: serialize again without re-checking.
            do_text, do_stamp, do_expiry = _dumps(record["v"]), record["s"], record["e"]
        if not self._view_degraded():
            return do_text, do_expiry
        copy_text, copy_expiry, copy_stamp = self._kv_copy_with_stamp(key, view, "do")
        if copy_stamp is not None and copy_stamp > do_stamp:
            log.debug("get %r -> kv (degraded: newer fallback copy)", key)
            return copy_text, copy_expiry
        return do_text, do_expiry

    def _view_degraded(self) -> bool:
        return self._view is not None and self._view.degraded

    def _kv_copy(self, key: str, view: _RouteView, route: str) -> tuple[str | None, float]:
        text, expiry, _ = self._kv_copy_with_stamp(key, view, route)
        return text, expiry

    def _kv_copy_with_stamp(
        self, key: str, view: _RouteView, route: str
    ) -> tuple[str | None, float, list[float] | None]:
        """A KV entry valid for ``route`` in this generation: (text or None, expiry, stamp)."""
        try:
            found = self.env.kv.get_with_metadata(key)
        except KVError as exc:
            log.warning("get %r: KV unreadable too (%s); answering None", key, exc)
            return None, 0.0, None
        text, meta = found.value, found.metadata
        if text is None:
            return None, 0.0, None
        if meta is not None and not isinstance(meta, dict):
            meta = None  # someone else's metadata: the entry is foreign, read as legacy
        if meta is None:
            # A legacy write: plain JSON without our metadata. It carries no generation, so
            # it is current only in generation 0 (before any flip; afterwards it could be
            # older than what the DAL wrote since), and no expiry we can read, so it is
            # never kept in the local cache (expiry "now").
            if route == "kv" and view.generation == 0:
                return text, self._now(), [-math.inf, 0]
            return None, 0.0, None
        if meta.get("r") != route or meta.get("g") != view.generation:
            return None, 0.0, None
        if self._now() >= meta["e"]:
            return None, 0.0, meta["s"]
        if meta.get("t"):
            return None, 0.0, meta["s"]
        return text, meta["e"], meta["s"]

    def _kv_pages(self, prefix: str | None) -> list[Any]:
        keys, cursor = [], None
        while True:
            page = self.env.kv.list(prefix=prefix, cursor=cursor)
            keys.extend(page.keys)
            if page.list_complete:
                return keys
            cursor = page.cursor

    # --- writes -----------------------------------------------------------------------------

    def _guarded_write(
        self, key: str, ttl: int | None, route: str, write: Callable[[], object]
    ) -> WriteResult:
        """Run a KV write with 429 retries; an operational failure becomes success=False."""
        try:
            self._kv_retrying(write)
        except KVError as exc:
            log.debug("write %r failed on kv: %s", key, exc)
            return WriteResult(False, key, ttl, route, str(exc))
        if ttl is not None:
            self._counts["writes_kv"] += 1
        return WriteResult(True, key, ttl, route)

    def _kv_retrying(self, operation: Callable[[], T]) -> T:
        """``operation()``, retried on 429 with exponential backoff on the env's clock."""
        for attempt in range(self.max_kv_attempts):
            try:
                return operation()
            except KVRateLimitError:
                if attempt == self.max_kv_attempts - 1:
                    raise
                self._counts["retries"] += 1
                self.env.clock.sleep(self.kv_retry_delay * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _kv_put(
        self,
        key: str,
        text: str,
        expires_at: float,
        view: _RouteView,
        stamp: list[float],
        *,
        ttl: int,
        route: str = "kv",
        tombstone: bool = False,
    ) -> None:
        metadata: dict[str, Any] = {"e": expires_at, "g": view.generation, "r": route, "s": stamp}
        if tombstone:
            metadata["t"] = 1
        # KV's expiry (whole s from the whole second now) passes the logical one where int32 allows.
        backstop = min(max(KV_MIN_EXPIRATION_TTL_S, math.ceil(ttl) + 1), MAX_TTL_S)
        reason = (
            "flag off" if route == "kv" else "DO failed: tombstone" if tombstone else "DO failed"
        )
        log.debug("%s %r -> kv (%s)", "delete" if tombstone else "put", key, reason)
        self.env.kv.put(key, text, expiration_ttl=backstop, metadata=metadata)

    def _fallback_copy(
        self, key: str, text: str, expires_at: float, view: _RouteView, stamp: list[float]
    ) -> None:
        ttl = max(1, math.ceil(expires_at - self._now()))
        self._kv_put(key, text, expires_at, view, stamp, ttl=ttl, route="do")
        if not view.degraded:
            self._set_degraded(view, True)

    def _tombstone(self, key: str, view: _RouteView, stamp: list[float]) -> None:
        expires_at = self._now() + TOMBSTONE_TTL_S
        self._kv_put(
            key, "null", expires_at, view, stamp, ttl=TOMBSTONE_TTL_S, route="do", tombstone=True
        )
        if not view.degraded:
            self._set_degraded(view, True)

    def _repair_if_degraded(self) -> None:
        """While degraded, try to move fallback copies into the DO.

        Attempts back off exponentially (1 s, 2 s, ... up to 5 minutes) while the DO keeps
        failing, so a long outage does not spend the free plan's 1,000 daily KV lists; the
        DO is probed with one cheap call before the namespace is listed.
        """
        view, now = self._view, self._now()
        if view is None or not view.degraded or now < self._repair_due_at:
            return
        try:
            self.env.do.list(RESERVED_PREFIX)  # is the DO answering at all?
            for key in self._kv_pages(None):
                if _is_copy(key, view):
                    self._repair_key(key.name, key.metadata, view)
        except (DurableObjectError, KVError) as exc:
            self._repair_backoff = min(2 * self._repair_backoff, REPAIR_BACKOFF_MAX_S)
            self._repair_due_at = now + self._repair_backoff
            log.debug("repair postponed %g s: %s", self._repair_backoff, exc)
            return
        self._repair_backoff = 0.5
        log.debug("repair done: route no longer degraded")
        self._set_degraded(view, False)

    def _repair_key(self, key: str, meta: dict[str, Any], view: _RouteView) -> None:
        record = self.env.do.get(key)
        do_stamp = record["s"] if record and record.get("g") == view.generation else None
        if do_stamp is None or meta["s"] > do_stamp:
            remaining = meta["e"] - self._now()
            if meta.get("t") or remaining <= 0:
                self.env.do.delete(key)
            else:
                text = self.env.kv.get(key)
                value = json.loads(text) if text is not None else None
                record = {"v": value, "g": view.generation, "s": meta["s"], "e": meta["e"]}
                self.env.do.set(key, record, ttl=remaining)
        self.env.kv.delete(key)

    # --- the local cache ----------------------------------------------------------------------

    def _local_get(self, key: str, view: _RouteView) -> str | None:
        entry = self._local.get(key)
        if entry is None:
            return None
        text, expires_at, cached_at, generation = entry
        now = self._now()
        if (
            generation != view.generation
            or now >= expires_at
            or (now - cached_at >= self.local_cache_ttl)
        ):
            del self._local[key]
            return None
        self._local.move_to_end(key)
        return text

    def _local_put(self, key: str, text: str, expires_at: float, view: _RouteView) -> None:
        # What was read is only as fresh as this instance's view of the route (another
        # instance may have degraded it since): age the copy from when the view was checked.
        self._local[key] = (text, expires_at, view.checked_at, view.generation)
        self._local.move_to_end(key)
        while len(self._local) > self.local_cache_size:
            self._local.popitem(last=False)


class AsyncCacheAbstraction:
    """``CacheAbstraction`` with ``async`` methods, for Python Workers code.

    One logic, two faces: it runs ``CacheAbstraction`` over the env's *Workers* bindings (the
    JS names and options a Worker awaits: ``put(key, value, expirationTtl=...)``,
    ``getWithMetadata``, ``CACHE_DO.set(key, value, ttl=...)``), completing each awaited
    call at once, which the emulated bindings always allow. ``env`` is a ``WorkersEnv``
    (``env.workers()``) or a ``DualCacheEnv``, whose Workers face is then used.
    """

    def __init__(self, env: Any, **options: Any) -> None:
        workers = env.workers() if isinstance(env, DualCacheEnv) else env
        self.sync = CacheAbstraction(_AwaitedBindings(workers), **options)  # type: ignore[arg-type]
        self.default_ttl = self.sync.default_ttl
        self.local_cache_ttl = self.sync.local_cache_ttl

    async def put(self, key: str, value: object, *, ttl: int | None = None) -> WriteResult:
        """See ``CacheAbstraction.put``."""
        return self.sync.put(key, value, ttl=ttl)

    async def get(self, key: str) -> Any:
        """See ``CacheAbstraction.get``."""
        return self.sync.get(key)

    async def delete(self, key: str) -> WriteResult:
        """See ``CacheAbstraction.delete``."""
        return self.sync.delete(key)

    async def list(self, prefix: str | None = None) -> list[str]:
        """See ``CacheAbstraction.list``."""
        return self.sync.list(prefix)

    async def stats(self) -> CacheStats:
        """See ``CacheAbstraction.stats``."""
        return self.sync.stats()


class _AwaitedBindings:
    """A Workers env seen as the synchronous stores ``CacheAbstraction`` drives.

    Each store call goes to the Worker binding by its JS name and options and is awaited to
    completion on the spot: the emulated bindings never suspend (a real Worker's would, which
    is why this lives in a test plugin and not in a Worker).
    """

    def __init__(self, workers: Any) -> None:
        names = workers.binding_names
        self.binding_names = names
        self.clock = workers.dualcache_env.clock  # a Worker reads Date.now(): ours is virtual
        self.kv = _AwaitedKV(getattr(workers, names.kv))
        do = getattr(workers, names.do, None)
        self.do = None if do is None else _AwaitedDO(do)
        self._workers = workers

    def __getattr__(self, name: str) -> Any:  # vars and bindings, for is_do_cache_enabled
        return getattr(self.__dict__["_workers"], name)


def _completed(awaitable: Any) -> Any:
    """The result of an awaitable that finishes without suspending (an emulated binding)."""
    try:
        awaitable.send(None)
    except StopIteration as done:
        return done.value
    awaitable.close()
    raise RuntimeError("a Workers binding suspended: only the emulated bindings are supported")


class _AwaitedKV:
    """``KVNamespace``'s calls, made on a Workers KV binding."""

    def __init__(self, binding: Any) -> None:
        self.binding = binding

    def get(self, key: str) -> Any:
        return _completed(self.binding.get(key))

    def get_with_metadata(self, key: str) -> Any:
        return _completed(self.binding.getWithMetadata(key))

    def put(
        self, key: str, value: str, *, expiration_ttl: int | None = None, metadata: Any = None
    ) -> None:
        _completed(self.binding.put(key, value, expirationTtl=expiration_ttl, metadata=metadata))

    def delete(self, key: str) -> None:
        _completed(self.binding.delete(key))

    def list(self, *, prefix: str | None = None, cursor: str | None = None) -> Any:
        return _completed(self.binding.list(prefix=prefix, cursor=cursor))


class _AwaitedDO:
    """``DurableObjectCache``'s calls, made on the Workers DO cache binding."""

    def __init__(self, binding: Any) -> None:
        self.binding = binding

    def set(self, key: str, value: object, *, ttl: float) -> None:
        _completed(self.binding.set(key, value, ttl=ttl))

    def get(self, key: str) -> Any:
        return _completed(self.binding.get(key))

    def delete(self, key: str) -> bool:
        return bool(_completed(self.binding.delete(key)))

    def list(self, prefix: str | None = None) -> list[str]:
        return list(_completed(self.binding.list(prefix)))


# --- caller mistakes ------------------------------------------------------------------------


def _is_copy(key: Any, view: _RouteView) -> bool:
    """A KV list entry that is a DO-route fallback copy (or tombstone) of this generation."""
    meta = key.metadata
    return isinstance(meta, dict) and meta.get("r") == "do" and meta.get("g") == view.generation


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key:
        raise CacheInputError(f"cache keys must be non-empty str, got {key!r}")
    if key in (".", ".."):
        raise CacheInputError(f'cache key {key!r} is not allowed (KV refuses "." and "..")')
    length = utf8_length(key)
    if length > KV_MAX_KEY_BYTES:
        raise CacheInputError(
            f"cache key is {length} UTF-8 bytes; KV's limit is {KV_MAX_KEY_BYTES}"
        )
    if key.startswith(RESERVED_PREFIX):
        raise CacheInputError(f"keys starting with {RESERVED_PREFIX!r} are reserved")


def _checked_ttl(ttl: object, name: str) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL_S:
        raise CacheInputError(f"{name} must be a positive int, at most {MAX_TTL_S} s, got {ttl!r}")
    return ttl


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json_text(value: object) -> str:
    problem = json_problem(value)
    if problem:
        raise CacheInputError(f"not storable as strict JSON: {problem}")
    try:
        text = _dumps(value)
    except ValueError as exc:  # e.g. an int beyond sys.get_int_max_str_digits()
        raise CacheInputError(f"not storable as JSON: {exc}") from None
    size = utf8_length(text)
    if size > MAX_VALUE_BYTES:
        raise CacheInputError(
            f"value is {size} bytes of JSON; this cache stores at most {MAX_VALUE_BYTES} "
            f"(a Durable Object value holds {DO_MAX_VALUE_BYTES} bytes, less "
            f"{RECORD_OVERHEAD_BYTES} for the record around it), on both routes so that a "
            "flip never strands a value"
        )
    return text
