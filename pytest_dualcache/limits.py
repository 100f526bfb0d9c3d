"""Every Cloudflare figure the emulators enforce, once, with its source.

Workers KV figures: https://developers.cloudflare.com/kv/platform/limits/ and
https://developers.cloudflare.com/kv/platform/pricing/ (free plan daily quotas), checked
against what Miniflare (workers-sdk ``packages/miniflare/src/workers/kv``) reports.
Durable Object figures: https://developers.cloudflare.com/durable-objects/platform/limits/
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

# --- Workers KV -------------------------------------------------------------------------

#: Key size: 512 bytes of UTF-8 (docs "Key size 512 bytes"; Miniflare MAX_KEY_SIZE).
KV_MAX_KEY_BYTES: Final = 512
#: Value size: 25 MiB (docs "Value size 25 MiB"; Miniflare MAX_VALUE_SIZE = 25 * 1024 * 1024).
KV_MAX_VALUE_BYTES: Final = 25 * 1024 * 1024
#: Metadata: 1,024 bytes of serialized JSON (docs "Key metadata 1024 bytes").
KV_MAX_METADATA_BYTES: Final = 1024
#: expirationTtl and expiration must be at least 60 s ahead (docs "Expiring keys").
KV_MIN_EXPIRATION_TTL_S: Final = 60
#: The largest expirationTtl: 2**31 - 1 s (about 68 years). The docs name no maximum, but the
#: Workers binding takes expirationTtl as a 32-bit int (workerd src/workerd/api/kv.h,
#: ``PutOptions { jsg::Optional<int> expirationTtl; }``) and throws a TypeError above it
#: (kv.py's ``js_int32_option``, ``KV_BINDING_MESSAGES["int32_range"]``). The absolute
#: expiry it makes, now + ttl (about 3.9e9 s since the epoch), is a plain number to KV and to
#: a Durable Object, which takes any finite ttl: so it is the largest TTL both stores carry.
KV_MAX_EXPIRATION_TTL_S: Final = 2**31 - 1
#: cacheTtl on reads: at least 30 s (docs "Minimum cacheTtl 30 seconds"; Miniflare agrees).
KV_MIN_CACHE_TTL_S: Final = 30
#: list() returns at most 1,000 keys per page (docs "list() method"; Miniflare MAX_LIST_KEYS).
KV_MAX_LIST_LIMIT: Final = 1000
#: Writes to the same key: 1 per second, on every plan (docs "Writes to same key 1 per second").
KV_SAME_KEY_WRITE_INTERVAL_S: Final = 1.0
#: KV quotas reset at 00:00 UTC (docs "Pricing": daily limits reset at 00:00 UTC).
SECONDS_PER_DAY: Final = 86_400

KVPlan = Literal["free", "paid", "unlimited"]
KVOperation = Literal["read", "write", "delete", "list"]


class KVOperationKind(NamedTuple):
    """One KV operation as every part of the plugin names it."""

    #: The binding method, the ledger's op and the quota message's name: ``get``, ``put``...
    method: str
    #: Its daily quota in ``KV_DAILY_QUOTAS``: ``read``, ``write``, ``delete``, ``list``.
    quota: KVOperation
    #: Its ``kv_budget`` kind and its report column: ``reads``, ``writes``...
    counted_as: str


#: The one table of KV operations, by ledger op; the quota, the budget and the report read it.
KV_OPERATIONS: Final = {
    kind.method: kind
    for kind in (
        KVOperationKind("get", "read", "reads"),
        KVOperationKind("put", "write", "writes"),
        KVOperationKind("delete", "delete", "deletes"),
        KVOperationKind("list", "list", "lists"),
    )
}

#: Daily operation quotas by plan. ``free``: 100,000 reads, 1,000 writes, 1,000 deletes and
#: 1,000 lists a day (docs "Limits" and "Pricing", Free column). ``paid``: no daily cap (the
#: paid plan bills beyond its monthly inclusions instead). ``unlimited`` is ours: no quota and
#: no per-key rate limit, for users who only want the recording.
KV_DAILY_QUOTAS: Final[dict[str, dict[str, int] | None]] = {
    "free": {"read": 100_000, "write": 1_000, "delete": 1_000, "list": 1_000},
    "paid": None,
    "unlimited": None,
}
KV_PLANS: Final = tuple(KV_DAILY_QUOTAS)

# --- Durable Objects --------------------------------------------------------------------

#: Storage key size: 2,048 bytes (docs "Key size 2 KiB" for KV-backed Durable Objects).
DO_MAX_KEY_BYTES: Final = 2048
#: Storage value size: 128 KiB = 131,072 bytes (docs "Value size 128 KiB", KV-backed storage).
DO_MAX_VALUE_BYTES: Final = 128 * 1024
#: Soft limit of requests per second to one Durable Object (docs "Soft limit of 1,000 rps").
DO_SOFT_REQUESTS_PER_S: Final = 1000

# --- Error texts ------------------------------------------------------------------------
# Status codes and wording as workerd and Miniflare give them; one table so the emulators
# and the conformance tests agree. ``{op}`` is the upper-case operation (PUT, GET, ...).

KV_FAILED_PREFIX: Final = "KV {op} failed: {status} "
KV_MESSAGES: Final = {
    "key_length": (
        414,
        "UTF-8 encoded length of {length} exceeds key length limit of {limit}.",
    ),
    "value_length": (413, "Value length of {length} exceeds limit of {limit}."),
    "metadata_length": (413, "Metadata length of {length} exceeds limit of {limit}."),
    "ttl_not_positive": (
        400,
        "Invalid expiration_ttl of {raw}. Please specify integer greater than 0.",
    ),
    "ttl_too_small": (
        400,
        "Invalid expiration_ttl of {raw}. Expiration TTL must be at least {limit}.",
    ),
    "expiration_past": (
        400,
        "Invalid expiration of {raw}. Please specify integer greater than the current "
        "number of seconds since the UNIX epoch.",
    ),
    "expiration_too_soon": (
        400,
        "Invalid expiration of {raw}. Expiration times must be at least {limit} seconds "
        "in the future.",
    ),
    "list_limit_large": (
        400,
        "Invalid key_count_limit of {raw}. Please specify an integer less than {limit}.",
    ),
    "cache_ttl_too_small": (
        400,
        "Invalid cache_ttl of {raw}. Cache TTL must be at least {limit}.",
    ),
    "rate_limited": (429, "Too Many Requests"),
    # Ours, for injected faults (kv.fail()/outage()): what an unreachable KV answers.
    "unavailable": (503, "Service Unavailable"),
}
#: Refused by the Workers runtime's binding itself, before any request: a ``TypeError``
#: in JavaScript, a ``KVBindingError`` (a TypeError) here, without the "KV PUT failed" prefix.
KV_BINDING_MESSAGES: Final = {
    "key_empty": "Key name cannot be empty.",
    "key_dot": '"{key}" is not allowed as a key name.',
    "int32_range": "Value out of range. Must be between -2147483648 and 2147483647 (inclusive).",
}
#: Daily quota exhaustion, as the Workers runtime words it ("KV put() limit exceeded for
#: the day."); the status is the 429 Cloudflare answers with.
KV_QUOTA_MESSAGE: Final = "KV {method}() limit exceeded for the day."
KV_QUOTA_STATUS: Final = 429

DO_MESSAGES: Final = {
    "overloaded": "Durable Object is overloaded. Too many requests queued.",
    "timeout": (
        "Durable Object storage operation exceeded timeout which caused object to be reset."
    ),
    "key_length": "Keys cannot be larger than {limit} bytes. A key of size {length} was provided.",
    "value_length": (
        "Values cannot be larger than {limit} bytes. A value of size {length} was provided."
    ),
}
