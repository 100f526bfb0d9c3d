"""With the DO on, every put is also written to KV "so a rollback finds warm data".

From the seed's design note: ``dal.ts`` still wrote KV directly
(``MARKET_ANALYSIS_CACHE.put``) beside the DO. Breaks FB-2 (flag on, DO healthy: no KV
write per operation).
"""

from __future__ import annotations

import contextlib
import json

from pytest_dualcache.abstraction import CacheAbstraction, WriteResult
from pytest_dualcache.env import DualCacheEnv
from pytest_dualcache.kv import KVError
from pytest_dualcache.limits import KV_MIN_EXPIRATION_TTL_S


class WriteThroughCache(CacheAbstraction):
    """The reference plus a best-effort KV copy of every DO write."""

    def put(self, key: str, value: object, *, ttl: int | None = None) -> WriteResult:
        result = super().put(key, value, ttl=ttl)
        if result.success and result.route == "do" and result.ttl is not None:
            # Keep KV warm too, so a rollback to KV finds every value where it left it.
            expiration_ttl = max(KV_MIN_EXPIRATION_TTL_S, result.ttl)
            with contextlib.suppress(KVError):  # best effort: the DO holds the value
                self.env.kv.put(key, json.dumps(value), expiration_ttl=expiration_ttl)
        return result


def make_dal(env: DualCacheEnv) -> WriteThroughCache:
    """The broken DAL on ``env``."""
    return WriteThroughCache(env)
