"""``AsyncCacheAbstraction``: the reference ``CacheAbstraction`` with ``async`` methods.

One logic, two faces: the async face runs the very same ``CacheAbstraction`` over adapters
(``_Awaited*``) that make a Workers env look like the synchronous stores, so there is no
second copy of the cache's logic to drift.
"""

from __future__ import annotations

from typing import Any

from .abstraction import CacheAbstraction, CacheStats, WriteResult
from .env import DualCacheEnv

__all__ = ["AsyncCacheAbstraction"]


class AsyncCacheAbstraction:
    """``CacheAbstraction`` with ``async`` methods, for Python Workers code.

    One logic, two faces: it runs ``CacheAbstraction`` over the env's *Workers* bindings (the
    JS names and options a Worker awaits: ``put(key, value, expirationTtl=...)``,
    ``getWithMetadata``, ``CACHE_DO.set(key, value, ttl=...)``), completing each awaited
    call at once, which the emulated bindings always allow. ``env`` is a ``WorkersEnv``
    (``env.workers()``) or a ``DualCacheEnv``, whose Workers face is then used.
    """

    def __init__(self, env: Any, **options: Any) -> None:
        workers = env.workers() if isinstance(env, DualCacheEnv) else env
        self.sync = CacheAbstraction(_AwaitedBindings(workers), **options)  # type: ignore[arg-type]
        self.default_ttl = self.sync.default_ttl
        self.local_cache_ttl = self.sync.local_cache_ttl

    async def put(self, key: str, value: object, *, ttl: int | None = None) -> WriteResult:
        """See ``CacheAbstraction.put``."""
        return self.sync.put(key, value, ttl=ttl)

    async def get(self, key: str) -> Any:
        """See ``CacheAbstraction.get``."""
        return self.sync.get(key)

    async def delete(self, key: str) -> WriteResult:
        """See ``CacheAbstraction.delete``."""
        return self.sync.delete(key)

    async def list(self, prefix: str | None = None) -> list[str]:
        """See ``CacheAbstraction.list``."""
        return self.sync.list(prefix)

    async def stats(self) -> CacheStats:
        """See ``CacheAbstraction.stats``."""
        return self.sync.stats()


class _AwaitedBindings:
    """A Workers env seen as the synchronous stores ``CacheAbstraction`` drives.

    Each store call goes to the Worker binding by its JS name and options and is awaited to
    completion on the spot: the emulated bindings never suspend (a real Worker's would, which
    is why this lives in a test plugin and not in a Worker).
    """

    def __init__(self, workers: Any) -> None:
        names = workers.binding_names
        self.binding_names = names
        self.clock = workers.dualcache_env.clock  # a Worker reads Date.now(): ours is virtual
        self.kv = _AwaitedKV(getattr(workers, names.kv))
        do = getattr(workers, names.do, None)
        self.do = None if do is None else _AwaitedDO(do)
        self._workers = workers

    def __getattr__(self, name: str) -> Any:  # vars and bindings, for is_do_cache_enabled
        return getattr(self.__dict__["_workers"], name)


def _completed(awaitable: Any) -> Any:
    """The result of an awaitable that finishes without suspending (an emulated binding)."""
    try:
        awaitable.send(None)
    except StopIteration as done:
        return done.value
    awaitable.close()
    raise RuntimeError("a Workers binding suspended: only the emulated bindings are supported")


class _AwaitedKV:
    """``KVNamespace``'s calls, made on a Workers KV binding."""

    def __init__(self, binding: Any) -> None:
        self.binding = binding

    def get(self, key: str) -> Any:
        return _completed(self.binding.get(key))

    def get_with_metadata(self, key: str) -> Any:
        return _completed(self.binding.getWithMetadata(key))

    def put(
        self, key: str, value: str, *, expiration_ttl: int | None = None, metadata: Any = None
    ) -> None:
        _completed(self.binding.put(key, value, expirationTtl=expiration_ttl, metadata=metadata))

    def delete(self, key: str) -> None:
        _completed(self.binding.delete(key))

    def list(self, *, prefix: str | None = None, cursor: str | None = None) -> Any:
        return _completed(self.binding.list(prefix=prefix, cursor=cursor))


class _AwaitedDO:
    """``DurableObjectCache``'s calls, made on the Workers DO cache binding."""

    def __init__(self, binding: Any) -> None:
        self.binding = binding

    def set(self, key: str, value: object, *, ttl: float) -> None:
        _completed(self.binding.set(key, value, ttl=ttl))

    def get(self, key: str) -> Any:
        return _completed(self.binding.get(key))

    def delete(self, key: str) -> bool:
        return bool(_completed(self.binding.delete(key)))

    def list(self, prefix: str | None = None) -> list[str]:
        return list(_completed(self.binding.list(prefix)))
