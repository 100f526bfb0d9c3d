"""The route marker's stored route is replaced by the flag's, so a flip never bumps the generation.

The seed had no generation or epoch at all: after on-off-on the DO copy written before the
off period is served again. Breaks FLIP-2 (and FLIP-4: fresh instances read it too).
"""

from __future__ import annotations

from dataclasses import replace

from pytest_dualcache.abstraction import CacheAbstraction
from pytest_dualcache.env import DualCacheEnv, is_do_cache_enabled
from pytest_dualcache.route_marker import RouteView


class FlagOnlyMarkerCache(CacheAbstraction):
    """The reference that trusts the flag over the marker's recorded route."""

    def read_route_marker(self) -> RouteView | None:
        marker = super().read_route_marker()
        if marker is None:
            return None
        # The flag is the one source of truth for the route: don't trust a stored copy of it.
        return replace(marker, route="do" if is_do_cache_enabled(self.env) else "kv")


def make_dal(env: DualCacheEnv) -> FlagOnlyMarkerCache:
    """The broken DAL on ``env``."""
    return FlagOnlyMarkerCache(env)
