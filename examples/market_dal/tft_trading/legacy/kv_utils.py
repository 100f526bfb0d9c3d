"""The seed's KV utilities (``kv-utils.ts``): JSON in and out of MARKET_ANALYSIS_CACHE, directly.

Before the migration the data module cached market data through ``put_with_ttl``, so every
call is a KV write that no cache layer sees: ``pytest --dualcache`` names this function as
a bypassing call site.
"""

from __future__ import annotations

import json
from typing import Any


def put_with_ttl(env: Any, key: str, value: object, ttl: int) -> None:
    """Store ``value`` as JSON in KV for ``ttl`` seconds."""
    env.MARKET_ANALYSIS_CACHE.put(key, json.dumps(value), expiration_ttl=ttl)


def get_json(env: Any, key: str) -> Any:
    """The JSON value under ``key`` in KV, or None."""
    text = env.MARKET_ANALYSIS_CACHE.get(key)
    return None if text is None else json.loads(text)
