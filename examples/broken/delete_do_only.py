"""Delete always goes to the DO, even with the flag off: KV keeps the value.

Seen in the seed project's history: delete kept the DO-only form
(``doCache.delete(key, { ttl: 0 })``) when put and get learned the KV route. Breaks LOC-2
on the KV route (after a cached get, a delete is visible at once).
"""

from __future__ import annotations

from pytest_dualcache.abstraction import CacheAbstraction, WriteResult
from pytest_dualcache.cache_input import check_key
from pytest_dualcache.env import DualCacheEnv


class DODeleteCache(CacheAbstraction):
    """The reference with the seed's delete."""

    def delete(self, key: str) -> WriteResult:
        check_key(key)
        self.local_cache.discard(key)
        self.env.do.delete(key)
        return WriteResult(True, key, None, "do")


def make_dal(env: DualCacheEnv) -> DODeleteCache:
    """The broken DAL on ``env``."""
    return DODeleteCache(env)
