"""The route marker's stored route is replaced by the flag's, so a flip never bumps the generation.

The seed had no generation or epoch at all: after on-off-on the DO copy written before the
off period is served again. Breaks FLIP-2 (and FLIP-4: fresh instances read it too).
"""

from __future__ import annotations

from dataclasses import replace

from pytest_dualcache.abstraction import CacheAbstraction, _RouteView
from pytest_dualcache.env import DualCacheEnv, is_do_cache_enabled


class FlagOnlyMarkerCache(CacheAbstraction):
    """The reference that trusts the flag over the marker's recorded route."""

    def _read_marker(self) -> _RouteView | None:
        marker = super()._read_marker()
        if marker is None:
            return None
        # The flag is the one source of truth for the route: don't trust a stored copy of it.
        return replace(marker, route="do" if is_do_cache_enabled(self.env) else "kv")


def make_dal(env: DualCacheEnv) -> FlagOnlyMarkerCache:
    """The broken DAL on ``env``."""
    return FlagOnlyMarkerCache(env)
