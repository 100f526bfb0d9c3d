"""The nightly backend job: after the close, publish the day's report summary to KV.

It runs on a backend box (a cron job), not in the Worker, and writes MARKET_ANALYSIS_CACHE
through Cloudflare's REST API with the official ``cloudflare`` SDK, so the dashboards the
Worker serves can read the summary from KV. Its writes never pass the cache layer: only a
KV budget keeps them in check.

Two ways to publish the same numbers:

- ``publish_per_symbol`` writes one key per symbol in a single ``bulk_update`` call. It looks
  like one write; Cloudflare bills one write per key, so it is five a night (and the whole
  watch list as it grows).
- ``publish_summary`` writes one summary key holding every symbol: one write a night.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .keys import TTL_DAILY_REPORTS, Entry


@dataclass(frozen=True)
class SymbolSummary:
    """One symbol's day: its open, close and change, and how many signals it raised."""

    symbol: str
    open: float
    close: float
    signals: int

    @property
    def change_pct(self) -> float:
        """The day's change in percent, rounded to hundredths."""
        return round((self.close - self.open) / self.open * 100, 2)

    def record(self) -> dict[str, Any]:
        """The summary as stored: a JSON object."""
        return {**asdict(self), "change_pct": self.change_pct}


def symbol_summary(symbol: str, date: str) -> Entry:
    """One symbol's nightly summary (the per-symbol layout)."""
    return Entry(f"nightly_summary_{symbol}_{date}", TTL_DAILY_REPORTS)


def nightly_summary(date: str) -> Entry:
    """The night's summary of every symbol (one key)."""
    return Entry(f"nightly_summary_{date}", TTL_DAILY_REPORTS)


class NightlyJob:
    """Publishes report summaries to one KV namespace through the Cloudflare SDK."""

    def __init__(self, client: Any, account_id: str, namespace_id: str) -> None:
        # client: a cloudflare.Cloudflare; typed loosely so the module imports without the SDK.
        self.client = client
        self.account_id = account_id
        self.namespace_id = namespace_id

    def publish_per_symbol(self, date: str, summaries: list[SymbolSummary]) -> int:
        """One key per symbol, in one bulk call; returns how many keys were written."""
        pairs = []
        for summary in summaries:
            key, ttl = symbol_summary(summary.symbol, date)
            pairs.append({"key": key, "value": json.dumps(summary.record()), "expiration_ttl": ttl})
        result = self.client.kv.namespaces.bulk_update(
            self.namespace_id, account_id=self.account_id, body=pairs
        )
        if result is not None and result.unsuccessful_keys:
            raise RuntimeError(f"KV refused {result.unsuccessful_keys}; retry them")
        return len(pairs)

    def publish_summary(self, date: str, summaries: list[SymbolSummary]) -> int:
        """Every symbol under one summary key; returns how many keys were written (1)."""
        key, ttl = nightly_summary(date)
        document = {"date": date, "symbols": {s.symbol: s.record() for s in summaries}}
        self.client.kv.namespaces.values.update(
            key,
            account_id=self.account_id,
            namespace_id=self.namespace_id,
            value=json.dumps(document).encode("utf-8"),  # the SDK uploads bytes
            expiration_ttl=ttl,
            metadata={"symbols": len(summaries)},
        )
        return 1


def summaries_of(
    opens: Mapping[str, float], closes: Mapping[str, float], signals: Mapping[str, int]
) -> list[SymbolSummary]:
    """The day's summaries from the opening and closing prices and the signal counts."""
    return [
        SymbolSummary(symbol, opens[symbol], closes[symbol], signals.get(symbol, 0))
        for symbol in sorted(closes)
    ]
