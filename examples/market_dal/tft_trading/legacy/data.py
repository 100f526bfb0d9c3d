"""The seed's data module (``data.ts``) before the migration: market data cached in KV.

It calls the KV utilities (``KVUtils.putWithTTL`` in the seed), the write path the design
note's phase 3 replaces with ``CacheAbstraction``.
"""

from __future__ import annotations

from typing import Any

from .. import keys
from . import kv_utils


def cache_market_prices(env: Any, symbol: str, prices: keys.Record) -> None:
    """Keep ``symbol``'s latest prices for a day."""
    key, ttl = keys.market_prices(symbol)
    kv_utils.put_with_ttl(env, key, prices, ttl)


def cached_market_prices(env: Any, symbol: str) -> keys.Record | None:
    """``symbol``'s latest prices, or None."""
    return kv_utils.get_json(env, keys.market_prices(symbol).key)


def cache_intraday_bars(env: Any, symbol: str, date: str, bars: keys.Record) -> None:
    """Keep ``symbol``'s intraday bars of ``date`` for three days."""
    key, ttl = keys.intraday_bars(symbol, date)
    kv_utils.put_with_ttl(env, key, bars, ttl)


def cached_intraday_bars(env: Any, symbol: str, date: str) -> keys.Record | None:
    """``symbol``'s intraday bars of ``date``, or None."""
    return kv_utils.get_json(env, keys.intraday_bars(symbol, date).key)
