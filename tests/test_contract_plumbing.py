"""The contract suite as a user runs it: --dualcache, factories, failure reports, pytest flags.

Every run is narrowed to the TTL-1 and FB-1 clauses (``-k``): the point is the plumbing
around the suite, not the clauses, which other tests cover.
"""

from __future__ import annotations

import json
import re

# pytester restores sys.modules after each in-process run: preloading what hypothesis's
# terminal summary imports keeps every run from re-importing hypothesis (about 1 s each).
import hypothesis.internal.observability  # noqa: F401
import pytest

NARROW = ("-k", "TTL_1 or FB_1")
SUITE = "pytest_dualcache/contracts/test_registered.py::TestDualCacheContract::"

#: The reference, as a user's own factory module would expose it.
MINE = """
    from pytest_dualcache.abstraction import CacheAbstraction


    def make_dal(env):
        return CacheAbstraction(env)


    not_callable = 42
"""

ASYNC = """
    import asyncio

    from pytest_dualcache.abstraction import CacheAbstraction


    class AsyncDAL:
        def __init__(self, env):
            self.inner = CacheAbstraction(env)
            self.default_ttl = self.inner.default_ttl
            self.local_cache_ttl = self.inner.local_cache_ttl

        async def put(self, key, value, ttl=None):
            await asyncio.sleep(0)
            return self.inner.put(key, value, ttl=ttl)

        async def get(self, key):
            await asyncio.sleep(0)
            return self.inner.get(key)

        async def delete(self, key):
            return self.inner.delete(key)


    class LoopBoundClient:
        '''Like an HTTP session: usable only on the event loop it was made on.'''

        def __init__(self):
            self.loop = asyncio.get_running_loop()

        async def call(self):
            assert asyncio.get_running_loop() is self.loop, "used on a second event loop"


    class LoopBoundDAL(AsyncDAL):
        def __init__(self, env, client):
            super().__init__(env)
            self.client = client

        async def put(self, key, value, ttl=None):
            await self.client.call()
            return await super().put(key, value, ttl)

        async def get(self, key):
            await self.client.call()
            return await super().get(key)

        async def delete(self, key):
            await self.client.call()
            return await super().delete(key)


    async def make_loop_bound(env):
        return LoopBoundDAL(env, LoopBoundClient())
"""


@pytest.fixture
def dal_modules(pytester: pytest.Pytester, broken_dal: str) -> pytest.Pytester:
    """The DAL modules above and conftest's broken one: dal_mine, dal_async and dal_broken."""
    pytester.makepyfile(dal_mine=MINE, dal_async=ASYNC)
    pytester.syspathinsert()
    return pytester


def suite_ids(reprec: pytest.HookRecorder) -> dict[str, str]:
    """``{nodeid: outcome}`` of every test that ran (setup errors count as "error")."""
    outcomes = {}
    for report in reprec.getreports("pytest_runtest_logreport"):
        if report.when == "call" or report.outcome != "passed":
            outcome = "error" if report.when != "call" and report.failed else report.outcome
            outcomes.setdefault(report.nodeid, outcome)
    return outcomes


def factory_names(ids: dict[str, str]) -> set[str]:
    """The factory each suite test ran against: the first part of its parameter id."""
    return {nodeid.split("[", 1)[1].split("-")[0].rstrip("]") for nodeid in ids}


# --- the suite against the reference ----------------------------------------------------------


def test_dualcache_alone_runs_the_suite_against_the_reference(pytester):
    reprec = pytester.inline_run("--dualcache", *NARROW)
    ids = suite_ids(reprec)
    assert ids and set(ids.values()) == {"passed"}
    assert all(nodeid.startswith(SUITE) for nodeid in ids)
    assert all("[reference" in nodeid for nodeid in ids)
    assert any("test_FB_1" in nodeid for nodeid in ids)
    assert any("test_TTL_1" in nodeid for nodeid in ids)


def test_the_header_names_the_factories_under_test(pytester):
    result = pytester.runpytest("--dualcache", "-k", "FB_1")
    result.stdout.fnmatch_lines(["dualcache: *contract suite against: reference"])
    assert result.ret == 0


def test_without_dualcache_the_suite_is_not_collected(pytester):
    pytester.makepyfile("def test_own(): pass")
    pytester.runpytest().assert_outcomes(passed=1)


# --- registering factories --------------------------------------------------------------------


def test_a_factory_from_the_command_line_replaces_the_reference(dal_modules):
    reprec = dal_modules.inline_run(
        "--dualcache", "--dualcache-factory=mine=dal_mine:make_dal", *NARROW
    )
    ids = suite_ids(reprec)
    assert factory_names(ids) == {"mine"}
    assert set(ids.values()) == {"passed"}


def test_repeated_command_line_factories_all_run_and_an_unnamed_one_is_named_by_its_spec(
    dal_modules,
):
    reprec = dal_modules.inline_run(
        "--dualcache",
        "--dualcache-factory=mine=dal_mine:make_dal",
        "--dualcache-factory",
        "dal_mine:make_dal",
        "-k",
        "FB_1",
    )
    ids = suite_ids(reprec)
    assert factory_names(ids) == {"mine", "dal_mine:make_dal"}
    assert set(ids.values()) == {"passed"}


def test_factories_from_the_ini_list(dal_modules):
    dal_modules.makeini(
        """
        [pytest]
        dualcache_factory =
            one=dal_mine:make_dal
            two = dal_mine:make_dal
            dal_mine:make_dal
        """
    )
    ids = suite_ids(dal_modules.inline_run("--dualcache", "-k", "FB_1"))
    assert factory_names(ids) == {"one", "two", "dal_mine:make_dal"}


def test_the_command_line_replaces_the_ini_list(dal_modules):
    dal_modules.makeini(
        """
        [pytest]
        dualcache_factory =
            one=dal_mine:make_dal
            not a spec at all
        """
    )
    reprec = dal_modules.inline_run(
        "--dualcache", "--dualcache-factory=cli=dal_mine:make_dal", "-k", "FB_1"
    )
    assert factory_names(suite_ids(reprec)) == {"cli"}


def test_factories_from_the_hook_join_the_ini_ones(dal_modules):
    dal_modules.makeini("[pytest]\ndualcache_factory = ini=dal_mine:make_dal\n")
    dal_modules.makeconftest(
        """
        from dal_mine import make_dal

        def pytest_dualcache_factories(config):
            return {"hooked": make_dal}
        """
    )
    ids = suite_ids(dal_modules.inline_run("--dualcache", "-k", "FB_1"))
    assert factory_names(ids) == {"ini", "hooked"}
    assert set(ids.values()) == {"passed"}


HOOK_RETURNING = """
    from dal_mine import make_dal

    def pytest_dualcache_factories(config):
        return {"%s": %s}
"""


@pytest.mark.parametrize(
    ("args", "conftest", "error"),
    [
        pytest.param(
            ["--dualcache-factory=nocolon"],
            None,
            "ERROR: --dualcache-factory: 'nocolon' is not a factory spec; write "
            "'package.module:make_dal'*",
            id="no-colon",
        ),
        pytest.param(
            ["--dualcache-factory=x=missing.module:f"],
            None,
            "ERROR: --dualcache-factory: cannot import 'missing.module' for "
            "'x=missing.module:f' (ModuleNotFoundError*is its folder on sys.path*",
            id="missing-module",
        ),
        pytest.param(
            ["--dualcache-factory=os:no_such_attr"],
            None,
            "ERROR: --dualcache-factory: module 'os' has no attribute 'no_such_attr'*",
            id="missing-attribute",
        ),
        pytest.param(
            ["--dualcache-factory=dal_mine:not_callable"],
            None,
            "ERROR: --dualcache-factory: 'dal_mine:not_callable' names a int, not a callable*",
            id="not-callable",
        ),
        pytest.param(
            ["--dualcache-factory=a=dal_mine:make_dal", "--dualcache-factory=a=os:getcwd"],
            None,
            "ERROR: --dualcache-factory: two factories are named 'a'",
            id="duplicate-name",
        ),
        pytest.param(
            [],
            HOOK_RETURNING % ("bad", "42"),
            "ERROR: pytest_dualcache_factories: 'bad' is a int, not a callable factory",
            id="hook-not-callable",
        ),
        pytest.param(
            ["--dualcache-factory=mine=dal_mine:make_dal"],
            HOOK_RETURNING % ("mine", "make_dal"),
            "ERROR: pytest_dualcache_factories: 'mine' is registered twice",
            id="hook-duplicate",
        ),
    ],
)
def test_a_bad_factory_is_a_usage_error_naming_its_source(dal_modules, args, conftest, error):
    if conftest:
        dal_modules.makeconftest(conftest)
    result = dal_modules.runpytest("--dualcache", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([error])


def test_a_bad_ini_spec_is_a_usage_error_naming_the_ini_key(pytester):
    pytester.makeini("[pytest]\ndualcache_factory = nocolon\n")
    result = pytester.runpytest("--dualcache")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini dualcache_factory: 'nocolon' is not a factory spec*"])


def test_factories_are_not_loaded_without_dualcache(pytester):
    pytester.makepyfile("def test_own(): pass")
    result = pytester.runpytest("--dualcache-factory=nocolon")
    result.assert_outcomes(passed=1)


# --- failure reports --------------------------------------------------------------------------


def test_a_broken_dal_fails_with_the_clause_its_statement_and_the_operations(dal_modules):
    from pytest_dualcache.contracts.clauses import CLAUSES

    result = dal_modules.runpytest(
        "--dualcache", "--dualcache-factory=broken=dal_broken:IgnoresTTLOnKV", "-k", "TTL_1"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"*dualcache contract clause TTL-1 broken: {CLAUSES['TTL-1']}*",
            "Operations, oldest first*",
            '*flag FEATURE_FLAG_DO_CACHE = "false"',
            "*A.put(*ttl=*)  [[]flag routes to KV]*",
            "*CACHE_KV put * B: ok",
            "*A.get(*)  [[]flag routes to KV]  -> *",
            "*CACHE_KV get * B: ok",
            "Why TTL-1 exists and the smallest behaviour that meets it: docs/contract.md#ttl-1*",
        ]
    )
    result.stdout.fnmatch_lines([f"FAILED {SUITE}test_TTL_1_*[[]broken-*-kv]*"])
    assert "[broken-on-the-second-do]" not in "\n".join(
        line for line in result.stdout.lines if line.startswith("FAILED")
    )


#: TTL-1's failing assert as only assertion rewriting explains it: the compared value, and
#: where it came from. pytest 8.0 names the call ``<bound method DALHandle.get of ...>``,
#: later versions ``get`` (with a further line saying which ``get``).
REWRITTEN_ASSERT = [
    "E       assert {'v': 1} is None",
    "E        +  where {'v': 1} = *get*('ttl:1')",
    "E        +    where *get* = <DAL instance A: IgnoresTTLOnKV>.get",
]


def test_assertions_in_the_contract_modules_are_rewritten(dal_modules):
    result = dal_modules.runpytest(
        "--dualcache", "--dualcache-factory=broken=dal_broken:IgnoresTTLOnKV", "-k", "TTL_1"
    )
    result.stdout.fnmatch_lines(["E       AssertionError: *", *REWRITTEN_ASSERT])


# --- DAL flavours -----------------------------------------------------------------------------


def test_async_dals_and_loop_bound_resources_pass_on_one_loop_per_test(dal_modules):
    reprec = dal_modules.inline_run(
        "--dualcache",
        "--dualcache-factory=async=dal_async:AsyncDAL",
        "--dualcache-factory=loopbound=dal_async:make_loop_bound",
        *NARROW,
    )
    ids = suite_ids(reprec)
    assert factory_names(ids) == {"async", "loopbound"}
    assert set(ids.values()) == {"passed"}


def test_a_dal_that_sleeps_moves_the_virtual_clock_instead(pytester):
    record = pytester.path / "sleeps.jsonl"
    pytester.makepyfile(
        dal_sleepy=f"""
        import json
        import time

        from pytest_dualcache.abstraction import CacheAbstraction

        REAL_SLEEP = time.sleep


        class SleepyDAL(CacheAbstraction):
            def put(self, key, value, *, ttl=None):
                if time.sleep is REAL_SLEEP:
                    raise RuntimeError("time.sleep would really block here")
                before = self.env.clock.now()
                pause = time.sleep  # looked up per call: the contract's patch applies
                pause(5)
                after = self.env.clock.now()
                with open({str(record)!r}, "a") as out:
                    out.write(json.dumps([before, after]) + "\\n")
                return super().put(key, value, ttl=ttl)
        """
    )
    pytester.syspathinsert()
    reprec = pytester.inline_run("--dualcache", "--dualcache-factory=dal_sleepy:SleepyDAL", *NARROW)
    assert set(suite_ids(reprec).values()) == {"passed"}
    sleeps = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(sleeps) >= len(suite_ids(reprec))
    assert all(after - before == pytest.approx(5) for before, after in sleeps)


SUBCLASSES = """
    import pytest

    from pytest_dualcache.abstraction import CacheAbstraction
    from pytest_dualcache.contracts import DualCacheContract


    class TestMine(DualCacheContract):
        @pytest.fixture
        def make_dal(self):
            return lambda env: CacheAbstraction(env)


    class TestForgot(DualCacheContract):
        pass
"""


def test_subclassing_the_contract_runs_it_without_dualcache(pytester):
    pytester.makepyfile(test_subclass=SUBCLASSES)
    ids = suite_ids(pytester.inline_run("-k", "TestMine and TTL_1"))
    assert ids
    assert all(nodeid.startswith("test_subclass.py::TestMine::test_TTL_1") for nodeid in ids)
    assert set(ids.values()) == {"passed"}


def test_a_subclass_that_forgets_make_dal_is_told_to_override_it(pytester):
    pytester.makepyfile(test_subclass=SUBCLASSES)
    result = pytester.runpytest("-k", "TestForgot and TTL_1")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) >= 1 and "passed" not in outcomes
    result.stdout.fnmatch_lines(
        ["*TestForgot must override the make_dal fixture to return a factory make_dal(env)*"]
    )


# --- command-line options and pytest's own flags ----------------------------------------------


@pytest.mark.parametrize("value", ["0", "abc", "-3"])
def test_dualcache_examples_must_be_a_positive_integer(pytester, value):
    result = pytester.runpytest("--dualcache", "--dualcache-examples", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*argument --dualcache-examples: expected a positive integer, got '{value}'"]
    )


def test_dualcache_examples_accepts_a_positive_integer(pytester):
    result = pytester.runpytest("--dualcache", "--dualcache-examples", "3", "-k", "FB_1")
    assert result.ret == pytest.ExitCode.OK


def test_x_stops_the_suite_at_the_first_broken_clause(dal_modules):
    result = dal_modules.runpytest(
        "--dualcache", "--dualcache-factory=dal_broken:IgnoresTTLOnKV", "-x", *NARROW
    )
    assert result.parseoutcomes()["failed"] == 1
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])


def test_last_failed_reruns_only_the_broken_clauses(dal_modules):
    args = ("--dualcache", "--dualcache-factory=broken=dal_broken:IgnoresTTLOnKV", *NARROW)
    first = suite_ids(dal_modules.inline_run(*args))
    failed = {nodeid for nodeid, outcome in first.items() if outcome == "failed"}
    assert failed and len(failed) < len(first)
    again = suite_ids(dal_modules.inline_run("--lf", *args))
    assert set(again) == failed


def test_the_suite_runs_distributed_with_xdist(dal_modules):
    dal_modules.makeini(
        """
        [pytest]
        pythonpath = .
        dualcache_factory =
            reference=pytest_dualcache.abstraction:CacheAbstraction
            broken=dal_broken:IgnoresTTLOnKV
        """
    )
    result = dal_modules.runpytest_subprocess("--dualcache", "-n", "2", *NARROW)
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] >= 1 and outcomes["passed"] >= 3
    result.stdout.fnmatch_lines(
        [
            "*dualcache contract clause TTL-1 broken:*",
            "Operations, oldest first*",
        ]
    )
    result.stdout.fnmatch_lines(REWRITTEN_ASSERT)
    failed = [line for line in result.stdout.lines if line.startswith("FAILED")]
    assert len(failed) == outcomes["failed"]
    assert all(f"FAILED {SUITE}test_TTL_1_" in line and "[broken-" in line for line in failed)


def test_a_factory_declaring_an_expected_failure_runs_as_xfail(pytester):
    pytester.makepyfile(
        knownbad="""
        import json

        class Dal:
            def __init__(self, env):
                self.env = env

            def put(self, key, value, ttl=3600):
                self.env.kv.put(key, json.dumps(value))  # ttl dropped: breaks TTL-1

            def get(self, key):
                text = self.env.kv.get(key)
                return None if text is None else json.loads(text)

            def delete(self, key):
                self.env.kv.delete(key)

        def make_dal(env):
            return Dal(env)

        make_dal.dualcache_expected_failure = "kept to show what the migration fixed"
        """
    )
    pytester.syspathinsert()
    result = pytester.runpytest(
        "--dualcache", "--dualcache-factory=old=knownbad:make_dal", "-k", "TTL_1", "-rxX"
    )
    assert result.ret == 0
    outcomes = result.parseoutcomes()
    assert outcomes.get("xfailed", 0) >= 2 and "failed" not in outcomes
    result.stdout.fnmatch_lines(["*XFAIL*[[]old-*kept to show what the migration fixed*"])


class _WritesDOThenKV:
    """A DAL whose put writes the DO and then KV, with no clock movement between them."""

    def __init__(self, env):
        self.env = env

    def put(self, key, value, ttl=3600):
        self.env.do.set(key, json.dumps(value), ttl=ttl)
        self.env.kv.put(key, json.dumps(value), expiration_ttl=ttl)

    def get(self, key):
        return None

    def delete(self, key):
        self.env.kv.delete(key)
        self.env.do.delete(key)


def test_the_transcript_lists_operations_of_one_instant_in_the_order_they_were_made():
    from pytest_dualcache.contracts.harness import ContractHarness

    harness = ContractHarness(_WritesDOThenKV)
    dal = harness.start("do")
    dal.put("k", 1)
    dal.delete("k")
    store_lines = [
        line.split(": ")[0].split()[:2]
        for line in harness.transcript().splitlines()
        if line.startswith("      ")
    ]
    assert store_lines == [
        ["CACHE_DO", "set"],
        ["CACHE_KV", "put"],
        ["CACHE_KV", "delete"],
        ["CACHE_DO", "delete"],
    ]


# --- suite node ids pasted back on the command line ---------------------------------------------

ONE_TEST = "test_TTL_1_readable_until_ttl_gone_at_ttl"


def _one_node_id(pytester) -> str:
    """The node id of one parametrization of ONE_TEST, as the suite reports it."""
    ids = suite_ids(pytester.inline_run("--dualcache", "-k", ONE_TEST))
    assert len(ids) > 1
    return sorted(ids)[0]


def test_a_pasted_suite_node_id_runs_that_test_alone(pytester):
    pytester.makepyfile("def test_own(): pass")
    node = _one_node_id(pytester)
    assert node.startswith(SUITE + ONE_TEST + "[")
    assert list(suite_ids(pytester.inline_run("--dualcache", node))) == [node]


def test_a_pasted_suite_path_runs_the_whole_suite_and_nothing_else(pytester, quick_suite_examples):
    pytester.makepyfile("def test_own(): pass")
    reprec = pytester.inline_run(
        "--dualcache", quick_suite_examples, "pytest_dualcache/contracts/test_registered.py"
    )
    ids = suite_ids(reprec)
    assert len(ids) > 100 and all(nodeid.startswith(SUITE) for nodeid in ids)


def test_a_suite_node_id_shown_from_above_the_rootdir_names_the_same_test(pytester):
    project = pytester.mkdir("project")
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_own.py").write_text("def test_own(): pass\n")
    node = _one_node_id(pytester)
    shown = f"project/{node}"  # what a report run from the parent directory prints
    reprec = pytester.inline_run("--dualcache", "-c", "project/pytest.ini", shown)
    assert list(suite_ids(reprec)) == [node]


def test_the_transcript_keeps_the_order_made_when_the_clock_is_set_back():
    from pytest_dualcache.contracts.harness import ContractHarness

    harness = ContractHarness(_WritesDOThenKV)
    dal = harness.start("do")
    harness.clock.advance(100)
    dal.put("later-in-time", 1)
    harness.clock.set(harness.clock.now() - 50)  # a DAL or test may set the clock back
    dal.put("earlier-in-time", 2)
    keys = [line.split("'")[1] for line in harness.transcript().splitlines() if "B: " in line]
    assert keys == ["later-in-time"] * 2 + ["earlier-in-time"] * 2


def test_the_collected_line_counts_the_suite_with_the_own_tests(pytester):
    pytester.makepyfile("def test_own(): pass")
    result = pytester.runpytest("--dualcache", "-k", "test_own or TTL_1")
    (line,) = [line for line in result.stdout.lines if line.startswith("collected ")]
    found = re.fullmatch(r"collected (\d+) items / (\d+) deselected / (\d+) selected", line)
    assert found, line
    collected, deselected, selected = map(int, found.groups())
    everything, _ = pytester.inline_genitems("--dualcache")
    assert collected == len(everything) > 100  # test_own and the suite against the reference
    assert collected - deselected == selected == result.parseoutcomes()["passed"]
