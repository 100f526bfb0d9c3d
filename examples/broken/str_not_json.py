"""KV values are written with ``str(value)`` (a Python repr) instead of JSON; reads ``json.loads``.

Seen in the seed project's history: KV wants a string, and a port wrote ``str(value)`` where
the seed wrote ``JSON.stringify(value)``. ``{'a': True}`` is not JSON and ``"1"`` comes back
as ``1``. Breaks SER-1 on the KV route (and SER-5: legacy readers get no JSON).
"""

from __future__ import annotations

from pytest_dualcache.cache_input import json_text
from pytest_dualcache.env import DualCacheEnv

from ._seed import SeedCache


class StrEncodingCache(SeedCache):
    """``SeedCache`` that checks the value is JSON, then writes its ``str``."""

    def _encode(self, value: object) -> str:
        json_text(value)  # refuse what JSON cannot hold
        return str(value)


def make_dal(env: DualCacheEnv) -> StrEncodingCache:
    """The broken DAL on ``env``."""
    return StrEncodingCache(env)
