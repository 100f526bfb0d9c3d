"""The KV report: per-test counts, session totals, the JSON file and the baseline gate.

Everything here is plain data (dicts of ints and strings) so that pytest-xdist workers can
ship it to the controller inside test reports, and so that the same tests give
byte-identical JSON: no timestamps, no durations, sorted keys, call sites relative to the
rootdir.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ledger import OperationRecord

REPORT_VERSION = 1
KV_KINDS = {"get": "reads", "put": "writes", "delete": "deletes", "list": "lists"}
GATED_KINDS = ("writes", "deletes", "lists")
DO_KINDS = ("deletes", "errors", "gets", "hits", "lists", "misses", "sets")
TOP_SITES = 10


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
                kv_errors[_error_class(record.error or "")] += 1
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


def _error_class(error: str) -> str:
    if "429 Too Many Requests" in error:
        return "rate_limited"
    if "limit exceeded for the day" in error:
        return "quota"
    return "other"


def bypass_entry(record: OperationRecord, rootdir: Path) -> dict[str, str]:
    """How a bypassing KV write appears in the report."""
    return {"op": record.op, "key": record.key, "caller": call_site_text(record, rootdir)}


@dataclass
class SessionReport:
    """Every test's numbers, merged from this process or from xdist workers."""

    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    crashed_workers: list[str] = field(default_factory=list)
    missing_tests: list[str] = field(default_factory=list)

    def add(self, nodeid: str, data: dict[str, Any]) -> None:
        self.tests[nodeid] = data

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
        return lines


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction * 100:.1f}%"


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename: never a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


# --- the baseline gate ------------------------------------------------------------------------


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
    return {"version": REPORT_VERSION, "tests": tests, "totals": totals}


class BaselineError(ValueError):
    """The baseline file is missing or not one of ours."""


def load_baseline(path: Path) -> dict[str, Any]:
    """A saved baseline; a missing or corrupt file is a BaselineError saying which."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"baseline {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"baseline {path} is not readable JSON: {exc}") from None
    if not (
        isinstance(data, dict)
        and data.get("version") == REPORT_VERSION
        and isinstance(data.get("tests"), dict)
        and all(_counts_ok(test) for test in data["tests"].values())
        and _counts_ok(data.get("totals"))
    ):
        raise BaselineError(
            f"baseline {path} is not a dualcache baseline of version {REPORT_VERSION} "
            "(save one with --dualcache-save-baseline)"
        )
    return data


def _counts_ok(entry: object) -> bool:
    """A baseline entry: a dict whose gated counts, where present, are ints >= 0."""
    return isinstance(entry, dict) and all(
        isinstance(entry.get(kind, 0), int) and entry.get(kind, 0) >= 0 for kind in GATED_KINDS
    )


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

    @property
    def failed(self) -> bool:
        return bool(self.grew)

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
        return lines


def compare(baseline: dict[str, Any], current: dict[str, Any], growth: Growth) -> GateResult:
    """Tests (and the total) whose KV writes grew beyond ``growth`` over ``baseline``."""
    grew = []
    for nodeid, now in current["tests"].items():
        before = baseline["tests"].get(nodeid)
        if before is None:
            continue
        if not growth.allows(before.get("writes", 0), now["writes"]):
            known = set(before.get("write_sites", []))
            grew.append(
                {
                    "name": nodeid,
                    "before": before.get("writes", 0),
                    "after": now["writes"],
                    "new_sites": [site for site in now["write_sites"] if site not in known],
                }
            )
    # The total covers the tests both runs know: a new test is listed, not held against it,
    # and a subset run (-k, --lf) is not compared with the whole baseline.
    shared = set(current["tests"]) & set(baseline["tests"])
    total_before = sum(baseline["tests"][nodeid].get("writes", 0) for nodeid in shared)
    total_after = sum(current["tests"][nodeid]["writes"] for nodeid in shared)
    if not growth.allows(total_before, total_after):
        grew.append(
            {"name": "TOTAL", "before": total_before, "after": total_after, "new_sites": []}
        )
    new_tests = sorted(set(current["tests"]) - set(baseline["tests"]))
    return GateResult(grew, new_tests)
