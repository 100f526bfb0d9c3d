"""The KV report: per-test counts and session totals (the baseline gate is ``baseline.py``).

Everything here is plain data (dicts of ints and strings) so that pytest-xdist workers can
ship it to the controller inside test reports, and so that the same tests give
byte-identical JSON: no timestamps, no durations, sorted keys, call sites relative to the
rootdir (or, outside it, to the import root of their module).

Version 2 (version 1 had neither): each test's ``group`` ("application" or "contract"),
``groups`` with the totals of each, ``factories``, ``waivers``, and ``refused_by_kv``
bypass attempts, which are no longer counted as bypasses. Optional, in version 2 too: a
test's ``requests`` (its request durations in microseconds by name, with the latency model
on), its ``slo_evidence`` (with ini ``dualcache_slo``), and the ``latency`` section.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ledger import OperationRecord
from .limits import KV_OPERATIONS

if TYPE_CHECKING:
    from .factories import Waiver

REPORT_VERSION = 2
#: A test's group: the application's own tests, or the shipped contract suite's.
GROUPS = ("application", "contract")
BYPASS_OUTCOMES = ("allowed", "rejected", "refused_by_kv")
#: How the tests of a waived clause ended: expected failures, or passes (XPASS).
WAIVER_OUTCOMES = ("xfailed", "passed", "failed")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
#: Report column of each KV operation (the ledger op): reads, writes, deletes, lists.
KV_KINDS = {op.method: op.counted_as for op in KV_OPERATIONS.values()}
DO_KINDS = ("deletes", "errors", "gets", "hits", "lists", "misses", "sets")
#: A user's Durable Object storage operations that count in the DO cache's columns under
#: another name: a storage ``put`` is a DO write, as a cache ``set`` is.
DO_STORAGE_COLUMNS = {"put": "sets", "deleteAll": "deletes"}
#: Calls into a user's Durable Objects (RPC methods, ``stub.fetch``, alarms): ``do_calls``,
#: written only when a session made some, so reports without user classes are unchanged.
DO_CALL_COLUMNS = {"rpc": "rpc", "fetch": "fetch", "alarm": "alarms"}
TOP_SITES = 10
#: The report's column for each KV error type (the ledger keeps the exception's class name).
_KV_ERROR_COLUMNS = {"KVRateLimitError": "rate_limited", "KVQuotaError": "quota"}


def call_site_text(record: OperationRecord, rootdir: Path) -> str:
    """``path:line:function``, the path relative to the rootdir (see ``shown_path``)."""
    site = record.call_site
    return f"{shown_path(site.filename, str(rootdir))}:{site.lineno}:{site.function}"


@lru_cache(maxsize=4096)
def shown_path(path: str, rootdir: str) -> str:
    """``path`` relative to ``rootdir`` when inside it; else relative to the folder it is
    imported from (the shipped suite as ``pytest_dualcache/contracts/...``, wherever it is
    installed), so a report reads the same on every machine; else as given.
    """
    if not os.path.isabs(path):
        return path
    contracts = _contracts_dir()
    for base, prefix in ((contracts, "pytest_dualcache/contracts/"), (rootdir, "")):
        relative = _inside(path, base)
        if relative is not None:
            return prefix + relative
    roots = sorted((entry for entry in sys.path if entry and os.path.isabs(entry)), key=len)
    for entry in reversed(roots):  # the deepest import root holding it
        relative = _inside(path, entry)
        if relative is not None:
            return relative
    return path


def _inside(path: str, base: str) -> str | None:
    """``path`` relative to ``base`` (with forward slashes), or None when outside it."""
    try:
        relative = os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        return None
    return None if relative.startswith("..") else relative.replace(os.sep, "/")


@lru_cache(maxsize=1)
def _contracts_dir() -> str:
    """Where the shipped suite's modules are (a ``contracts/`` folder in an editable install)."""
    import importlib.util

    spec = importlib.util.find_spec("pytest_dualcache.contracts")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return os.path.abspath(locations[0]) if locations else os.path.join(_PACKAGE_DIR, "contracts")


def summarize(
    records: Iterable[OperationRecord], rootdir: Path, group: str = "application"
) -> dict[str, Any]:
    """One test's numbers from its KV and DO operations (in the order they happened).

    An operation the report has no column for (a ledger a test filled by hand) is left out.
    """
    kv = dict.fromkeys(KV_KINDS.values(), 0)
    kv_errors = {"rate_limited": 0, "quota": 0, "other": 0}
    do = dict.fromkeys(DO_KINDS, 0)
    calls: Counter[str] = Counter()
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
        elif record.op in DO_CALL_COLUMNS:
            calls[DO_CALL_COLUMNS[record.op]] += 1
        elif record.op == "get":
            do["gets"] += 1
            do["hits" if record.bytes else "misses"] += 1
        elif (column := DO_STORAGE_COLUMNS.get(record.op, f"{record.op}s")) in do:
            do[column] += 1
    summary: dict[str, Any] = {
        "group": group,
        "kv": kv,
        "kv_errors": kv_errors,
        "do": do,
        "write_sites": dict(sorted(sites.items())),
        "bypasses": {outcome: [] for outcome in BYPASS_OUTCOMES},
        "over_budget": [],
    }
    if calls:
        summary["do_calls"] = _do_calls(calls)
    return summary


def _do_calls(calls: Counter[str]) -> dict[str, int]:
    """The ``do_calls`` entry: every column, in a fixed order."""
    return {column: calls[column] for column in DO_CALL_COLUMNS.values()}


def bypass_entry(record: OperationRecord, rootdir: Path) -> dict[str, str]:
    """How a bypassing KV write appears in the report."""
    caller = call_site_text(record, rootdir)
    return {"op": record.op, "key": shown_key(record.key), "caller": caller}


def shown_key(key: str) -> str:
    """``key`` as text any UTF-8 channel carries (xdist's, a JSON file): a lone surrogate, which
    KV accepts in a key, shows as its escape (``\\ud800``); every other key is unchanged."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


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
    #: The factories the contract suite ran against, and whether any was registered.
    factories: list[str] = field(default_factory=list)
    factories_registered: bool = True
    #: Each waiver (factory, clause, reason, source) with its tests by outcome.
    waivers: list[dict[str, Any]] = field(default_factory=list)
    #: Each SLO gate judged (``slo.Verdict.to_json``); None when no gate was set anywhere.
    slo: list[dict[str, Any]] | None = None
    #: ``latency.LatencyModel.to_json()`` of the session's model; None when it is off.
    latency_model: dict[str, Any] | None = None

    @staticmethod
    def waivers_of(waivers: Iterable[Waiver]) -> list[dict[str, Any]]:
        """The report's waiver entries, before any test ran."""
        return [
            {
                "factory": w.factory,
                "clause": w.clause,
                "reason": w.reason,
                "source": w.source,
                **{outcome: [] for outcome in WAIVER_OUTCOMES},
            }
            for w in waivers
        ]

    def add(self, nodeid: str, data: dict[str, Any]) -> None:
        self.tests[nodeid] = data

    def add_slo(self, results: Iterable[dict[str, Any]]) -> None:
        """Add judged SLO gates (a test's, or the session's) to the ``slo`` section."""
        self.slo = [*(self.slo or []), *results]

    def waiver_outcome(self, factory: str, clause: str, nodeid: str, outcome: str) -> None:
        """Note how a test of a waived clause ended: xfailed, passed (XPASS) or failed."""
        for waiver in self.waivers:
            if (waiver["factory"], waiver["clause"]) == (factory, clause):
                waiver[outcome].append(nodeid)
                waiver[outcome].sort()

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

    def totals(self, group: str | None = None) -> dict[str, Any]:
        """Sums over every test (of ``group``), with the DO hit rate and the route share."""
        tests = {
            nodeid: data
            for nodeid, data in self.tests.items()
            if group is None or data.get("group", "application") == group
        }
        kv: Counter[str] = Counter()
        kv_errors: Counter[str] = Counter()
        do: Counter[str] = Counter()
        calls: Counter[str] = Counter()
        sites: Counter[str] = Counter()
        bypasses = dict.fromkeys(BYPASS_OUTCOMES, 0)
        for data in tests.values():
            kv.update(data["kv"])
            kv_errors.update(data["kv_errors"])
            do.update(data["do"])
            calls.update(data.get("do_calls", {}))
            sites.update(data["write_sites"])
            for outcome in bypasses:
                bypasses[outcome] += len(data["bypasses"].get(outcome, ()))
        writes = do["sets"] + kv["writes"]
        totals: dict[str, Any] = {
            "tests": len(tests),
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
                nodeid for nodeid, data in tests.items() if data["over_budget"]
            ),
        }
        if calls:
            totals["do_calls"] = _do_calls(calls)
        return totals

    def to_json(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "complete": self.complete,
            "incomplete_reasons": self.incomplete_reasons,
            "deselected": self.deselected,
            "factories": {"names": list(self.factories), "registered": self.factories_registered},
            "tests": {nodeid: self.tests[nodeid] for nodeid in sorted(self.tests)},
            "totals": self.totals(),
            "groups": {group: self.totals(group) for group in GROUPS},
            "waivers": self.waivers,
            "crashed_workers": sorted(self.crashed_workers),
            "missing_tests": sorted(self.missing_tests),
            **self._slo_section(),
            **self._bill_section(),
            **self._latency_section(),
        }

    def _latency_section(self) -> dict[str, Any]:
        """``{"latency": ...}`` (``latency.latency_section``, derived from the tests'
        ``requests``); nothing when the model is off."""
        if self.latency_model is None:
            return {}
        from .latency import latency_section

        return {"latency": latency_section(self.latency_model, self.tests)}

    def _bill_section(self) -> dict[str, Any]:
        """``{"bill": ..., "timeline": ...}``: the projected month of the tests' declared
        workloads and their figures per simulated hour (derived from the tests, so a merged
        report computes the same); nothing when none declared."""
        from .workload import bill_section, timeline_section

        bill, timeline = bill_section(self.tests), timeline_section(self.tests)
        return {} if bill is None else {"bill": bill, "timeline": timeline}

    def _slo_section(self) -> dict[str, Any]:
        """``{"slo": [...]}`` in ``slo.ordered``'s order; nothing when no gate was set."""
        if self.slo is None:
            return {}
        from .slo import ordered

        return {"slo": ordered(self.slo)}

    def render(self) -> list[str]:
        """The terminal summary section, a line a figure."""
        lines = []
        if not self.factories_registered:
            from .factories import REGISTER_HINT

            lines.append(
                "NO DAL FACTORY REGISTERED: the contract suite tested the bundled reference "
                f"CacheAbstraction, not your DAL; {REGISTER_HINT}"
            )
        shown = [group for group in GROUPS if self.totals(group)["tests"]] or ["application"]
        for group in shown:
            against = ", ".join(self.factories)
            lines.append(
                "your tests:" if group == "application" else f"contract suite (against {against}):"
            )
            lines.extend(_group_lines(self.totals(group)))
        totals = self.totals()
        bypasses = totals["bypasses"]
        refused = bypasses["refused_by_kv"]
        lines.append(
            f"KV writes bypassing the cache layer: {bypasses['rejected']} rejected, "
            f"{bypasses['allowed']} allowed"
            + (f" ({refused} more refused by KV, not counted)" if refused else "")
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
        lines.extend(self._waiver_lines())
        if self.latency_model is not None:
            from .latency import render

            lines.extend(render(self._latency_section()["latency"]))
        for worker in sorted(self.crashed_workers):
            lines.append(f"WORKER CRASHED: {worker}; its running test's counts are missing")
        for nodeid in sorted(self.missing_tests):
            lines.append(f"  missing from the totals: {nodeid}")
        incomplete = self.incomplete_line()
        if incomplete is not None:
            lines.append(incomplete)
        return lines

    def incomplete_line(self) -> str | None:
        """The summary's warning that the figures are partial (None for a complete session);
        ``python -m pytest_dualcache gate`` prints it for an incomplete report too."""
        if self.complete:
            return None
        return (
            f"SESSION INCOMPLETE ({'; '.join(self.incomplete_reasons)}): these figures "
            "cover only the tests that ran"
        )

    def _waiver_lines(self) -> list[str]:
        """The waived clauses, and a note for each that passed anyway."""
        if not self.waivers:
            return []
        lines = [f"waived clauses (run as non-strict xfail): {len(self.waivers)}"]
        for waiver in self.waivers:
            counts = ", ".join(f"{len(waiver[outcome])} {outcome}" for outcome in WAIVER_OUTCOMES)
            lines.append(f"  {waiver['factory']} {waiver['clause']}: {waiver['reason']} ({counts})")
        for waiver in self.waivers:
            if waiver["passed"]:
                lines.append(
                    f"note: {waiver['factory']} passed waived clause {waiver['clause']} in "
                    f"{len(waiver['passed'])} tests; the waiver may no longer be needed:"
                )
                lines.extend(f"  {nodeid}" for nodeid in waiver["passed"])
        return lines


def _group_lines(totals: dict[str, Any]) -> list[str]:
    """A group's figures: KV and DO operations, the route share and the top call sites."""
    kv, errors, do = totals["kv"], totals["kv_errors"], totals["do"]
    lines = [
        f"KV operations: {kv['reads']} reads, {kv['writes']} writes, {kv['deletes']} "
        f"deletes, {kv['lists']} lists over {totals['tests']} tests",
        f"KV errors: {errors['rate_limited']} rate-limited (429), {errors['quota']} daily "
        f"quota, {errors['other']} other",
    ]
    rate = totals["do_hit_rate"]
    lines.append(
        f"DO operations: {do['gets']} gets ({do['hits']} hits, {do['misses']} misses; hit "
        f"rate {_percent(rate)}), {do['sets']} sets, {do['deletes']} deletes, "
        f"{do['errors']} errors"
    )
    if "do_calls" in totals:
        calls = totals["do_calls"]
        lines.append(
            f"Durable Object calls: {calls['rpc']} RPC, {calls['fetch']} fetch, "
            f"{calls['alarms']} alarms (their storage operations are counted above)"
        )
    share = totals["route_share"]
    lines.append(
        f"writes by route: DO {_percent(share['do'])}, KV {_percent(share['kv'])} "
        f"({do['sets']} DO sets, {kv['writes']} KV puts)"
    )
    if totals["top_write_sites"]:
        lines.append("top KV-writing call sites:")
        lines.extend(f"  {row['writes']:>6}  {row['site']}" for row in totals["top_write_sites"])
    return lines


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction * 100:.1f}%"


def interruption(exc: BaseException) -> str:
    """Why an interrupted session stopped, in words that are the same run after run."""
    import pytest

    if isinstance(exc, pytest.exit.Exception):
        return f"stopped by pytest.exit(): {exc.msg}" if exc.msg else "stopped by pytest.exit()"
    message = str(exc).strip()
    if message == "True":  # Interrupted(session.shouldstop) when a plugin set it to True
        return stopped_early(True)
    if type(exc) is KeyboardInterrupt or not message:
        return f"interrupted ({type(exc).__name__})"
    return stopped_early(message)


def stopped_early(flag: object) -> str:
    """The reason for a ``session.shouldstop``/``shouldfail`` (a string or True)."""
    return f"stopped early: {flag}" if isinstance(flag, str) else "stopped early"
