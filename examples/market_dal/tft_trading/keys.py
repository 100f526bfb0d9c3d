"""Where each record of the trading system lives and for how long: the seed's keys and TTLs.

Shared by every DAL version, so the versions differ only in where a write goes. The TTLs
are the seed DAL's ``TTL_CONFIG`` (signals 90 days, daily reports 7, market prices 1,
intraday data 3) and its key factory's (analysis 7 days, weekly reviews 30).
"""

from __future__ import annotations

from typing import Any, NamedTuple

DAY = 86_400
TTL_SIGNAL_DATA = 90 * DAY  # trading signals and their tracking
TTL_DAILY_REPORTS = 7 * DAY
TTL_WEEKLY_REPORTS = 30 * DAY
TTL_MARKET_PRICES = 1 * DAY
TTL_INTRADAY_DATA = 3 * DAY
TTL_ANALYSIS = 7 * DAY

#: The four reports of the seed's reporting workflow, by report type.
REPORT_PREFIXES = {
    "pre-market": "pre_market_briefing",
    "intraday": "intraday_check",
    "end-of-day": "end_of_day_summary",
    "weekly": "weekly_review",
}

#: A record as stored: a JSON object.
Record = dict[str, Any]


class Entry(NamedTuple):
    """A record's key and its TTL in seconds."""

    key: str
    ttl: int


def analysis(date: str) -> Entry:
    """The day's analysis results (``analysis_2026-01-05``)."""
    return Entry(f"analysis_{date}", TTL_ANALYSIS)


def high_confidence_signals(date: str) -> Entry:
    """The day's trading signals."""
    return Entry(f"high_confidence_signals_{date}", TTL_SIGNAL_DATA)


def signal_tracking(date: str) -> Entry:
    """How the day's signals are doing, updated through the session."""
    return Entry(f"signal_tracking_{date}", TTL_SIGNAL_DATA)


def market_prices(symbol: str) -> Entry:
    """A symbol's latest price and the day's recent history."""
    return Entry(f"market_prices_{symbol}", TTL_MARKET_PRICES)


def intraday_bars(symbol: str, date: str) -> Entry:
    """A symbol's 10-minute bars for one day."""
    return Entry(f"intraday_{symbol}_{date}", TTL_INTRADAY_DATA)


def report(report_type: str, date: str) -> Entry:
    """One of the four reports; a ``KeyError`` for an unknown report type."""
    ttl = TTL_WEEKLY_REPORTS if report_type == "weekly" else TTL_DAILY_REPORTS
    return Entry(f"{REPORT_PREFIXES[report_type]}_{date}", ttl)
