"""The migrated DAL as Cloudflare Python Workers code: async, on the Worker's ``env``.

The same records, keys and routing as ``migrated``, written the way a Python Worker calls
its bindings: every operation awaited, the cache through ``AsyncCacheAbstraction``. Under
pytest it runs unmodified on the plugin's Workers face: ``make_dal(env)`` hands it
``env.workers()``, whose bindings answer to the JS names (``MARKET_ANALYSIS_CACHE``,
``CACHE_DO``) and whose vars are strings (``FEATURE_FLAG_DO_CACHE``).
"""

from __future__ import annotations

from typing import Any

from pytest_dualcache import DualCacheEnv
from pytest_dualcache.abstraction import AsyncCacheAbstraction, CacheStats, WriteResult

from . import keys


class MarketDAL:
    """The trading records on the DO cache, KV as the fallback, for a Python Worker."""

    def __init__(self, env: Any, *, local_cache_ttl: float = 60.0) -> None:
        # env: the Worker's env (the plugin's WorkersEnv under pytest)
        self.env = env
        self.cache = AsyncCacheAbstraction(env, default_ttl=3600, local_cache_ttl=local_cache_ttl)
        self.default_ttl = self.cache.default_ttl
        self.local_cache_ttl = self.cache.local_cache_ttl

    # --- the generic operations (what the contract suite drives) ---------------------------

    async def put(self, key: str, value: object, *, ttl: int | None = None) -> WriteResult:
        """Store ``value`` for ``ttl`` seconds (``default_ttl`` if None) on the flag's route."""
        return await self.cache.put(key, value, ttl=ttl)

    async def get(self, key: str) -> Any:
        """The value, or None if absent or expired."""
        return await self.cache.get(key)

    async def delete(self, key: str) -> WriteResult:
        """Remove ``key`` on the flag's route."""
        return await self.cache.delete(key)

    async def stats(self) -> CacheStats:
        """Writes by route and the DO hit rate of this isolate's instance."""
        return await self.cache.stats()

    # --- the trading records --------------------------------------------------------------

    async def store_analysis(self, date: str, analysis: keys.Record) -> WriteResult:
        """The day's analysis results, kept 7 days."""
        return await self._store(keys.analysis(date), analysis)

    async def get_analysis(self, date: str) -> keys.Record | None:
        """The day's analysis results, or None."""
        return await self.get(keys.analysis(date).key)

    async def store_high_confidence_signals(self, date: str, signals: keys.Record) -> WriteResult:
        """The day's trading signals, kept 90 days."""
        return await self._store(keys.high_confidence_signals(date), signals)

    async def get_high_confidence_signals(self, date: str) -> keys.Record | None:
        """The day's trading signals, or None."""
        return await self.get(keys.high_confidence_signals(date).key)

    async def store_signal_tracking(self, date: str, tracking: keys.Record) -> WriteResult:
        """How the day's signals are doing, kept 90 days."""
        return await self._store(keys.signal_tracking(date), tracking)

    async def get_signal_tracking(self, date: str) -> keys.Record | None:
        """The day's signal tracking, or None."""
        return await self.get(keys.signal_tracking(date).key)

    async def store_report(self, report_type: str, date: str, report: keys.Record) -> WriteResult:
        """One of the four reports, kept 7 days (a weekly review 30)."""
        return await self._store(keys.report(report_type, date), report)

    async def get_report(self, report_type: str, date: str) -> keys.Record | None:
        """A report, or None."""
        return await self.get(keys.report(report_type, date).key)

    async def store_market_prices(self, symbol: str, prices: keys.Record) -> WriteResult:
        """A symbol's latest prices, kept a day."""
        return await self._store(keys.market_prices(symbol), prices)

    async def get_market_prices(self, symbol: str) -> keys.Record | None:
        """A symbol's latest prices, or None."""
        return await self.get(keys.market_prices(symbol).key)

    async def store_intraday_bars(self, symbol: str, date: str, bars: keys.Record) -> WriteResult:
        """A symbol's bars of the day, kept 3 days."""
        return await self._store(keys.intraday_bars(symbol, date), bars)

    async def get_intraday_bars(self, symbol: str, date: str) -> keys.Record | None:
        """A symbol's bars of the day, or None."""
        return await self.get(keys.intraday_bars(symbol, date).key)

    async def _store(self, entry: keys.Entry, value: keys.Record) -> WriteResult:
        return await self.put(entry.key, value, ttl=entry.ttl)


def make_dal(env: DualCacheEnv) -> MarketDAL:
    """The contract suite's factory: the Worker DAL on ``env``'s Workers face."""
    return MarketDAL(env.workers())
