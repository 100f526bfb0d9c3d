"""The Worker's data-access layer: the ``DualCacheDO`` first, KV behind the feature flag.

``CacheDAL`` reaches the cache through the Durable Object's stub,
``env.CACHE_DO.get(env.CACHE_DO.idFromName("cache"))``, and falls back to the ``CACHE_KV``
namespace when ``FEATURE_FLAG_DO_CACHE`` is not ``"true"`` or the object fails. The routing
(the flag read per call, fallback copies, a route marker against stale reads across flips)
is the reference ``AsyncCacheAbstraction`` of pytest-dualcache, driven here over the stub, so
the contract suite checks the Durable Object class itself, not a second copy of that logic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

from pytest_dualcache.abstraction import AsyncCacheAbstraction

#: The one cache object every isolate of the Worker shares.
CACHE_OBJECT = "cache"


class DualCacheStub:
    """The ``DualCacheDO`` named ``CACHE_OBJECT``, as the cache client the DAL's logic calls
    (``set(key, value, ttl=...)``, ``get``, ``delete``, ``list``): each is one RPC call."""

    def __init__(self, namespace: Any) -> None:
        self.stub = namespace.get(namespace.idFromName(CACHE_OBJECT))

    def set(
        self, key: str, value: Any, options: Mapping[str, Any] | None = None, **keywords: Any
    ) -> Awaitable[None]:
        ttl = {**(options or {}), **keywords}["ttl"]
        return self.stub.set(key, value, ttl)

    def get(self, key: str, options: Mapping[str, Any] | None = None) -> Awaitable[Any]:
        return self.stub.get(key)

    def delete(self, key: str, options: Mapping[str, Any] | None = None) -> Awaitable[bool]:
        return self.stub.delete(key)

    def list(self, prefix: str | None = None) -> Awaitable[list[str]]:
        return self.stub.list(prefix)


class _WorkerEnv:
    """The Worker's ``env`` with ``CACHE_DO`` seen through ``DualCacheStub``."""

    def __init__(self, env: Any) -> None:
        self._env = env
        self.CACHE_DO = DualCacheStub(env.CACHE_DO)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_env"], name)


class CacheDAL(AsyncCacheAbstraction):
    """put/get/delete of JSON values with TTLs, on the Durable Object or, flag off, on KV
    (``await dal.put(key, value, ttl=60)``, ``await dal.get(key)``, ``await dal.delete(key)``).
    """

    def __init__(self, env: Any, *, local_cache_ttl: float = 0.0) -> None:
        super().__init__(_WorkerEnv(env), default_ttl=3600, local_cache_ttl=local_cache_ttl)


def make_dal(env: Any) -> CacheDAL:
    """The contract suite's factory: the DAL on the Worker's view of ``env``, whose
    ``CACHE_DO`` is the ``DualCacheDO`` namespace of wrangler.toml."""
    return CacheDAL(env.workers())
