"""Local-cache hits never check the entry's age or TTL, only its generation.

From the seed's ``dal.ts``, whose in-process ``this.cache`` is invalidated on writes (the
design note shows nothing else). Breaks TTL-6 (a local hit served past the TTL), and LOC-3.
"""

from __future__ import annotations

from pytest_dualcache.abstraction import CacheAbstraction, _RouteView
from pytest_dualcache.env import DualCacheEnv


class AgelessLocalCache(CacheAbstraction):
    """The reference whose local hits skip the expiry and ``local_cache_ttl`` checks."""

    def _local_get(self, key: str, view: _RouteView) -> str | None:
        entry = self._local.get(key)
        if entry is None:
            return None
        text, _expires_at, _cached_at, generation = entry
        if generation != view.generation:  # puts and deletes evict; only a flip can stale it
            del self._local[key]
            return None
        self._local.move_to_end(key)
        return text


def make_dal(env: DualCacheEnv) -> AgelessLocalCache:
    """The broken DAL on ``env``."""
    return AgelessLocalCache(env)
