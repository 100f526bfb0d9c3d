"""The local cache is keyed ``route:key``, but put and delete still evict the bare ``key``.

From the seed's ``dal.ts`` write path ("invalidate local cache") after the local cache was
split per route: the eviction misses. Breaks LOC-1 (and LOC-2): a cached get hides the put.
"""

from __future__ import annotations

from pytest_dualcache.abstraction import CacheAbstraction
from pytest_dualcache.env import DualCacheEnv
from pytest_dualcache.local_cache import LocalCache
from pytest_dualcache.route_marker import RouteView


class RouteKeyedCopies(LocalCache):
    """Local copies kept under ``f"{route}:{key}"``."""

    def get(self, key: str, view: RouteView, now: float) -> str | None:
        return super().get(f"{view.route}:{key}", view, now)

    def put(self, key: str, text: str, expires_at: float, view: RouteView) -> None:
        # Per-route entries: a DO copy and a KV copy of one key can never be confused.
        super().put(f"{view.route}:{key}", text, expires_at, view)


class RouteKeyedLocalCache(CacheAbstraction):
    """The reference whose local entries live under ``f"{route}:{key}"``."""

    local_cache_class = RouteKeyedCopies


def make_dal(env: DualCacheEnv) -> RouteKeyedLocalCache:
    """The broken DAL on ``env``."""
    return RouteKeyedLocalCache(env)
