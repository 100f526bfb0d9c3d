"""Time in the user's code during contract tests: the env's clock, through a shared freeze.

A DAL timed by ``time.time()`` and ``datetime.now()`` passes the whole suite; the same DAL
opted out with ``dualcache_real_time = True`` fails TTL-1 by name. A DAL whose reads back off
on the virtual clock gets a clause result from LOC-3, never a ``ValueError``. The harness's
own handling of late steps, sleeps and resets is tested directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import freezegun.api

# pytester restores sys.modules after an in-process run: preloading what hypothesis's
# terminal summary imports keeps every run from re-importing hypothesis.
import hypothesis.internal.observability  # noqa: F401
import pytest
from pytest_dualcache.contracts.harness import ContractHarness

from pytest_dualcache.abstraction import CacheAbstraction
from pytest_dualcache.clock import DEFAULT_START, ClockFreeze
from pytest_dualcache.env import DualCacheEnv

#: The reference with its clock swapped for the wall clock, as a hand-written DAL has it.
DAL_TIME = """
    import datetime
    import time

    from pytest_dualcache.abstraction import CacheAbstraction
    from pytest_dualcache.local_cache import LocalCache


    class WallClockLocalCache(LocalCache):
        '''Ages its copies by datetime.now(), whatever time it is handed.'''

        def serves(self, entry, view, now):
            wall = datetime.datetime.now(datetime.timezone.utc).timestamp()
            return super().serves(entry, view, wall)


    class WallClockDAL(CacheAbstraction):
        '''Reads the time with time.time() for its stamps, TTLs and route checks.'''

        local_cache_class = WallClockLocalCache

        def _now(self):
            return time.time()


    def make_dal(env):
        return WallClockDAL(env)


    def make_dal_real_time(env):
        return WallClockDAL(env)


    make_dal_real_time.dualcache_real_time = True
"""

#: Reads that back off on the virtual clock after reading, as a retried write after a 429.
DAL_BACKOFF = """
    import time

    from pytest_dualcache.abstraction import CacheAbstraction

    BACKOFF_S = 10


    class ReadThenBackOff(CacheAbstraction):
        '''The reference; each get then backs off 10 s, so the next read lands late.'''

        def get(self, key):
            value = super().get(key)
            time.sleep(BACKOFF_S)  # the contract fixture monkeypatches it to move the clock
            return value


    class StaleThenBackOff(ReadThenBackOff):
        '''Keeps local copies for 60 s but declares a local_cache_ttl of 30 s.'''

        def __init__(self, env):
            super().__init__(env, local_cache_ttl=60)
            self.local_cache_ttl = 30


    def make_slow(env):
        return ReadThenBackOff(env)


    def make_stale(env):
        return StaleThenBackOff(env)
"""

#: A test of the user's own, in a DualCacheContract subclass, on the time sources.
TIME_SOURCES = """
    import asyncio
    import datetime
    import time

    import freezegun.api
    import pytest

    from pytest_dualcache.contracts import DualCacheContract
    from dal_time import make_dal as wall_clock_dal


    class TestTimeSources(DualCacheContract):
        @pytest.fixture
        def make_dal(self):
            return wall_clock_dal

        def test_the_dal_reads_the_contract_clock(self, contract):
            dal = contract.start("kv")
            contract.advance(90.25)
            now = contract.clock.now()
            assert time.time() == now == dal.dal._now()
            assert time.monotonic() == now
            assert abs(time.time_ns() - round(now * 1e9)) < 1_000
            assert datetime.datetime.now() == datetime.datetime(2026, 1, 5, 0, 1, 30, 250000)
            assert datetime.datetime.utcnow() == datetime.datetime(2026, 1, 5, 0, 1, 30, 250000)
            assert datetime.date.today() == datetime.date(2026, 1, 5)
            mark = contract.mark()
            assert dal.put("ttl:k", 1, ttl=60).succeeded
            puts = contract.ops_since(mark, store="kv", ops=("put",))
            assert [record.at for record in puts if record.key == "ttl:k"] == [time.time()]
            contract.advance(59.999)
            assert dal.get("ttl:k") == 1
            contract.advance(0.001)
            assert dal.get("ttl:k") is None

        def test_the_event_loop_keeps_real_time(self, contract):
            async def loop_time():
                return asyncio.get_running_loop().time()

            before = freezegun.api.real_monotonic()
            loop_now = contract.run(loop_time())
            assert before <= loop_now <= freezegun.api.real_monotonic()
            assert time.monotonic() == contract.clock.now() != loop_now
"""


@dataclass(frozen=True)
class SuiteRun:
    """One contract run: each test's outcome and, for failures, its report text."""

    outcomes: dict[str, str]
    reports: dict[str, str]

    def of(self, factory: str, prefix: str = "test_") -> dict[str, str]:
        """Outcomes of the tests named ``prefix...`` that ran against ``factory``."""
        return {
            nodeid: outcome
            for nodeid, outcome in self.outcomes.items()
            if nodeid.rpartition("::")[2].startswith(prefix)
            and nodeid.partition("[")[2].split("-")[0].rstrip("]") == factory
        }


def run_suite(pytester: pytest.Pytester, *args: str) -> SuiteRun:
    """Run ``pytest --dualcache *args`` in-process on the DAL modules above."""
    pytester.makepyfile(dal_time=DAL_TIME, dal_backoff=DAL_BACKOFF)
    pytester.syspathinsert()
    reprec = pytester.inline_run("--dualcache", "-p", "no:cacheprovider", *args)
    outcomes: dict[str, str] = {}
    reports: dict[str, str] = {}
    for report in reprec.getreports("pytest_runtest_logreport"):
        if report.when == "call" or report.outcome != "passed":
            outcome = "error" if report.when != "call" and report.failed else report.outcome
            outcomes.setdefault(report.nodeid, outcome)
        if report.failed:
            reports[report.nodeid] = str(report.longrepr)
    return SuiteRun(outcomes, reports)


@pytest.fixture(scope="module")
def runs() -> dict[str, SuiteRun]:
    """This module's suite runs, made once each by whichever test asks first."""
    return {}


@pytest.fixture
def wall_clock_run(
    runs: dict[str, SuiteRun], pytester: pytest.Pytester, quick_suite_examples: str
) -> SuiteRun:
    """The whole suite against the DAL timed by ``time.time()`` and ``datetime.now()``."""
    if "wall" not in runs:
        runs["wall"] = run_suite(
            pytester, "--dualcache-factory=wall=dal_time:make_dal", quick_suite_examples
        )
    return runs["wall"]


@pytest.fixture
def narrow_run(runs: dict[str, SuiteRun], pytester: pytest.Pytester) -> SuiteRun:
    """TTL-1 and LOC-3 against the opted-out DAL and the two DALs that back off on reads."""
    if "narrow" not in runs:
        runs["narrow"] = run_suite(
            pytester,
            "--dualcache-factory=realtime=dal_time:make_dal_real_time",
            "--dualcache-factory=slow=dal_backoff:make_slow",
            "--dualcache-factory=stale=dal_backoff:make_stale",
            "-k",
            "TTL_1 or LOC_3",
        )
    return runs["narrow"]


# --- time.time() and datetime.now() read the env's clock --------------------------------------


def test_a_dal_timed_by_time_time_and_datetime_now_passes_the_suite(
    wall_clock_run: SuiteRun,
) -> None:
    ran = wall_clock_run.of("wall")
    assert len(ran) > 100, f"the suite did not run against the DAL: {sorted(ran)}"
    failed = {nodeid: wall_clock_run.reports.get(nodeid, "") for nodeid in ran}
    assert {nodeid for nodeid, outcome in ran.items() if outcome in ("failed", "error")} == set(), (
        "\n\n".join(text for nodeid, text in failed.items() if ran[nodeid] != "passed")
    )


def test_the_opted_out_dal_fails_ttl_1_naming_it(narrow_run: SuiteRun) -> None:
    ran = narrow_run.of("realtime", "test_TTL_1_")
    failed = [nodeid for nodeid, outcome in ran.items() if outcome == "failed"]
    assert ran and failed, f"the DAL on real time passed TTL-1: {ran}"
    assert "dualcache contract clause TTL-1 broken" in narrow_run.reports[failed[0]]
    assert "the value must be gone once elapsed >= ttl" in narrow_run.reports[failed[0]]


def test_the_dal_reads_the_contract_clock_and_the_loop_keeps_real_time(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(dal_time=DAL_TIME, test_time_sources=TIME_SOURCES)
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "-k", "dal_reads or real_time"
    )
    result.assert_outcomes(passed=2)


# --- LOC-3 and a DAL that moves the clock itself ----------------------------------------------


def test_loc_3_passes_a_dal_whose_reads_back_off_on_the_clock(narrow_run: SuiteRun) -> None:
    ran = narrow_run.of("slow", "test_LOC_3_")
    assert len(ran) == 12, f"LOC-3 did not run against the DAL: {ran}"
    assert set(ran.values()) == {"passed"}, [narrow_run.reports.get(n) for n in ran]


def test_loc_3_fails_a_stale_dal_whose_reads_back_off_naming_the_clause(
    narrow_run: SuiteRun,
) -> None:
    ran = narrow_run.of("stale", "test_LOC_3_")
    failed = [nodeid for nodeid, outcome in ran.items() if outcome == "failed"]
    assert len(ran) == 12 and failed, f"LOC-3 passed a DAL stale past its bound: {ran}"
    for nodeid in failed:
        text = narrow_run.reports[nodeid]
        assert "dualcache contract clause LOC-3 broken" in text, text
        assert "ValueError" not in text, text
        assert "the DAL moved it" in text, text  # the transcript notes the late step
    assert "error" not in ran.values()


def test_loc_3_judges_every_late_read_at_the_time_it_was_made(narrow_run: SuiteRun) -> None:
    # B holds a stale copy of loc3 here (in the DO-refused variants it never read it), and
    # its backoff makes the read due at 22.5 s land at 30 s, where the copy must be gone.
    ran = narrow_run.of("stale", "test_LOC_3_other_instance_sees_a_write_within")
    early = {nodeid: outcome for nodeid, outcome in ran.items() if nodeid.endswith("-early]")}
    assert len(early) == 4 and set(early.values()) == {"failed"}, early


# --- the harness on its own -------------------------------------------------------------------


class Sleeper:
    """A DAL stub whose get sleeps ``seconds`` on the env's clock, as after a 429."""

    def __init__(self, env: DualCacheEnv, seconds: float) -> None:
        self.env = env
        self.seconds = seconds

    def get(self, key: str) -> None:
        self.env.clock.sleep(self.seconds)


def test_advance_to_an_instant_ahead_gets_there_and_is_not_late() -> None:
    harness = ContractHarness(CacheAbstraction)
    assert harness.advance_to(DEFAULT_START + 0.1) == 0.0
    assert harness.advance_to(DEFAULT_START + 0.1) == 0.0  # the same instant is not late
    assert harness.clock.now() == DEFAULT_START + 0.1


def test_advance_to_an_instant_the_dal_slept_past_says_how_late_and_logs_it() -> None:
    harness = ContractHarness(lambda env: Sleeper(env, 20))
    reader = harness.start("kv")
    reader.get("k")
    assert harness.advance_to(DEFAULT_START + 15) == 5.0
    assert harness.clock.now() == DEFAULT_START + 20
    story = harness.transcript()
    assert "A.get('k')" in story and "-> None  (moved the clock +20 s, to t=20.000)" in story
    assert "clock already 5 s past t=15.000, where this step was due (the DAL moved it)" in story


def test_reset_under_a_freeze_brings_time_time_back_to_the_start() -> None:
    harness = ContractHarness(CacheAbstraction)
    with harness.clock.freeze():
        harness.advance(100)
        harness.reset()
        assert time.time() == harness.clock.now() == DEFAULT_START
        harness.advance(30)
    assert harness.simulated_seconds == 130
    assert harness.clock.now() == DEFAULT_START + 30
    assert time.time() != DEFAULT_START + 30 and not freezegun.api.freeze_factories


#: Contract tests of two classes with a test of the user's own between them.
SHARED_FREEZE = """
    import time

    import freezegun.api
    import pytest

    from pytest_dualcache.abstraction import CacheAbstraction
    from pytest_dualcache.contracts import DualCacheContract


    class TestFirst(DualCacheContract):
        @pytest.fixture
        def make_dal(self):
            return CacheAbstraction


    def test_between_contract_tests_time_is_real():
        assert not freezegun.api.freeze_factories
        assert abs(time.time() - freezegun.api.real_time()) < 60


    class TestSecond(TestFirst):
        pass
"""


def test_consecutive_contract_tests_share_one_freeze_and_other_tests_keep_real_time(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: list[float] = []
    start = ClockFreeze.start

    def counting_start(freeze: ClockFreeze) -> ClockFreeze:
        starts.append(time.time())
        return start(freeze)

    monkeypatch.setattr(ClockFreeze, "start", counting_start)
    pytester.makepyfile(test_shared=SHARED_FREEZE)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "-k", "TTL_4 or TTL_1 or between"
    )
    result.assert_outcomes(passed=13)  # TTL-1 (4) and TTL-4 (2) twice, and the test between
    assert len(starts) == 2, "one freeze for each run of consecutive contract tests"
    assert not freezegun.api.freeze_factories, "the last contract test stopped the freeze"
