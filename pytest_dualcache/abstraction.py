"""The reference ``CacheAbstraction``: the seed's DO-first, KV-fallback wrapper, done right.

It is both the model the contract suite describes and the proof that the contract can be
met. This module holds the API and the routing; its parts live beside it, each in a module
named for what it holds: ``cache_input`` (what a caller may pass), ``local_cache`` (the
bounded in-process copies), ``route_marker`` (how instances agree on the route),
``kv_entries`` (what the cache keeps in KV, and the repair that moves fallback copies into
the DO) and ``async_abstraction`` (``AsyncCacheAbstraction``, the ``async`` face for
Workers-style code, importable from here too).

Subclasses change behaviour through the documented extension points only:
``local_cache_class``, ``read_route_marker``, ``store_fallback_copy`` and ``decode``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .cache_input import (
    MAX_TTL_S,
    MAX_VALUE_BYTES,
    RECORD_OVERHEAD_BYTES,
    RESERVED_PREFIX,
    CacheInputError,
    check_key,
    checked_ttl,
    compact_json,
    json_text,
)
from .durable import DurableObjectError
from .env import DualCacheEnv, is_do_cache_enabled
from .kv import KVError
from .kv_entries import REPAIR_BACKOFF_MAX_S, TOMBSTONE_TTL_S, FallbackRepair, KVEntries, is_copy
from .local_cache import LocalCache
from .route_marker import ROUTE_MARKER_KEY, RouteMarker, RouteMarkerUnavailable, RouteView

if TYPE_CHECKING:
    from collections.abc import Callable

    from .async_abstraction import AsyncCacheAbstraction

__all__ = [
    "MAX_TTL_S",
    "MAX_VALUE_BYTES",
    "RECORD_OVERHEAD_BYTES",
    "REPAIR_BACKOFF_MAX_S",
    "RESERVED_PREFIX",
    "ROUTE_MARKER_KEY",
    "TOMBSTONE_TTL_S",
    "AsyncCacheAbstraction",
    "CacheAbstraction",
    "CacheInputError",
    "CacheStats",
    "LocalCache",
    "RouteMarkerUnavailable",
    "RouteView",
    "WriteResult",
]

log = logging.getLogger("pytest_dualcache.abstraction")

_stamps = itertools.count(1)


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

    #: Extension point: the class the local cache is built from (``local_cache_size``,
    #: ``local_cache_ttl``); a ``LocalCache`` subclass changes how local copies are looked
    #: up, kept and aged. The instance is ``self.local_cache``.
    local_cache_class: type[LocalCache] = LocalCache

    # The constructor's options are not mutated: the contract only calls make_dal(env), and
    # tests/test_abstraction.py checks them.
    def __init__(
        self,
        env: DualCacheEnv,
        *,
        default_ttl: int = 3600,  # pragma: no mutate
        local_cache_ttl: float = 60.0,  # pragma: no mutate
        local_cache_size: int = 1024,  # pragma: no mutate
        max_kv_attempts: int = 5,  # pragma: no mutate
        kv_retry_delay: float = 0.25,  # pragma: no mutate
    ) -> None:
        self.env = env
        # pragma: no mutate start
        self.default_ttl = checked_ttl(default_ttl, "default_ttl")
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
        # pragma: no mutate end
        #: This instance's local copies (see ``local_cache_class``).
        self.local_cache = self.local_cache_class(local_cache_size, local_cache_ttl)
        self._counts: Counter[str] = Counter()
        self._kv = KVEntries(
            env, self._counts, max_attempts=max_kv_attempts, retry_delay=kv_retry_delay
        )
        self._marker = RouteMarker(self._kv, self._counts)
        self._repair = FallbackRepair(self._kv)
        self._view: RouteView | None = None

    # --- the API --------------------------------------------------------------------------

    def put(self, key: str, value: object, *, ttl: int | None = None) -> WriteResult:
        """Store ``value`` (strict JSON) for ``ttl`` seconds (default ``default_ttl``)."""
        check_key(key)
        ttl = self.default_ttl if ttl is None else checked_ttl(ttl)
        text = json_text(value)
        self.local_cache.discard(key)
        try:
            view = self._sync_route(writing=True)
        except RouteMarkerUnavailable as exc:
            return WriteResult(False, key, ttl, None, str(exc))  # pragma: no mutate (see below)
        stamp = [self._now(), next(_stamps)]
        expires_at = self._now() + ttl
        # The fields of a WriteResult other than ``success`` are the reference's own API, which
        # the contract cannot read (a DAL returns any object with ``success``): their lines
        # are not mutated (docs/contract_mutants.md).
        on_kv = WriteResult(True, key, ttl, "kv")  # pragma: no mutate (result fields)
        if view.route == "kv":
            return self._guarded_write(
                on_kv,
                lambda: self._kv.write(
                    key,
                    text,
                    expires_at=expires_at,
                    generation=view.generation,
                    stamp=stamp,
                    ttl=ttl,
                ),
            )
        view = self._repair_if_degraded(view)  # a repair changes the view a fallback needs
        record = {"v": value, "g": view.generation, "s": stamp, "e": expires_at}
        try:
            self.env.do.set(key, record, ttl=ttl)
        except DurableObjectError as exc:
            log.debug("put %r -> kv (DO failed: %s; fallback copy)", key, exc)
            self._counts["fallbacks"] += 1
            return self._guarded_write(
                on_kv,
                lambda: self.store_fallback_copy(
                    key, text, expires_at=expires_at, view=view, stamp=stamp
                ),
            )
        log.debug("put %r -> do (flag on)", key)
        self._counts["writes_do"] += 1
        if view.degraded:  # an older fallback copy must not outlive this write
            self._remove_copy(key)
        return WriteResult(True, key, ttl, "do")  # pragma: no mutate (result fields)

    def get(self, key: str) -> Any:
        """The value, or None if absent, expired or unreadable; never a stale one."""
        check_key(key)
        self._counts["reads"] += 1
        try:
            view = self._sync_route()
        except RouteMarkerUnavailable as exc:
            log.warning("get %r answered None: %s", key, exc)
            return None
        cached = self.local_cache.get(key, view, self._now())
        if cached is not None:
            self._counts["local_hits"] += 1
            return self.decode(cached)
        text, expires_at = self._read(key, view)
        if text is None:
            return None
        self.local_cache.put(key, text, expires_at, view)
        return self.decode(text)

    def delete(self, key: str) -> WriteResult:
        """Remove ``key`` on the current route (and its fallback copy while degraded)."""
        check_key(key)
        self.local_cache.discard(key)
        try:
            view = self._sync_route(writing=True)
        except RouteMarkerUnavailable as exc:
            return WriteResult(False, key, None, None, str(exc))  # pragma: no mutate (fields)
        on_kv = WriteResult(True, key, None, "kv")  # pragma: no mutate (result fields: in put)
        if view.route == "kv":
            log.debug("delete %r -> kv (flag off)", key)
            return self._guarded_write(on_kv, lambda: self.env.kv.delete(key))
        view = self._repair_if_degraded(view)
        try:
            self.env.do.delete(key)
        except DurableObjectError as exc:
            log.debug("delete %r -> kv tombstone (DO failed: %s)", key, exc)
            self._counts["fallbacks"] += 1
            stamp = [self._now(), next(_stamps)]
            return self._guarded_write(on_kv, lambda: self._store_tombstone(key, view, stamp))
        log.debug("delete %r -> do (flag on)", key)
        if view.degraded:
            self._remove_copy(key)
        return WriteResult(True, key, None, "do")  # pragma: no mutate (result fields: in put)

    # pragma: no mutate start (list and stats are outside the contract: contract_mutants.md)
    def list(self, prefix: str | None = None) -> list[str]:
        """Live keys on the current route, sorted, optionally under ``prefix``."""
        try:
            view = self._sync_route()
            names: set[str] = set()
            if view.route == "kv":
                names.update(key.name for key in self._kv.pages(prefix))
            else:
                do_failed = False
                try:
                    names.update(self.env.do.list(prefix))
                except DurableObjectError as exc:
                    log.debug("list -> kv fallback copies only (DO failed: %s)", exc)
                    do_failed = True
                if do_failed or view.degraded:
                    names.update(
                        key.name for key in self._kv.pages(prefix) if is_copy(key, view.generation)
                    )
        except (RouteMarkerUnavailable, KVError) as exc:
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

    # pragma: no mutate end

    # --- extension points -------------------------------------------------------------------

    def read_route_marker(self) -> RouteView | None:
        """The route marker as stored in KV, or None before this env's first use.

        Extension point: what this instance believes the instances agreed on. Every put and
        delete reads it, and a get once its view is ``local_cache_ttl`` old; when the flag
        disagrees with the marker's route, the generation is bumped and the marker written.
        Unreadable, it is this instance's last view; with none yet, it raises
        ``RouteMarkerUnavailable`` (the call then answers None, [] or success=False).
        """
        return self._marker.read(self._view, self._now())

    def store_fallback_copy(
        self, key: str, text: str, *, expires_at: float, view: RouteView, stamp: list[float]
    ) -> None:
        """Keep a put the DO refused: its JSON ``text`` as a KV copy, and the route degraded.

        Extension point: what survives a DO outage. The copy carries ``view``'s generation
        and ``stamp`` (when the put was made), so reads take it over an older DO record and
        the next DO call that succeeds moves it into the DO. Raising ``KVError`` makes the put
        fail (``success=False``); it runs with the cache's 429 retries around it.
        """
        self._kv.write_copy(
            key, text, expires_at=expires_at, generation=view.generation, stamp=stamp
        )
        if not view.degraded:
            self._set_degraded(view, True)

    def decode(self, text: str) -> Any:
        """The value a get hands out for the stored JSON ``text``: a new object every time.

        Extension point: how stored text becomes the caller's value (local hits included).
        """
        return json.loads(text)

    # --- routing ----------------------------------------------------------------------------

    def _now(self) -> float:
        return self.env.clock.now()

    def _sync_route(self, *, writing: bool = False) -> RouteView:
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
        marker = self.read_route_marker()
        if marker is None:
            fresh = RouteView(flag_route, 0, False, now)
            reason = "first use of this env"
        elif marker.route != flag_route:
            fresh = RouteView(flag_route, marker.generation + 1, False, now)
            reason = f"flag moved from {marker.route} to {flag_route}"
        else:
            fresh = RouteView(marker.route, marker.generation, marker.degraded, now)
            reason = ""
        if reason:
            log.debug("route -> %s generation %d (%s)", flag_route, fresh.generation, reason)
            self._marker.write(fresh)
        if view is None or (view.route, view.generation, view.degraded) != (
            fresh.route,
            fresh.generation,
            fresh.degraded,
        ):
            self.local_cache.clear()
        self._view = fresh
        return fresh

    def _set_degraded(self, view: RouteView, degraded: bool) -> RouteView:
        fresh = RouteView(view.route, view.generation, degraded, self._now())
        self._marker.write(fresh)
        self._view = fresh
        return fresh

    # --- reads ------------------------------------------------------------------------------

    def _read(
        self, key: str, view: RouteView, *, counting: bool = True
    ) -> tuple[str | None, float]:
        """The current JSON text for ``key`` and its expiry, or (None, 0).

        ``counting=False`` (list's checks) leaves the DO hit and fallback counters alone.
        """
        if view.route == "kv":
            return self._kv.read(key, view.generation, "kv")[:2]
        view = self._repair_if_degraded(view)
        try:
            record = self.env.do.get(key)
        except DurableObjectError as exc:
            log.debug("get %r -> kv (DO failed: %s)", key, exc)
            self._counts["fallbacks"] += counting
            return self._kv.read(key, view.generation, "do")[:2]
        if counting:
            self._counts["do_hits" if record is not None else "do_misses"] += 1
        do_text: str | None = None
        do_stamp: list[float] = [-math.inf, 0]
        do_expiry = 0.0
        if record is not None and record.get("g") == view.generation:
            # Written by a put that checked it: serialize again without re-checking.
            do_text, do_stamp, do_expiry = compact_json(record["v"]), record["s"], record["e"]
        if not view.degraded:
            return do_text, do_expiry
        copy_text, copy_expiry, copy_stamp = self._kv.read(key, view.generation, "do")
        if copy_stamp is not None and copy_stamp > do_stamp:
            log.debug("get %r -> kv (degraded: newer fallback copy)", key)
            return copy_text, copy_expiry
        return do_text, do_expiry

    # --- writes -----------------------------------------------------------------------------

    def _guarded_write(self, landed: WriteResult, write: Callable[[], object]) -> WriteResult:
        """Run a KV write with 429 retries: ``landed`` if it lands, else it with success=False."""
        try:
            self._kv.retrying(write)
        except KVError as exc:
            log.debug("write %r failed on kv: %s", landed.key, exc)
            return replace(landed, success=False, error=str(exc))
        self._counts["writes_kv"] += landed.ttl is not None  # puts count, deletes do not
        return landed

    def _remove_copy(self, key: str) -> None:
        """Delete ``key``'s fallback copy once the DO took a newer write (FB-4); best effort:
        a copy KV keeps loses to the newer DO record on its stamp (FB-7)."""
        with contextlib.suppress(KVError):
            self._kv.retrying(lambda: self.env.kv.delete(key))

    def _store_tombstone(self, key: str, view: RouteView, stamp: list[float]) -> None:
        """Keep a delete the DO refused: a KV tombstone, and the route degraded."""
        self._kv.write_tombstone(key, generation=view.generation, stamp=stamp)
        if not view.degraded:
            self._set_degraded(view, True)

    def _repair_if_degraded(self, view: RouteView) -> RouteView:
        """While degraded, try to move fallback copies into the DO (see ``FallbackRepair``).

        Returns the view in force afterwards: a write that falls back after a repair must
        mark the route degraded again, so it must not act on the view from before it.
        """
        if not view.degraded:
            return view
        if self._repair.attempt(view.generation, self._now()):
            return self._set_degraded(view, False)
        return view


# pragma: no mutate block (the async face's lazy import is outside the contract)
def __getattr__(name: str) -> Any:
    # The async face imports this module, so it is loaded on first use instead.
    if name == "AsyncCacheAbstraction":
        from .async_abstraction import AsyncCacheAbstraction

        return AsyncCacheAbstraction
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
