"""Local-cache hits never check the entry's age or TTL, only its generation.

From the seed's ``dal.ts``, whose in-process ``this.cache`` is invalidated on writes (the
design note shows nothing else). Breaks TTL-6 (a local hit served past the TTL), and LOC-3.
"""

from __future__ import annotations

from pytest_dualcache.abstraction import CacheAbstraction
from pytest_dualcache.env import DualCacheEnv
from pytest_dualcache.local_cache import LocalCache, LocalEntry
from pytest_dualcache.route_marker import RouteView


class AgelessLocalCopies(LocalCache):
    """Local copies served for as long as their generation lasts."""

    def serves(self, entry: LocalEntry, view: RouteView, now: float) -> bool:
        return entry.generation == view.generation  # puts and deletes evict; only a flip stales


class AgelessLocalCache(CacheAbstraction):
    """The reference whose local hits skip the expiry and ``local_cache_ttl`` checks."""

    local_cache_class = AgelessLocalCopies


def make_dal(env: DualCacheEnv) -> AgelessLocalCache:
    """The broken DAL on ``env``."""
    return AgelessLocalCache(env)
