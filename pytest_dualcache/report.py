"""The KV report: per-test counts and session totals (the baseline gate is ``baseline.py``).

Everything here is plain data (dicts of ints and strings) so that pytest-xdist workers can
ship it to the controller inside test reports, and so that the same tests give
byte-identical JSON: no timestamps, no durations, sorted keys, call sites relative to the
rootdir.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ledger import OperationRecord
from .limits import KV_OPERATIONS

REPORT_VERSION = 1
#: Report column of each KV operation (the ledger op): reads, writes, deletes, lists.
KV_KINDS = {op.method: op.counted_as for op in KV_OPERATIONS.values()}
DO_KINDS = ("deletes", "errors", "gets", "hits", "lists", "misses", "sets")
TOP_SITES = 10
#: The report's column for each KV error type (the ledger keeps the exception's class name).
_KV_ERROR_COLUMNS = {"KVRateLimitError": "rate_limited", "KVQuotaError": "quota"}


def call_site_text(record: OperationRecord, rootdir: Path) -> str:
    """``path:line:function`` with the path relative to the rootdir when inside it."""
    site = record.call_site
    path = site.filename
    if os.path.isabs(path):
        try:
            relative = os.path.relpath(path, rootdir)
        except ValueError:  # another drive on Windows
            relative = path
        path = path if relative.startswith("..") else relative
    return f"{path}:{site.lineno}:{site.function}"


def summarize(records: Iterable[OperationRecord], rootdir: Path) -> dict[str, Any]:
    """One test's numbers from its KV and DO operations (in the order they happened).

    An operation the report has no column for (a ledger a test filled by hand) is left out.
    """
    kv = dict.fromkeys(KV_KINDS.values(), 0)
    kv_errors = {"rate_limited": 0, "quota": 0, "other": 0}
    do = dict.fromkeys(DO_KINDS, 0)
    sites: Counter[str] = Counter()
    for record in records:
        if record.store_kind == "kv":
            if not record.ok:
                kv_errors[_KV_ERROR_COLUMNS.get(record.error_type or "", "other")] += 1
            elif record.op in KV_KINDS:
                kv[KV_KINDS[record.op]] += 1
                if record.op == "put":
                    sites[call_site_text(record, rootdir)] += 1
        elif not record.ok:
            do["errors"] += 1
        elif record.op == "get":
            do["gets"] += 1
            do["hits" if record.bytes else "misses"] += 1
        elif f"{record.op}s" in do:
            do[f"{record.op}s"] += 1
    return {
        "kv": kv,
        "kv_errors": kv_errors,
        "do": do,
        "write_sites": dict(sorted(sites.items())),
        "bypasses": {"allowed": [], "rejected": []},
        "over_budget": [],
    }


def bypass_entry(record: OperationRecord, rootdir: Path) -> dict[str, str]:
    """How a bypassing KV write appears in the report."""
    return {"op": record.op, "key": record.key, "caller": call_site_text(record, rootdir)}


@dataclass
class SessionReport:
    """Every test's numbers, merged from this process or from xdist workers."""

    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    crashed_workers: list[str] = field(default_factory=list)
    missing_tests: list[str] = field(default_factory=list)
    #: Why the session did not run every selected test (interrupted, stopped, a crash).
    stopped: list[str] = field(default_factory=list)
    #: Tests collected and then deselected (-k, -m, --lf, --deselect): left out on purpose.
    deselected: int = 0

    def add(self, nodeid: str, data: dict[str, Any]) -> None:
        self.tests[nodeid] = data

    def stop(self, reason: str) -> None:
        """Record why the session is incomplete (a reason given twice counts once)."""
        if reason not in self.stopped:
            self.stopped.append(reason)

    def worker_crashed(self, worker: str, error: object) -> None:
        """Record an xdist worker that died: its running test's counts are lost."""
        self.crashed_workers.append(f"{worker}: {str(error).strip()[:200]}")
        self.stop("an xdist worker crashed")  # which one varies run to run: crashed_workers

    @property
    def incomplete_reasons(self) -> list[str]:
        """Why the session is incomplete, sorted; empty for a complete session."""
        return sorted(self.stopped)

    @property
    def complete(self) -> bool:
        """True when every selected test ran: no interruption, early stop or crashed worker."""
        return not self.stopped

    def totals(self) -> dict[str, Any]:
        """Sums over every test, with the DO hit rate and the route share of writes."""
        kv: Counter[str] = Counter()
        kv_errors: Counter[str] = Counter()
        do: Counter[str] = Counter()
        sites: Counter[str] = Counter()
        bypasses = {"allowed": 0, "rejected": 0}
        for data in self.tests.values():
            kv.update(data["kv"])
            kv_errors.update(data["kv_errors"])
            do.update(data["do"])
            sites.update(data["write_sites"])
            for outcome in bypasses:
                bypasses[outcome] += len(data["bypasses"][outcome])
        writes = do["sets"] + kv["writes"]
        return {
            "kv": {kind: kv[kind] for kind in KV_KINDS.values()},
            "kv_errors": {kind: kv_errors[kind] for kind in ("rate_limited", "quota", "other")},
            "do": {kind: do[kind] for kind in DO_KINDS},
            "do_hit_rate": round(do["hits"] / do["gets"], 6) if do["gets"] else None,
            "route_share": {
                "do": round(do["sets"] / writes, 6) if writes else None,
                "kv": round(kv["writes"] / writes, 6) if writes else None,
            },
            "top_write_sites": [
                {"site": site, "writes": n}
                for site, n in sorted(sites.items(), key=lambda item: (-item[1], item[0]))[
                    :TOP_SITES
                ]
            ],
            "bypasses": bypasses,
            "tests_over_budget": sorted(
                nodeid for nodeid, data in self.tests.items() if data["over_budget"]
            ),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "complete": self.complete,
            "incomplete_reasons": self.incomplete_reasons,
            "deselected": self.deselected,
            "tests": {nodeid: self.tests[nodeid] for nodeid in sorted(self.tests)},
            "totals": self.totals(),
            "crashed_workers": sorted(self.crashed_workers),
            "missing_tests": sorted(self.missing_tests),
        }

    def render(self) -> list[str]:
        """The terminal summary section, a line a figure."""
        totals = self.totals()
        kv, errors, do = totals["kv"], totals["kv_errors"], totals["do"]
        lines = [
            f"KV operations: {kv['reads']} reads, {kv['writes']} writes, {kv['deletes']} "
            f"deletes, {kv['lists']} lists over {len(self.tests)} tests",
            f"KV errors: {errors['rate_limited']} rate-limited (429), {errors['quota']} daily "
            f"quota, {errors['other']} other",
        ]
        rate = totals["do_hit_rate"]
        lines.append(
            f"DO operations: {do['gets']} gets ({do['hits']} hits, {do['misses']} misses; hit "
            f"rate {_percent(rate)}), {do['sets']} sets, {do['deletes']} deletes, "
            f"{do['errors']} errors"
        )
        share = totals["route_share"]
        lines.append(
            f"writes by route: DO {_percent(share['do'])}, KV {_percent(share['kv'])} "
            f"({do['sets']} DO sets, {kv['writes']} KV puts)"
        )
        if totals["top_write_sites"]:
            lines.append("top KV-writing call sites:")
            lines.extend(
                f"  {row['writes']:>6}  {row['site']}" for row in totals["top_write_sites"]
            )
        bypasses = totals["bypasses"]
        lines.append(
            f"KV writes bypassing the cache layer: {bypasses['rejected']} rejected, "
            f"{bypasses['allowed']} allowed"
        )
        rejected = Counter(
            f"{entry['op']} at {entry['caller']}"
            for data in self.tests.values()
            for entry in data["bypasses"]["rejected"]
        )
        for site, count in sorted(rejected.items(), key=lambda item: (-item[1], item[0]))[
            :TOP_SITES
        ]:
            lines.append(f"  rejected: {count:>5} x {site}")
        over = totals["tests_over_budget"]
        lines.append(f"tests over budget: {len(over)}")
        lines.extend(f"  {nodeid}" for nodeid in over)
        for worker in sorted(self.crashed_workers):
            lines.append(f"WORKER CRASHED: {worker}; its running test's counts are missing")
        for nodeid in sorted(self.missing_tests):
            lines.append(f"  missing from the totals: {nodeid}")
        if not self.complete:
            lines.append(
                f"SESSION INCOMPLETE ({'; '.join(self.incomplete_reasons)}): these figures "
                "cover only the tests that ran"
            )
        return lines


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction * 100:.1f}%"
