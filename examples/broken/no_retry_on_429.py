"""KV errors surface at once: a 429 (a second write to one key within a second) fails the put.

From the seed's ``kv-utils.ts``, which calls ``KV.put`` without the retry ``dal.ts`` wraps
around it. Breaks FB-5 (two puts to one key within a second both succeed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pytest_dualcache.abstraction import CacheAbstraction
from pytest_dualcache.env import DualCacheEnv

T = TypeVar("T")


class NoRetryCache(CacheAbstraction):
    """The reference without its 429 backoff."""

    def _kv_retrying(self, operation: Callable[[], T]) -> T:
        return operation()


def make_dal(env: DualCacheEnv) -> NoRetryCache:
    """The broken DAL on ``env``."""
    return NoRetryCache(env)
