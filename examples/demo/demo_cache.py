"""The demo's cache layer: the seed's routing rule in a few lines.

It is registered as a data-access module (``dualcache_dal_modules`` in pyproject.toml), so
its KV writes count as going through the cache layer under ``--dualcache``.
"""

import json

from pytest_dualcache import is_do_cache_enabled


def cache_put(env, key, value, ttl=3600):
    """DO when the flag is on, KV (plain JSON text) otherwise."""
    if is_do_cache_enabled(env):
        env.do.set(key, value, ttl=ttl)
    else:
        env.kv.put(key, json.dumps(value), expiration_ttl=max(ttl, 60))


def cache_get(env, key):
    """The value from the route the flag picks, or None."""
    if is_do_cache_enabled(env):
        return env.do.get(key)
    text = env.kv.get(key)
    return None if text is None else json.loads(text)


async def save_daily_report(workers_env, report):
    """Python Workers code: the JS binding's names, awaited."""
    await workers_env.CACHE_KV.put("report:daily", json.dumps(report), expirationTtl=7 * 86400)
    return await workers_env.CACHE_KV.get("report:daily", type="json")
