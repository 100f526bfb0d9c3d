"""bill.py: the month projected from per-day counts, against bills worked out by hand."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from pytest_dualcache.bill import (
    CostLimit,
    DailyUsage,
    Workload,
    cost_growth,
    dollars,
    project,
)

#: The seed's legacy service: 700 KV writes and 5,000 reads a simulated day, at scale 100.
LEGACY = Workload("legacy", DailyUsage(kv_reads=5_000, kv_writes=700), scale=100)
#: The migrated one: 20 KV writes a day; the rest on a SQLite-backed Durable Object.
MIGRATED = Workload(
    "migrated",
    DailyUsage(
        kv_writes=20,
        do_requests=10_000,
        do_duration_s=100,
        do_reads=8_000,
        do_writes=700,
        do_stored_bytes=1_000_000,
    ),
    scale=100,
)


def test_a_workloads_gross_lines_by_hand() -> None:
    """Writes: 700 x 100 x 30 = 2,100,000 -> 2.1 x $5.00 = $10.50.
    Reads: 5,000 x 100 x 30 = 15,000,000 -> 15 x $0.50 = $7.50."""
    bill = project([LEGACY]).to_json()["workloads"]["legacy"]
    assert bill["monthly"]["kv_writes"] == 2_100_000
    assert bill["monthly"]["kv_reads"] == 15_000_000
    assert bill["lines_cents"]["kv_writes"] == 1050
    assert bill["lines_cents"]["kv_reads"] == 750
    assert bill["gross_cents"] == 1800


def test_durable_object_lines_by_hand() -> None:
    """Requests 30M x $0.15/M = $4.50; duration 100 s x 0.128 GB x 3,000 = 38,400 GB-s x
    $12.50/M = $0.48; rows read 24M x $0.001/M = $0.024 -> 2 cents; rows written 2.1M x
    $1.00/M = $2.10; storage 1 MB x 100 = 0.1 GB-month x $0.20 = $0.02; KV writes 60,000
    x $5.00/M = $0.30."""
    bill = project([MIGRATED]).to_json()["workloads"]["migrated"]
    assert bill["monthly"]["do_duration"] == 38_400
    assert bill["monthly"]["do_sqlite_storage"] == 0.1
    assert bill["lines_cents"] == {
        "do_duration": 48,
        "do_requests": 450,
        "do_sqlite_rows_read": 2,
        "do_sqlite_rows_written": 210,
        "do_sqlite_storage": 2,
        "kv_deletes": 0,
        "kv_lists": 0,
        "kv_reads": 0,
        "kv_storage": 0,
        "kv_writes": 30,
    }
    assert bill["gross_cents"] == 742


def test_the_allowances_come_off_the_accounts_total_only() -> None:
    """KV writes 2,100,000 + 60,000 = 2,160,000: 1,160,000 beyond the 1M -> $5.80 (each
    workload alone would have 1,100,000 and 0 beyond: $5.50). Reads 15M - 10M -> $2.50.
    DO requests 30M - 1M -> $4.35; rows written 2.1M of 50M included: $0."""
    total = project([LEGACY, MIGRATED]).to_json()["total"]
    assert total["gross_cents"] == 1800 + 742
    assert total["net_lines_cents"]["kv_writes"] == 580
    assert total["net_lines_cents"]["kv_reads"] == 250
    assert total["net_lines_cents"]["do_requests"] == 435
    assert total["net_lines_cents"]["do_sqlite_rows_written"] == 0
    assert total["net_lines_cents"]["do_duration"] == 0
    assert total["usage_cents"] == 580 + 250 + 435
    assert total["subscription_cents"] == 500
    assert total["total_cents"] == 580 + 250 + 435 + 500


def test_free_plan_limits_are_marked_where_crossed() -> None:
    """Legacy at scale 100: 70,000 writes and 500,000 reads a day, over 1,000 and 100,000."""
    bill = project([LEGACY, MIGRATED]).to_json()
    assert bill["workloads"]["legacy"]["free_plan_crossed"] == {
        "kv_reads": {"limit": 100_000, "per_day": 500_000},
        "kv_writes": {"limit": 1_000, "per_day": 70_000},
    }
    migrated = bill["workloads"]["migrated"]["free_plan_crossed"]
    assert set(migrated) == {"kv_writes", "do_requests"}  # 2,000 writes; 1,000,000 requests
    assert bill["total"]["free_plan_crossed"]["kv_writes"]["per_day"] == 72_000


def test_money_rounds_half_up_to_the_cent_once_per_line() -> None:
    """0.25 GB held a month x $0.50 = $0.125 -> 13 cents."""
    stored = Workload("w", DailyUsage(kv_stored_bytes=250_000_000))
    assert project([stored]).to_json()["workloads"]["w"]["lines_cents"]["kv_storage"] == 13


def test_the_bill_is_deterministic_json() -> None:
    first = json.dumps(project([MIGRATED, LEGACY]).to_json(), sort_keys=True)
    again = json.dumps(project([LEGACY, MIGRATED]).to_json(), sort_keys=True)
    assert first == again


def test_a_workload_named_twice_or_without_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        project([LEGACY, LEGACY])
    with pytest.raises(ValueError, match="scale must be > 0"):
        project([Workload("w", DailyUsage(), scale=0)])


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("4.10", CostLimit(cents=410)),
        ("$4.10", CostLimit(cents=410)),
        (" 0 ", CostLimit(cents=0)),
        ("10%", CostLimit(percent=Decimal(10))),
        ("2.5 %", CostLimit(percent=Decimal("2.5"))),
    ],
)
def test_cost_limits_parse(text: str, limit: CostLimit) -> None:
    assert CostLimit.parse(text, "--dualcache-max-cost-growth") == limit


@pytest.mark.parametrize("text", ["", "abc", "-1", "$10%", "4.105", "1e3"])
def test_a_bad_cost_limit_names_its_source(text: str) -> None:
    with pytest.raises(ValueError, match=r"^--dualcache-max-cost-growth: .*got"):
        CostLimit.parse(text, "--dualcache-max-cost-growth")


def test_limits_are_exceeded_only_past_them() -> None:
    amount, percent = CostLimit(cents=410), CostLimit(percent=Decimal(10))
    assert not amount.exceeded_by(1000, 410) and amount.exceeded_by(1000, 411)
    assert not percent.exceeded_by(1000, 100) and percent.exceeded_by(1000, 101)
    assert percent.exceeded_by(0, 1) and not percent.exceeded_by(0, 0)


def _bill(gross_cents: int, kv_writes: int) -> dict[str, object]:
    return {"total": {"gross_cents": gross_cents, "monthly": {"kv_writes": kv_writes}}}


def test_the_growth_sentence_names_the_site_that_grew() -> None:
    growth = cost_growth(
        _bill(1000, 100_000),
        _bill(1410, 920_000),
        CostLimit(cents=0),
        {"tft_trading/dal.py:put": 10},
        {
            "tft_trading/dal.py:put": 12,
            "tft_trading/legacy/kv_utils.py:put_with_ttl": 98,
        },
    )
    assert growth.sentence == (
        "this change adds $4.10/month: +820,000 KV writes, 98 % of them from "
        "tft_trading/legacy/kv_utils.py:put_with_ttl"
    )
    assert growth.exceeded and growth.to_json()["added_cents"] == 410


def test_a_cheaper_change_says_what_it_saves_and_passes() -> None:
    growth = cost_growth(_bill(1800, 2_100_000), _bill(742, 60_000), CostLimit(cents=0), {}, {})
    assert growth.sentence == "this change saves $10.58/month: -2,040,000 KV writes"
    assert not growth.exceeded


def test_growth_between_real_projections() -> None:
    """Legacy -> legacy plus the migrated workload: +$7.42 gross, +60,000 KV writes."""
    before, after = project([LEGACY]).to_json(), project([LEGACY, MIGRATED]).to_json()
    growth = cost_growth(before, after, CostLimit.parse("1%", "ini"), {}, {"m.py:put": 20})
    assert growth.sentence == (
        "this change adds $7.42/month: +60,000 KV writes, 100 % of them from m.py:put"
    )
    assert growth.exceeded


def test_dollars() -> None:
    assert [dollars(n) for n in (0, 5, 410, 123456, -50)] == [
        "$0.00",
        "$0.05",
        "$4.10",
        "$1,234.56",
        "-$0.50",
    ]
