"""Wall time of the contract suite against the reference, the virtual time it simulates, and
what virtual time in the user's code (a freezegun freeze) costs.

Runs ``pytest --dualcache`` on the shipped suite in this process, twice in one fresh folder
(the first session also fills hypothesis's ``.hypothesis/`` caches), and prints for the second:
the suite's own time from the first test's setup to the last one's teardown (target, issue
14: under 5 s per factory on 2 cores), pytest's start apart (paid once per session), tests per
second, simulated seconds per wall second (every TTL, rate window and backoff is simulated,
nothing sleeps), and what starting and stopping freezes took (consecutive contract tests share
one). Run: ``python benchmarks/bench_contract.py [N] [--real-time]``, N being hypothesis
examples per property test (default 25, the suite's default); ``--real-time`` runs the
reference with ``dualcache_real_time = True`` (no freeze), the suite as it was before time in
the user's code became virtual."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import freezegun.api  # its real_perf_counter: the freeze fakes time.perf_counter, not it
import pytest

from pytest_dualcache.abstraction import CacheAbstraction
from pytest_dualcache.clock import ClockFreeze
from pytest_dualcache.plugin import CONTRACT_HARNESS_KEY

SUITE_BUDGET_S = 5.0  # issue 14: the suite under 5 s per factory on 2 cores


class SuiteTimes:
    """Adds up each contract test's virtual seconds and the time its freeze took."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.tests = 0
        self.freezes = 0
        self.freeze_seconds = 0.0
        #: Real time from the first test's setup to the last one's teardown: the suite itself,
        #: without pytest's start (plugins, imports), paid once per session, not per factory.
        self.first_setup: float | None = None
        self.last_teardown = 0.0

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.first_setup is None:
            self.first_setup = freezegun.api.real_perf_counter()

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        harness = item.stash.get(CONTRACT_HARNESS_KEY, None)
        if harness is not None:
            self.seconds += harness.simulated_seconds
            self.tests += 1
        self.last_teardown = freezegun.api.real_perf_counter()

    def timed(self, method: Callable[..., Any], *, counts: bool) -> Callable[..., Any]:
        """``method`` of ``ClockFreeze``, its wall time added to ``freeze_seconds``."""

        def wrapper(freeze: ClockFreeze) -> Any:
            started = freezegun.api.real_perf_counter()
            try:
                return method(freeze)
            finally:
                self.freeze_seconds += freezegun.api.real_perf_counter() - started
                self.freezes += counts

        return wrapper


class RealTimeReference:
    """Registers the reference with ``dualcache_real_time = True``: no freeze, as before."""

    @staticmethod
    def pytest_dualcache_factories(config: pytest.Config) -> dict[str, Any]:
        def make_dal(env: Any) -> CacheAbstraction:
            return CacheAbstraction(env)

        make_dal.dualcache_real_time = True  # type: ignore[attr-defined]
        return {"reference-real-time": make_dal}


def run_suite(examples: str, real_time: bool) -> tuple[float, int, SuiteTimes]:
    """One ``pytest --dualcache`` session in the current folder: wall time, exit code, times."""
    times = SuiteTimes()
    plugins: list[object] = [times, *([RealTimeReference()] if real_time else [])]
    start, stop = ClockFreeze.start, ClockFreeze.stop
    ClockFreeze.start = times.timed(start, counts=True)  # type: ignore[method-assign]
    ClockFreeze.stop = times.timed(stop, counts=False)  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        code = pytest.main(
            ["--dualcache", f"--dualcache-examples={examples}", "-q", "-p", "no:cacheprovider"],
            plugins=plugins,
        )
        return time.perf_counter() - started, int(code), times
    finally:
        ClockFreeze.start, ClockFreeze.stop = start, stop  # type: ignore[method-assign]


def main() -> None:
    args = [arg for arg in sys.argv[1:] if arg != "--real-time"]
    real_time = "--real-time" in sys.argv[1:]
    examples = args[0] if args else "25"
    # Twice in one folder: the first session also fills hypothesis's .hypothesis/ caches
    # (its unicode tables, the constants of loaded modules), as a fresh CI checkout does once.
    with tempfile.TemporaryDirectory() as empty:  # only the shipped suite gets collected
        os.chdir(empty)
        cold, _, _ = run_suite(examples, real_time)
        wall, code, times = run_suite(examples, real_time)
    tests = max(times.tests, 1)
    suite = times.last_teardown - (times.first_setup or times.last_teardown)
    per_freeze_ms = 1000 * times.freeze_seconds / times.freezes if times.freezes else 0.0
    verdict = "within" if suite < SUITE_BUDGET_S else "OVER"
    print(
        f"\ncontract suite vs the reference ({examples} examples per property test"
        f"{', real time: no freeze' if real_time else ''}): {times.tests} tests, "
        f"exit code {code}\n"
        f"  first session      {cold:8.2f} s in all (fills hypothesis's .hypothesis/ caches)\n"
        f"  the suite's tests  {suite:8.2f} s ({verdict} the {SUITE_BUDGET_S:g} s budget per "
        f"factory, {os.cpu_count()} cores here)\n"
        f"  pytest's start     {wall - suite:8.2f} s (once per session: plugins, imports, "
        f"collection, report{'; no bytecode cache' if sys.dont_write_bytecode else ''})\n"
        f"  tests per second   {times.tests / suite:8.1f}\n"
        f"  virtual time       {times.seconds:8.0f} s ({times.seconds / 86400:.1f} days)\n"
        f"  simulated s per s  {times.seconds / suite:8.0f} (no real sleeping)\n"
        f"  freezes            {times.freezes:8d} ({len(sys.modules)} modules loaded; "
        "consecutive contract tests share one)\n"
        f"  freeze start+stop  {per_freeze_ms:8.2f} ms per freeze, "
        f"{1000 * times.freeze_seconds / tests:.2f} ms per test, {times.freeze_seconds:.2f} s "
        f"in all ({100 * times.freeze_seconds / suite:.0f}% of the suite's time)"
    )


if __name__ == "__main__":
    main()
