"""The migrated and worker DALs over a simulated trading week, against the seed's targets.

The seed's success criteria, asserted on a week that replays in seconds: at most 50 KV
writes a day (the marker, checked under ``--dualcache``), a DO hit rate above 70 %, 98 %
of writes routed to the DO; and its rollback plan drilled mid-day: no errors, no stale
reads, the day's KV writes accounted for.
"""

from __future__ import annotations

import datetime as dt

import pytest
from workload import INSTANCES, RollbackDrill, replay

from pytest_dualcache import DualCacheEnv

MIGRATED_VERSIONS = ["migrated", "worker"]
#: Each week is a workload of INSTANCES instances: the KV report projects its month's bill.
WEEKS = [
    pytest.param(version, marks=pytest.mark.dualcache_workload(scale=INSTANCES, name=version))
    for version in MIGRATED_VERSIONS
]


@pytest.mark.kv_budget(writes=50, per="day")
@pytest.mark.parametrize("version", WEEKS)
def test_a_trading_week_stays_under_50_kv_writes_a_day(
    version: str, dualcache_env: DualCacheEnv
) -> None:
    week = replay(version, dualcache_env, days=7)
    print(week.table())
    assert (week.days[0].date, week.days[-1].date) == (dt.date(2026, 1, 5), dt.date(2026, 1, 11))
    assert max(week.kv_writes_per_day.values()) <= 50
    assert week.do_hit_rate > 0.70
    assert week.do_route_share >= 0.98
    assert week.total("writes_to_kv") == 0  # only the health checks and the route marker
    assert week.total("reads") >= 3 * week.total("writes")
    assert week.total("stale_reads") == week.total("lost_reads") == 0
    assert week.total("failed_writes") == week.total("failed_health_checks") == 0
    assert week.total("kv_errors") == week.total("do_errors") == 0


@pytest.mark.parametrize("version", MIGRATED_VERSIONS)
def test_rollback_drill_mid_day_reports_its_kv_writes(
    version: str, dualcache_env: DualCacheEnv
) -> None:
    drill = RollbackDrill(day=1, off_at=dt.time(11, 45), on_at=dt.time(13, 45))
    week = replay(version, dualcache_env, days=2, rollback=drill)
    print(week.table())
    day = week.days[1]
    print(
        f"rollback drill on {day.date}: {day.kv_writes} KV writes; {day.lost_reads} reads found "
        f"nothing where a value had been written before a flip (a miss, never a stale value), "
        f"{day.skipped_updates} tracking updates had nothing to update"
    )
    assert day.flips == [
        '11:45 FEATURE_FLAG_DO_CACHE="false"',
        '13:45 FEATURE_FLAG_DO_CACHE="true"',
    ]
    assert day.stale_reads == 0
    assert day.failed_writes == day.failed_health_checks == day.kv_errors == day.do_errors == 0
    # Every KV write of the day is accounted for: the DAL's writes while the flag was off,
    # one route-marker write per flip, and the health checks.
    assert day.kv_writes == day.writes_to_kv + len(day.flips) + day.health_checks
    # Off from 11:45 to 13:45 (New York): 24 price updates and 12 intraday bars for 5
    # symbols, the midday run's analysis, signals and report; 2 flips; 6 health checks.
    assert day.kv_writes == 24 * 5 + 12 * 5 + 3 + 2 + 6 == 191
    # The day before and the days after the drill are back under the budget.
    assert week.days[0].kv_writes <= 50
