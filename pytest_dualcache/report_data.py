"""What the HTML and Markdown reports read from a JSON report, beyond ``report.py``'s keys.

The renderers take the JSON report (``SessionReport.to_json``) as a dict. These sections
and per-test keys are optional: a renderer shows what is there and says what is not.

- ``bill``: ``bill.Projection.to_json()`` (``workloads``, ``total`` with cents), with
  ``notes`` (what it does not measure); ``SessionReport`` derives it from the tests'
  ``workload`` entries (``workload.py``).
- ``cost_growth``: ``bill.CostGrowth.to_json()``, with the gate's ``sentence``.
- ``gate``: the baseline gate, ``{"allowed": "10%", "grew": [{"name", "before", "after",
  "new_sites"}], "new_tests": [...], "notes": [...]}`` (``baseline.GateResult``'s fields).
- ``latency``: ``{"model": latency.LatencyModel.to_json(), "requests": {name: {"count",
  "p50_ms", "p95_ms", "p99_ms", "max_ms"}}}``, only with the latency model on;
  ``SessionReport`` derives the requests from the tests' ``requests`` (``latency.py``).
- ``slo``: a list of ``{"scope": "session" or a node id, "metric": "do_hit_rate",
  "comparison": ">=", "limit": 0.7, "measured": 0.65, "passed": false}``.
- ``timeline``: per workload, ``{"budget_per_day": 50 or null, "hours": [{"kv_writes",
  "do_sets", "do_gets", "do_hits"}, ...]}``, one entry per simulated hour from the first.
- per test in ``tests``: ``workload`` (``{"name", "scale", "days", "daily"}``, a declared
  workload's usage a simulated day), ``requests`` (``{name: [microseconds, ...]}``, its
  timed requests with the latency model on), ``slo_evidence`` (``slo_metrics.evidence``,
  with ini ``dualcache_slo``: what the session's gates are judged on), ``outcome``
  (passed, failed, xfailed, xpassed, skipped), ``clause`` and ``factory`` of a contract
  test, and ``transcript`` (its harness transcript text).
  Without them a contract test's clause and factory come from its node id
  (``test_FB_1_...[legacy]``) and its outcome from the waivers, else "ran".
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

HOURS_PER_DAY = 24
#: Outcomes of a matrix cell, worst first: the cell shows the worst of its tests.
OUTCOME_ORDER = ("failed", "xpassed", "xfailed", "passed", "skipped", "ran")
_CLAUSE_TEST = re.compile(r"::test_([A-Z]+)(?:_(\d+))?_[^\[]*(?:\[([^\]\-]+)[^\]]*\])?$")


def daily(hours: list[dict[str, int]], key: str) -> list[int]:
    """Per simulated day, the sum of ``key`` over its 24 hours (a last partial day counts)."""
    return [
        sum(hour.get(key, 0) for hour in hours[start : start + HOURS_PER_DAY])
        for start in range(0, len(hours), HOURS_PER_DAY)
    ]


def ratio(part: int, whole: int) -> float | None:
    """``part / whole`` rounded to 6 places, None when ``whole`` is 0."""
    return round(part / whole, 6) if whole else None


def test_clause_factory(nodeid: str, data: dict[str, Any]) -> tuple[str, str] | None:
    """A contract test's (clause, factory): from its data, else from its node id."""
    if data.get("clause") and data.get("factory"):
        return str(data["clause"]), str(data["factory"])
    match = _CLAUSE_TEST.search(nodeid)
    if match is None or data.get("group") != "contract":
        return None
    clause = f"{match[1]}-{match[2]}" if match[2] else match[1]
    return clause, match[3] or "(none)"


def waiver_outcomes(report: dict[str, Any]) -> dict[str, str]:
    """Node id -> outcome, from the waivers' lists of tests."""
    return {
        nodeid: outcome
        for waiver in report.get("waivers", [])
        for outcome in ("xfailed", "passed", "failed")
        for nodeid in waiver.get(outcome, [])
    }


def clause_matrix(
    report: dict[str, Any],
) -> tuple[list[str], list[str], dict[tuple[str, str], dict[str, Any]]]:
    """Clauses (rows), factories (columns) and each cell's outcome counts, worst outcome,
    whether it is waived, and its failed tests (with transcripts, for links)."""
    from_waivers = waiver_outcomes(report)
    waived = {(w["clause"], w["factory"]) for w in report.get("waivers", [])}
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for nodeid, data in sorted(report.get("tests", {}).items()):
        found = test_clause_factory(nodeid, data)
        if found is None:
            continue
        outcome = data.get("outcome") or from_waivers.get(nodeid, "ran")
        cell = cells.setdefault(
            found, {"counts": Counter(), "waived": found in waived, "failed": []}
        )
        cell["counts"][outcome] += 1
        if outcome == "failed":
            cell["failed"].append(nodeid)
    for cell in cells.values():
        cell["worst"] = min(cell["counts"], key=_outcome_rank)
    clauses = sorted({clause for clause, _ in cells}, key=_clause_key)
    named = report.get("factories", {}).get("names", [])
    factories = [f for f in named if any(k[1] == f for k in cells)]
    factories += sorted({factory for _, factory in cells} - set(factories))
    return clauses, factories, cells


def _outcome_rank(outcome: str) -> int:
    return OUTCOME_ORDER.index(outcome) if outcome in OUTCOME_ORDER else len(OUTCOME_ORDER)


def _clause_key(clause: str) -> tuple[str, int]:
    """``FB-10`` after ``FB-9``."""
    family, _, number = clause.rpartition("-")
    return (family, int(number)) if number.isdigit() else (clause, 0)


def top_sites(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The top KV-writing call sites of the application's tests (the contract suite writes
    KV on purpose), else of the whole session for a report without groups."""
    group = report.get("groups", {}).get("application")
    return (group or report.get("totals", {})).get("top_write_sites", [])


def rejected_bypasses(report: dict[str, Any]) -> list[tuple[str, int]]:
    """``op at caller`` of every rejected bypass, with its count, most first."""
    counts = Counter(
        f"{entry['op']} at {entry['caller']}"
        for data in report.get("tests", {}).values()
        for entry in data.get("bypasses", {}).get("rejected", [])
    )
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def over_budget(report: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Each test over budget with its violations' headlines."""
    return [
        (nodeid, list(data["over_budget"]))
        for nodeid, data in sorted(report.get("tests", {}).items())
        if data.get("over_budget")
    ]


def missing_sections(report: dict[str, Any]) -> list[str]:
    """The optional sections a report lacks, for the renderers' notes."""
    return [
        key
        for key in ("timeline", "bill", "gate", "cost_growth", "latency", "slo")
        if key not in report
    ]
