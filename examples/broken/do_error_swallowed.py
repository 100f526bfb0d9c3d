"""A put the DO refuses is logged and dropped (no KV fallback copy), yet it reports success.

Seen in the seed project's history: the DO failure path skipped KV to save writes. Breaks
FB-3 (a put made while the DO fails must be readable via KV while the DO is down).
"""

from __future__ import annotations

import logging

from pytest_dualcache.abstraction import CacheAbstraction
from pytest_dualcache.env import DualCacheEnv
from pytest_dualcache.route_marker import RouteView

log = logging.getLogger("examples.broken")


class SwallowingCache(CacheAbstraction):
    """The reference with its DO-failure fallback copy replaced by a log line."""

    def store_fallback_copy(
        self, key: str, text: str, *, expires_at: float, view: RouteView, stamp: list[float]
    ) -> None:
        # The value is recomputed on the next miss: don't spend a KV write on it.
        log.warning("put %r: DO unavailable, value not cached", key)


def make_dal(env: DualCacheEnv) -> SwallowingCache:
    """The broken DAL on ``env``."""
    return SwallowingCache(env)
