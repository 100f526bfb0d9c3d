"""The nightly backend job against the emulated REST API: one summary key, not one per symbol.

The job (``tft_trading/nightly.py``) writes KV from a backend box through the ``cloudflare``
SDK, unmodified: the ``cloudflare_api`` fixture routes the SDK's requests to the env's
MARKET_ANALYSIS_CACHE namespace, so its writes land in the ledger and count against the
same budgets as the Worker's. Needs the SDK (``pip install -e ".[rest]"``); skipped without.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tft_trading.nightly import NightlyJob, nightly_summary, summaries_of
from workload import OPENING_PRICES

from pytest_dualcache import DualCacheEnv
from pytest_dualcache.rest import CloudflareAPI

cloudflare = pytest.importorskip(
    "cloudflare",
    reason="the nightly job uses the cloudflare SDK: pip install -e '.[rest]' to run it",
)

DATE = "2026-01-05"
CLOSES = {"AAPL": 245.1, "MSFT": 421.3, "GOOGL": 193.8, "TSLA": 402.6, "NVDA": 142.9}
SIGNALS = {"AAPL": 2, "NVDA": 1}
#: The job writes KV from outside the Worker on purpose, like the health checks: under
#: --dualcache its writes are bypasses unless ``dualcache_kv_allow`` allows them.
ALLOW_PATTERN = "*tft_trading/nightly.py::*"


@pytest.fixture
def cloudflare_api(
    request: pytest.FixtureRequest, dualcache_env: DualCacheEnv
) -> Iterator[CloudflareAPI]:
    """The REST API over the test's env (the plugin's ``cloudflare_api`` fixture, once wired)."""
    if request.config.getoption("dualcache", default=False):
        allowed = request.config.getini("dualcache_kv_allow")
        if not any(fnmatch.fnmatch("tft_trading/nightly.py::x", p) for p in allowed):
            pytest.skip(f'under --dualcache, add "{ALLOW_PATTERN}" to dualcache_kv_allow')
    with CloudflareAPI(dualcache_env) as api:
        yield api


@pytest.fixture
def job(cloudflare_api: CloudflareAPI) -> NightlyJob:
    """The job as the backend builds it: an SDK client with an API token."""
    client = cloudflare.Cloudflare(api_token=cloudflare_api.token)
    return NightlyJob(client, cloudflare_api.account_id, cloudflare_api.namespace_id())


def test_one_key_per_symbol_blows_a_one_write_budget(job: NightlyJob, kv_budget: Any) -> None:
    summaries = summaries_of(OPENING_PRICES, CLOSES, SIGNALS)
    with pytest.raises(pytest.fail.Exception) as failure, kv_budget(writes=1):
        job.publish_per_symbol(DATE, summaries)  # one bulk call, five billed writes
    message = str(failure.value)
    assert "expected at most 1 KV writes, 5 were made" in message
    assert "nightly.py" in message and "publish_per_symbol" in message


@pytest.mark.kv_budget(writes=1, per="day")
def test_one_summary_key_fits_the_budget(
    job: NightlyJob, kv_budget: Any, dualcache_env: DualCacheEnv
) -> None:
    summaries = summaries_of(OPENING_PRICES, CLOSES, SIGNALS)
    with kv_budget(writes=1):
        job.publish_summary(DATE, summaries)
    # The Worker's dashboards read what the job wrote, through their binding.
    stored = dualcache_env.MARKET_ANALYSIS_CACHE.get_with_metadata(nightly_summary(DATE).key)
    document = json.loads(stored.value)
    assert sorted(document["symbols"]) == sorted(CLOSES)
    assert document["symbols"]["AAPL"]["change_pct"] == 0.86
    assert stored.metadata == {"symbols": 5}
