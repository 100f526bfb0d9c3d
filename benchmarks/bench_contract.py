"""Wall time of the contract suite against the reference, the virtual time it simulates, and
what virtual time in the user's code (one freezegun freeze per test) costs.

Runs ``pytest --dualcache`` on the shipped suite in this process and prints: the suite's
wall time (target, issue 14: under 5 s per factory on 2 cores), tests per second, simulated
seconds per wall second (every TTL, rate window and backoff is simulated, nothing sleeps),
and the freeze's start+stop time per test, timed on every test of this run, so with the
modules this suite loaded. Run: ``python benchmarks/bench_contract.py [N] [--real-time]``,
N being hypothesis examples per property test (default 25, the suite's default);
``--real-time`` runs the reference with ``dualcache_real_time = True`` (no freeze), the
suite as it was before time in the user's code became virtual.
"""

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

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        harness = item.stash.get(CONTRACT_HARNESS_KEY, None)
        if harness is not None:
            self.seconds += harness.simulated_seconds
            self.tests += 1

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


def main() -> None:
    args = [arg for arg in sys.argv[1:] if arg != "--real-time"]
    real_time = "--real-time" in sys.argv[1:]
    examples = args[0] if args else "25"
    times = SuiteTimes()
    plugins: list[object] = [times, *([RealTimeReference()] if real_time else [])]
    start, stop = ClockFreeze.start, ClockFreeze.stop
    ClockFreeze.start = times.timed(start, counts=True)  # type: ignore[method-assign]
    ClockFreeze.stop = times.timed(stop, counts=False)  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as empty:  # only the shipped suite gets collected
            os.chdir(empty)
            started = time.perf_counter()
            code = pytest.main(
                ["--dualcache", f"--dualcache-examples={examples}", "-q", "-p", "no:cacheprovider"],
                plugins=plugins,
            )
            wall = time.perf_counter() - started
    finally:
        ClockFreeze.start, ClockFreeze.stop = start, stop  # type: ignore[method-assign]
    tests = max(times.tests, 1)
    per_freeze_ms = 1000 * times.freeze_seconds / times.freezes if times.freezes else 0.0
    verdict = "within" if wall < SUITE_BUDGET_S else "OVER"
    print(
        f"\ncontract suite vs the reference ({examples} examples per property test"
        f"{', real time: no freeze' if real_time else ''}): {times.tests} tests, "
        f"exit code {int(code)}\n"
        f"  wall time          {wall:8.2f} s ({verdict} the {SUITE_BUDGET_S:g} s budget, "
        f"{os.cpu_count()} cores here)\n"
        f"  tests per second   {times.tests / wall:8.1f}\n"
        f"  virtual time       {times.seconds:8.0f} s ({times.seconds / 86400:.1f} days)\n"
        f"  simulated s per s  {times.seconds / wall:8.0f} (no real sleeping)\n"
        f"  freezes            {times.freezes:8d} ({len(sys.modules)} modules loaded)\n"
        f"  freeze start+stop  {per_freeze_ms:8.2f} ms per freeze, "
        f"{1000 * times.freeze_seconds / tests:.2f} ms per test, {times.freeze_seconds:.2f} s "
        f"in all ({100 * times.freeze_seconds / wall:.0f}% of the wall time)"
    )


if __name__ == "__main__":
    main()
