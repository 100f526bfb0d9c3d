"""The KV baseline: what a main-branch run saves, how a saved file is checked, and the gate.

A baseline holds per-test and total KV writes, deletes and lists with the write call sites;
``compare`` fails the gate when a pull request's KV writes grow beyond ``Growth``. When the
session's tests declared workloads it also keeps the projected month (``bill``) and its KV
writes by call site (``bill_write_sites``), for the cost gate (``workload.judge_cost``):
optional keys, so the format stays version 1 and a baseline without them still loads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .report import SessionReport

#: The baseline format ``baseline_of`` writes, and every one ``load_baseline`` reads. Version 1
#: is the only one there has been (since the gate first shipped): to add version N, write it
#: here, keep reading the older ones, and skip (with a note) what an older one lacks.
BASELINE_VERSION = 1
KNOWN_BASELINE_VERSIONS = (1,)
#: The counts a baseline keeps per test, and gates.
GATED_KINDS = ("writes", "deletes", "lists")
#: What the gate says instead of a verdict when the session (or report) is incomplete: partial
#: figures neither pass nor fail it.
NOT_COMPARED = "KV writes not compared with the baseline: the session stopped early"


def baseline_of(report: SessionReport) -> dict[str, Any]:
    """What a baseline keeps: per-test and total KV writes, deletes, lists and write sites."""
    tests = {
        nodeid: {
            **{kind: data["kv"][kind] for kind in GATED_KINDS},
            "write_sites": sorted(data["write_sites"]),
        }
        for nodeid, data in sorted(report.tests.items())
    }
    totals = {kind: sum(test[kind] for test in tests.values()) for kind in GATED_KINDS}
    from .workload import baseline_bill

    cost = baseline_bill(report.tests)  # optional keys: older readers ignore them
    return {"version": BASELINE_VERSION, "tests": tests, "totals": totals, **cost}


class BaselineError(ValueError):
    """The baseline file is missing or not one of ours."""


class _SchemaError(Exception):
    """A baseline field that is not what its version says: where it is, and what is wrong."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


def load_baseline(path: Path) -> dict[str, Any]:
    """A saved baseline, its whole schema checked; else a BaselineError naming the bad field.

    Any known version loads; a section an older one lacks is skipped by ``compare``.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"baseline {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"baseline {path} is not readable JSON: {exc}") from None
    try:
        version = _check_version(data)
        if version not in KNOWN_BASELINE_VERSIONS:
            known = ", ".join(map(str, KNOWN_BASELINE_VERSIONS))
            newer = " (a newer pytest-dualcache wrote it)" if version > BASELINE_VERSION else ""
            raise BaselineError(
                f"baseline {path} has version {version}{newer}; this pytest-dualcache reads "
                f"version {known}: save the baseline again with this one"
            )
        _check_body(data)
    except _SchemaError as exc:
        raise BaselineError(
            f"baseline {path} is not a dualcache baseline (save one with "
            f"--dualcache-save-baseline): {exc}"
        ) from None
    return data


def _check_version(data: object) -> int:
    """The version of a baseline ``data`` (an object with an integer version)."""
    if not isinstance(data, dict):
        raise _SchemaError(
            "the top level", f'expected an object with "version" and "tests", got {_shown(data)}'
        )
    if "version" not in data:
        raise _SchemaError("version", "missing")
    if not _is_int(data["version"]):
        raise _SchemaError("version", f"expected an integer, got {_shown(data['version'])}")
    return int(data["version"])


def _check_body(data: dict[str, Any]) -> None:
    """Raise a _SchemaError at the first field of a version 1 baseline that is wrong."""
    if "tests" not in data:
        raise _SchemaError("tests", "missing (expected an object of test node ids)")
    tests = data["tests"]
    if not isinstance(tests, dict):
        raise _SchemaError("tests", f"expected an object of test node ids, got {_shown(tests)}")
    for nodeid, entry in tests.items():
        where = f"tests[{json.dumps(nodeid)}]"
        if not isinstance(entry, dict):
            raise _SchemaError(
                where,
                'expected an object with "writes", "deletes", "lists" and "write_sites", '
                f"got {_shown(entry)}",
            )
        _check_counts(entry, where)
        sites = entry.get("write_sites", [])
        if not isinstance(sites, list):
            raise _SchemaError(
                f"{where}.write_sites", f"expected a list of call sites, got {_shown(sites)}"
            )
        for index, site in enumerate(sites):
            if not isinstance(site, str):
                raise _SchemaError(
                    f"{where}.write_sites[{index}]",
                    f"expected a call site string (path:line:function), got {_shown(site)}",
                )
    if "totals" in data:
        totals = data["totals"]
        if not isinstance(totals, dict):
            raise _SchemaError(
                "totals",
                f'expected an object with "writes", "deletes" and "lists", got {_shown(totals)}',
            )
        _check_counts(totals, "totals")
    _check_bill(data)


def _check_bill(data: dict[str, Any]) -> None:
    """The optional ``bill`` (what the cost gate reads of it) and ``bill_write_sites``."""
    if "bill" in data:
        bill = data["bill"]
        total = bill.get("total") if isinstance(bill, dict) else None
        if not isinstance(total, dict):
            raise _SchemaError("bill", f'expected an object with "total", got {_shown(bill)}')
        if not _is_int(total.get("gross_cents")):
            raise _SchemaError(
                "bill.total.gross_cents",
                f"expected an integer, got {_shown(total.get('gross_cents'))}",
            )
        monthly = total.get("monthly")
        if not isinstance(monthly, dict) or not all(
            isinstance(n, int | float) and not isinstance(n, bool) for n in monthly.values()
        ):
            raise _SchemaError(
                "bill.total.monthly", f"expected an object of numbers, got {_shown(monthly)}"
            )
    sites = data.get("bill_write_sites", {})
    if not isinstance(sites, dict) or not all(_is_int(n) and n >= 0 for n in sites.values()):
        raise _SchemaError(
            "bill_write_sites",
            f"expected an object of call sites and integers >= 0, got {_shown(sites)}",
        )


def _check_counts(entry: dict[str, Any], where: str) -> None:
    """Each gated count ``entry`` has is an integer >= 0 (a missing one is skipped)."""
    for kind in GATED_KINDS:
        if kind in entry and not (_is_int(entry[kind]) and entry[kind] >= 0):
            raise _SchemaError(
                f"{where}.{kind}", f"expected an integer >= 0, got {_shown(entry[kind])}"
            )


def _is_int(value: object) -> bool:
    """An integer, and not a bool (JSON's true is no count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: object) -> str:
    """``value`` as JSON, cut short for an error message."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Growth:
    """An allowance for growth: an absolute count, or a percentage of the baseline."""

    amount: float
    percent: bool

    @classmethod
    def parse(cls, text: str) -> Growth:
        raw = text.strip()
        percent = raw.endswith("%")
        try:
            amount = float(raw[:-1] if percent else raw)
        except ValueError:
            amount = -1.0
        if not math.isfinite(amount) or amount < 0 or (not percent and not amount.is_integer()):
            raise ValueError(
                f"expected a count (e.g. 5) or a percentage (e.g. 10%) >= 0, got {text!r}"
            )
        return cls(amount, percent)

    def allows(self, before: int, after: int) -> bool:
        allowance = before * self.amount / 100 if self.percent else self.amount
        return after - before <= allowance

    def __str__(self) -> str:
        return f"{self.amount:g}%" if self.percent else f"{self.amount:g}"


@dataclass
class GateResult:
    """What grew beyond the allowance, and which tests the baseline does not know."""

    grew: list[dict[str, Any]]
    new_tests: list[str]
    #: What the baseline lacked, so that part of the gate was skipped.
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.grew)

    def to_json(self, growth: Growth) -> dict[str, Any]:
        """The verdict as the HTML and Markdown reports read it (``report_data``'s ``gate``)."""
        return {
            "allowed": str(growth),
            "grew": self.grew,
            "new_tests": self.new_tests,
            "notes": self.notes,
        }

    def render(self, growth: Growth) -> list[str]:
        lines = []
        if self.grew:
            lines.append(f"KV writes grew beyond the baseline (allowed growth: {growth}):")
            width = max(len(row["name"]) for row in self.grew)
            lines.append(f"  {'test':<{width}}  baseline    now  growth")
            for row in self.grew:
                lines.append(
                    f"  {row['name']:<{width}}  {row['before']:>8}  {row['after']:>5}  "
                    f"{row['after'] - row['before']:+6}"
                )
                lines.extend(f"      new call site: {site}" for site in row["new_sites"])
        else:
            lines.append(f"KV writes within the baseline (allowed growth: {growth})")
        if self.new_tests:
            lines.append(f"tests not in the baseline (not gated): {len(self.new_tests)}")
            lines.extend(f"  {nodeid}" for nodeid in self.new_tests)
        lines.extend(f"note: {note}" for note in self.notes)
        return lines


def compare(baseline: dict[str, Any], current: dict[str, Any], growth: Growth) -> GateResult:
    """Tests (and the total) whose KV writes grew beyond ``growth`` over ``baseline``.

    A baseline test without a write count is not gated, and one without write sites lists
    no new call sites: ``notes`` says so.
    """
    grew = []
    uncounted: list[str] = []
    unsited: list[str] = []
    shared = []
    for nodeid, now in current["tests"].items():
        before = baseline["tests"].get(nodeid)
        if before is None:
            continue
        if "writes" not in before:
            uncounted.append(nodeid)
            continue
        shared.append(nodeid)
        if not growth.allows(before["writes"], now["writes"]):
            if "write_sites" not in before:
                unsited.append(nodeid)
            known = set(before.get("write_sites", now["write_sites"]))
            grew.append(
                {
                    "name": nodeid,
                    "before": before["writes"],
                    "after": now["writes"],
                    "new_sites": [site for site in now["write_sites"] if site not in known],
                }
            )
    # The total covers the tests both runs know: a new test is listed, not held against it,
    # and a subset run (-k, --lf) is not compared with the whole baseline.
    total_before = sum(baseline["tests"][nodeid]["writes"] for nodeid in shared)
    total_after = sum(current["tests"][nodeid]["writes"] for nodeid in shared)
    if not growth.allows(total_before, total_after):
        grew.append(
            {"name": "TOTAL", "before": total_before, "after": total_after, "new_sites": []}
        )
    new_tests = sorted(set(current["tests"]) - set(baseline["tests"]))
    notes = []
    if uncounted:
        notes.append(
            f"the baseline has no KV write count for {len(uncounted)} of these tests: they "
            "are not gated (save the baseline again to gate them)"
        )
    if unsited:
        notes.append(
            f"the baseline lists no write sites for {len(unsited)} grown tests: their new "
            "call sites are not shown"
        )
    return GateResult(grew, new_tests, notes)
