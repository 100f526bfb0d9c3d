"""The seed's DAL (``dal.ts``) before the migration: signals, tracking and reports go to KV.

Every write ends in ``_write``, which calls ``MARKET_ANALYSIS_CACHE.put`` with the seed's
retry. Market data goes through the data module (``data.py``, then the KV utilities). Only
the analysis results reach the Durable Object, because the analysis routes had already
moved to a cache instance behind ``FEATURE_FLAG_DO_CACHE``. This is the "before" of the
seed's design note: hundreds of KV writes on a trading day.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from pytest_dualcache import KVError
from pytest_dualcache.abstraction import CacheAbstraction, WriteResult

from .. import keys
from . import data

log = logging.getLogger("tft_trading.legacy.dal")


class DataAccessLayer:
    """The legacy DAL: the trading records, mostly written straight to Workers KV."""

    default_ttl = 3600
    max_retries = 3
    #: The seed's backoff: 1 s, doubling, at most 10 s.
    base_delay = 1.0
    max_delay = 10.0

    def __init__(self, env: Any, *, sleep: Callable[[float], None]) -> None:
        self.env = env
        self._sleep = sleep
        # The analysis routes' cache (DO when the flag is on): migrated before the DAL was.
        self._analysis_cache = CacheAbstraction(env)

    # --- the generic operations (the seed's read/write/deleteKey) ---------------------------

    def put(self, key: str, value: object, *, ttl: int | None = None) -> WriteResult:
        """Write ``value`` to KV for ``ttl`` seconds (``default_ttl`` if None)."""
        return self._write(keys.Entry(key, ttl or self.default_ttl), value)

    def get(self, key: str) -> Any:
        """The value in KV, or None."""
        text = self.env.MARKET_ANALYSIS_CACHE.get(key)
        return None if text is None else json.loads(text)

    def delete(self, key: str) -> WriteResult:
        """Delete ``key`` from KV."""
        self.env.MARKET_ANALYSIS_CACHE.delete(key)
        return WriteResult(True, key, None, "kv")

    # --- the trading records --------------------------------------------------------------

    def store_analysis(self, date: str, analysis: keys.Record) -> WriteResult:
        """Through the analysis routes' cache: the DO when the flag is on."""
        entry = keys.analysis(date)
        return self._analysis_cache.put(entry.key, analysis, ttl=entry.ttl)

    def get_analysis(self, date: str) -> keys.Record | None:
        """The day's analysis, from the analysis routes' cache."""
        return self._analysis_cache.get(keys.analysis(date).key)

    def store_high_confidence_signals(self, date: str, signals: keys.Record) -> WriteResult:
        """Directly to KV, kept 90 days."""
        return self._write(keys.high_confidence_signals(date), signals)

    def get_high_confidence_signals(self, date: str) -> keys.Record | None:
        """The day's signals, from KV."""
        return self.get(keys.high_confidence_signals(date).key)

    def store_signal_tracking(self, date: str, tracking: keys.Record) -> WriteResult:
        """Directly to KV, kept 90 days."""
        return self._write(keys.signal_tracking(date), tracking)

    def get_signal_tracking(self, date: str) -> keys.Record | None:
        """The day's signal tracking, from KV."""
        return self.get(keys.signal_tracking(date).key)

    def store_report(self, report_type: str, date: str, report: keys.Record) -> WriteResult:
        """Directly to KV, kept 7 days (a weekly review 30)."""
        return self._write(keys.report(report_type, date), report)

    def get_report(self, report_type: str, date: str) -> keys.Record | None:
        """A report, from KV."""
        return self.get(keys.report(report_type, date).key)

    def store_market_prices(self, symbol: str, prices: keys.Record) -> WriteResult:
        """Through the data module and the KV utilities: a KV write per price update."""
        data.cache_market_prices(self.env, symbol, prices)
        return WriteResult(True, keys.market_prices(symbol).key, keys.TTL_MARKET_PRICES, "kv")

    def get_market_prices(self, symbol: str) -> keys.Record | None:
        """A symbol's latest prices, from KV."""
        return data.cached_market_prices(self.env, symbol)

    def store_intraday_bars(self, symbol: str, date: str, bars: keys.Record) -> WriteResult:
        """Through the data module and the KV utilities, kept 3 days."""
        data.cache_intraday_bars(self.env, symbol, date, bars)
        return WriteResult(True, keys.intraday_bars(symbol, date).key, keys.TTL_INTRADAY_DATA, "kv")

    def get_intraday_bars(self, symbol: str, date: str) -> keys.Record | None:
        """A symbol's bars of the day, from KV."""
        return data.cached_intraday_bars(self.env, symbol, date)

    # --- the direct write ---------------------------------------------------------------------

    def _write(self, entry: keys.Entry, value: object) -> WriteResult:
        """``MARKET_ANALYSIS_CACHE.put`` with the seed's retry: the write the migration removes."""
        text = json.dumps(value)
        attempt = 0
        while True:
            try:
                self.env.MARKET_ANALYSIS_CACHE.put(entry.key, text, expiration_ttl=entry.ttl)
                return WriteResult(True, entry.key, entry.ttl, "kv")
            except KVError as exc:
                attempt += 1
                if attempt == self.max_retries:
                    log.error("write %r failed after %d attempts: %s", entry.key, attempt, exc)
                    return WriteResult(False, entry.key, entry.ttl, "kv", str(exc))
                self._sleep(min(self.base_delay * 2 ** (attempt - 1), self.max_delay))
