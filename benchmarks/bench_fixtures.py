"""The emulators' cost as users feel it: through the public fixtures, in a ``--dualcache`` session.

Runs ``pytest --dualcache`` in this process on a generated project whose tests loop over the
``do_cache`` and ``kv_namespace`` fixtures from a registered data-access module (so every KV
write is recorded and classified, as in a user's session), and over a bare dict with an expiry
check that stores the same short string without copying. Prints, from this one run, the best
time per get+set pair of each and the ratios. Targets (issue 14): DO get+set <= 5x and KV
get+put <= 10x the dict. Run: ``python benchmarks/bench_fixtures.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

ROUNDS = 20  # each round writes then reads every key once, then a simulated day passes
REPEATS = 7  # best of this many timed loops per store

DAL_MODULE = '''
"""The loops a DAL would run, in a module registered with dualcache_dal_modules."""

import time

KEYS = [f"price:SYM{i:04d}" for i in range(1000)]
VALUE = "AAPL:231.5"
DAY = 86_400


class ExpiringDict:
    """The baseline: (value, expires_at) per key, checked on read; nothing copied."""

    def __init__(self, clock):
        self._entries = {}
        self._now = clock.now

    def set(self, key, value, ttl):
        self._entries[key] = (value, self._now() + ttl)

    def get(self, key):
        entry = self._entries.get(key)
        if entry is None or self._now() >= entry[1]:
            return None
        return entry[0]


def best_per_pair(loop, store, clock, rounds, repeats):
    """Microseconds per get+set pair, the best of ``repeats`` timed loops."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        loop(store, clock, rounds)
        timings.append(time.perf_counter() - started)
    return min(timings) / (rounds * len(KEYS)) * 1e6


def dict_loop(store, clock, rounds):
    for _ in range(rounds):
        for key in KEYS:
            store.set(key, VALUE, 3600)
            store.get(key)
        clock.advance(DAY)


def do_loop(cache, clock, rounds):
    for _ in range(rounds):
        for key in KEYS:
            cache.set(key, VALUE, ttl=3600)
            cache.get(key)
        clock.advance(DAY)


def kv_loop(kv, clock, rounds):
    for _ in range(rounds):
        for key in KEYS:
            kv.put(key, VALUE, expiration_ttl=3600)
            kv.get(key)
        clock.advance(DAY)  # a new UTC day: the free plan's 1,000 writes are back
'''

TEST_MODULE = f"""
import bench_dal

ROUNDS, REPEATS = {ROUNDS}, {REPEATS}


def test_dict(dualcache_clock, record_property):
    store = bench_dal.ExpiringDict(dualcache_clock)
    cost = bench_dal.best_per_pair(bench_dal.dict_loop, store, dualcache_clock, ROUNDS, REPEATS)
    record_property("us_per_pair", cost)


def test_do_cache(do_cache, dualcache_clock, record_property):
    cost = bench_dal.best_per_pair(bench_dal.do_loop, do_cache, dualcache_clock, ROUNDS, REPEATS)
    record_property("us_per_pair", cost)


def test_kv_namespace(kv_namespace, dualcache_clock, record_property):
    cost = bench_dal.best_per_pair(
        bench_dal.kv_loop, kv_namespace, dualcache_clock, ROUNDS, REPEATS
    )
    record_property("us_per_pair", cost)
"""

INI = """
[pytest]
dualcache_dal_modules = bench_dal
dualcache_factory = reference=pytest_dualcache.abstraction:CacheAbstraction
"""


class Costs:
    """Collects each benchmark test's recorded microseconds per pair."""

    def __init__(self) -> None:
        self.per_pair: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            for name, value in report.user_properties:
                if name == "us_per_pair":
                    self.per_pair[report.nodeid.rsplit("::", 1)[-1]] = float(value)


def main() -> None:
    costs = Costs()
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "bench_dal.py").write_text(textwrap.dedent(DAL_MODULE))
        (project / "test_bench.py").write_text(textwrap.dedent(TEST_MODULE))
        (project / "pytest.ini").write_text(textwrap.dedent(INI))
        os.chdir(project)
        sys.path.insert(0, str(project))
        # Node ids, not the file: the contract suite is not added to the session.
        tests = [f"test_bench.py::{name}" for name in ("test_dict", "test_do_cache")]
        tests.append("test_bench.py::test_kv_namespace")
        code = pytest.main(["--dualcache", "-q", "-p", "no:cacheprovider", *tests], plugins=[costs])
    if code != 0 or len(costs.per_pair) != 3:
        raise SystemExit(f"the benchmark session failed (exit code {int(code)})")
    baseline = costs.per_pair["test_dict"]
    print(
        f"\nthrough the fixtures under --dualcache, best of {REPEATS} loops of "
        f"{ROUNDS * 1000} get+set pairs, microseconds per pair"
    )
    print(f"  dict + expiry check:    {baseline:.3f}   (the baseline)")
    for test, label, target in (
        ("test_do_cache", "do_cache", 5),
        ("test_kv_namespace", "kv_namespace (free)", 10),
    ):
        cost = costs.per_pair[test]
        ratio = cost / baseline
        verdict = "meets" if ratio <= target else "MISSES"
        print(f"  {label:<22} {cost:.3f}   {ratio:.2f}x ({verdict} the <= {target}x target)")


if __name__ == "__main__":
    main()
