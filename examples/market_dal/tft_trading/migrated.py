"""The trading system's DAL after the migration: every write goes through ``CacheAbstraction``.

The design note's phases 2 and 3, done: the DAL and the market data share one cache API
that reads ``FEATURE_FLAG_DO_CACHE`` on every call, writes the Durable Object first and
falls back to KV (flag off, or the DO failing). Records, keys and TTLs are the legacy
DAL's; only the write path changed. It keeps no map of its own (the seed's never expired):
the abstraction's local cache is bounded by ``local_cache_ttl``, declared for the contract.
"""

from __future__ import annotations

from typing import Any

from pytest_dualcache import DualCacheEnv
from pytest_dualcache.abstraction import CacheAbstraction, CacheStats, WriteResult

from . import keys


class MarketDAL:
    """The trading records on the DO cache, KV as the fallback."""

    def __init__(self, env: DualCacheEnv, *, local_cache_ttl: float = 60.0) -> None:
        self.cache = CacheAbstraction(env, default_ttl=3600, local_cache_ttl=local_cache_ttl)
        self.default_ttl = self.cache.default_ttl
        self.local_cache_ttl = self.cache.local_cache_ttl

    # --- the generic operations (what the contract suite drives) ---------------------------

    def put(self, key: str, value: object, *, ttl: int | None = None) -> WriteResult:
        """Store ``value`` for ``ttl`` seconds (``default_ttl`` if None) on the flag's route."""
        return self.cache.put(key, value, ttl=ttl)

    def get(self, key: str) -> Any:
        """The value, or None if absent or expired."""
        return self.cache.get(key)

    def delete(self, key: str) -> WriteResult:
        """Remove ``key`` on the flag's route."""
        return self.cache.delete(key)

    def stats(self) -> CacheStats:
        """Writes by route and the DO hit rate of this instance."""
        return self.cache.stats()

    # --- the trading records --------------------------------------------------------------

    def store_analysis(self, date: str, analysis: keys.Record) -> WriteResult:
        """The day's analysis results, kept 7 days."""
        return self._store(keys.analysis(date), analysis)

    def get_analysis(self, date: str) -> keys.Record | None:
        """The day's analysis results, or None."""
        return self.get(keys.analysis(date).key)

    def store_high_confidence_signals(self, date: str, signals: keys.Record) -> WriteResult:
        """The day's trading signals, kept 90 days."""
        return self._store(keys.high_confidence_signals(date), signals)

    def get_high_confidence_signals(self, date: str) -> keys.Record | None:
        """The day's trading signals, or None."""
        return self.get(keys.high_confidence_signals(date).key)

    def store_signal_tracking(self, date: str, tracking: keys.Record) -> WriteResult:
        """How the day's signals are doing, kept 90 days."""
        return self._store(keys.signal_tracking(date), tracking)

    def get_signal_tracking(self, date: str) -> keys.Record | None:
        """The day's signal tracking, or None."""
        return self.get(keys.signal_tracking(date).key)

    def store_report(self, report_type: str, date: str, report: keys.Record) -> WriteResult:
        """One of the four reports, kept 7 days (a weekly review 30)."""
        return self._store(keys.report(report_type, date), report)

    def get_report(self, report_type: str, date: str) -> keys.Record | None:
        """A report, or None."""
        return self.get(keys.report(report_type, date).key)

    def store_market_prices(self, symbol: str, prices: keys.Record) -> WriteResult:
        """A symbol's latest prices, kept a day."""
        return self._store(keys.market_prices(symbol), prices)

    def get_market_prices(self, symbol: str) -> keys.Record | None:
        """A symbol's latest prices, or None."""
        return self.get(keys.market_prices(symbol).key)

    def store_intraday_bars(self, symbol: str, date: str, bars: keys.Record) -> WriteResult:
        """A symbol's bars of the day, kept 3 days."""
        return self._store(keys.intraday_bars(symbol, date), bars)

    def get_intraday_bars(self, symbol: str, date: str) -> keys.Record | None:
        """A symbol's bars of the day, or None."""
        return self.get(keys.intraday_bars(symbol, date).key)

    def _store(self, entry: keys.Entry, value: keys.Record) -> WriteResult:
        return self.put(entry.key, value, ttl=entry.ttl)


def make_dal(env: DualCacheEnv) -> MarketDAL:
    """The factory the contract suite (``dualcache_factory``) and the workload call."""
    return MarketDAL(env)
