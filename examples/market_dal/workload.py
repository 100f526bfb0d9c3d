"""A simulated trading week against any version of the market DAL, on the virtual clock.

One schedule for all three versions: New York market hours in January (EST, UTC-5, no
daylight-saving change), all inside one UTC day, so per-day KV budgets line up with it.

- writers: the analysis runs (08:30 pre-market, 12:00 intraday check, 16:05 end of day;
  each writes the analysis results, the signals and its report; the first opens the signal
  tracking, the last closes it), a price update per watch-list symbol every 5 minutes from
  09:30 to 16:00 (read, append, write), an intraday bar every 10 minutes, the signal
  tracking at xx:15 and xx:45, the weekly review on Sunday at 10:00;
- readers, several times as many: the dashboard polls prices every minute in market hours,
  intraday charts every 5 minutes, the overview (analysis, signals) every 15 minutes from
  07:00 to 18:00, the report page every 10 minutes from 08:00 to 18:00 (hourly at weekends);
- the monitor's KV self-test every 4 hours around the clock (a direct KV write, on purpose).

Every read is checked against the last successful write of its key: ``stale_reads`` counts
answers other than the latest live value (must stay 0), ``lost_reads`` counts None while a
value was live (a miss the reference abstraction allows only across a flag flip). Sync DALs
are called directly and async ones awaited, all on one event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tft_trading import health, keys, legacy, migrated, worker

from pytest_dualcache import DualCacheEnv

WATCH_LIST = ("AAPL", "MSFT", "GOOGL", "TSLA", "NVDA")
OPENING_PRICES = {"AAPL": 243.0, "MSFT": 424.0, "GOOGL": 191.0, "TSLA": 410.0, "NVDA": 140.0}
NEW_YORK = dt.timezone(dt.timedelta(hours=-5), "EST")
HEALTH_CHECK_HOURS_UTC = range(2, 24, 4)  # the monitor's KV self-test, every 4 hours
SECONDS_PER_DAY = 86_400
#: Price points a ``market_prices`` record keeps.
PRICE_HISTORY = 12
#: The scale of the trading-day workloads (``dualcache_workload``): one replay is what one
#: user-facing instance of the seed's service does (600 to 800 KV writes a day before the
#: migration), and production runs this many of them.
INSTANCES = 100

Action = Callable[[], Awaitable[None]]


# --- the versions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """One deploy of a version on an env: a fresh DAL instance and its KV self-test route."""

    dal: Any
    kv_self_test: Callable[[str], Any]


def deploy_legacy(env: DualCacheEnv) -> Deployment:
    """The pre-migration DAL, KV written directly."""
    return Deployment(legacy.make_dal(env), partial(health.kv_self_test, env))


def deploy_migrated(env: DualCacheEnv) -> Deployment:
    """The migrated DAL, every write through ``CacheAbstraction``."""
    return Deployment(migrated.make_dal(env), partial(health.kv_self_test, env))


def deploy_worker(env: DualCacheEnv) -> Deployment:
    """The migrated DAL as Python Workers code, on the env's Workers face."""
    workers_env = env.workers()
    return Deployment(
        worker.MarketDAL(workers_env), partial(health.worker_kv_self_test, workers_env)
    )


VERSIONS: dict[str, Callable[[DualCacheEnv], Deployment]] = {
    "legacy": deploy_legacy,
    "migrated": deploy_migrated,
    "worker": deploy_worker,
}


@dataclass(frozen=True)
class RollbackDrill:
    """The seed's rollback plan on day ``day`` (0 is the first): the flag off, later on again.

    Each flip is a redeploy (``wrangler deploy``), so fresh DAL instances follow it.
    Times are New York times.
    """

    day: int = 0
    off_at: dt.time = dt.time(11, 45)
    on_at: dt.time = dt.time(13, 45)


# --- the figures --------------------------------------------------------------------------


@dataclass
class DayFigures:
    """One simulated UTC day: what the app did, then what the stores' ledgers recorded."""

    date: dt.date
    writes: int = 0
    writes_to_kv: int = 0  # DAL writes the DAL itself reported as sent to KV
    failed_writes: int = 0
    reads: int = 0
    misses: int = 0
    lost_reads: int = 0
    stale_reads: int = 0
    skipped_updates: int = 0  # tracking updates with nothing to update
    health_checks: int = 0
    failed_health_checks: int = 0
    flips: list[str] = field(default_factory=list)
    kv_writes: int = 0  # successful KV puts by anyone: what KV's daily quota counts
    kv_reads: int = 0
    kv_errors: int = 0
    do_sets: int = 0
    do_gets: int = 0
    do_hits: int = 0
    do_errors: int = 0

    @property
    def do_hit_rate(self) -> float:
        """DO gets that found a value."""
        return self.do_hits / self.do_gets if self.do_gets else 0.0


@dataclass
class WeekFigures:
    """Every simulated day of one replay, and the wall time it took."""

    version: str
    days: list[DayFigures]
    wall_seconds: float

    def total(self, name: str) -> int:
        """The sum of one ``DayFigures`` field over the days."""
        return sum(getattr(day, name) for day in self.days)

    def day(self, date: dt.date) -> DayFigures:
        """The figures of ``date``."""
        return next(day for day in self.days if day.date == date)

    @property
    def kv_writes_per_day(self) -> dict[dt.date, int]:
        """Successful KV puts per UTC day (what a ``per="day"`` budget counts)."""
        return {day.date: day.kv_writes for day in self.days}

    @property
    def do_hit_rate(self) -> float:
        """DO gets that found a value, over the replay."""
        gets = self.total("do_gets")
        return self.total("do_hits") / gets if gets else 0.0

    @property
    def do_route_share(self) -> float:
        """The share of all store writes (DO sets and KV puts) that went to the DO."""
        sets = self.total("do_sets")
        writes = sets + self.total("kv_writes")
        return sets / writes if writes else 0.0

    def table(self) -> str:
        """A line a day, then the replay's figures: what the tests print and the bench quotes."""
        lines = [
            f"{self.version}: {len(self.days)} simulated days in {self.wall_seconds:.2f} s of "
            "wall time",
            "date        day  writes  reads  misses  lost  stale  KV writes  DO sets  DO hits"
            "  flips",
        ]
        for day in self.days:
            lines.append(
                f"{day.date}  {day.date:%a}  {day.writes:>6}  {day.reads:>5}  {day.misses:>6}  "
                f"{day.lost_reads:>4}  {day.stale_reads:>5}  {day.kv_writes:>9}  "
                f"{day.do_sets:>7}  {day.do_hit_rate:>7.1%}  {', '.join(day.flips)}"
            )
        lines.append(
            f"KV writes: {self.total('kv_writes')} ({max(self.kv_writes_per_day.values())} on "
            f"the busiest day); DO hit rate {self.do_hit_rate:.1%}; writes routed to the DO "
            f"{self.do_route_share:.1%}; reads per write "
            f"{self.total('reads') / max(1, self.total('writes')):.1f}"
        )
        return "\n".join(lines)


# --- the schedule -------------------------------------------------------------------------


class TradingWeek:
    """The trading system's schedule, driving one version's DAL on one env."""

    def __init__(
        self,
        env: DualCacheEnv,
        deploy: Callable[[DualCacheEnv], Deployment],
        *,
        rollback: RollbackDrill | None = None,
        watch_list: Iterable[str] = WATCH_LIST,
    ) -> None:
        self.env = env
        self.clock = env.clock
        self.rollback = rollback
        self.watch_list = tuple(watch_list)
        self._deploy = deploy
        self.deployment = deploy(env)
        # key -> (value, expiry) of its last successful write; values are never mutated here
        self._latest: dict[str, tuple[Any, float]] = {}
        self._rng = random.Random(2026)
        self._prices = {symbol: OPENING_PRICES.get(symbol, 100.0) for symbol in self.watch_list}
        self._closes = dict(self._prices)
        self._today = DayFigures(dt.date.min)

    @property
    def dal(self) -> Any:
        """The DAL instance of the current deploy."""
        return self.deployment.dal

    async def run(self, days: int) -> list[DayFigures]:
        """Replay ``days`` days from the clock's next UTC midnight (or now, at one)."""
        first = -(-self.clock.now() // SECONDS_PER_DAY)  # days are whole UTC days
        figures = []
        for index in range(days):
            date = dt.date(1970, 1, 1) + dt.timedelta(days=int(first) + index)
            self._today = DayFigures(date)
            figures.append(self._today)
            for at, action in self._schedule(date, index):
                self.clock.advance(max(0.0, at - self.clock.now()))
                await action()
        return figures

    def count_store_operations(self, days: list[DayFigures], start: list[int]) -> None:
        """Add what every store's ledger recorded after ``start`` (positions) to its day."""
        by_date = {day.date: day for day in days}
        for ledger, first in zip(self.env.ledgers(), start, strict=True):
            for record in ledger.since(first):
                day = by_date.get(dt.date(1970, 1, 1) + dt.timedelta(seconds=record.at))
                if day is None:
                    continue
                if record.store_kind == "kv":
                    day.kv_errors += not record.ok
                    day.kv_writes += record.ok and record.op == "put"
                    day.kv_reads += record.ok and record.op == "get"
                else:
                    day.do_errors += not record.ok
                    day.do_sets += record.ok and record.op == "set"
                    day.do_gets += record.ok and record.op == "get"
                    day.do_hits += record.ok and record.op == "get" and record.bytes > 0

    def _schedule(self, date: dt.date, index: int) -> list[tuple[float, Action]]:
        """The day's events in time order; at one instant, in the order added below."""
        events: list[tuple[float, Action]] = []

        def at(minute: int, action: Action, zone: dt.tzinfo = NEW_YORK) -> None:
            moment = dt.datetime.combine(date, dt.time(minute // 60, minute % 60), zone)
            events.append((moment.timestamp(), action))

        def every(first: str, last: str, step: int, action: Action) -> None:
            for minute in range(_minutes(first), _minutes(last) + 1, step):
                at(minute, action)

        drill = self.rollback
        if drill is not None and drill.day == index:
            at(drill.off_at.hour * 60 + drill.off_at.minute, partial(self.redeploy, False))
            at(drill.on_at.hour * 60 + drill.on_at.minute, partial(self.redeploy, True))
        for hour in HEALTH_CHECK_HOURS_UTC:
            at(hour * 60, self.health_check, dt.UTC)
        if date.weekday() < 5:
            at(_minutes("08:30"), partial(self.analysis_run, "pre-market"))
            at(_minutes("12:00"), partial(self.analysis_run, "intraday"))
            every("09:30", "16:00", 5, self.price_update)
            every("09:40", "16:00", 10, self.intraday_bar)
            every("10:15", "15:45", 30, self.track_signals)
            at(_minutes("16:05"), partial(self.analysis_run, "end-of-day"))
            every("09:30", "16:00", 1, self.dashboard_prices)
            every("09:35", "16:00", 5, self.intraday_charts)
            every("07:00", "18:00", 15, self.overview)
            every("08:00", "18:00", 10, self.report_view)
        else:
            if date.weekday() == 6:
                at(_minutes("10:00"), self.weekly_review)
            every("10:00", "18:00", 60, self.report_view)
        events.sort(key=lambda event: event[0])
        return events

    # --- the writers ------------------------------------------------------------------------

    async def redeploy(self, enabled: bool) -> None:
        """Set FEATURE_FLAG_DO_CACHE and redeploy: the seed's rollback (and its undo)."""
        self.env.flag.set(enabled)
        self.deployment = self._deploy(self.env)
        value = self.env.vars[self.env.flag.name]
        self._today.flips.append(f'{self._local_time()} {self.env.flag.name}="{value}"')

    async def health_check(self) -> None:
        """The monitor's KV self-test (a direct KV write, allowed by ``dualcache_kv_allow``)."""
        passed = await _settled(self.deployment.kv_self_test(f"probe-{self.clock.now():.0f}"))
        self._today.health_checks += 1
        self._today.failed_health_checks += not passed

    async def price_update(self) -> None:
        """A new price per symbol, appended to the day's recent history."""
        for symbol in self.watch_list:
            entry = keys.market_prices(symbol)
            previous = await self._read(entry, self.dal.get_market_prices(symbol))
            price = self._tick(symbol)
            history = previous["priceHistory"] if previous and previous["date"] == self._iso else []
            point = {"price": price, "timestamp": self._stamp()}
            close = self._closes[symbol]
            prices = {
                "symbol": symbol,
                "date": self._iso,
                "currentPrice": price,
                "timestamp": self._stamp(),
                "priceHistory": [*history, point][-PRICE_HISTORY:],
                "change": round(price - close, 2),
                "changePercent": round((price - close) / close * 100, 3),
            }
            await self._write(entry, prices, self.dal.store_market_prices(symbol, prices))

    async def intraday_bar(self) -> None:
        """The last 10 minutes as a bar per symbol, appended to the day's bars."""
        for symbol in self.watch_list:
            entry = keys.intraday_bars(symbol, self._iso)
            previous = await self._read(entry, self.dal.get_intraday_bars(symbol, self._iso))
            bars = previous["bars"] if previous else []
            close = self._prices[symbol]
            opening = bars[-1]["c"] if bars else self._closes[symbol]
            spread = round(abs(self._rng.gauss(0, 0.002)) * close, 2)
            bar = {
                "t": self._local_time(),
                "o": opening,
                "h": round(max(opening, close) + spread, 2),
                "l": round(min(opening, close) - spread, 2),
                "c": close,
                "v": self._rng.randrange(50_000, 400_000),
            }
            record = {"symbol": symbol, "date": self._iso, "interval": "10m", "bars": [*bars, bar]}
            await self._write(
                entry, record, self.dal.store_intraday_bars(symbol, self._iso, record)
            )

    async def analysis_run(self, report_type: str) -> None:
        """A scheduled analysis: its results, the signals and its report."""
        iso, stamp = self._iso, self._stamp()
        quotes = {}
        for symbol in self.watch_list:
            quotes[symbol] = await self._read(
                keys.market_prices(symbol), self.dal.get_market_prices(symbol)
            )
        signals = [self._signal(symbol) for symbol in self.watch_list]
        analysis = {
            "analysis_type": report_type,
            "timestamp": stamp,
            "symbols_analyzed": list(self.watch_list),
            "trading_signals": {signal["symbol"]: signal for signal in signals},
        }
        await self._write(keys.analysis(iso), analysis, self.dal.store_analysis(iso, analysis))
        confident = [signal for signal in signals if signal["confidence"] >= 0.8]
        signals_data = {
            "date": iso,
            "signals": signals,
            "metadata": {
                "totalSignals": len(signals),
                "highConfidenceSignals": len(confident),
                "generatedAt": stamp,
            },
        }
        await self._write(
            keys.high_confidence_signals(iso),
            signals_data,
            self.dal.store_high_confidence_signals(iso, signals_data),
        )
        report = {
            "reportType": report_type,
            "date": iso,
            "generatedAt": stamp,
            "highConfidence": [signal["symbol"] for signal in confident],
            "prices": {s: quote["currentPrice"] if quote else None for s, quote in quotes.items()},
        }
        entry = keys.report(report_type, iso)
        await self._write(entry, report, self.dal.store_report(report_type, iso, report))
        if report_type == "pre-market":
            tracking = {"date": iso, "signals": signals, "lastUpdated": stamp}
            await self._write(
                keys.signal_tracking(iso), tracking, self.dal.store_signal_tracking(iso, tracking)
            )
        elif report_type == "end-of-day":
            await self.track_signals(closing=True)
            self._closes = dict(self._prices)

    async def track_signals(self, closing: bool = False) -> None:
        """Mark the day's signals to market (and close them at the end of the day)."""
        iso = self._iso
        entry = keys.signal_tracking(iso)
        tracking = await self._read(entry, self.dal.get_signal_tracking(iso))
        if tracking is None:  # lost in a flag flip: nothing left to update today
            self._today.skipped_updates += 1
            return
        updated = []
        for signal in tracking["signals"]:
            symbol = signal["symbol"]
            quote = await self._read(keys.market_prices(symbol), self.dal.get_market_prices(symbol))
            price = quote["currentPrice"] if quote else signal["entryPrice"]
            direction = {"up": 1, "down": -1, "neutral": 0}[signal["prediction"]]
            pnl = direction * (price - signal["entryPrice"]) / signal["entryPrice"] * 100
            status = "closed" if closing else "active"
            updated.append(
                {**signal, "price": price, "pnlPercent": round(pnl, 3), "status": status}
            )
        record = {"date": iso, "signals": updated, "lastUpdated": self._stamp()}
        await self._write(entry, record, self.dal.store_signal_tracking(iso, record))

    async def weekly_review(self) -> None:
        """Sunday's review of the week's end-of-day summaries, kept 30 days."""
        days = []
        for back in range(6, 1, -1):  # Monday to Friday before this Sunday
            date = (self._today.date - dt.timedelta(days=back)).isoformat()
            summary = await self._read(
                keys.report("end-of-day", date), self.dal.get_report("end-of-day", date)
            )
            if summary is not None:
                days.append({"date": date, "highConfidence": summary["highConfidence"]})
        review = {"reportType": "weekly", "date": self._iso, "generatedAt": self._stamp()}
        review["days"] = days
        entry = keys.report("weekly", self._iso)
        await self._write(entry, review, self.dal.store_report("weekly", self._iso, review))

    # --- the readers ------------------------------------------------------------------------

    async def dashboard_prices(self) -> None:
        """The dashboard's price board."""
        for symbol in self.watch_list:
            await self._read(keys.market_prices(symbol), self.dal.get_market_prices(symbol))

    async def intraday_charts(self) -> None:
        """The dashboard's intraday charts."""
        for symbol in self.watch_list:
            entry = keys.intraday_bars(symbol, self._iso)
            await self._read(entry, self.dal.get_intraday_bars(symbol, self._iso))

    async def overview(self) -> None:
        """The overview page: today's analysis and signals."""
        iso = self._iso
        await self._read(keys.analysis(iso), self.dal.get_analysis(iso))
        await self._read(
            keys.high_confidence_signals(iso), self.dal.get_high_confidence_signals(iso)
        )

    async def report_view(self) -> None:
        """Someone opens the report of the moment."""
        report_type, date = self._report_of_the_moment()
        await self._read(keys.report(report_type, date), self.dal.get_report(report_type, date))

    # --- bookkeeping --------------------------------------------------------------------------

    async def _write(self, entry: keys.Entry, value: keys.Record, call: Any) -> None:
        """Settle a DAL write; a successful one becomes the latest value of its key."""
        result = await _settled(call)
        day = self._today
        day.writes += 1
        if not getattr(result, "success", True):
            day.failed_writes += 1
            return
        day.writes_to_kv += getattr(result, "route", None) == "kv"
        self._latest[entry.key] = (value, self.clock.now() + entry.ttl)

    async def _read(self, entry: keys.Entry, call: Any) -> Any:
        """Settle a DAL read and check it against the latest live write of its key."""
        value = await _settled(call)
        day = self._today
        day.reads += 1
        latest = self._latest.get(entry.key)
        live = latest if latest is not None and self.clock.now() < latest[1] else None
        if value is None:
            day.misses += 1
            day.lost_reads += live is not None
        elif live is None or value != live[0]:
            day.stale_reads += 1
        return value

    def _tick(self, symbol: str) -> float:
        price = round(self._prices[symbol] * (1 + self._rng.gauss(0, 0.0015)), 2)
        self._prices[symbol] = price
        return price

    def _signal(self, symbol: str) -> keys.Record:
        return {
            "symbol": symbol,
            "prediction": self._rng.choice(("up", "down", "neutral")),
            "confidence": round(self._rng.uniform(0.55, 0.95), 2),
            "entryPrice": self._prices[symbol],
        }

    def _report_of_the_moment(self) -> tuple[str, str]:
        date = self._today.date
        if date.weekday() == 5:  # Saturday: Friday's summary
            return "end-of-day", (date - dt.timedelta(days=1)).isoformat()
        if date.weekday() == 6:
            return "weekly", self._iso
        now = self._local_time()
        if now < "12:00":
            return "pre-market", self._iso
        return ("intraday" if now < "16:05" else "end-of-day"), self._iso

    @property
    def _iso(self) -> str:
        return self._today.date.isoformat()

    def _stamp(self) -> str:
        return self.clock.utcnow().isoformat(timespec="seconds")

    def _local_time(self) -> str:
        return self.clock.utcnow().astimezone(NEW_YORK).strftime("%H:%M")


def _minutes(clock_time: str) -> int:
    hours, minutes = clock_time.split(":")
    return int(hours) * 60 + int(minutes)


async def _settled(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def replay(
    version: str,
    env: DualCacheEnv,
    *,
    days: int = 7,
    rollback: RollbackDrill | None = None,
) -> WeekFigures:
    """Replay ``days`` trading days of ``version`` ("legacy", "migrated", "worker") on ``env``.

    The whole replay runs on one event loop; the figures include every store's ledger.
    """
    started = time.perf_counter()
    week = TradingWeek(env, VERSIONS[version], rollback=rollback)
    start = [ledger.position for ledger in env.ledgers()]
    days_run = asyncio.run(week.run(days))
    week.count_store_operations(days_run, start)
    return WeekFigures(version, days_run, time.perf_counter() - started)
