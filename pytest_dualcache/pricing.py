"""Every Cloudflare price and included allowance the bill uses, once, with its source.

All figures are Workers Paid plan figures in US dollars, read on 2026-12-01 from Cloudflare's
documentation sources (the pages render these partials of cloudflare/cloudflare-docs):
- Workers KV: https://developers.cloudflare.com/kv/platform/pricing/
  (``src/content/partials/workers/kv_pricing.mdx``)
- Durable Objects compute: https://developers.cloudflare.com/durable-objects/platform/pricing/
  (``src/content/partials/workers/durable_objects_pricing.mdx``)
- Durable Objects storage, same page (``src/content/partials/workers/storage_api_pricing.mdx``);
  SQLite storage is billed since January 2026 (changelog "Billing for SQLite Storage",
  2025-12-12: https://developers.cloudflare.com/changelog/)
- Workers Paid plan: https://developers.cloudflare.com/workers/platform/pricing/

The free plan's daily KV quotas are ``limits.KV_DAILY_QUOTAS["free"]``, not repeated here.
Money is ``Decimal`` so that a price per million is exact; the bill rounds to cents.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, NamedTuple

#: Date the figures below were read.
PRICES_READ_ON: Final = "2026-12-01"
KV_PRICING_URL: Final = "https://developers.cloudflare.com/kv/platform/pricing/"
DO_PRICING_URL: Final = "https://developers.cloudflare.com/durable-objects/platform/pricing/"
WORKERS_PRICING_URL: Final = "https://developers.cloudflare.com/workers/platform/pricing/"

MILLION: Final = Decimal(1_000_000)
#: Cloudflare counts storage in decimal gigabytes (as ``limits.DO_SQLITE_MAX_KEY_VALUE_BYTES``).
BYTES_PER_GB: Final = Decimal(1_000_000_000)
#: The bill's month: "A GB-month is calculated by averaging the peak storage per day over a
#: billing period (30 days)" (Workflows and Durable Objects storage pricing pages).
DAYS_PER_MONTH: Final = 30

# --- Workers Paid plan ----------------------------------------------------------------------

#: The subscription: $5 a month per account, the floor of every bill ("minimum $5/mo usage"
#: in the Durable Objects pricing page's examples). UNCONFIRMED on the Workers pricing page
#: itself, which the stored copies did not include; the KV and DO pages name the plan only.
WORKERS_PAID_MONTHLY_USD: Final = Decimal("5.00")

# --- Workers KV (kv/platform/pricing, "Paid plan" column) ------------------------------------

#: "Read requests: 10 million/month, + $0.50/million".
KV_READS_INCLUDED: Final = 10_000_000
KV_READS_USD_PER_MILLION: Final = Decimal("0.50")
#: "Write requests: 1 million/month, + $5.00/million".
KV_WRITES_INCLUDED: Final = 1_000_000
KV_WRITES_USD_PER_MILLION: Final = Decimal("5.00")
#: "Delete requests: 1 million/month, + $5.00/million".
KV_DELETES_INCLUDED: Final = 1_000_000
KV_DELETES_USD_PER_MILLION: Final = Decimal("5.00")
#: "List requests: 1 million/month, + $5.00/million".
KV_LISTS_INCLUDED: Final = 1_000_000
KV_LISTS_USD_PER_MILLION: Final = Decimal("5.00")
#: "Stored data: 1 GB, + $0.50/ GB-month".
KV_STORAGE_INCLUDED_GB: Final = 1
KV_STORAGE_USD_PER_GB_MONTH: Final = Decimal("0.50")

# --- Durable Objects compute (durable-objects/platform/pricing, "Paid plan") -----------------

#: "Requests: 1 million, + $0.15/million" (HTTP requests, RPC sessions, WebSocket messages
#: at 20:1, alarm invocations).
DO_REQUESTS_INCLUDED: Final = 1_000_000
DO_REQUESTS_USD_PER_MILLION: Final = Decimal("0.15")
#: "Duration: 400,000 GB-s, + $12.50/million GB-s".
DO_DURATION_INCLUDED_GB_S: Final = 400_000
DO_DURATION_USD_PER_MILLION_GB_S: Final = Decimal("12.50")
#: Duration is billed "for the 128 MB of memory your Durable Object is allocated, regardless
#: of actual usage"; the page's example turns seconds into GB-s as "seconds * 128 MB / 1 GB"
#: with 1 GB = 1,000 MB (4,320,000 s -> 552,960 GB-s).
DO_BILLED_GB_PER_ACTIVE_SECOND: Final = Decimal("0.128")
#: Free plan: "Requests 100,000 / day" and "Duration 13,000 GB-s / day"; past either, further
#: operations of that type fail.
DO_FREE_DAILY_REQUESTS: Final = 100_000
DO_FREE_DAILY_GB_S: Final = 13_000

# --- Durable Objects storage, SQLite backend (the default for new classes) -------------------

#: "Rows read: First 25 billion / month included + $0.001 / million rows"; key-value methods
#: (get, put, delete, list) "are billed as rows read and rows written".
DO_SQLITE_ROWS_READ_INCLUDED: Final = 25_000_000_000
DO_SQLITE_ROWS_READ_USD_PER_MILLION: Final = Decimal("0.001")
#: "Rows written: First 50 million / month included + $1.00 / million rows"; "Each setAlarm
#: is billed as a single row written".
DO_SQLITE_ROWS_WRITTEN_INCLUDED: Final = 50_000_000
DO_SQLITE_ROWS_WRITTEN_USD_PER_MILLION: Final = Decimal("1.00")
#: "SQL Stored data: 5 GB-month, + $0.20/ GB-month".
DO_SQLITE_STORAGE_INCLUDED_GB: Final = 5
DO_SQLITE_STORAGE_USD_PER_GB_MONTH: Final = Decimal("0.20")

# --- Durable Objects storage, key-value backend (``new_classes``) ----------------------------

#: "Read request units: 1 million, + $0.20/million"; a unit is 4 KB read (a list is billed by
#: the data it examines, at least 1 unit).
DO_KV_READ_UNITS_INCLUDED: Final = 1_000_000
DO_KV_READ_UNITS_USD_PER_MILLION: Final = Decimal("0.20")
#: "Write request units: 1 million, + $1.00/million"; a unit is 4 KB written.
DO_KV_WRITE_UNITS_INCLUDED: Final = 1_000_000
DO_KV_WRITE_UNITS_USD_PER_MILLION: Final = Decimal("1.00")
#: "Delete requests: 1 million, + $1.00/million" ("Delete requests are unmetered": one each).
DO_KV_DELETES_INCLUDED: Final = 1_000_000
DO_KV_DELETES_USD_PER_MILLION: Final = Decimal("1.00")
#: "Stored data: 1 GB, + $0.20/ GB-month".
DO_KV_STORAGE_INCLUDED_GB: Final = 1
DO_KV_STORAGE_USD_PER_GB_MONTH: Final = Decimal("0.20")
#: The size of a read or write request unit: "4 KB" (taken as 4,096 bytes; UNCONFIRMED
#: whether Cloudflare means 4,000). The bill counts one unit per operation, so it is unused
#: unless a caller prices values over 4 KB itself.
DO_KV_REQUEST_UNIT_BYTES: Final = 4096


class Meter(NamedTuple):
    """One billed quantity: what the Workers Paid plan includes a month, and the price."""

    #: What one unit is, for people: "write", "GB-month".
    unit: str
    #: Units included a month, account-wide.
    included: Decimal
    #: Dollars per ``per`` units beyond ``included``.
    usd: Decimal
    per: Decimal
    #: The page that publishes it.
    source: str


#: Every meter the bill prices, by the name its lines carry.
METERS: Final = {
    "kv_reads": Meter(
        "read", Decimal(KV_READS_INCLUDED), KV_READS_USD_PER_MILLION, MILLION, KV_PRICING_URL
    ),
    "kv_writes": Meter(
        "write", Decimal(KV_WRITES_INCLUDED), KV_WRITES_USD_PER_MILLION, MILLION, KV_PRICING_URL
    ),
    "kv_deletes": Meter(
        "delete", Decimal(KV_DELETES_INCLUDED), KV_DELETES_USD_PER_MILLION, MILLION, KV_PRICING_URL
    ),
    "kv_lists": Meter(
        "list", Decimal(KV_LISTS_INCLUDED), KV_LISTS_USD_PER_MILLION, MILLION, KV_PRICING_URL
    ),
    "kv_storage": Meter(
        "GB-month",
        Decimal(KV_STORAGE_INCLUDED_GB),
        KV_STORAGE_USD_PER_GB_MONTH,
        Decimal(1),
        KV_PRICING_URL,
    ),
    "do_requests": Meter(
        "request",
        Decimal(DO_REQUESTS_INCLUDED),
        DO_REQUESTS_USD_PER_MILLION,
        MILLION,
        DO_PRICING_URL,
    ),
    "do_duration": Meter(
        "GB-s",
        Decimal(DO_DURATION_INCLUDED_GB_S),
        DO_DURATION_USD_PER_MILLION_GB_S,
        MILLION,
        DO_PRICING_URL,
    ),
    "do_sqlite_rows_read": Meter(
        "row read",
        Decimal(DO_SQLITE_ROWS_READ_INCLUDED),
        DO_SQLITE_ROWS_READ_USD_PER_MILLION,
        MILLION,
        DO_PRICING_URL,
    ),
    "do_sqlite_rows_written": Meter(
        "row written",
        Decimal(DO_SQLITE_ROWS_WRITTEN_INCLUDED),
        DO_SQLITE_ROWS_WRITTEN_USD_PER_MILLION,
        MILLION,
        DO_PRICING_URL,
    ),
    "do_sqlite_storage": Meter(
        "GB-month",
        Decimal(DO_SQLITE_STORAGE_INCLUDED_GB),
        DO_SQLITE_STORAGE_USD_PER_GB_MONTH,
        Decimal(1),
        DO_PRICING_URL,
    ),
    "do_kv_read_units": Meter(
        "read unit",
        Decimal(DO_KV_READ_UNITS_INCLUDED),
        DO_KV_READ_UNITS_USD_PER_MILLION,
        MILLION,
        DO_PRICING_URL,
    ),
    "do_kv_write_units": Meter(
        "write unit",
        Decimal(DO_KV_WRITE_UNITS_INCLUDED),
        DO_KV_WRITE_UNITS_USD_PER_MILLION,
        MILLION,
        DO_PRICING_URL,
    ),
    "do_kv_deletes": Meter(
        "delete",
        Decimal(DO_KV_DELETES_INCLUDED),
        DO_KV_DELETES_USD_PER_MILLION,
        MILLION,
        DO_PRICING_URL,
    ),
    "do_kv_storage": Meter(
        "GB-month",
        Decimal(DO_KV_STORAGE_INCLUDED_GB),
        DO_KV_STORAGE_USD_PER_GB_MONTH,
        Decimal(1),
        DO_PRICING_URL,
    ),
}
