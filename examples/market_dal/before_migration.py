"""The legacy DAL's trading day under the migrated DAL's budget: it fails, by design.

``pytest --dualcache before_migration.py`` shows what the merge gate says about the seed's
"before": the day's KV writes against a budget of 50 (each listed with its caller), and
the call sites that bypass the cache layer (the legacy KV utilities and the legacy DAL's
direct write). Its name keeps it out of the default run; the plugin's own tests run it.
"""

from __future__ import annotations

import pytest
from workload import INSTANCES, replay

from pytest_dualcache import DualCacheEnv


@pytest.mark.kv_budget(writes=50, per="day")
@pytest.mark.dualcache_workload(scale=INSTANCES, name="legacy")
def test_legacy_trading_day_under_50_kv_writes(dualcache_env: DualCacheEnv) -> None:
    day = replay("legacy", dualcache_env, days=1).days[0]
    print(f"legacy trading day {day.date}: {day.kv_writes} KV writes, {day.do_sets} DO sets")
    # The seed's "before": hundreds of KV writes a day (600 to 800 in production).
    assert 300 <= day.kv_writes <= 1000
