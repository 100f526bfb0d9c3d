"""The flag is tested for truthiness, and ``"false"`` is a non-empty string: the DO stays on.

From the seed's rollback plan (set ``FEATURE_FLAG_DO_CACHE = "false"`` and redeploy): wrangler
vars are strings, and ``if env.FEATURE_FLAG_DO_CACHE:`` (like JS's ``if (env.FLAG)``) reads
"false" as on. Breaks FB-1 (flag off: every write goes to KV, nothing touches the DO).
"""

from __future__ import annotations

from pytest_dualcache.durable import DurableObjectCache
from pytest_dualcache.env import DualCacheEnv

from ._seed import SeedCache


class TruthyFlagCache(SeedCache):
    """``SeedCache`` whose flag check is ``bool(var)``."""

    def _do_cache(self) -> DurableObjectCache | None:
        if getattr(self.env, "FEATURE_FLAG_DO_CACHE", "") and self.env.do is not None:
            return self.env.do
        return None


def make_dal(env: DualCacheEnv) -> TruthyFlagCache:
    """The broken DAL on ``env``."""
    return TruthyFlagCache(env)
