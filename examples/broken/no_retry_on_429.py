"""KV errors surface at once: a 429 (a second write to one key within a second) fails the put.

From the seed's ``kv-utils.ts``, which calls ``KV.put`` without the retry ``dal.ts`` wraps
around it: here the reference, configured for one attempt per KV write. Breaks FB-5 (two
puts to one key within a second both succeed).
"""

from __future__ import annotations

from pytest_dualcache.abstraction import CacheAbstraction
from pytest_dualcache.env import DualCacheEnv


def make_dal(env: DualCacheEnv) -> CacheAbstraction:
    """The broken DAL on ``env``: the reference without its 429 backoff."""
    return CacheAbstraction(env, max_kv_attempts=1)
