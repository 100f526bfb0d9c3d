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

# --- Cloudflare's REST API for Workers KV --------------------------------------------------
# What a service outside Workers meets when it writes KV over HTTPS (``pytest_dualcache.rest``).
# Endpoints: https://developers.cloudflare.com/api/resources/kv/ (namespaces, values,
# metadata, keys, bulk). Statuses and codes marked "observed" come from responses quoted in
# public code and issues, not from a Cloudflare page; "unconfirmed" ones are our choice.

#: Where the API lives; the official SDKs' default base URL.
REST_API_HOST: Final = "api.cloudflare.com"
REST_API_BASE_PATH: Final = "/client/v4"
#: Bulk write: up to 10,000 pairs, the whole request under 100 megabytes (docs "Write
#: key-value pairs", https://developers.cloudflare.com/kv/api/write-key-value-pairs/ "Write
#: data in bulk"). The page says megabytes, not MiB: we take 100,000,000 bytes.
REST_BULK_WRITE_MAX_PAIRS: Final = 10_000
REST_BULK_MAX_REQUEST_BYTES: Final = 100_000_000
#: Bulk delete: up to 10,000 keys (API reference, namespaces ``bulk_delete``).
REST_BULK_DELETE_MAX_KEYS: Final = 10_000
#: Bulk get: up to 100 keys, text values only (API reference, namespaces ``bulk_get``:
#: "Retrieve up to 100 KV pairs").
REST_BULK_GET_MAX_KEYS: Final = 100
#: Namespaces list: 20 a page unless ``per_page`` says otherwise (API reference, namespaces
#: ``list``; the default page size is the v4 API's usual 20, unconfirmed for this endpoint).
REST_NAMESPACES_PER_PAGE: Final = 20
#: The API's own rate limit: 1,200 requests per five minutes per user (token), cumulative
#: across dashboard, key and token; past it "all API calls for the next five minutes will be
#: blocked, receiving a HTTP 429" with a ``retry-after`` header
#: (https://developers.cloudflare.com/fundamentals/api/reference/limits/). The KV FAQ
#: (https://developers.cloudflare.com/kv/reference/faq/) gives the same figure as the REST
#: write rate; KV's per-key rate and daily quotas apply underneath (see above).
REST_RATE_LIMIT_REQUESTS: Final = 1200
REST_RATE_LIMIT_WINDOW_S: Final = 300
#: A bulk write is billed one write per pair (docs "Pricing" FAQ, "When writing via KV's REST
#: API, how are writes charged?": "Each key-value pair in the PUT request is counted as a
#: single write"); the emulator records one ``put`` per pair, so budgets see the same.


class RESTError(NamedTuple):
    """One error the API answers with: HTTP status, error code, message."""

    status: int
    code: int
    message: str


#: The API's errors by our name. Sources:
#: - ``auth_missing`` 400/9106: observed ("Missing X-Auth-Key, X-Auth-Email or Authorization
#:   headers", HTTP 400, quoted from live calls in several public projects).
#: - ``headers_invalid`` 400/6003 with an ``error_chain`` entry (6111 Authorization, 6103
#:   X-Auth-Key, 6102 X-Auth-Email): observed (cloudflare/cloudflare-go#643,
#:   cloudflare/cloudflare-typescript#161, jeessy2/ddns-go#658).
#: - ``auth_error`` 403/10000 "Authentication error": observed for a valid-looking token that
#:   may not use the account (also seen answered as 401 by other products' endpoints).
#: - ``auth_key_unknown`` 9103 "Unknown X-Auth-Key or X-Auth-Email": observed code and text;
#:   its status 400 is unconfirmed (public test doubles use 400).
#: - ``key_not_found`` 404/10009 "get: 'key not found'": observed; wrangler names 10009 the
#:   key error (cloudflare/wrangler-legacy src/commands/kv/mod.rs ``help``).
#: - ``namespace_not_found`` 404/10013 "namespace not found": code and text observed
#:   (wrangler-legacy#454 prints "Error 10013: namespace not found"); status 404 unconfirmed.
#: - ``rate_limited`` 429/971 "Please wait and consider throttling your request speed":
#:   observed for the API rate limit above.
#: - ``no_route`` 404/7003: code and text unconfirmed (the v4 API's usual answer to an
#:   unknown path or identifier).
#: - ``bad_request`` 400/10025: unconfirmed; our code for a body or option the API cannot
#:   read, the same as KV's own 400s below (not 10026, which wrangler files under account
#:   errors).
REST_ERRORS: Final = {
    "auth_missing": RESTError(
        400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers"
    ),
    "headers_invalid": RESTError(400, 6003, "Invalid request headers"),
    "auth_error": RESTError(403, 10000, "Authentication error"),
    "auth_key_unknown": RESTError(400, 9103, "Unknown X-Auth-Key or X-Auth-Email"),
    "key_not_found": RESTError(404, 10009, "get: 'key not found'"),
    "namespace_not_found": RESTError(404, 10013, "namespace not found"),
    "rate_limited": RESTError(429, 971, "Please wait and consider throttling your request speed"),
    "no_route": RESTError(
        404, 7003, "Could not route to {path}, perhaps your object identifier is invalid?"
    ),
    "bad_request": RESTError(400, 10025, "{detail}"),
}
#: The ``error_chain`` code under ``headers_invalid``, by header (observed, as above).
REST_HEADER_FORMAT_CODES: Final = {
    "Authorization": 6111,
    "X-Auth-Key": 6103,
    "X-Auth-Email": 6102,
}
#: The error code the API gives with a KV refusal, by HTTP status. The statuses and messages
#: are KV's own (``KV_MESSAGES``: the Workers binding shows exactly the API's answer after
#: "KV PUT failed: "). The codes are UNCONFIRMED: wrangler groups 10022, 10024 and 10030 as
#: "limit errors" (wrangler-legacy ``help``), so the size errors use that family; the rest
#: are ours. A client that branches on them should branch on the status.
REST_KV_ERROR_CODES: Final = {400: 10025, 413: 10024, 414: 10022, 429: 10049, 503: 10001}

# --- Durable Object storage of a user's class (the Python Workers runtime) -----------------
# What ``ctx.storage`` enforces in ``pytest_dualcache.runtime``, by the storage backend a
# class's wrangler migration declares: ``new_classes`` (key-value backed) or
# ``new_sqlite_classes`` (SQLite backed, Cloudflare's default for new classes). Figures:
# https://developers.cloudflare.com/durable-objects/platform/limits/ and the storage API,
# https://developers.cloudflare.com/durable-objects/api/sqlite-storage-api/ and
# https://developers.cloudflare.com/durable-objects/api/legacy-kv-storage-api/ ("Supports up
# to 128 keys at a time"). Messages: workerd src/workerd/io/actor-storage.c++ (sizes, batch),
# src/workerd/api/actor-state.c++ (put, list, setAlarm), src/workerd/io/worker.c++
# (``assertCanSetAlarm``), src/workerd/util/sqlite-kv.c++ (SQLITE_TOOBIG).

#: Keys in one ``get(keys)``, ``put(entries)`` or ``delete(keys)``: 128 (storage API pages;
#: workerd io/actor-storage.capnp ``maxKeys = 128``).
DO_STORAGE_MAX_BATCH_KEYS: Final = 128
#: workerd measures a value as its V8 serialization and lets it run 34 bytes over the
#: advertised 131,072 (the serialization header and type tags: io/actor-storage.h
#: ``ENFORCED_MAX_VALUE_SIZE = ADVERTISED_MAX_VALUE_SIZE + 34``).
DO_STORAGE_VALUE_SLACK_BYTES: Final = 34
#: SQLite backed: "Key and value combined cannot exceed 2 MB" (limits page, SQLite column),
#: taken as 2,000,000 bytes since Cloudflare counts storage in decimal units. UNCONFIRMED
#: which: workerd itself only enforces SQLite's 4 MiB string limit (util/sqlite.c++).
DO_SQLITE_MAX_KEY_VALUE_BYTES: Final = 2_000_000
#: Alarms that raise are retried "using exponential backoff starting at a 2 second delay
#: from the first failure with up to 6 retries allowed"
#: (https://developers.cloudflare.com/durable-objects/api/alarms/).
DO_ALARM_FIRST_RETRY_DELAY_S: Final = 2.0
DO_ALARM_MAX_RETRIES: Final = 6


class DOStorageLimits(NamedTuple):
    """What one storage backend refuses; None where it sets no such limit."""

    #: UTF-8 bytes of one key.
    max_key_bytes: int | None
    #: The advertised value size; the enforced one adds ``DO_STORAGE_VALUE_SLACK_BYTES``.
    max_value_bytes: int | None
    #: UTF-8 key bytes plus serialized value bytes, together.
    max_key_value_bytes: int | None
    #: Keys in one batch call.
    max_batch_keys: int


#: By the migration key that declares a class's backend.
DO_STORAGE_LIMITS: Final = {
    "new_classes": DOStorageLimits(
        DO_MAX_KEY_BYTES, DO_MAX_VALUE_BYTES, None, DO_STORAGE_MAX_BATCH_KEYS
    ),
    "new_sqlite_classes": DOStorageLimits(
        None, None, DO_SQLITE_MAX_KEY_VALUE_BYTES, DO_STORAGE_MAX_BATCH_KEYS
    ),
}
DO_DEFAULT_STORAGE_BACKEND: Final = "new_sqlite_classes"

#: The storage API's refusals, beyond ``DO_MESSAGES``'s key and value sizes (which
#: workerd's key-value backend words the same way, as RangeErrors).
DO_STORAGE_MESSAGES: Final = {
    "batch_size": "Maximum number of key value pairs is {limit}. {count} pairs were provided.",
    "sqlite_too_big": "string or blob too big: SQLITE_TOOBIG",
    "put_undefined": "put() called with undefined value.",
    "list_limit": "List limit must be positive.",
    "list_start_after": "list() cannot be called with both start and startAfter values.",
    "alarm_time": "setAlarm() cannot be called with an alarm time <= 0",
    "alarm_handler": (
        "Your Durable Object class must have an alarm() handler in order to call setAlarm()"
    ),
}
#: What a Worker calling a Durable Object meets. ``disconnected``: workerd jsg/util.c++ (a
#: retryable error; "network errors" on the error-handling page,
#: https://developers.cloudflare.com/durable-objects/best-practices/error-handling/); the
#: overloaded error is ``DO_MESSAGES["overloaded"]``. Ids: workerd server/actor-id-impl.c++.
#: ``no_method``: workerd src/pyodide/python-entrypoint-helper.ts, the Python side of RPC.
DO_RUNTIME_MESSAGES: Final = {
    "disconnected": "Network connection lost.",
    "invalid_id": "Invalid Durable Object ID: must be 64 hex digits",
    "foreign_id": "Durable Object ID is not valid for this namespace.",
    "no_method": "Method {name} does not exist",
}
