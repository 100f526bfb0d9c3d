"""The flag is read once, at construction; later flips are ignored by that instance.

From the seed's constructor (``this.doCache = isDOCacheEnabled(env) ? ... : null``), kept
because "a flip ships with a redeploy". Breaks FLIP-1 (the next call follows the flag).
"""

from __future__ import annotations

from pytest_dualcache.durable import DurableObjectCache
from pytest_dualcache.env import DualCacheEnv

from ._seed import SeedCache


class DeployTimeRouteCache(SeedCache):
    """``SeedCache`` that settles its route in ``__init__`` and keeps it."""

    def __init__(self, env: DualCacheEnv) -> None:
        super().__init__(env)
        self.do_cache = super()._do_cache()

    def _do_cache(self) -> DurableObjectCache | None:
        return self.do_cache


def make_dal(env: DualCacheEnv) -> DeployTimeRouteCache:
    """The broken DAL on ``env``."""
    return DeployTimeRouteCache(env)
