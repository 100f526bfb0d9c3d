"""The local cache keeps decoded values and hands out the same object on every hit.

From the seed's ``dal.ts`` local cache, ported as "parse once, not on every hit": a caller
mutating what get returned changes what the next get returns. Breaks SER-3.
"""

from __future__ import annotations

import json
from typing import Any

from pytest_dualcache.abstraction import CacheAbstraction, _check_key, _MarkerUnavailable, log
from pytest_dualcache.env import DualCacheEnv


class DecodedLocalCache(CacheAbstraction):
    """The reference whose local cache holds parsed values instead of JSON text."""

    def get(self, key: str) -> Any:
        _check_key(key)
        self._counts["reads"] += 1
        try:
            view = self._sync_route()
        except _MarkerUnavailable as exc:
            log.warning("get %r answered None: %s", key, exc)
            return None
        cached = self._local_get(key, view)
        if cached is not None:
            self._counts["local_hits"] += 1
            return cached
        text, expires_at = self._read(key, view)
        if text is None:
            return None
        value = json.loads(text)
        if self.local_cache_ttl > 0 and self.local_cache_size > 0:
            self._local_put(key, value, expires_at, view)
        return value


def make_dal(env: DualCacheEnv) -> DecodedLocalCache:
    """The broken DAL on ``env``."""
    return DecodedLocalCache(env)
