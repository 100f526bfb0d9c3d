"""``ttl or default_ttl``: a ttl of 0 silently becomes the default instead of an error.

From the seed's ``options?.expirationTtl || 3600`` (its ``CacheAbstraction.put`` and
``dal.ts`` write). Breaks TTL-5 (an invalid ttl is a clear error and writes nothing).
"""

from __future__ import annotations

from pytest_dualcache.abstraction import CacheAbstraction, WriteResult
from pytest_dualcache.env import DualCacheEnv


class TTLOrDefaultCache(CacheAbstraction):
    """The reference behind a put that fills in the default TTL the seed's way."""

    def put(self, key: str, value: object, *, ttl: int | None = None) -> WriteResult:
        return super().put(key, value, ttl=ttl or self.default_ttl)


def make_dal(env: DualCacheEnv) -> TTLOrDefaultCache:
    """The broken DAL on ``env``."""
    return TTLOrDefaultCache(env)
