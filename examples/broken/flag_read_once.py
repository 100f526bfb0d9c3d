"""The flag is read once, at construction; later flips are ignored by that instance.

From the seed's constructor (``this.doCache = isDOCacheEnabled(env) ? ... : null``), kept
because "a flip ships with a redeploy". Breaks FLIP-1 (the next call follows the flag).
"""

from __future__ import annotations

import contextlib
from typing import Any

from pytest_dualcache.abstraction import CacheAbstraction, _MarkerUnavailable, _RouteView
from pytest_dualcache.env import DualCacheEnv


class DeployTimeRouteCache(CacheAbstraction):
    """The reference that settles its route in ``__init__`` and keeps it."""

    def __init__(self, env: DualCacheEnv, **options: Any) -> None:
        super().__init__(env, **options)
        # With KV down the marker is unreadable: the first call that can read it settles it.
        with contextlib.suppress(_MarkerUnavailable):
            super()._sync_route()

    def _sync_route(self, *, writing: bool = False) -> _RouteView:
        if self._view is None:
            return super()._sync_route(writing=writing)
        return self._view


def make_dal(env: DualCacheEnv) -> DeployTimeRouteCache:
    """The broken DAL on ``env``."""
    return DeployTimeRouteCache(env)
