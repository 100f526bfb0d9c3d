"""Flag off, the value goes to KV as a bare ``put(key, text)``: no expiration, never expires.

From the seed's legacy KV writes (``MARKET_ANALYSIS_CACHE.put(key, serialized, options)``),
with the options lost on the way. Breaks TTL-1 on the KV route.
"""

from __future__ import annotations

from pytest_dualcache.abstraction import CacheAbstraction, _RouteView
from pytest_dualcache.env import DualCacheEnv


class PlainKVPutCache(CacheAbstraction):
    """The reference writing flag-off values as bare ``kv.put(key, text)``."""

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
        if route != "kv":
            super()._kv_put(
                key, text, expires_at, view, stamp, ttl=ttl, route=route, tombstone=tombstone
            )
            return
        # Flag off: write exactly what the legacy DAL wrote, so its readers see one format.
        self.env.kv.put(key, text)


def make_dal(env: DualCacheEnv) -> PlainKVPutCache:
    """The broken DAL on ``env``."""
    return PlainKVPutCache(env)
