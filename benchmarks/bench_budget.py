"""What KV budgets cost: a recorded, classified put; the plugin in a session without the flag.

Prints, from one run:

(a) the cost of ``KVNamespace.put`` (free plan) with recording on, a test-level budget
    scope open (``ledger.Scope()``) and write classification on, the put made from a module
    registered as a data-access module, against the same namespace with recording off
    (``ledger.enabled = False``). Target: <= 1.2x.
(b) the wall time of a generated 2,000-test suite run in a subprocess with the plugin
    installed but ``--dualcache`` off, against the same run with ``-p no:dualcache``
    (alternating runs, the ratio of the medians; unrelated plugins off in both). Target: <= 1.02x.

Nothing is asserted. Run: ``python benchmarks/bench_budget.py``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from pathlib import Path

from pytest_dualcache import KVNamespace, VirtualClock, ledger

# --- (a) the recorded put ---------------------------------------------------------------------

DAL_MODULE = "bench_budget_dal"
KEYS = [f"price:SYM{i:04d}" for i in range(1000)]  # the free plan's 1,000 writes a day
VALUE = '{"symbol":"AAPL","close":231.5,"volume":1200345}'
ROUNDS = 20
REPEATS = 7


def _dal() -> types.ModuleType:
    """A module named DAL_MODULE whose function makes the puts (what a project's DAL does)."""
    module = types.ModuleType(DAL_MODULE)
    source = textwrap.dedent(
        """
        def write_all(kv, keys, value, clock, rounds):
            for _ in range(rounds):
                for key in keys:
                    kv.put(key, value)
                clock.advance(86_400)  # a new UTC day: the daily quota is back
        """
    )
    exec(compile(source, f"<{DAL_MODULE}>", "exec"), module.__dict__)
    return module


def _put_cost(recording: bool, dal: types.ModuleType) -> float:
    """Best of REPEATS runs, in microseconds per put."""
    clock = VirtualClock()
    kv = KVNamespace(clock, plan="free")
    kv.ledger.enabled = recording
    timings = []
    for _ in range(REPEATS):
        kv.ledger.clear()
        scope = ledger.Scope()
        start = time.perf_counter()
        dal.write_all(kv, KEYS, VALUE, clock, ROUNDS)
        timings.append(time.perf_counter() - start)
        scope.close()
    if recording and {record.via for record in kv.ledger.records} != {DAL_MODULE}:
        raise RuntimeError(f"the puts were not classified as made via {DAL_MODULE}")
    return min(timings) / (ROUNDS * len(KEYS)) * 1e6


def bench_put() -> None:
    dal = _dal()
    ledger.classify_writes((DAL_MODULE,))
    try:
        off = on = 0.0
        for _ in range(2):  # alternate, keep the second (warm) pair
            off = _put_cost(False, dal)
            on = _put_cost(True, dal)
    finally:
        ledger.classify_writes(None)
    ratio = on / off
    verdict = "meets" if ratio <= 1.2 else "MISSES"
    print(f"(a) KVNamespace.put, best of {REPEATS} runs of {ROUNDS * len(KEYS)} puts, us per put")
    print(f"    recording off (ledger.enabled = False):             {off:.3f}")
    print(f"    recording on, Scope open, writes classified via DAL: {on:.3f}")
    print(f"    ratio {ratio:.2f}x ({verdict} <= 1.2x)")


# --- (b) the plugin in a session without --dualcache ---------------------------------------------

FILES, TESTS_PER_FILE = 20, 100  # 2,000 tests
RUN_PAIRS = 9
# Both runs drop the same unrelated plugins, so the difference is dualcache's alone.
COMMON = ["-q", "-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "no:hypothesispytest"]
COMMON += ["-p", "no:xdist"]


def _suite(root: Path) -> None:
    body = "\n".join(f"def test_{i}():\n    pass\n" for i in range(TESTS_PER_FILE))
    for index in range(FILES):
        (root / f"test_synthetic_{index:02d}.py").write_text(body)
    (root / "pytest.ini").write_text("[pytest]\n")


def _run(root: Path, *extra: str) -> float:
    command = [sys.executable, "-m", "pytest", *COMMON, *extra]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or f"{FILES * TESTS_PER_FILE} passed" not in done.stdout:
        raise RuntimeError(f"synthetic suite failed ({' '.join(extra)}):\n{done.stdout[-2000:]}")
    return elapsed


def bench_suite() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_budget_") as folder:
        root = Path(folder)
        _suite(root)
        _run(root)  # warm the file system and the bytecode caches
        with_plugin, without = [], []
        for pair in range(RUN_PAIRS):
            order = [(with_plugin, ()), (without, ("-p", "no:dualcache"))]
            for timings, extra in order if pair % 2 == 0 else reversed(order):
                timings.append(_run(root, *extra))
    on, off = statistics.median(with_plugin), statistics.median(without)
    ratio = on / off
    verdict = "meets" if ratio <= 1.02 else "MISSES"
    print(f"(b) {FILES * TESTS_PER_FILE}-test synthetic suite, median of {RUN_PAIRS} runs each, s")
    print(f"    -p no:dualcache:                    {off:.3f}  (all: {_seconds(without)})")
    print(f"    plugin installed, --dualcache off:  {on:.3f}  (all: {_seconds(with_plugin)})")
    best = min(with_plugin) / min(without)
    print(f"    ratio {ratio:.3f}x ({verdict} <= 1.02x); best against best {best:.3f}x")


def _seconds(timings: list[float]) -> str:
    return " ".join(f"{t:.2f}" for t in timings)


def main() -> None:
    bench_put()
    bench_suite()


if __name__ == "__main__":
    main()
