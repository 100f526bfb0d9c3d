"""What it costs: the ``dualcache_workload`` marker, each test's usage a simulated day, the
session's projected month (``bill`` in the JSON report) and the cost gate.

A test that simulates production traffic declares it with
``@pytest.mark.dualcache_workload(scale=20, name="market")`` (scale: production volume over
simulated volume; the name defaults to the node id). Under ``--dualcache`` its operations
(the ones its KV accounting reads) become a ``bill.DailyUsage``: the counts of the report's
columns divided by the simulated UTC days the test spanned. The usage travels as plain data
in the test's entry (``tests[nodeid]["workload"]``), so the bill is derived from the tests,
and a merged or gated report computes the same one without pytest.

Not measured: Durable Object duration (no wall time is simulated) and stored bytes (the
session does not hold the tests' stores); both are 0, and the bill says so in its notes.
Importing this module imports no pytest: ``python -m pytest_dualcache gate`` uses it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bill import CostGrowth, CostLimit, DailyUsage, Workload, cost_growth, dollars, project
from .budget import spans
from .ledger import OperationRecord
from .limits import SECONDS_PER_DAY
from .pricing import DAYS_PER_MONTH
from .report import summarize

if TYPE_CHECKING:
    from .baseline import GateResult, Growth
    from .recorder import Scope

MARKER = "@pytest.mark.dualcache_workload"
MARKER_NAME = "dualcache_workload"
#: What the bill cannot measure, said wherever the bill is shown.
NOTES = (
    "Durable Object duration is not simulated: its GB-s are 0 in this bill",
    "stored bytes (KV and Durable Object storage) are not measured: storage is 0 in this bill",
)
#: What the cost gate says instead of a verdict when there is nothing to compare with.
NO_BASELINE_BILL = (
    "cost not compared: the baseline has no bill (save the baseline again from a session "
    "whose tests declare workloads)"
)
NO_BILL = "cost not compared: no test of this session declared a workload (dualcache_workload)"
#: The Durable Object storage calls read rows; the others write them (``do_writes``).
_DO_READ_COLUMNS = ("gets", "lists")
_DO_CACHE_COLUMNS = ("gets", "sets", "deletes", "lists")
#: Calls into a user's Durable Objects that Cloudflare bills as requests (``do_calls``).
_DO_REQUEST_CALLS = ("rpc", "fetch", "alarms")
SECONDS_PER_HOUR = SECONDS_PER_DAY // 24
#: A timeline hour's figures: (key, the ``report.summarize`` group and column it counts).
HOUR_COLUMNS = (
    ("kv_writes", "kv", "writes"),
    ("do_sets", "do", "sets"),
    ("do_gets", "do", "gets"),
    ("do_hits", "do", "hits"),
)


class WorkloadError(ValueError):
    """A ``dualcache_workload`` marker that cannot be read; the message names the marker."""


@dataclass(frozen=True)
class Declared:
    """A test's declared workload: its name (None: the test's node id) and its scale."""

    name: str | None
    scale: float


def marker_workload(args: tuple[Any, ...], kwargs: Mapping[str, object]) -> Declared:
    """The marker's ``scale`` (a positive number, 1.0 if absent) and optional ``name``."""
    if args:
        raise WorkloadError(f"{MARKER} takes keywords only, e.g. dualcache_workload(scale=20)")
    unknown = sorted(set(kwargs) - {"scale", "name"})
    if unknown:
        raise WorkloadError(f"{MARKER}: unknown argument {unknown[0]!r}; use scale and name")
    scale = kwargs.get("scale", 1.0)
    number = isinstance(scale, int | float) and not isinstance(scale, bool)
    if not (number and math.isfinite(scale) and scale > 0):  # type: ignore[arg-type]
        raise WorkloadError(
            f"{MARKER}: scale (production volume over simulated volume) must be a number > 0, "
            f"got {scale!r}"
        )
    name = kwargs.get("name")
    if name is not None and not (isinstance(name, str) and name.strip()):
        raise WorkloadError(f"{MARKER}: name must be a non-empty string, got {name!r}")
    return Declared(name, float(scale))  # type: ignore[arg-type]


def scale_conflicts(declared: Mapping[str, Declared]) -> str | None:
    """Why tests (node id -> workload) that share a workload name cannot add up, or None:
    their usages add up into one workload, so they must declare the same scale."""
    first: dict[str, tuple[str, float]] = {}
    for nodeid, workload in sorted(declared.items()):  # the same message in any test order
        name = workload.name or nodeid
        seen = first.setdefault(name, (nodeid, workload.scale))
        if seen[1] != workload.scale:
            return (
                f"{MARKER}: workload {name!r} is declared with scale {seen[1]:g} by {seen[0]} "
                f"and {workload.scale:g} by {nodeid}; tests sharing a workload share its scale"
            )
    return None


# --- a test's usage ---------------------------------------------------------------------------


def simulated_days(records: list[OperationRecord]) -> int:
    """The simulated UTC days from the test's first operation to its last (at least 1)."""
    days = [day for day, _ in spans(records, "day") if day is not None]
    return (days[-1] - days[0]).days + 1 if days else 1


def daily_usage(
    data: Mapping[str, Any],
    records: list[OperationRecord],
    cache_records: list[OperationRecord],
    rootdir: Path,
) -> DailyUsage:
    """A test's usage a simulated day, from its report entry (``report.summarize``).

    DO requests: every built-in DO cache operation (a request to its Durable Object) and
    every RPC call, ``stub.fetch`` and alarm of a user's Durable Object. DO storage calls:
    the DO columns (cache and ``ctx.storage`` alike) plus ``setAlarm`` (billed as a row
    written). Duration and stored bytes are not measured (see ``NOTES``).
    """
    days = simulated_days(records)
    kv, do, calls = data["kv"], data["do"], data.get("do_calls", {})
    cache = summarize(cache_records, rootdir)["do"]
    set_alarms = sum(1 for r in records if r.store_kind == "do" and r.ok and r.op == "setAlarm")
    requests = sum(cache[c] for c in _DO_CACHE_COLUMNS) + sum(
        calls.get(c, 0) for c in _DO_REQUEST_CALLS
    )
    counts = {
        "kv_reads": kv["reads"],
        "kv_writes": kv["writes"],
        "kv_deletes": kv["deletes"],
        "kv_lists": kv["lists"],
        "do_requests": requests,
        "do_reads": sum(do[c] for c in _DO_READ_COLUMNS),
        "do_writes": do["sets"] + set_alarms,
        "do_deletes": do["deletes"],
    }
    return DailyUsage(**{field: _per_day(n, days) for field, n in counts.items()})


def _per_day(count: int, days: int) -> int | float:
    """``count / days``: an int when whole, else rounded to 6 places (stable JSON)."""
    return count // days if count % days == 0 else round(count / days, 6)


def measured(
    marker: Any,
    nodeid: str,
    records: list[OperationRecord],
    scope: Scope,
    data: Mapping[str, Any],
    rootdir: Path,
) -> dict[str, Any]:
    """The test's ``workload`` entry in the JSON report, from its marker and operations."""
    declared = marker_workload(marker.args, marker.kwargs)
    cache = scope.records(kind="do", where=lambda ledger: ledger.do_cache)
    usage = daily_usage(data, records, cache, rootdir)
    scale = int(declared.scale) if declared.scale.is_integer() else declared.scale
    start_hour, hours = hourly(records, rootdir)
    return {
        "name": declared.name or nodeid,
        "scale": scale,
        "days": simulated_days(records),
        "daily": asdict(usage),
        "start_hour": start_hour,
        "hours": hours,
    }


def hourly(records: list[OperationRecord], rootdir: Path) -> tuple[int, list[dict[str, int]]]:
    """The test's figures per simulated hour (``HOUR_COLUMNS``, counted as the report counts
    them), from the hour of its first operation (hours since the epoch) to its last's."""
    by_hour: dict[int, list[OperationRecord]] = {}
    for record in records:
        by_hour.setdefault(int(record.at // SECONDS_PER_HOUR), []).append(record)
    if not by_hour:
        return 0, []
    hours = []
    for hour in range(min(by_hour), max(by_hour) + 1):
        data = summarize(by_hour.get(hour, []), rootdir)
        hours.append({key: data[group][column] for key, group, column in HOUR_COLUMNS})
    return min(by_hour), hours


def timeline_section(tests: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The report's ``timeline``: per workload, its tests' hours added up hour by hour over
    simulated time (no budget line: ``budget_per_day`` is None), or None without workloads."""
    grouped: dict[str, dict[int, Counter[str]]] = {}
    for _, data in sorted(tests.items()):
        entry = data.get("workload")
        if entry is None:
            continue
        per_hour = grouped.setdefault(entry["name"], {})
        for offset, counts in enumerate(entry.get("hours", [])):
            per_hour.setdefault(entry["start_hour"] + offset, Counter()).update(counts)
    timeline = {}
    for name, per_hour in sorted(grouped.items()):
        span = range(min(per_hour), max(per_hour) + 1) if per_hour else range(0)
        hours = [{key: per_hour.get(h, Counter())[key] for key, _, _ in HOUR_COLUMNS} for h in span]
        timeline[name] = {"budget_per_day": None, "hours": hours}
    return timeline or None


# --- the session's bill -----------------------------------------------------------------------


def workloads_of(tests: Mapping[str, Mapping[str, Any]]) -> list[Workload]:
    """The declared workloads of ``tests`` (a report's), each the sum of its tests' usages.

    Tests that share a name but not a scale (a conflict collection refuses, except on
    pytest-xdist workers) stay apart, each named with its scale, rather than be mispriced.
    """
    grouped: dict[tuple[str, float], Counter[str]] = {}
    for _, data in sorted(tests.items()):
        entry = data.get("workload")
        if entry is not None:
            daily = grouped.setdefault((entry["name"], float(entry["scale"])), Counter())
            for field, value in entry["daily"].items():
                daily[field] += Decimal(str(value))  # type: ignore[assignment]
    scales = Counter(name for name, _ in grouped)
    return [
        Workload(
            name if scales[name] == 1 else f"{name} (scale {scale:g})",
            DailyUsage(**dict(daily)),  # type: ignore[arg-type]
            scale,
        )
        for (name, scale), daily in sorted(grouped.items())
    ]


def bill_section(tests: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The report's ``bill`` (``bill.Projection.to_json`` and the ``notes``), or None when no
    test declared a workload."""
    workloads = workloads_of(tests)
    if not workloads:
        return None
    return {**project(workloads).to_json(), "notes": list(NOTES)}


def render_bill(bill: Mapping[str, Any] | None) -> list[str]:
    """The terminal's "projected month" block (nothing without a bill)."""
    if not bill:
        return []
    lines = [
        f"projected month ({bill['days']} days at Workers Paid prices of "
        f"{bill['prices_read_on']}), gross per workload:"
    ]
    for name, data in bill["workloads"].items():
        lines.append(f"  {dollars(data['gross_cents']):>10}  {name} (scale {data['scale']:,})")
        lines.extend(f"              {line}" for line in _crossed(data["free_plan_crossed"]))
    total = bill["total"]
    lines.append(
        f"  total: {dollars(total['gross_cents'])} gross; {dollars(total['usage_cents'])} "
        f"beyond the Workers Paid allowances + {dollars(total['subscription_cents'])} "
        f"subscription = {dollars(total['total_cents'])}/month"
    )
    lines.extend(f"  {line}" for line in _crossed(total["free_plan_crossed"], "all together, "))
    lines.extend(f"  note: {note}" for note in bill.get("notes", []))
    return lines


def _crossed(crossed: Mapping[str, Mapping[str, Any]], prefix: str = "") -> list[str]:
    """One line naming the free plan's daily limits crossed (none when none is)."""
    if not crossed:
        return []
    shown = ", ".join(
        f"{meter} {found['per_day']:,} a day > {found['limit']:,}"
        for meter, found in crossed.items()
    )
    return [f"{prefix}crosses the free plan's daily limits: {shown}"]


def monthly_write_sites(tests: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """KV writes a production month by call site, over the workload tests: each test's
    writes at a site a simulated day, at its workload's scale, for 30 days."""
    sites: Counter[str] = Counter()
    for _, data in sorted(tests.items()):
        entry = data.get("workload")
        if entry is None:
            continue
        month = Decimal(str(entry["scale"])) * DAYS_PER_MONTH / entry["days"]
        for site, writes in data["write_sites"].items():
            sites[site] += int((writes * month).to_integral_value())
    return dict(sorted(sites.items()))


# --- the cost gate ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CostVerdict:
    """The cost gate's outcome: the growth judged, or why nothing was compared."""

    growth: CostGrowth | None = None
    note: str | None = None

    @property
    def failed(self) -> bool:
        """The month got dearer beyond the limit (a skipped comparison fails nothing)."""
        return self.growth is not None and self.growth.exceeded

    def page_sections(self, gate: dict[str, Any]) -> dict[str, Any]:
        """What the HTML and Markdown pages get: the ``cost_growth`` section, or the note
        added to the KV gate's notes (``gate``, ``GateResult.to_json``)."""
        if self.growth is None:
            gate["notes"] = [*gate["notes"], self.note]
            return {}
        return {"cost_growth": self.growth.to_json()}

    def render(self) -> list[str]:
        """What the terminal and ``python -m pytest_dualcache gate`` print."""
        if self.growth is None:
            return [f"note: {self.note}"]
        verdict = "grew beyond" if self.growth.exceeded else "within"
        return [
            f"projected month {verdict} the baseline's (allowed growth: {self.growth.limit}): "
            f"{self.growth.sentence}"
        ]


def gate_sections(gate: GateResult, growth: Growth, cost: CostVerdict | None) -> dict[str, Any]:
    """The report sections the HTML and Markdown pages read for a baseline comparison
    (``gate``, and ``cost_growth`` when the cost gate compared): what the plugin adds to its
    pages under ``--dualcache-baseline``, and ``python -m pytest_dualcache md --baseline``."""
    sections = {"gate": gate.to_json(growth)}
    return {**sections, **(cost.page_sections(sections["gate"]) if cost else {})}


def judge_cost(
    baseline: Mapping[str, Any], tests: Mapping[str, Mapping[str, Any]], limit: CostLimit
) -> CostVerdict:
    """The cost gate, the one the plugin and the CLI both run: this session's bill (from its
    ``tests``) against the baseline's, ``limit`` the growth allowed."""
    before = baseline.get("bill")
    if before is None:
        return CostVerdict(note=NO_BASELINE_BILL)
    after = bill_section(tests)
    if after is None:
        return CostVerdict(note=NO_BILL)
    sites_before = baseline.get("bill_write_sites", {})
    return CostVerdict(cost_growth(before, after, limit, sites_before, monthly_write_sites(tests)))


def baseline_bill(tests: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What a baseline keeps of the cost: the bill and the monthly KV writes by call site
    (nothing when no test declared a workload)."""
    bill = bill_section(tests)
    if bill is None:
        return {}
    return {"bill": bill, "bill_write_sites": monthly_write_sites(tests)}


def declared_tests(items: Iterable[Any]) -> dict[str, Declared]:
    """Each collected item's declared workload by node id; a WorkloadError names the test."""
    declared = {}
    for item in items:
        marker = item.get_closest_marker(MARKER_NAME)
        if marker is None:
            continue
        try:
            declared[item.nodeid] = marker_workload(marker.args, marker.kwargs)
        except WorkloadError as exc:
            raise WorkloadError(f"{item.nodeid}: {exc}") from None
    return declared
