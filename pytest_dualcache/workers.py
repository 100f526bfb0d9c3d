"""The Python Workers face: async bindings with the JavaScript names, over the same engines.

Cloudflare Python Workers call the JS binding directly (``await env.KV.put(key, value,
expirationTtl=60)``, ``getWithMetadata``, ``list(prefix=..., cursor=...)``). These classes
only translate names and options, then call the synchronous ``KVNamespace`` and
``DurableObjectCache``: every limit, expiry and ledger entry comes from those.
Options may be given as keywords or as one JS-style options dict.

Each binding method is a plain function that notes its caller when called and returns the
coroutine doing the work (``handoff.scheduled``): a task a DAL creates from it
(``asyncio.create_task(env.CACHE_KV.put(...))``) is still attributed to the DAL.
"""

from __future__ import annotations

import math
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .durable import DurableObjectCache
from .handoff import scheduled
from .jsvalues import js_number, js_number_text
from .kv import KVListResult, KVNamespace, KVValueWithMetadata
from .kv_errors import KVValidationError, kv_error
from .ledger import capture_caller
from .limits import KV_MIN_CACHE_TTL_S

if TYPE_CHECKING:
    from .env import DualCacheEnv

_JS_GET_TYPES = {"text": "text", "json": "json", "arrayBuffer": "bytes", "bytes": "bytes"}
_T = TypeVar("_T")
Awaitable = Coroutine[Any, Any, _T]


def _later(write: bool, work: Any, *args: Any) -> Coroutine[Any, Any, Any]:
    """The coroutine of a binding call: ``work(*args)`` attributed to the binding's caller.

    ``write`` marks a KV write, whose caller is classified (its DAL module) for bypasses.
    """
    return scheduled(capture_caller(classify=write, stacklevel=3), work, *args)


def _options(options: Mapping[str, Any] | str | None, keywords: dict[str, Any]) -> dict[str, Any]:
    """Merge a JS options argument (dict, or a bare type string for get) with keywords."""
    merged: dict[str, Any] = {}
    if isinstance(options, str):
        merged["type"] = options
    elif options is not None:
        merged.update(options)
    merged.update({name: value for name, value in keywords.items() if value is not None})
    return merged


def _get_type(options: dict[str, Any]) -> str:
    """The sync face's type for a read's options, after checking ``cacheTtl`` as KV does."""
    unknown = set(options) - {"type", "cacheTtl"}
    if unknown:
        raise TypeError(f"KV get() got unknown options {sorted(unknown)}")
    cache_ttl = options.get("cacheTtl")
    if cache_ttl is not None:
        number = js_number(cache_ttl)
        if math.isnan(number) or number < KV_MIN_CACHE_TTL_S:
            raise kv_error(
                KVValidationError,
                "GET",
                "cache_ttl_too_small",
                raw=js_number_text(cache_ttl),
                limit=KV_MIN_CACHE_TTL_S,
            )
    js_type = options.get("type", "text")
    try:
        return _JS_GET_TYPES[js_type]
    except KeyError:
        raise ValueError(
            f'Unknown response type {js_type!r}. Possible types are "text", "arrayBuffer" '
            'and "json".'
        ) from None


class WorkersKV:
    """A KV binding as a Python Worker sees it; ``cacheTtl`` is checked (>= 30) and ignored."""

    __slots__ = ("namespace",)

    def __init__(self, namespace: KVNamespace) -> None:
        self.namespace = namespace

    def get(
        self, key: str, options: Mapping[str, Any] | str | None = None, **keywords: Any
    ) -> Awaitable[Any]:
        """``await env.KV.get(key, type="json")`` or ``get(key, "json")``."""
        return _later(False, self._get, key, options, keywords)

    def getWithMetadata(
        self, key: str, options: Mapping[str, Any] | str | None = None, **keywords: Any
    ) -> Awaitable[KVValueWithMetadata]:
        """``await env.KV.getWithMetadata(key)``: ``.value`` and ``.metadata``."""
        return _later(False, self._get_with_metadata, key, options, keywords)

    def put(
        self,
        key: str,
        value: str | bytes,
        options: Mapping[str, Any] | None = None,
        **keywords: Any,
    ) -> Awaitable[None]:
        """``await env.KV.put(key, value, expirationTtl=60, metadata={...})``."""
        return _later(True, self._put, key, value, options, keywords)

    def delete(self, key: str) -> Awaitable[None]:
        """``await env.KV.delete(key)``."""
        return _later(True, self.namespace.delete, key)

    def list(
        self, options: Mapping[str, Any] | None = None, **keywords: Any
    ) -> Awaitable[KVListResult]:
        """``await env.KV.list(prefix=..., limit=..., cursor=...)``: keys, list_complete, cursor."""
        return _later(False, self._list, options, keywords)

    def _get(self, key: str, options: Mapping[str, Any] | str | None, keywords: dict) -> Any:
        return self.namespace.get(key, _get_type(_options(options, keywords)))  # type: ignore[arg-type]

    def _get_with_metadata(
        self, key: str, options: Mapping[str, Any] | str | None, keywords: dict[str, Any]
    ) -> KVValueWithMetadata:
        return self.namespace.get_with_metadata(key, _get_type(_options(options, keywords)))  # type: ignore[arg-type]

    def _put(
        self,
        key: str,
        value: str | bytes,
        options: Mapping[str, Any] | None,
        keywords: dict[str, Any],
    ) -> None:
        merged = _options(options, keywords)
        unknown = set(merged) - {"expiration", "expirationTtl", "metadata"}
        if unknown:
            raise TypeError(f"KV put() got unknown options {sorted(unknown)}")
        self.namespace.put(
            key,
            value,
            expiration=merged.get("expiration"),
            expiration_ttl=merged.get("expirationTtl"),
            metadata=merged.get("metadata"),
        )

    def _list(self, options: Mapping[str, Any] | None, keywords: dict[str, Any]) -> KVListResult:
        merged = _options(options, keywords)
        unknown = set(merged) - {"prefix", "limit", "cursor"}
        if unknown:
            raise TypeError(f"KV list() got unknown options {sorted(unknown)}")
        return self.namespace.list(**merged)


class WorkersDurableObjectCache:
    """The DO cache client (the seed's ``DualCacheDO``) with async methods and JS options."""

    __slots__ = ("cache",)

    def __init__(self, cache: DurableObjectCache) -> None:
        self.cache = cache

    def get(
        self, key: str, options: Mapping[str, Any] | None = None, **keywords: Any
    ) -> Awaitable[Any]:
        """``await env.CACHE_DO.get(key)``; the seed's ``{ttl}`` option is accepted and ignored."""
        return _later(False, self.cache.get, key)

    def set(
        self, key: str, value: object, options: Mapping[str, Any] | None = None, **keywords: Any
    ) -> Awaitable[None]:
        """``await env.CACHE_DO.set(key, value, ttl=3600)``, or with ``{"ttl": 3600}``."""
        return _later(False, self._set, key, value, options, keywords)

    def delete(
        self, key: str, options: Mapping[str, Any] | None = None, **keywords: Any
    ) -> Awaitable[bool]:
        """``await env.CACHE_DO.delete(key)``; True if a live entry was removed."""
        return _later(False, self.cache.delete, key)

    def list(self, prefix: str | None = None) -> Awaitable[list[str]]:
        """Live keys, sorted, optionally under ``prefix``."""
        return _later(False, self.cache.list, prefix)

    def _set(
        self,
        key: str,
        value: object,
        options: Mapping[str, Any] | None,
        keywords: dict[str, Any],
    ) -> None:
        merged = _options(options, keywords)
        if "ttl" not in merged:
            raise TypeError("DO cache set() needs a ttl option, e.g. set(key, value, ttl=3600)")
        self.cache.set(key, value, ttl=merged["ttl"])

    async def stats(self) -> Any:
        """Hit/miss counters and size, as ``DurableObjectCache.stats()``."""
        return self.cache.stats()


class WorkersEnv:
    """A ``DualCacheEnv`` as a Python Worker's ``env``: async bindings, string vars."""

    def __init__(self, env: DualCacheEnv) -> None:
        self.dualcache_env = env
        self.binding_names = env.binding_names
        self._faces: dict[str, object] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        env = self.__dict__["dualcache_env"]
        faces = self.__dict__["_faces"]
        if name in env.bindings:
            if name not in faces:
                faces[name] = _face(env.bindings[name])
            return faces[name]
        if name in env.vars:
            return env.vars[name]
        raise AttributeError(f"env has no binding or var named {name!r}")

    def __repr__(self) -> str:
        return f"<WorkersEnv bindings={sorted(self.dualcache_env.bindings)}>"


def _face(binding: object) -> object:
    if isinstance(binding, KVNamespace):
        return WorkersKV(binding)
    if isinstance(binding, DurableObjectCache):
        return WorkersDurableObjectCache(binding)
    return binding
