"""Each stored JSON text is parsed once, and every get of it hands out that same object.

From the seed's ``dal.ts`` local cache, ported as "parse once, not on every hit": a caller
mutating what get returned changes what the next get returns. Breaks SER-3.
"""

from __future__ import annotations

from typing import Any

from pytest_dualcache.abstraction import CacheAbstraction
from pytest_dualcache.env import DualCacheEnv


class ParseOnceCache(CacheAbstraction):
    """The reference that memoizes decoded values by their JSON text."""

    def __init__(self, env: DualCacheEnv, **options: Any) -> None:
        super().__init__(env, **options)
        self.parsed: dict[str, Any] = {}

    def decode(self, text: str) -> Any:
        if text not in self.parsed:
            self.parsed[text] = super().decode(text)
        return self.parsed[text]


def make_dal(env: DualCacheEnv) -> ParseOnceCache:
    """The broken DAL on ``env``."""
    return ParseOnceCache(env)
