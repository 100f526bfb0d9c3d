"""The projected Cloudflare bill of a test session's workloads, and the cost-growth gate.

A workload is the per-simulated-day operations of the tests that declare one, with ``scale``
(production volume over simulated volume). ``project`` turns them into a 30-day month: each
workload's gross cost, and the account's total net of the Workers Paid allowances (which are
account-wide, so they come off the total only). ``cost_growth`` compares two projections.

Money is integer cents in every output: exact, JSON's own type and byte-stable, where a
Decimal would have to travel as a string and a float would not add up. The arithmetic is
Decimal, and each line is rounded half up to a cent once; a total is the sum of its rounded
lines, so the bill a reader adds up is the bill printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from .limits import KV_DAILY_QUOTAS
from .pricing import (
    BYTES_PER_GB,
    DAYS_PER_MONTH,
    DO_BILLED_GB_PER_ACTIVE_SECOND,
    DO_FREE_DAILY_GB_S,
    DO_FREE_DAILY_REQUESTS,
    METERS,
    PRICES_READ_ON,
    WORKERS_PAID_MONTHLY_USD,
)

DOBackend = Literal["sqlite", "kv"]
CENT = Decimal("0.01")


@dataclass(frozen=True)
class DailyUsage:
    """One workload's operations in one simulated day (an average over its days).

    ``*_stored_bytes`` are the bytes held at the day's peak; ``do_duration_s`` the seconds
    Durable Objects were active; ``do_reads``/``do_writes``/``do_deletes`` storage calls.
    """

    kv_reads: float = 0
    kv_writes: float = 0
    kv_deletes: float = 0
    kv_lists: float = 0
    kv_stored_bytes: float = 0
    do_requests: float = 0
    do_duration_s: float = 0
    do_reads: float = 0
    do_writes: float = 0
    do_deletes: float = 0
    do_stored_bytes: float = 0


@dataclass(frozen=True)
class Workload:
    """A declared workload: its name, what it does a simulated day, and its scale."""

    name: str
    daily: DailyUsage
    scale: float = 1.0
    #: The Durable Object storage backend its classes declare (SQLite is the default).
    do_backend: DOBackend = "sqlite"


def _decimal(value: float | int | str | Decimal) -> Decimal:
    """``value`` as an exact Decimal (a float through its shortest repr, not its binary)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def monthly_quantities(workload: Workload) -> dict[str, Decimal]:
    """The meters a workload runs up in a month in production, by meter name.

    Storage is a steady state: the day's peak, at scale, held all month (GB-months). A
    Durable Object storage call is one row (SQLite) or one request unit (key-value backend):
    values over 4 KB, which cost more units there, are not modelled.
    """
    daily = workload.daily
    month = _decimal(workload.scale) * DAYS_PER_MONTH
    scale = _decimal(workload.scale)
    quantities = {
        "kv_reads": _decimal(daily.kv_reads) * month,
        "kv_writes": _decimal(daily.kv_writes) * month,
        "kv_deletes": _decimal(daily.kv_deletes) * month,
        "kv_lists": _decimal(daily.kv_lists) * month,
        "kv_storage": _decimal(daily.kv_stored_bytes) * scale / BYTES_PER_GB,
        "do_requests": _decimal(daily.do_requests) * month,
        "do_duration": _decimal(daily.do_duration_s) * DO_BILLED_GB_PER_ACTIVE_SECOND * month,
    }
    stored = _decimal(daily.do_stored_bytes) * scale / BYTES_PER_GB
    reads, writes = _decimal(daily.do_reads) * month, _decimal(daily.do_writes) * month
    deletes = _decimal(daily.do_deletes) * month
    if workload.do_backend == "sqlite":  # a delete writes (removes) a row
        quantities |= {
            "do_sqlite_rows_read": reads,
            "do_sqlite_rows_written": writes + deletes,
            "do_sqlite_storage": stored,
        }
    else:
        quantities |= {
            "do_kv_read_units": reads,
            "do_kv_write_units": writes,
            "do_kv_deletes": deletes,
            "do_kv_storage": stored,
        }
    return quantities


def cents(usd: Decimal) -> int:
    """Dollars rounded half up to whole cents."""
    return int((usd / CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _cost(meter: str, quantity: Decimal) -> Decimal:
    """The exact dollar price of ``quantity`` units of ``meter``, no allowance taken off."""
    price = METERS[meter]
    return quantity * price.usd / price.per


def _shown_quantity(quantity: Decimal) -> int | float:
    """A quantity for JSON: whole units as an int, else rounded to 6 places (GB-months)."""
    if quantity == quantity.to_integral_value():
        return int(quantity)
    rounded = quantity.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)


def free_plan_crossings(daily: Mapping[str, Decimal]) -> dict[str, dict[str, int | float]]:
    """The free plan's daily limits that production volumes a day would cross, by meter."""
    quotas = KV_DAILY_QUOTAS["free"]
    assert quotas is not None, "the free plan has daily quotas"
    limits = {
        "kv_reads": quotas["read"],
        "kv_writes": quotas["write"],
        "kv_deletes": quotas["delete"],
        "kv_lists": quotas["list"],
        "do_requests": DO_FREE_DAILY_REQUESTS,
        "do_duration": DO_FREE_DAILY_GB_S,
    }
    return {
        meter: {"limit": limit, "per_day": _shown_quantity(daily[meter])}
        for meter, limit in sorted(limits.items())
        if daily.get(meter, Decimal(0)) > limit
    }


@dataclass(frozen=True)
class WorkloadBill:
    """A workload's month: the quantities, each meter's gross cost, free-plan crossings."""

    name: str
    scale: Decimal
    do_backend: str
    quantities: dict[str, Decimal]
    lines: dict[str, int]
    free_plan_crossed: dict[str, dict[str, int | float]]

    @property
    def gross_cents(self) -> int:
        return sum(self.lines.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "scale": _shown_quantity(self.scale),
            "do_backend": self.do_backend,
            "monthly": {m: _shown_quantity(q) for m, q in sorted(self.quantities.items())},
            "lines_cents": dict(sorted(self.lines.items())),
            "gross_cents": self.gross_cents,
            "free_plan_crossed": self.free_plan_crossed,
        }


@dataclass(frozen=True)
class Projection:
    """The month of every workload, and the account's total net of the allowances."""

    workloads: dict[str, WorkloadBill]
    quantities: dict[str, Decimal]
    net_lines: dict[str, int]
    free_plan_crossed: dict[str, dict[str, int | float]] = field(default_factory=dict)

    @property
    def gross_cents(self) -> int:
        return sum(bill.gross_cents for bill in self.workloads.values())

    @property
    def usage_cents(self) -> int:
        """What the account pays for use beyond the allowances."""
        return sum(self.net_lines.values())

    def to_json(self) -> dict[str, Any]:
        """The ``bill`` section of a report (documented in ``report_html``)."""
        return {
            "days": DAYS_PER_MONTH,
            "prices_read_on": PRICES_READ_ON,
            "workloads": {name: self.workloads[name].to_json() for name in sorted(self.workloads)},
            "total": {
                "monthly": {m: _shown_quantity(q) for m, q in sorted(self.quantities.items())},
                "included": {
                    m: _shown_quantity(METERS[m].included) for m in sorted(self.quantities)
                },
                "gross_cents": self.gross_cents,
                "net_lines_cents": dict(sorted(self.net_lines.items())),
                "usage_cents": self.usage_cents,
                "subscription_cents": cents(WORKERS_PAID_MONTHLY_USD),
                "total_cents": self.usage_cents + cents(WORKERS_PAID_MONTHLY_USD),
                "free_plan_crossed": self.free_plan_crossed,
            },
        }


def project(workloads: Iterable[Workload]) -> Projection:
    """Project each workload's month and the account's bill (allowances off the total)."""
    bills: dict[str, WorkloadBill] = {}
    totals: dict[str, Decimal] = {}
    for workload in workloads:
        if workload.name in bills:
            raise ValueError(f"workload {workload.name!r} is declared twice")
        if _decimal(workload.scale) <= 0:
            raise ValueError(f"workload {workload.name!r}: scale must be > 0, got {workload.scale}")
        quantities = monthly_quantities(workload)
        per_day = {meter: q / DAYS_PER_MONTH for meter, q in quantities.items()}
        bills[workload.name] = WorkloadBill(
            workload.name,
            _decimal(workload.scale),
            workload.do_backend,
            quantities,
            {meter: cents(_cost(meter, q)) for meter, q in quantities.items()},
            free_plan_crossings(per_day),
        )
        for meter, quantity in quantities.items():
            totals[meter] = totals.get(meter, Decimal(0)) + quantity
    net = {
        meter: cents(_cost(meter, max(Decimal(0), quantity - METERS[meter].included)))
        for meter, quantity in totals.items()
    }
    per_day = {meter: q / DAYS_PER_MONTH for meter, q in totals.items()}
    return Projection(bills, totals, net, free_plan_crossings(per_day))


# --- the cost-growth gate -------------------------------------------------------------------


@dataclass(frozen=True)
class CostLimit:
    """How much dearer a month may get: whole cents, or a percentage of the baseline."""

    cents: int | None = None
    percent: Decimal | None = None

    @classmethod
    def parse(cls, text: str, source: str) -> CostLimit:
        """``4.10``, ``$4.10`` or ``10%``; a ValueError whose message starts with ``source``."""
        raw = text.strip()
        match = re.fullmatch(r"(\$?)\s*(\d+(?:\.\d+)?)\s*(%?)", raw)
        problem = None
        if match is None or (match[1] and match[3]):
            problem = "expected a dollar amount (e.g. 4.10 or $4.10) or a percentage (e.g. 10%)"
        else:
            number = Decimal(match[2])
            if match[3]:
                return cls(percent=number)
            if number != number.quantize(CENT):
                problem = "a dollar amount has at most 2 decimals (whole cents)"
            else:
                return cls(cents=int(number * 100))
        raise ValueError(f"{source}: {problem}, got {text!r}")

    def exceeded_by(self, before_cents: int, added_cents: int) -> bool:
        """Whether adding ``added_cents`` to a ``before_cents`` month goes past the limit."""
        if self.cents is not None:
            return added_cents > self.cents
        assert self.percent is not None
        if before_cents == 0:
            return added_cents > 0
        return Decimal(added_cents) * 100 > self.percent * before_cents

    def __str__(self) -> str:
        if self.cents is not None:
            return dollars(self.cents)
        return f"{self.percent}%"


def dollars(amount_cents: int) -> str:
    """``$4.10``, ``$1,234.00``, ``-$0.50``."""
    sign = "-" if amount_cents < 0 else ""
    whole, part = divmod(abs(amount_cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


@dataclass(frozen=True)
class CostGrowth:
    """How a change moved the month's gross cost, and the sentence the gate prints."""

    before_cents: int
    after_cents: int
    kv_writes_added: int
    top_site: str | None
    top_site_percent: int | None
    exceeded: bool
    limit: str

    @property
    def added_cents(self) -> int:
        return self.after_cents - self.before_cents

    @property
    def sentence(self) -> str:
        verb = "adds" if self.added_cents >= 0 else "saves"
        text = f"this change {verb} {dollars(abs(self.added_cents))}/month"
        if self.kv_writes_added:
            text += f": {self.kv_writes_added:+,} KV writes"
            if self.top_site is not None:
                text += f", {self.top_site_percent} % of them from {self.top_site}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "before_cents": self.before_cents,
            "after_cents": self.after_cents,
            "added_cents": self.added_cents,
            "kv_writes_added": self.kv_writes_added,
            "top_site": self.top_site,
            "top_site_percent": self.top_site_percent,
            "exceeded": self.exceeded,
            "limit": self.limit,
            "sentence": self.sentence,
        }


def cost_growth(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    limit: CostLimit,
    sites_before: Mapping[str, int],
    sites_after: Mapping[str, int],
) -> CostGrowth:
    """Compare two ``bill`` sections (``Projection.to_json``) against ``limit``.

    The gate compares gross cost: the allowances are shared with everything else on the
    account, so a change's price is what its own use costs, not what is left after them.
    The call sites' KV writes (simulated counts) name the site that grew most and its share
    of the sites' added writes.
    """
    before_cents = before["total"]["gross_cents"]
    after_cents = after["total"]["gross_cents"]
    writes = after["total"]["monthly"].get("kv_writes", 0) - before["total"]["monthly"].get(
        "kv_writes", 0
    )
    grown = {
        site: sites_after.get(site, 0) - sites_before.get(site, 0)
        for site in set(sites_before) | set(sites_after)
    }
    grown = {site: delta for site, delta in grown.items() if delta > 0}
    top_site, top_percent = None, None
    if grown and writes > 0:
        top_site = min(grown, key=lambda site: (-grown[site], site))
        share = Decimal(grown[top_site]) * 100 / sum(grown.values())
        top_percent = int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return CostGrowth(
        before_cents,
        after_cents,
        round(writes),
        top_site,
        top_percent,
        limit.exceeded_by(before_cents, after_cents - before_cents),
        str(limit),
    )
