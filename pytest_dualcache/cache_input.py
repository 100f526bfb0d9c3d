"""What a caller may hand the reference cache: keys, ttls and values, checked up front.

The same rules hold on both routes, so a flag flip never strands a value: a key Workers KV
accepts (and not under the cache's reserved prefix), a whole number of seconds KV can set
as a ttl, and a value whose strict JSON fits in a Durable Object value with room left for
the record around it. A mistake raises ``CacheInputError`` before any store is touched.

The checks are public so that other data layers (``examples/broken/_seed.py``) refuse
input exactly as the reference does.
"""

from __future__ import annotations

import json

from .jsondata import COMPACT, NotJSONData, strict_json_text
from .kv import utf8_length
from .limits import DO_MAX_VALUE_BYTES, KV_MAX_KEY_BYTES
from .limits import KV_MAX_EXPIRATION_TTL_S as MAX_TTL_S  # the largest ttl, on both routes

__all__ = [
    "MAX_TTL_S",
    "MAX_VALUE_BYTES",
    "RECORD_OVERHEAD_BYTES",
    "RESERVED_PREFIX",
    "CacheInputError",
    "check_key",
    "checked_ttl",
    "compact_json",
    "json_text",
]

#: Keys under this prefix belong to the abstraction's own bookkeeping; callers can't use them.
RESERVED_PREFIX = "\x00dualcache:"
#: Room kept in a DO value for the record around the cached value (generation, stamp, expiry).
RECORD_OVERHEAD_BYTES = 128
#: The largest value (as JSON) the abstraction accepts, on either route.
MAX_VALUE_BYTES = DO_MAX_VALUE_BYTES - RECORD_OVERHEAD_BYTES


class CacheInputError(ValueError):
    """A caller mistake (bad key, ttl or value): raised at once, with both stores untouched."""


def check_key(key: object) -> None:
    """Raise ``CacheInputError`` unless ``key`` is a cache key both stores accept."""
    if not isinstance(key, str) or not key:
        raise CacheInputError(f"cache keys must be non-empty str, got {key!r}")
    if key in (".", ".."):
        raise CacheInputError(f'cache key {key!r} is not allowed (KV refuses "." and "..")')
    length = utf8_length(key)
    if length > KV_MAX_KEY_BYTES:
        raise CacheInputError(
            f"cache key is {length} UTF-8 bytes; KV's limit is {KV_MAX_KEY_BYTES}"
        )
    if key.startswith(RESERVED_PREFIX):
        raise CacheInputError(f"keys starting with {RESERVED_PREFIX!r} are reserved")


def checked_ttl(ttl: object, name: str = "ttl") -> int:  # pragma: no mutate (text)
    """``ttl`` if it is a positive int of seconds, at most ``MAX_TTL_S``; else CacheInputError."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL_S:
        raise CacheInputError(f"{name} must be a positive int, at most {MAX_TTL_S} s, got {ttl!r}")
    return ttl


def compact_json(value: object) -> str:
    """``value`` as compact JSON text, non-ASCII kept as is (what KV stores)."""
    return json.dumps(value, ensure_ascii=False, separators=COMPACT)


def json_text(value: object) -> str:
    """``value`` as the compact JSON text the cache stores, or CacheInputError saying why not."""
    try:
        text = strict_json_text(value)
    except NotJSONData as exc:
        raise CacheInputError(f"not storable as strict JSON: {exc}") from None
    size = utf8_length(text)
    if size > MAX_VALUE_BYTES:
        raise CacheInputError(
            f"value is {size} bytes of JSON; this cache stores at most {MAX_VALUE_BYTES} "
            f"(a Durable Object value holds {DO_MAX_VALUE_BYTES} bytes, less "
            f"{RECORD_OVERHEAD_BYTES} for the record around it), on both routes so that a "
            "flip never strands a value"
        )
    return text
