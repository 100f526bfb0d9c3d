"""A ttl below 60 s is raised to 60 on the KV route, so the value expires up to 59 s late.

Seen in the seed project's history: ``max(ttl, 60)`` dodges KV's 400 below 60 s (the demo's
``demo_cache.put`` does it too), here applied to the whole entry. Breaks TTL-3.
"""

from __future__ import annotations

from pytest_dualcache.abstraction import CacheAbstraction, _RouteView
from pytest_dualcache.env import DualCacheEnv
from pytest_dualcache.limits import KV_MIN_EXPIRATION_TTL_S


class ClampedTTLCache(CacheAbstraction):
    """The reference that lifts short KV TTLs to KV's floor."""

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
        if ttl < KV_MIN_EXPIRATION_TTL_S:  # KV answers 400 below its floor
            expires_at += KV_MIN_EXPIRATION_TTL_S - ttl
            ttl = KV_MIN_EXPIRATION_TTL_S
        super()._kv_put(
            key, text, expires_at, view, stamp, ttl=ttl, route=route, tombstone=tombstone
        )


def make_dal(env: DualCacheEnv) -> ClampedTTLCache:
    """The broken DAL on ``env``."""
    return ClampedTTLCache(env)
