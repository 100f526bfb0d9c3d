"""What the plugin relies on in pytest itself: run on the oldest pytest supported and the newest.

The KV gate fails a test through pytest's own call phase (so xfail treats it as any
failure), the suite is collected through public hooks, and the three compromises of
``pytest_dualcache/pytest_compromises.py`` keep working.
"""

from __future__ import annotations

# pytester restores sys.modules after each in-process run: preloading what hypothesis's
# terminal summary imports keeps every run from re-importing hypothesis (about 1 s each).
import hypothesis.internal.observability  # noqa: F401
import pytest

SKIP_SUITE = ("-k", "not TestDualCacheContract")

OVER_BUDGET = """
    import pytest

    def two_writes(kv):
        kv.put("a", "1")
        kv.put("b", "2")

    @pytest.mark.kv_budget(writes=1)
    def test_plain(kv_namespace):
        two_writes(kv_namespace)

    @pytest.mark.kv_budget(writes=1)
    @pytest.mark.xfail(reason="known to write twice", strict=False)
    def test_xfail(kv_namespace):
        two_writes(kv_namespace)

    @pytest.mark.kv_budget(writes=1)
    @pytest.mark.xfail(reason="known to write twice", strict=True)
    def test_xfail_strict(kv_namespace):
        two_writes(kv_namespace)

    @pytest.mark.kv_budget(writes=1)
    @pytest.mark.xfail(reason="known broken", strict=True)
    def test_xfail_body_fails_too(kv_namespace):
        two_writes(kv_namespace)
        raise AssertionError("its own failure")

    @pytest.mark.kv_budget(writes=1)
    @pytest.mark.xfail(reason="expects a ValueError", raises=ValueError)
    def test_xfail_for_another_error(kv_namespace):
        two_writes(kv_namespace)

    @pytest.mark.kv_budget(writes=2)
    @pytest.mark.xfail(reason="within budget", strict=True)
    def test_xpass_strict(kv_namespace):
        two_writes(kv_namespace)
"""
HEADLINE = "expected at most 1 KV writes, 2 were made (@pytest.mark.kv_budget: writes=1 per test)"


def _call_reports(reprec: pytest.HookRecorder) -> dict[str, pytest.TestReport]:
    return {
        report.nodeid.split("::")[-1]: report
        for report in reprec.getreports("pytest_runtest_logreport")
        if report.when == "call"
    }


@pytest.fixture
def budgets(pytester: pytest.Pytester) -> pytest.Pytester:
    """Tests over a budget of one KV write, whose direct writes are allowed (no bypass)."""
    pytester.makeini("[pytest]\ndualcache_kv_allow = test_budgets.py::*\n")
    pytester.makepyfile(test_budgets=OVER_BUDGET)
    return pytester


def test_a_kv_failure_is_a_failure_of_the_call_that_xfail_treats_like_any_other(budgets):
    pytester = budgets
    reports = _call_reports(pytester.inline_run("--dualcache", *SKIP_SUITE))
    outcomes = {name: report.outcome for name, report in reports.items()}
    assert outcomes == {
        "test_plain": "failed",
        "test_xfail": "skipped",
        "test_xfail_strict": "skipped",
        "test_xfail_body_fails_too": "skipped",
        "test_xfail_for_another_error": "failed",  # as for any error xfail did not expect
        "test_xpass_strict": "failed",
    }
    assert str(reports["test_plain"].longrepr) == HEADLINE
    assert str(reports["test_xfail_for_another_error"].longrepr) == HEADLINE
    assert reports["test_xfail"].wasxfail == "known to write twice"
    assert reports["test_xfail_strict"].wasxfail == "known to write twice"
    assert str(reports["test_xpass_strict"].longrepr) == "[XPASS(strict)] within budget"
    for name in ("test_plain", "test_xfail", "test_xfail_body_fails_too"):
        assert reports[name].dualcache["over_budget"] == [HEADLINE]  # type: ignore[attr-defined]
        assert "dualcache KV operations" in dict(reports[name].sections)


def test_runxfail_reports_the_kv_failure_of_an_xfail_test(budgets):
    reprec = budgets.inline_run("--dualcache", "--runxfail", "-k", "test_xfail_strict")
    (report,) = _call_reports(reprec).values()
    assert report.failed and str(report.longrepr) == HEADLINE


#: A plugin (not a conftest.py: a conftest's hooks only see nodes under its folder).
COLLECTION_WATCHER = """
    import sys

    seen = {"collected": [], "reports": []}

    def pytest_itemcollected(item):
        seen["collected"].append(item.nodeid)

    def pytest_collectreport(report):
        seen["reports"].append((report.nodeid, report.outcome))

    def pytest_collection_finish(session):
        suite = [item for item in session.items if "contracts" in item.nodeid]
        names = {item.module.__name__ for item in suite}
        print("SUITE MODULES", sorted(names))
        print("PATH COPY", "contracts.test_registered" in sys.modules)
        print("ANNOUNCED", len([n for n in seen["collected"] if "contracts" in n]))
        passed = [nodeid for nodeid, outcome in seen["reports"] if outcome == "passed"]
        print("REPORTED", sorted(n for n in passed if "contracts" in n))
"""


def test_the_suite_is_collected_through_public_hooks_under_its_package_name(pytester):
    pytester.makepyfile(watcher=COLLECTION_WATCHER)
    pytester.makeini("[pytest]\npythonpath = .\n")
    result = pytester.runpytest_subprocess(
        "-p", "watcher", "--dualcache", "--collect-only", "-q", "-k", "FB_1_flag_off"
    )
    result.stdout.fnmatch_lines(
        [
            "SUITE MODULES ['pytest_dualcache.contracts.test_registered']",
            "PATH COPY False",
            "ANNOUNCED *",
            "REPORTED ['pytest_dualcache/contracts/test_registered.py', "
            "'pytest_dualcache/contracts/test_registered.py::TestDualCacheContract']",
            "1/* tests collected (* deselected) in *",
        ]
    )
    (announced,) = [line.split()[1] for line in result.outlines if line.startswith("ANNOUNCED")]
    assert f"1/{announced} tests collected" in result.stdout.str()


def test_last_failed_reruns_suite_failures_beside_failures_of_your_own_files(pytester, broken_dal):
    pytester.makepyfile(test_own="def test_own(): assert False")
    args = (
        "--dualcache",
        f"--dualcache-factory=broken={broken_dal}",
        "-k",
        "TTL_1 or own",
    )
    first = pytester.inline_run(*args)
    failed = {r.nodeid for r in first.getreports("pytest_runtest_logreport") if r.failed}
    assert "test_own.py::test_own" in failed and len(failed) > 1
    again = pytester.inline_run("--lf", *args)
    rerun = {r.nodeid for r in again.getreports("pytest_runtest_logreport") if r.when == "call"}
    assert rerun == failed


def test_pasted_suite_node_ids_leave_the_other_arguments_alone(pytester):
    from pytest_dualcache.contracts.paths import SUITE_NODEID

    from pytest_dualcache.pytest_compromises import take_suite_node_ids

    config = pytester.parseconfig(
        "test_own.py", f"{SUITE_NODEID}::TestDualCacheContract::test_FB_1_x[reference]"
    )
    chosen = take_suite_node_ids(config, SUITE_NODEID)
    assert chosen == [f"{SUITE_NODEID}::TestDualCacheContract::test_FB_1_x[reference]"]
    assert config.args == ["test_own.py"]
