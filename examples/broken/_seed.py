"""``SeedCache``: the seed's TypeScript ``CacheAbstraction`` translated to Python, done right.

Not a broken DAL itself: the base of the broken DALs whose bug lives in a seam the reference
``CacheAbstraction`` does not offer (the flag check, the KV serializer, the KV write with its
ttl, the retry). It builds on the reference's public pieces only (``WriteResult`` and the
input checks of ``pytest_dualcache.cache_input``), so it refuses input as the reference
does. It keeps the seed's
design: the flag read on every call, DO first, a DO error falls back to KV, KV holds plain
JSON (a sub-minute TTL kept exact by an expiry in the metadata), 429s retried. It also keeps
the seed's known gaps, which only the reference closes, so its subclasses fail those clauses
too: no generation across flag flips (FLIP-2, FLIP-4), and a KV fallback copy that an older
DO copy hides once the DO answers reads again (FB-3, FB-7, LOC-1..3 with the DO failing).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from pytest_dualcache.abstraction import WriteResult
from pytest_dualcache.cache_input import check_key, checked_ttl, json_text
from pytest_dualcache.durable import DurableObjectCache, DurableObjectError
from pytest_dualcache.env import DualCacheEnv, is_do_cache_enabled
from pytest_dualcache.kv import KVError, KVRateLimitError
from pytest_dualcache.limits import KV_MIN_EXPIRATION_TTL_S

log = logging.getLogger("examples.broken")
T = TypeVar("T")


class SeedCache:
    """DO cache when ``FEATURE_FLAG_DO_CACHE`` is on, Workers KV otherwise."""

    default_ttl = 3600
    max_kv_attempts = 5
    kv_retry_delay = 0.25

    def __init__(self, env: DualCacheEnv) -> None:
        self.env = env

    # --- the seams the broken subclasses get wrong ----------------------------------------

    def _do_cache(self) -> DurableObjectCache | None:
        """The DO cache if the flag routes to it right now, else None."""
        return self.env.do if is_do_cache_enabled(self.env) else None

    def _encode(self, value: object) -> str:
        """``value`` as KV text: strict JSON, or CacheInputError."""
        return json_text(value)

    # --- the API ----------------------------------------------------------------------------

    def put(self, key: str, value: object, *, ttl: int | None = None) -> WriteResult:
        """Store ``value`` for ``ttl`` seconds on the flag's route (KV if the DO fails)."""
        check_key(key)
        ttl = self.default_ttl if ttl is None else checked_ttl(ttl)
        text = self._encode(value)
        do = self._do_cache()
        if do is not None:
            try:
                do.set(key, value, ttl=ttl)
                return WriteResult(True, key, ttl, "do")
            except DurableObjectError as exc:
                log.warning("put %r: DO failed (%s); writing KV", key, exc)
        try:
            self._kv_put(key, text, ttl)
        except KVError as exc:
            return WriteResult(False, key, ttl, "kv", str(exc))
        return WriteResult(True, key, ttl, "kv")

    def get(self, key: str) -> Any:
        """The value, or None; a failing DO is read around through KV."""
        check_key(key)
        do = self._do_cache()
        if do is not None:
            try:
                return do.get(key)
            except DurableObjectError as exc:
                log.warning("get %r: DO failed (%s); reading KV", key, exc)
        try:
            found = self.env.kv.get_with_metadata(key)
        except KVError:
            return None
        if found.value is None:
            return None
        meta = found.metadata or {}
        if self.env.clock.now() >= meta.get("expires_at", float("inf")):
            return None
        return json.loads(found.value)

    def delete(self, key: str) -> WriteResult:
        """Remove ``key`` on the flag's route (and any KV copy a DO failure left)."""
        check_key(key)
        do = self._do_cache()
        if do is not None:
            try:
                do.delete(key)
                return WriteResult(True, key, None, "do")
            except DurableObjectError as exc:
                log.warning("delete %r: DO failed (%s); deleting KV", key, exc)
        try:
            self._kv_retrying(lambda: self.env.kv.delete(key))
        except KVError as exc:
            return WriteResult(False, key, None, "kv", str(exc))
        return WriteResult(True, key, None, "kv")

    # --- KV -------------------------------------------------------------------------------------

    def _kv_put(self, key: str, text: str, ttl: int) -> None:
        """Put ``text`` in KV for ``ttl`` seconds, 429s retried (a put's KV write and fallback)."""
        # KV's own expiry is whole seconds and at least 60: set it past the logical expiry,
        # which lives in the metadata and is checked on read.
        expires_at = self.env.clock.now() + ttl
        backstop = max(KV_MIN_EXPIRATION_TTL_S, ttl + 1)
        self._kv_retrying(
            lambda: self.env.kv.put(
                key, text, expiration_ttl=backstop, metadata={"expires_at": expires_at}
            )
        )

    def _kv_retrying(self, operation: Callable[[], T]) -> T:
        for attempt in range(self.max_kv_attempts):
            try:
                return operation()
            except KVRateLimitError:
                if attempt == self.max_kv_attempts - 1:
                    raise
                self.env.clock.sleep(self.kv_retry_delay * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover
