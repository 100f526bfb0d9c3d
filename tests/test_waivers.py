"""Waived clauses: a factory's ``dualcache_waive`` and the ``dualcache_waive`` ini key."""

from __future__ import annotations

import json

# pytester restores sys.modules after each in-process run: preloading what the contract
# suite and hypothesis's terminal summary import keeps every --dualcache run from
# re-importing them.
import hypothesis.internal.observability  # noqa: F401
import pytest
import pytest_dualcache.contracts.test_registered  # noqa: F401

TTL_1 = ("-k", "TTL_1", "-rxX")

DALS = """
    from dal_broken import IgnoresTTLOnKV as KeepsForever  # tests/conftest.py's broken_dal

    from pytest_dualcache.abstraction import CacheAbstraction


    def forever(env):
        return KeepsForever(env)


    forever.dualcache_waive = {"TTL-1": "KV values live until the nightly purge"}


    def plain_forever(env):
        return KeepsForever(env)


    def reference(env):
        return CacheAbstraction(env)


    reference.dualcache_waive = {"TTL-1": "waived for no reason that still holds"}


    def bad_clause(env):
        return CacheAbstraction(env)


    bad_clause.dualcache_waive = {"TTL-99": "no such clause"}


    def not_a_dict(env):
        return CacheAbstraction(env)


    not_a_dict.dualcache_waive = ["TTL-1"]
"""


@pytest.fixture
def project(pytester: pytest.Pytester, broken_dal: str) -> pytest.Pytester:
    pytester.makepyfile(dals=DALS)
    pytester.makeini("[pytest]\nxfail_strict = true\n")
    pytester.syspathinsert()
    return pytester


def _outcomes(reprec: pytest.HookRecorder) -> dict[str, str]:
    """Each call's outcome, with xfail and XPASS told apart."""
    found = {}
    for report in reprec.getreports("pytest_runtest_logreport"):
        if report.when == "call":
            xfail = hasattr(report, "wasxfail")
            outcome = {"skipped": "xfailed", "passed": "xpassed"} if xfail else {}
            found[report.nodeid] = outcome.get(report.outcome, report.outcome)
    return found


def test_a_waived_clause_runs_as_non_strict_xfail_with_the_reason(project):
    report = project.path / "report.json"
    result = project.runpytest(
        "--dualcache",
        "--dualcache-factory=old=dals:forever",
        *TTL_1,
        f"--dualcache-report={report}",
    )
    assert result.ret == 0, result.stdout.str()[-2000:]
    outcomes = result.parseoutcomes()
    assert outcomes["xfailed"] >= 1 and "failed" not in outcomes
    result.stdout.fnmatch_lines(
        ["*XFAIL*TTL_1*[[]old-*waived TTL-1: KV values live until the nightly purge*"]
    )
    result.stdout.fnmatch_lines(
        [
            "*= dualcache KV report =*",
            "waived clauses (run as non-strict xfail): 1",
            "  old TTL-1: KV values live until the nightly purge (* xfailed, * passed, 0 failed)",
        ]
    )
    data = json.loads(report.read_text())
    (waiver,) = data["waivers"]
    assert waiver["factory"] == "old" and waiver["clause"] == "TTL-1"
    assert waiver["reason"] == "KV values live until the nightly purge"
    # Broken on the KV route only: the DO-route tests pass, and are noted.
    assert all(nodeid.endswith("-kv]") for nodeid in waiver["xfailed"])
    assert all(nodeid.endswith("-do]") for nodeid in waiver["passed"])
    assert waiver["xfailed"] and waiver["failed"] == []
    assert waiver["xfailed"] == sorted(waiver["xfailed"])


def test_without_the_waiver_the_clause_fails(project):
    result = project.runpytest("--dualcache", "--dualcache-factory=old=dals:plain_forever", *TTL_1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_waived_clause_that_passes_is_noted_not_failed(project):
    report = project.path / "report.json"
    result = project.runpytest(
        "--dualcache",
        "--dualcache-factory=ref=dals:reference",
        *TTL_1,
        f"--dualcache-report={report}",
    )
    assert result.ret == 0
    assert result.parseoutcomes()["xpassed"] >= 1
    result.stdout.fnmatch_lines(
        ["note: ref passed waived clause TTL-1 in * tests; the waiver may no longer be needed:"]
    )
    (waiver,) = json.loads(report.read_text())["waivers"]
    assert waiver["passed"] and waiver["xfailed"] == []


def test_other_clauses_of_a_waiving_factory_stay_strict(project):
    reprec = project.inline_run("--dualcache", "--dualcache-factory=old=dals:forever", "-k", "FB_1")
    assert set(_outcomes(reprec).values()) == {"passed"}


def test_the_ini_form_waives_a_clause_of_a_named_factory(project):
    project.makeini(
        "[pytest]\nxfail_strict = true\n"
        "dualcache_factory = old=dals:plain_forever\n"
        "dualcache_waive = old:TTL-1=single instance per isolate\n"
    )
    result = project.runpytest("--dualcache", *TTL_1)
    assert result.ret == 0, result.stdout.str()[-2000:]
    result.stdout.fnmatch_lines(["*XFAIL*[[]old-*waived TTL-1: single instance per isolate*"])


@pytest.mark.parametrize(
    ("ini", "args", "message"),
    [
        (
            "dualcache_waive = nobody:TTL-1=why",
            ["--dualcache-factory=old=dals:plain_forever"],
            "ini dualcache_waive: 'nobody:TTL-1=why' names no registered factory 'nobody' "
            "(registered: old)",
        ),
        (
            "dualcache_waive = old:TTL-99=why",
            ["--dualcache-factory=old=dals:plain_forever"],
            "ini dualcache_waive ('old:TTL-99=why'): unknown contract clause 'TTL-99'; known: *",
        ),
        (
            "dualcache_waive = old:TTL-1",
            ["--dualcache-factory=old=dals:plain_forever"],
            "ini dualcache_waive: cannot read 'old:TTL-1'; write NAME:CLAUSE=REASON*",
        ),
        (
            "dualcache_waive = old:TTL-1=",
            ["--dualcache-factory=old=dals:plain_forever"],
            "ini dualcache_waive ('old:TTL-1='): waiving TTL-1 needs a reason*",
        ),
        (
            "",
            ["--dualcache-factory=bad=dals:bad_clause"],
            "factory 'bad' (dals.bad_clause.dualcache_waive): unknown contract clause 'TTL-99'*",
        ),
        (
            "",
            ["--dualcache-factory=bad=dals:not_a_dict"],
            "factory 'bad' (dals.not_a_dict.dualcache_waive): expected a dict of clause ID to "
            "reason, got list",
        ),
    ],
)
def test_a_bad_waiver_is_a_usage_error_naming_its_source(project, ini, args, message):
    project.makeini(f"[pytest]\n{ini}\n")
    result = project.runpytest("--dualcache", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
