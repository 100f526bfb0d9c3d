"""A ttl below 60 s is raised to 60 on the KV route, so the value expires up to 59 s late.

Seen in the seed project's history: ``max(ttl, 60)`` dodges KV's 400 below 60 s (the demo's
``demo_cache.put`` does it too), here applied to the whole entry. Breaks TTL-3.
"""

from __future__ import annotations

from pytest_dualcache.env import DualCacheEnv
from pytest_dualcache.limits import KV_MIN_EXPIRATION_TTL_S

from ._seed import SeedCache


class ClampedTTLCache(SeedCache):
    """``SeedCache`` that lifts short KV TTLs to KV's floor."""

    def _kv_put(self, key: str, text: str, ttl: int) -> None:
        # KV answers 400 below its floor.
        super()._kv_put(key, text, max(ttl, KV_MIN_EXPIRATION_TTL_S))


def make_dal(env: DualCacheEnv) -> ClampedTTLCache:
    """The broken DAL on ``env``."""
    return ClampedTTLCache(env)
