"""The ``--dualcache`` session: per-test KV accounting, budgets, bypasses, report and gate.

Registered by the plugin only under ``--dualcache``, so a session without the flag runs none
of these hooks. Each test's numbers travel as plain data on its call report
(``report.dualcache``), which pytest-xdist carries from the workers to the controller; the
controller (or the only process) builds the report, writes the JSON and runs the gate.
"""

from __future__ import annotations

import fnmatch
import os
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from .baseline import NOT_COMPARED, GateResult, Growth, baseline_of, compare
from .budget import BudgetError, KVBudget
from .contracts.paths import SUITE_NODEID
from .factories import check_imported
from .ledger import OperationRecord
from .output_files import write_json_atomically
from .pages import pages
from .plugin import REQUESTS_KEY
from .pytest_compromises import count_in_summary_line
from .recorder import Recorder, Scope
from .report import (
    SessionReport,
    bypass_entry,
    call_site_text,
    interruption,
    stopped_early,
    summarize,
)
from .settings import SETTINGS, DualCacheSettings
from .shards import shard_facts
from .slo import SHARD_NOTE as SHARD_SLO_NOTE
from .slo import (
    SLOError,
    describe_session_miss,
    judge_session,
    judge_test,
    marker_objectives,
    ordered,
)
from .slo import render as render_slo
from .workload import (
    MARKER_NAME,
    CostVerdict,
    WorkloadError,
    bill_section,
    declared_tests,
    gate_sections,
    judge_cost,
    measured,
    render_bill,
    scale_conflicts,
)

REFERENCE_MODULE = "pytest_dualcache.abstraction"
ACCOUNTING_KEY = pytest.StashKey["Accounting"]()
WORKER_INTERRUPTED = "interrupted (KeyboardInterrupt on an xdist worker)"
#: What the final summary line adds ("1 KV gate failed", "142 ran against the bundled ...").
GATE_FAILED = "KV gate failed"
SLO_FAILED = "SLO gate failed"
COST_FAILED = "cost gate failed"
ON_THE_REFERENCE = "ran against the bundled reference (no DAL factory registered)"


@dataclass(frozen=True)
class Accounting:
    """A test's KV figures for its report, and why its KV use failed it (None: it did not).

    ``details`` is the report section; ``brief_details`` the same without the headlines, for
    a test whose failure message already states them.
    """

    data: dict[str, Any]
    details: str
    failure: str | None
    brief_details: str = ""
    #: The test's SLO verdicts (``slo.Verdict.to_json``) when its marker sets gates.
    slo: list[dict[str, Any]] | None = None


class KVSession:
    """Hooks that account for every test's KV operations under ``--dualcache``."""

    def __init__(
        self, config: pytest.Config, settings: DualCacheSettings, recorder: Recorder
    ) -> None:
        self.config = config
        self.rootdir = config.rootpath
        self.settings = settings
        self.report = SessionReport(
            factories=list(settings.factories),
            factories_registered=settings.factories_registered,
            waivers=SessionReport.waivers_of(settings.waivers),
            latency_model=None if settings.latency is None else settings.latency.to_json(),
        )
        #: Node ids of the collected suite's tests that reported (against any factory).
        self.suite_tests: set[str] = set()
        self.gate_result: GateResult | None = None
        self.cost_verdict: CostVerdict | None = None
        self.is_worker = hasattr(config, "workerinput")
        #: (what, path, error) of each report or baseline file that could not be written.
        self.write_errors: list[tuple[str, Path, str]] = []
        self.recorder = recorder
        recorder.classify_writes((REFERENCE_MODULE, *settings.dal_modules))
        #: The session gate's misses, each with the operations that drove it.
        self.slo_misses: list[str] = []
        #: Under ``--dualcache-shard``: the node ids this shard kept and deselected, which the
        #: merge needs to tell the split's deselections from ``-k``'s (``shards.shard_facts``).
        self.selected: list[str] = []
        self.deselected: list[str] = []
        if settings.slo is not None:
            self.report.add_slo([])

    # --- per test ---------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        """Count the test function's own KV operations, and fail a test whose body passed but
        whose KV use did not, as a failure of its call: pytest's xfail handling then treats
        it as it treats any failure (an expected one is xfailed).

        The innermost wrapper, so only the test function's own operations count: fixture
        setup is shared (a module fixture would be charged to whichever test, per xdist
        worker, ran first).
        """
        scope = self.recorder.scope()
        # A stack walk stops at the test function: nothing above it can be a DAL.
        self.recorder.running_test(getattr(getattr(item, "function", None), "__code__", None))
        try:
            result = yield
        except BaseException:
            self._close(item, scope)
            raise
        finally:
            self.recorder.running_test(None)
        failure = self._close(item, scope)
        if failure is not None:
            accounting = item.stash[ACCOUNTING_KEY]  # the failure states the headlines
            item.stash[ACCOUNTING_KEY] = replace(accounting, details=accounting.brief_details)
            pytest.fail(failure, pytrace=False)
        return result

    def _close(self, item: pytest.Item, scope: Scope) -> str | None:
        """Account for the scope's operations (kept for the test's report) and close it."""
        try:
            accounting = self._account(item, scope.records(), scope)
        finally:
            scope.close()
        item.stash[ACCOUNTING_KEY] = accounting
        return accounting.failure

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        _take(item, ACCOUNTING_KEY)  # left when the call phase never reported

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        accounting = _take(item, ACCOUNTING_KEY) if call.when == "call" else None
        waived = item.get_closest_marker("dualcache_waived")
        if waived is not None and call.when == "call":
            report.dualcache_waived = {  # type: ignore[attr-defined]
                key: waived.kwargs[key] for key in ("factory", "clause")
            }
        if accounting is not None:
            report.dualcache = accounting.data  # type: ignore[attr-defined]
            if accounting.slo is not None:
                report.dualcache_slo = accounting.slo  # type: ignore[attr-defined]
            if accounting.details:
                report.sections.append(("dualcache KV operations", accounting.details))
        return report

    def _account(
        self, item: pytest.Item, records: list[OperationRecord], scope: Scope
    ) -> Accounting:
        """The test's figures, and the bypasses, budget overruns and SLO misses that fail it."""
        contract_test = item.get_closest_marker("dualcache_clause") is not None
        data = summarize(records, self.rootdir, "contract" if contract_test else "application")
        requests = item.stash.get(REQUESTS_KEY, None)  # the latency model's request blocks
        if requests is not None and requests.durations:
            data["requests"] = {name: list(d) for name, d in sorted(requests.durations.items())}
        problems: list[str] = []
        details: list[str] = []
        brief: list[str] = []
        rejected: Counter[str] = Counter()
        refused: list[OperationRecord] = []
        if not contract_test:  # the suite writes KV directly on purpose (legacy data)
            for record in records:
                if record.bypassed and not record.ok:  # KV refused it: nothing was written
                    data["bypasses"]["refused_by_kv"].append(bypass_entry(record, self.rootdir))
                    refused.append(record)
                elif record.bypassed:
                    entry = bypass_entry(record, self.rootdir)
                    if self._allowed(record):
                        data["bypasses"]["allowed"].append(entry)
                    else:
                        data["bypasses"]["rejected"].append(entry)
                        rejected[f"{record.op} at {entry['caller']}"] += 1
                        details.append(f"  bypass: {record.describe()}")
        if rejected:
            problems.append(f"{sum(rejected.values())} KV writes bypassed the cache layer:")
            problems.extend(f"  {count} x {site}" for site, count in sorted(rejected.items()))
            details.extend(f"  bypass refused by KV (not counted): {r.describe()}" for r in refused)
        brief.extend(details)
        if (marker := item.get_closest_marker(MARKER_NAME)) is not None:
            try:
                data["workload"] = measured(marker, item.nodeid, records, scope, data, self.rootdir)
            except WorkloadError as exc:  # a marker added while the test ran
                problems.append(str(exc))
        try:
            budget = self._budget(item, contract_test)
        except BudgetError as exc:
            problems.append(str(exc))
            budget = None
        if budget is not None:
            kv_records = [record for record in records if record.store_kind == "kv"]
            for violation in budget.violations(kv_records):
                data["over_budget"].append(violation.headline)
                problems.append(violation.headline)
                details.append(violation.describe())
                brief.append(violation.describe(headline=False))
        marker = item.get_closest_marker("dualcache_slo")
        for_session = self.settings.slo is not None and not contract_test
        latency_on = self.settings.latency is not None
        slo, misses = judge_test(
            marker, for_session, records, scope, data, item, self.rootdir, latency_on
        )
        for headline, described, brief_described in misses:
            problems.append(headline)
            details.extend(filter(None, [described]))
            brief.extend(filter(None, [brief_described]))
        if not problems:
            return Accounting(data, "", None, slo=slo)
        hint = (
            "\n(register the writing module with dualcache_dal_modules, or allow the "
            "caller with dualcache_kv_allow)"
            if data["bypasses"]["rejected"]
            else ""
        )
        return Accounting(
            data, "\n".join(details), "\n".join(problems) + hint, "\n".join(brief), slo
        )

    def _max_growth(self) -> Growth:
        growth = self.settings.max_growth
        assert growth is not None, "resolved under --dualcache"
        return growth

    def _budget(self, item: pytest.Item, contract_test: bool) -> KVBudget | None:
        marker = item.get_closest_marker("kv_budget")
        if marker is None:  # the ini default is for your tests, not for the shipped suite
            return None if contract_test else self.settings.kv_budget
        if marker.args:
            raise BudgetError(
                "@pytest.mark.kv_budget takes keyword limits only, e.g. kv_budget(writes=50)"
            )
        return KVBudget.of("@pytest.mark.kv_budget", **marker.kwargs)

    def _allowed(self, record: OperationRecord) -> bool:
        site = call_site_text(record, self.rootdir)
        path = site.rsplit(":", 2)[0]
        candidates = (f"{path}::{record.call_site.function}", site)
        return any(
            fnmatch.fnmatch(candidate, pattern)
            for pattern in self.settings.kv_allow
            for candidate in candidates
        )

    # --- collecting the numbers ---------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        if report.nodeid.startswith(SUITE_NODEID + "::"):
            self.suite_tests.add(report.nodeid)
        waived = getattr(report, "dualcache_waived", None)
        if waived is not None:
            outcome = "passed" if report.passed else "xfailed" if report.skipped else "failed"
            self.report.waiver_outcome(waived["factory"], waived["clause"], report.nodeid, outcome)
        slo = getattr(report, "dualcache_slo", None)
        if slo is not None:
            self.report.add_slo(slo)
        data = getattr(report, "dualcache", None)
        if data is not None:
            self.report.add(report.nodeid, data)
        elif report.when == "???" and report.failed:  # xdist: the test's worker crashed
            self.report.missing_tests.append(report.nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Read every ``dualcache_slo`` marker: a bad one stops the session before any test.

        Not on an xdist worker, where a ``UsageError`` ends as an INTERNALERROR: there the
        test with the bad marker fails with the same message instead.
        """
        if self.is_worker:
            return
        for item in items:
            marker = item.get_closest_marker("dualcache_slo")
            if marker is None:
                continue
            try:
                objectives = marker_objectives(marker.args, marker.kwargs)
                objectives.check_measurable(latency_on=self.settings.latency is not None)
            except SLOError as exc:
                raise pytest.UsageError(f"{item.nodeid}: {exc}") from None
        try:
            conflict = scale_conflicts(declared_tests(items))
        except WorkloadError as exc:
            raise pytest.UsageError(str(exc)) from None
        if conflict is not None:
            raise pytest.UsageError(conflict)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # A DAL module may become importable only once the test files beside it are imported.
        check_imported(self.settings.unimported_dal_modules, f"ini {SETTINGS['dal_modules'].ini}")
        if self.settings.shard is not None:
            self.selected = [item.nodeid for item in session.items]
            self._to_controller("dualcache_shard_tests", [self.selected, self.deselected])

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.report.deselected += len(items)
        if self.settings.shard is not None:
            self.deselected.extend(item.nodeid for item in items)
        self._to_controller("dualcache_deselected", self.report.deselected)

    def _to_controller(self, key: str, value: object) -> None:
        """Hand what collection found to xdist's controller, which collects nothing itself
        (outside an xdist worker, into a dict nobody reads)."""
        getattr(self.config, "workeroutput", {})[key] = value

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        # Every worker collects (and deselects) the same tests: one worker's figures are all.
        output = getattr(node, "workeroutput", {})
        deselected = output.get("dualcache_deselected")
        if isinstance(deselected, int):
            self.report.deselected = max(self.report.deselected, deselected)
        if "dualcache_shard_tests" in output and not self.selected:
            self.selected, self.deselected = output["dualcache_shard_tests"]
        if error == "keyboard-interrupt":  # xdist's word for a worker that was interrupted
            self.report.stop(WORKER_INTERRUPTED)
        elif error:
            worker = getattr(getattr(node, "gateway", None), "id", "a worker")
            self.report.worker_crashed(worker, error)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # Ctrl-C, a KeyboardInterrupt raised in a test, pytest.exit(), and the Interrupted
        # that pytest and xdist raise to stop a session early (session.shouldstop, xdist -x).
        exc = excinfo.value
        if WORKER_INTERRUPTED in self.report.stopped and type(exc) is not KeyboardInterrupt:
            return  # xdist stopping the session because a worker was interrupted: said already
        self.report.stop(interruption(exc))

    # --- the end of the session ---------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        result = yield
        if not self.is_worker and self.settings.baseline is not None:
            current = baseline_of(self.report)
            self.gate_result = compare(self.settings.baseline, current, self._max_growth())
            if self.gate_result.failed:
                session.testsfailed += 1  # exit code 1, as for a failing test
            if self.settings.max_cost_growth is not None:
                limit = self.settings.max_cost_growth
                self.cost_verdict = judge_cost(self.settings.baseline, self.report.tests, limit)
                session.testsfailed += int(self.cost_verdict.failed)  # exit code 1
        if not self.is_worker and self.settings.slo is not None:
            verdicts, by_test = judge_session(self.settings.slo, self.report.tests)
            self.report.add_slo(verdict.to_json() for verdict in verdicts)
            self.slo_misses = [describe_session_miss(v, by_test) for v in verdicts if not v.passed]
            if self._slo_fails_session:
                session.testsfailed += 1
        return result

    @property
    def _slo_fails_session(self) -> bool:
        """A session SLO gate was missed, and this is no shard (the merge judges a shard's)."""
        return bool(self.slo_misses) and self.settings.shard is None

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            return
        for flag in (session.shouldfail, session.shouldstop):  # -x, --maxfail, a plugin
            if flag:
                self.report.stop(stopped_early(flag))
        if exitstatus == pytest.ExitCode.INTERRUPTED and self.report.complete:
            self.report.stop("interrupted")
        if self.settings.report_path is not None:
            self._write("KV report", self.settings.report_path, self._write_report)
        self._write_pages()
        if self.settings.save_baseline is not None and self.report.complete:
            baseline = self.settings.save_baseline
            self._write("KV baseline", baseline, self._write_baseline)
        if self.write_errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        # The final line ("148 passed, 1 KV gate failed") says what the sections above say.
        if self.gate_result is not None and self.gate_result.failed:
            count_in_summary_line(self.config, GATE_FAILED, 1)
        if self._slo_fails_session:
            count_in_summary_line(self.config, SLO_FAILED, 1)
        if self.cost_verdict is not None and self.cost_verdict.failed:
            count_in_summary_line(self.config, COST_FAILED, 1)
        if not self.settings.factories_registered:
            count_in_summary_line(self.config, ON_THE_REFERENCE, len(self.suite_tests))

    def _write_report(self, path: Path) -> None:
        write_json_atomically(path, self._report_json())

    def _write_baseline(self, path: Path) -> None:
        write_json_atomically(path, baseline_of(self.report))

    def _report_json(self) -> dict[str, Any]:
        """The JSON report; under ``--dualcache-shard`` also what the merge needs (``shards``)."""
        data = self.report.to_json()
        if self.settings.shard is not None:
            data.update(shard_facts(self.settings.shard, self.selected, self.deselected))
        return data

    def _write_pages(self) -> None:
        """The HTML page and the Markdown summaries (``pages.pages``), with the gate's result."""
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        html, markdown = self.settings.html_path, self.settings.md_path
        if html is None and markdown is None and not step_summary:
            return
        data = self._report_json()
        if self.gate_result is not None:
            data.update(gate_sections(self.gate_result, self._max_growth(), self.cost_verdict))
        for what, path, write in pages(data, html, markdown, step_summary):
            self._write(what, path, write)

    def _write(self, what: str, path: Path, write: Callable[[Path], None]) -> None:
        """``write(path)``; a failure is reported under the KV report and fails the session."""
        try:
            write(path)
        except OSError as exc:
            self.write_errors.append((what, path, exc.strerror or str(exc)))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        terminalreporter.write_sep("=", "dualcache KV report")
        for line in [*self.report.render(), *render_bill(bill_section(self.report.tests))]:
            incomplete = line.startswith("SESSION INCOMPLETE")
            terminalreporter.write_line(line, red=incomplete, bold=incomplete)
        if self.gate_result is not None:
            red = self.gate_result.failed
            for line in self.gate_result.render(self._max_growth()):
                terminalreporter.write_line(line, red=red, bold=red)
        elif self.settings.baseline is not None:
            terminalreporter.write_line(NOT_COMPARED)
        for line in self.cost_verdict.render() if self.cost_verdict else []:
            terminalreporter.write_line(line, red=self.cost_verdict.failed)
        for line in render_slo(ordered(self.report.slo or [])):
            terminalreporter.write_line(line, red=line.startswith("  MISSED"))
        for miss in self.slo_misses:
            for line in miss.splitlines():
                terminalreporter.write_line(line, red=self._slo_fails_session)
        if self.slo_misses and not self._slo_fails_session:
            terminalreporter.write_line(SHARD_SLO_NOTE)
        failed = {path for _, path, _ in self.write_errors}
        for what, path, error in self.write_errors:
            terminalreporter.write_line(f"{what} NOT written to {path}: {error}", red=True)
        if self.settings.report_path is not None and self.settings.report_path not in failed:
            incomplete = "" if self.report.complete else ' (marked "complete": false)'
            terminalreporter.write_line(
                f"KV report written to {self.settings.report_path}{incomplete}"
            )
        if self.settings.save_baseline is None or self.settings.save_baseline in failed:
            return
        if self.report.complete:
            terminalreporter.write_line(f"KV baseline written to {self.settings.save_baseline}")
        else:
            terminalreporter.write_line(
                f"KV baseline NOT written to {self.settings.save_baseline}: the session was "
                f"incomplete ({'; '.join(self.report.incomplete_reasons)}), and a baseline "
                "must cover every selected test",
                red=True,
                bold=True,
            )


def _take(item: pytest.Item, key: pytest.StashKey[Accounting]) -> Accounting | None:
    """Remove ``key`` from the item's stash and return its value (None if absent)."""
    value = item.stash.get(key, None)
    if value is not None:
        del item.stash[key]
    return value
