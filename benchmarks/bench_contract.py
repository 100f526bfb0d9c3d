"""Wall time of the contract suite against the reference, and the virtual time it simulates.

Runs ``pytest --dualcache`` on the shipped suite in this process and prints the wall time
next to the seconds of virtual time the tests lived through (every TTL, rate window and
backoff is simulated, nothing sleeps). Run: ``python benchmarks/bench_contract.py [N]``,
N being hypothesis examples per property test (default 25, the suite's default).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import pytest

from pytest_dualcache.plugin import CONTRACT_HARNESS_KEY


class SimulatedTime:
    """Adds up the virtual seconds of every contract test's harness."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.tests = 0

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        harness = item.stash.get(CONTRACT_HARNESS_KEY, None)
        if harness is not None:
            self.seconds += harness.simulated_seconds
            self.tests += 1


def main() -> None:
    examples = sys.argv[1] if len(sys.argv) > 1 else "25"
    counter = SimulatedTime()
    with tempfile.TemporaryDirectory() as empty:  # only the shipped suite gets collected
        os.chdir(empty)
        started = time.perf_counter()
        code = pytest.main(
            ["--dualcache", f"--dualcache-examples={examples}", "-q", "-p", "no:cacheprovider"],
            plugins=[counter],
        )
        wall = time.perf_counter() - started
    print(
        f"\ncontract suite vs the reference ({examples} examples per property test): "
        f"{counter.tests} tests, exit code {int(code)}\n"
        f"  wall time       {wall:8.2f} s\n"
        f"  virtual time    {counter.seconds:8.0f} s ({counter.seconds / 86400:.1f} days)\n"
        f"  speed-up        {counter.seconds / wall:8.0f}x real time; no real sleeping"
    )


if __name__ == "__main__":
    main()
