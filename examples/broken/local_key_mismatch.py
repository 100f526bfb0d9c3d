"""The local cache is keyed ``route:key``, but put and delete still evict the bare ``key``.

From the seed's ``dal.ts`` write path ("invalidate local cache") after the local cache was
split per route: the eviction misses. Breaks LOC-1 (and LOC-2): a cached get hides the put.
"""

from __future__ import annotations

from pytest_dualcache.abstraction import CacheAbstraction, _RouteView
from pytest_dualcache.env import DualCacheEnv


class RouteKeyedLocalCache(CacheAbstraction):
    """The reference whose local entries live under ``f"{route}:{key}"``."""

    def _local_get(self, key: str, view: _RouteView) -> str | None:
        return super()._local_get(f"{view.route}:{key}", view)

    def _local_put(self, key: str, text: str, expires_at: float, view: _RouteView) -> None:
        # Per-route entries: a DO copy and a KV copy of one key can never be confused.
        super()._local_put(f"{view.route}:{key}", text, expires_at, view)


def make_dal(env: DualCacheEnv) -> RouteKeyedLocalCache:
    """The broken DAL on ``env``."""
    return RouteKeyedLocalCache(env)
