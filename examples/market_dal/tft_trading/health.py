"""The KV self-test behind the seed's health endpoints: it writes MARKET_ANALYSIS_CACHE directly.

It exists to check KV itself, so it bypasses the cache layer on purpose (the seed leaves
these endpoints unchanged). The example's ``dualcache_kv_allow`` allows exactly these two
functions; any other direct KV write under ``pytest --dualcache`` is a rejected bypass.
"""

from __future__ import annotations

import json
from typing import Any

from pytest_dualcache import KVError

SELF_TEST_KEY = "kv_self_test"
#: KV's shortest TTL: the probe cleans itself up.
SELF_TEST_TTL = 60


def kv_self_test(env: Any, probe: str) -> bool:
    """Write a probe to KV and read it back (``env``: the Worker env, sync bindings)."""
    value = json.dumps({"probe": probe})
    try:
        env.MARKET_ANALYSIS_CACHE.put(SELF_TEST_KEY, value, expiration_ttl=SELF_TEST_TTL)
        return env.MARKET_ANALYSIS_CACHE.get(SELF_TEST_KEY) == value
    except KVError:
        return False


async def worker_kv_self_test(env: Any, probe: str) -> bool:
    """The same probe as Python Workers code: ``await`` and the JS binding's option names."""
    value = json.dumps({"probe": probe})
    try:
        await env.MARKET_ANALYSIS_CACHE.put(SELF_TEST_KEY, value, expirationTtl=SELF_TEST_TTL)
        return await env.MARKET_ANALYSIS_CACHE.get(SELF_TEST_KEY) == value
    except KVError:
        return False
