"""Values go to KV as a bare ``put(key, text)``: no expiration, so they never expire.

From the seed's legacy KV writes (``MARKET_ANALYSIS_CACHE.put(key, serialized, options)``),
with the options lost on the way. Breaks TTL-1 on the KV route.
"""

from __future__ import annotations

from pytest_dualcache.env import DualCacheEnv

from ._seed import SeedCache


class PlainKVPutCache(SeedCache):
    """``SeedCache`` writing KV values as bare ``kv.put(key, text)``."""

    def _kv_put(self, key: str, text: str, ttl: int) -> None:
        # Write exactly what the legacy DAL wrote, so its readers see one format.
        self._kv_retrying(lambda: self.env.kv.put(key, text))


def make_dal(env: DualCacheEnv) -> PlainKVPutCache:
    """The broken DAL on ``env``."""
    return PlainKVPutCache(env)
