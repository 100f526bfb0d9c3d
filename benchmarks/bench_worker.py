"""A Python Worker under pytest-dualcache: what one request costs, and starting the fixture.

Runs pytest in this process on a generated Worker project (wrangler.toml, a Worker whose
``fetch`` makes one Durable Object RPC call and one KV read, the DO storing a counter) and
prints, from this one run:

- the best time per ``dualcache_worker.fetch`` against the same logic as plain Python calls
  (a dict for the object's storage, a dict for KV), and the ratio (target <= 20x);
- the median time to set up ``dualcache_worker`` in a test whose env already exists (target
  <= 5 ms), in a run of consecutive tests that use it (they share one freeze: the first
  pays for starting it, printed apart).

Timings are printed, never asserted. Run: ``python benchmarks/bench_worker.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

REQUESTS = 2_000
REPEATS = 5
STARTS = 30

WRANGLER = """
main = "src/entry.py"
kv_namespaces = [{ binding = "SETTINGS", id = "5e771e9b0c5a4a0c9f1d2e3a4b5c6d7e" }]
durable_objects.bindings = [{ name = "COUNTER", class_name = "Counter" }]
migrations = [{ tag = "v1", new_sqlite_classes = ["Counter"] }]
"""

ENTRY = '''
from workers import DurableObject, Response, WorkerEntrypoint


class Counter(DurableObject):
    async def increment(self):
        value = (await self.ctx.storage.get("value") or 0) + 1
        await self.ctx.storage.put("value", value)
        return value


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        value = await self.env.COUNTER.getByName("main").increment()
        theme = await self.env.SETTINGS.get("theme")
        return Response(f"{theme}:{value}")


def plain_request(storage, kv):
    """The same logic as plain Python calls: the baseline."""
    value = (storage.get("value") or 0) + 1
    storage["value"] = value
    return f"{kv.get('theme')}:{value}"
'''

CONFTEST = """
import pytest
from freezegun import api

RESULTS = {}


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    started = api.real_perf_counter()
    result = yield
    if fixturedef.argname == "dualcache_worker":
        RESULTS.setdefault("starts", []).append((api.real_perf_counter() - started) * 1e3)
    return result
"""

TESTS = f"""
import pytest
from freezegun import api  # the Worker's time is frozen; ours reads api.real_perf_counter

from conftest import RESULTS
from entry import plain_request


def best(loop, repeats={REPEATS}):
    timings = []
    for _ in range(repeats):
        started = api.real_perf_counter()
        loop()
        timings.append(api.real_perf_counter() - started)
    return min(timings) / {REQUESTS} * 1e6


def test_request(dualcache_worker, dualcache_env):
    dualcache_env.SETTINGS.put("theme", "dark")
    assert dualcache_worker.fetch("/").text == "dark:1"

    def worker_loop():
        for _ in range({REQUESTS}):
            dualcache_worker.fetch("/")

    storage, kv = {{}}, {{"theme": "dark"}}

    def plain_loop():
        for _ in range({REQUESTS}):
            plain_request(storage, kv)

    RESULTS["worker"] = best(worker_loop)
    RESULTS["plain"] = best(plain_loop)


@pytest.mark.parametrize("n", range({STARTS}))
def test_start(dualcache_worker, n):
    pass
"""


def main() -> int:
    """Run the generated project and print the figures."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "wrangler.toml").write_text(WRANGLER)
        (root / "src").mkdir()
        (root / "src" / "entry.py").write_text(textwrap.dedent(ENTRY))
        (root / "pytest.ini").write_text("[pytest]\npythonpath = src\n")
        (root / "test_bench.py").write_text(textwrap.dedent(TESTS))
        (root / "conftest.py").write_text(CONFTEST)
        cwd = os.getcwd()
        os.chdir(root)
        try:
            code = pytest.main(["-q", "-p", "no:randomly", "-p", "no:cacheprovider", str(root)])
            results = sys.modules["conftest"].RESULTS
        finally:
            os.chdir(cwd)
    if code != 0:
        return int(code)
    worker, plain = results["worker"], results["plain"]
    first, *starts = results["starts"]
    print(f"Worker fetch (one DO RPC, one KV read): {worker:.1f} us per request")
    print(f"the same logic as plain Python calls:   {plain:.2f} us per request")
    print(f"ratio: {worker / plain:.0f}x (target <= 20x)")
    print(
        f"starting dualcache_worker: median {statistics.median(starts):.2f} ms, best "
        f"{min(starts):.2f} ms over {len(starts)} tests (target <= 5 ms); the first test, "
        f"which starts the freeze: {first:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
