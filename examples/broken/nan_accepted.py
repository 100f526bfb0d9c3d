"""Values are checked with ``json.dumps``, whose default ``allow_nan=True`` lets NaN and inf in.

Seen in the seed project's history (where ``JSON.stringify`` quietly turns NaN into null):
KV then holds ``NaN``, which no JSON reader accepts, and a DO refusal falls back to KV the
same way. Breaks SER-2 (a non-JSON value is a clear error and writes nothing).
"""

from __future__ import annotations

import json

from pytest_dualcache.abstraction import CacheInputError
from pytest_dualcache.env import DualCacheEnv

from ._seed import SeedCache


class LenientJSONCache(SeedCache):
    """``SeedCache`` whose only value check is ``json.dumps`` with its defaults."""

    def _encode(self, value: object) -> str:
        try:
            return json.dumps(value)
        except TypeError as exc:
            raise CacheInputError(f"not JSON: {exc}") from None


def make_dal(env: DualCacheEnv) -> LenientJSONCache:
    """The broken DAL on ``env``."""
    return LenientJSONCache(env)
