"""pricing.py: every meter is one cited constant, and the pages' own worked examples hold."""

from __future__ import annotations

from decimal import Decimal

from pytest_dualcache import pricing
from pytest_dualcache.bill import DailyUsage, Workload, monthly_quantities


def test_every_meter_cites_a_cloudflare_pricing_page() -> None:
    assert pricing.METERS
    for meter in pricing.METERS.values():
        assert meter.source in (pricing.KV_PRICING_URL, pricing.DO_PRICING_URL)
        assert meter.usd > 0 and meter.per > 0 and meter.included > 0


def test_the_kv_meters_are_the_kv_pricing_tables_paid_column() -> None:
    """Read requests 10M + $0.50/M; writes, deletes, lists 1M + $5.00/M; 1 GB + $0.50."""
    million = Decimal(1_000_000)
    expected = {
        "kv_reads": (10_000_000, "0.50", million),
        "kv_writes": (1_000_000, "5.00", million),
        "kv_deletes": (1_000_000, "5.00", million),
        "kv_lists": (1_000_000, "5.00", million),
        "kv_storage": (1, "0.50", Decimal(1)),
    }
    for name, (included, usd, per) in expected.items():
        meter = pricing.METERS[name]
        assert (meter.included, meter.usd, meter.per) == (Decimal(included), Decimal(usd), per)


def test_the_durable_object_duration_example_of_the_pricing_page() -> None:
    """Example 4: 4,320,000 s * 128 MB / 1 GB = 552,960 GB-s, and
    (552,960 - 400,000) x $12.50 / 1,000,000 = $1.91."""
    gb_s = Decimal(4_320_000) * pricing.DO_BILLED_GB_PER_ACTIVE_SECOND
    assert gb_s == 552_960
    meter = pricing.METERS["do_duration"]
    cost = (gb_s - meter.included) * meter.usd / meter.per
    assert cost.quantize(Decimal("0.01")) == Decimal("1.91")


def test_each_backend_bills_its_own_storage_meters() -> None:
    daily = DailyUsage(do_reads=1, do_writes=1, do_deletes=1, do_stored_bytes=1)
    sqlite = monthly_quantities(Workload("w", daily, do_backend="sqlite"))
    kv = monthly_quantities(Workload("w", daily, do_backend="kv"))
    assert {m for m in sqlite if m.startswith("do_sqlite")} == {
        "do_sqlite_rows_read",
        "do_sqlite_rows_written",
        "do_sqlite_storage",
    }
    assert {m for m in kv if m.startswith("do_kv")} == {
        "do_kv_read_units",
        "do_kv_write_units",
        "do_kv_deletes",
        "do_kv_storage",
    }
    assert set(sqlite) | set(kv) == set(pricing.METERS)
