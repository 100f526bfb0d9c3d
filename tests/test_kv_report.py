"""Under --dualcache: bypass detection, the KV report (terminal and JSON), the baseline gate,
and the same numbers with pytest-xdist, driven through pytester."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

# pytester restores sys.modules after each in-process run: preloading what the contract
# suite and hypothesis's terminal summary import keeps every --dualcache run from
# re-importing them.
import hypothesis.internal.observability  # noqa: F401
import pytest
import pytest_dualcache.contracts.test_registered  # noqa: F401

from pytest_dualcache.baseline import Growth
from pytest_dualcache.output_files import write_json_atomically

SKIP_SUITE = ("-k", "not TestDualCacheContract")
# Plugins the subprocess runs do not need (each xdist worker would load them too).
LEAN = ("-p", "no:benchmark", "-p", "no:cacheprovider")


def _line(source: str, needle: str) -> int:
    """The 1-based line of ``needle`` in ``source`` as pytester writes it (stripped)."""
    lines = source.strip("\n").splitlines()
    (number,) = [i for i, text in enumerate(lines, 1) if needle in text]
    return number


MYDAL = textwrap.dedent(
    """
    def save(kv, key, value="v"):
        kv.put(key, value)

    def remove(kv, key):
        kv.delete(key)
    """
)
HEALTH = textwrap.dedent(
    """
    def check(kv):
        kv.put("health", "ok")
    """
)
SAVE_SITE = f"mydal.py:{_line(MYDAL, 'kv.put')}:save"
HEALTH_SITE = f"health.py:{_line(HEALTH, 'kv.put')}:check"
INI = "[pytest]\ndualcache_dal_modules = mydal\ndualcache_kv_allow = *health.py::*\n"


def _reports(result: pytest.RunResult) -> dict[str, pytest.TestReport]:
    return {
        report.nodeid.rpartition("::")[2]: report
        for report in result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
        if report.when == "call"
    }


def _section(result: pytest.RunResult) -> list[str]:
    """The lines of the "dualcache KV report" terminal section."""
    lines = result.stdout.lines
    (start,) = [i for i, line in enumerate(lines) if " dualcache KV report " in line]
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("=")), len(lines))
    written = ("KV report written", "KV baseline written")
    return [line for line in lines[start + 1 : end] if not line.startswith(written)]


def _project(pytester: pytest.Pytester, **tests: str) -> None:
    pytester.makepyfile(mydal=MYDAL, health=HEALTH, **tests)
    pytester.makeini(INI)


# --- bypass detection -------------------------------------------------------------------------

BYPASS_TESTS = textwrap.dedent(
    """
    import asyncio
    import pytest
    import health, mydal, shopdal
    from pytest_dualcache.abstraction import CacheAbstraction

    def test_direct_put(kv_namespace):
        kv_namespace.put("k", "v")  # DIRECT PUT

    def test_direct_delete(kv_namespace):
        kv_namespace.delete("gone")  # DIRECT DELETE

    def test_direct_through_the_workers_face(dualcache_workers_env):
        async def handler(env):
            await env.CACHE_KV.put("w", "v")  # WORKERS PUT

        asyncio.run(handler(dualcache_workers_env))

    def test_via_a_dal_module(kv_namespace):
        mydal.save(kv_namespace, "k")
        mydal.remove(kv_namespace, "k")

    def test_allowed_caller(kv_namespace):
        health.check(kv_namespace)

    def test_via_a_factory_module(dualcache_env):
        shopdal.make_dal(dualcache_env).save("k")

    def test_via_the_reference_abstraction_on_kv(dualcache_env, dualcache_flag):
        dualcache_flag.disable()
        cache = CacheAbstraction(dualcache_env)
        assert cache.put("k", {"v": 1}).route == "kv"
        cache.delete("k")

    def test_via_the_reference_abstraction_falling_back(dualcache_env, do_cache):
        cache = CacheAbstraction(dualcache_env)
        do_cache.fail()
        assert cache.put("k", {"v": 1}).route == "kv"

    def test_reads_and_lists_are_never_bypasses(kv_namespace):
        kv_namespace.get("k")
        kv_namespace.list()

    @pytest.mark.dualcache_clause("TTL-1")
    def test_contract_tests_are_exempt(kv_namespace):
        kv_namespace.put("legacy", "v")
    """
)
SHOPDAL = textwrap.dedent(
    """
    class ShopDAL:
        def __init__(self, env):
            self.kv = env.kv

        def save(self, key):
            self.kv.put(key, "v")

        def put(self, key, value, ttl=None):
            self.kv.put(key, value)

        def get(self, key):
            return self.kv.get(key)

        def delete(self, key):
            self.kv.delete(key)

    def make_dal(env):
        return ShopDAL(env)
    """
)
SHOP_SAVE = 'self.kv.put(key, "v")'
BYPASS_OUTCOMES = {
    "test_direct_put": "failed",
    "test_direct_delete": "failed",
    "test_direct_through_the_workers_face": "failed",
    "test_via_a_dal_module": "passed",
    "test_allowed_caller": "passed",
    "test_via_a_factory_module": "passed",
    "test_via_the_reference_abstraction_on_kv": "passed",
    "test_via_the_reference_abstraction_falling_back": "passed",
    "test_reads_and_lists_are_never_bypasses": "passed",
    "test_contract_tests_are_exempt": "passed",
}


@pytest.fixture
def bypass_project(pytester: pytest.Pytester) -> pytest.Pytester:
    _project(pytester, test_bypass=BYPASS_TESTS, shopdal=SHOPDAL)
    pytester.syspathinsert()  # the factory module is imported at configure time
    return pytester


@pytest.fixture
def bypass_run(bypass_project: pytest.Pytester) -> pytest.RunResult:
    report = bypass_project.path / "bypass.json"
    return bypass_project.runpytest(
        "--dualcache",
        *SKIP_SUITE,
        "--dualcache-factory=shopdal:make_dal",
        f"--dualcache-report={report}",
    )


def test_bypass_outcomes(bypass_run):
    assert {name: r.outcome for name, r in _reports(bypass_run).items()} == BYPASS_OUTCOMES


def test_a_direct_write_fails_naming_the_caller_and_showing_the_write(bypass_run, pytester):
    report = _reports(bypass_run)["test_direct_put"]
    line = _line(BYPASS_TESTS, "# DIRECT PUT")
    assert str(report.longrepr).splitlines() == [
        "1 KV writes bypassed the cache layer:",
        f"  1 x put at test_bypass.py:{line}:test_direct_put",
        "(register the writing module with dualcache_dal_modules, or allow the caller with "
        "dualcache_kv_allow)",
    ]
    path = pytester.path / "test_bypass.py"
    assert dict(report.sections)["dualcache KV operations"] == (
        f"  bypass: CACHE_KV put 'k' 1 B at {path}:{line}:test_direct_put (ok)"
    )


def test_a_direct_delete_is_a_bypass_too(bypass_run):
    line = _line(BYPASS_TESTS, "# DIRECT DELETE")
    longrepr = str(_reports(bypass_run)["test_direct_delete"].longrepr)
    assert f"  1 x delete at test_bypass.py:{line}:test_direct_delete" in longrepr.splitlines()


def test_a_direct_write_through_the_workers_face_names_the_test(bypass_run):
    line = _line(BYPASS_TESTS, "# WORKERS PUT")
    longrepr = str(_reports(bypass_run)["test_direct_through_the_workers_face"].longrepr)
    assert f"  1 x put at test_bypass.py:{line}:handler" in longrepr.splitlines()


def test_bypasses_are_counted_in_the_report(bypass_run, pytester):
    section = _section(bypass_run)
    assert "KV writes bypassing the cache layer: 3 rejected, 1 allowed" in section
    data = json.loads((pytester.path / "bypass.json").read_text())
    tests = {nodeid.rpartition("::")[2]: test for nodeid, test in data["tests"].items()}
    assert tests["test_allowed_caller"]["bypasses"] == {
        "allowed": [{"caller": HEALTH_SITE, "key": "health", "op": "put"}],
        "rejected": [],
        "refused_by_kv": [],
    }
    line = _line(BYPASS_TESTS, "# DIRECT PUT")
    assert tests["test_direct_put"]["bypasses"]["rejected"] == [
        {"caller": f"test_bypass.py:{line}:test_direct_put", "key": "k", "op": "put"}
    ]
    assert tests["test_contract_tests_are_exempt"]["bypasses"] == {
        "allowed": [],
        "rejected": [],
        "refused_by_kv": [],
    }
    assert data["totals"]["bypasses"] == {"allowed": 1, "rejected": 3, "refused_by_kv": 0}


def test_the_factory_module_is_only_a_dal_module_when_registered(bypass_project):
    result = bypass_project.runpytest("--dualcache", "-k", "test_via_a_factory_module")
    longrepr = str(_reports(result)["test_via_a_factory_module"].longrepr)
    site = f"shopdal.py:{_line(SHOPDAL, SHOP_SAVE)}:save"
    assert f"  1 x put at {site}" in longrepr.splitlines()


def test_bypasses_are_not_checked_without_dualcache(bypass_project):
    bypass_project.runpytest().assert_outcomes(passed=len(BYPASS_OUTCOMES))


# --- the terminal report ----------------------------------------------------------------------

COUNTED_TESTS = textwrap.dedent(
    """
    import pytest
    import health, mydal
    from pytest_dualcache import KVQuotaError, KVRateLimitError

    def test_kv_operations(kv_namespace):
        for i in range(3):
            mydal.save(kv_namespace, f"k{i}")
        kv_namespace.get("k0")
        kv_namespace.get("absent")
        mydal.remove(kv_namespace, "k1")
        kv_namespace.list()

    def test_do_operations(kv_namespace, do_cache):
        do_cache.set("a", 1, ttl=60)
        do_cache.set("b", 2, ttl=60)
        do_cache.get("a")
        do_cache.get("b")
        do_cache.get("absent")
        do_cache.delete("a")
        mydal.save(kv_namespace, "kv")

    def test_errors(kv_namespace):
        mydal.save(kv_namespace, "same")
        with pytest.raises(KVRateLimitError):
            mydal.save(kv_namespace, "same")
        with pytest.raises(KVQuotaError):
            for i in range(1000):
                mydal.save(kv_namespace, f"q{i}")

    def test_allowed_bypass(kv_namespace):
        health.check(kv_namespace)

    def test_rejected_bypass(kv_namespace):
        kv_namespace.put("direct", "v")  # DIRECT PUT

    @pytest.mark.kv_budget(writes=1)
    def test_over_budget(kv_namespace):
        mydal.save(kv_namespace, "a")
        mydal.save(kv_namespace, "b")
    """
)
# reads 2; writes 3 + 1 + 1000 + 1 + 1 + 2; the 1,000 quota writes: 1 + 999 accepted.
DIRECT_LINE = _line(COUNTED_TESTS, "# DIRECT PUT")
COUNTED_SECTION = [
    "NO DAL FACTORY REGISTERED: the contract suite tested the bundled reference "
    'CacheAbstraction, not your DAL; register yours with dualcache_factory = ["mine='
    'mypkg.testing:make_dal"] or --dualcache-factory=mypkg.testing:make_dal',
    "your tests:",
    "KV operations: 2 reads, 1008 writes, 1 deletes, 1 lists over 6 tests",
    "KV errors: 1 rate-limited (429), 1 daily quota, 0 other",
    "DO operations: 3 gets (2 hits, 1 misses; hit rate 66.7%), 2 sets, 1 deletes, 0 errors",
    "writes by route: DO 0.2%, KV 99.8% (2 DO sets, 1008 KV puts)",
    "top KV-writing call sites:",
    f"    1006  {SAVE_SITE}",
    f"       1  {HEALTH_SITE}",
    f"       1  test_counted.py:{DIRECT_LINE}:test_rejected_bypass",
    "KV writes bypassing the cache layer: 1 rejected, 1 allowed",
    f"  rejected:     1 x put at test_counted.py:{DIRECT_LINE}:test_rejected_bypass",
    "tests over budget: 1",
    "  test_counted.py::test_over_budget",
]


@pytest.fixture
def counted(pytester: pytest.Pytester) -> pytest.Pytester:
    _project(pytester, test_counted=COUNTED_TESTS)
    return pytester


def _run_counted(counted: pytest.Pytester, report: Path) -> pytest.RunResult:
    result = counted.runpytest("--dualcache", *SKIP_SUITE, f"--dualcache-report={report}")
    result.assert_outcomes(passed=4, failed=2)
    return result


def test_the_terminal_report_gives_every_figure(counted):
    result = _run_counted(counted, counted.path / "out" / "report.json")
    assert _section(result) == COUNTED_SECTION
    result.stdout.fnmatch_lines(
        [
            "*= dualcache KV report =*",
            f"KV report written to {counted.path / 'out' / 'report.json'}",
        ]
    )


def test_no_report_section_without_dualcache(counted):
    result = counted.runpytest()
    assert not any("dualcache KV report" in line for line in result.stdout.lines)


# --- the JSON report --------------------------------------------------------------------------

TEST_KEYS = {"group", "kv", "kv_errors", "do", "write_sites", "bypasses", "over_budget"}
TOTALS_KEYS = {
    "tests",
    "kv",
    "kv_errors",
    "do",
    "do_hit_rate",
    "route_share",
    "top_write_sites",
    "bypasses",
    "tests_over_budget",
}


def test_the_json_report_is_versioned_per_test_and_totals_and_byte_identical(counted):
    out = counted.path / "out"
    out.mkdir()
    report = out / "report.json"
    report.write_text("stale, from an earlier run\n")
    _run_counted(counted, report)
    first = report.read_bytes()
    result = _run_counted(counted, report)
    assert report.read_bytes() == first
    assert os.listdir(out) == ["report.json"]  # replaced in place, no temporary file left

    data = json.loads(first)
    assert set(data) == {
        "version",
        "complete",
        "incomplete_reasons",
        "deselected",
        "factories",
        "tests",
        "totals",
        "groups",
        "waivers",
        "crashed_workers",
        "missing_tests",
    }
    assert data["version"] == 2
    assert data["factories"] == {"names": ["reference"], "registered": False}
    assert data["waivers"] == []
    # -k deselected the suite: every test is the application's, and the groups say so.
    assert data["groups"]["application"] == data["totals"]
    assert data["groups"]["contract"]["tests"] == 0
    assert {test["group"] for test in data["tests"].values()} == {"application"}
    assert (data["complete"], data["incomplete_reasons"]) == (True, [])
    # -k deselected the contract suite: the report says how many tests it leaves out.
    assert data["deselected"] == result.parseoutcomes()["deselected"] > 0
    assert list(data["tests"]) == sorted(f"test_counted.py::{name}" for name in COUNTED_NAMES)
    assert all(set(test) == TEST_KEYS for test in data["tests"].values())
    assert set(data["totals"]) == TOTALS_KEYS
    assert (data["crashed_workers"], data["missing_tests"]) == ([], [])

    kv_ops = data["tests"]["test_counted.py::test_kv_operations"]
    assert kv_ops["kv"] == {"reads": 2, "writes": 3, "deletes": 1, "lists": 1}
    assert kv_ops["write_sites"] == {SAVE_SITE: 3}
    do_ops = data["tests"]["test_counted.py::test_do_operations"]["do"]
    assert do_ops == {
        "gets": 3,
        "hits": 2,
        "misses": 1,
        "sets": 2,
        "deletes": 1,
        "lists": 0,
        "errors": 0,
    }
    errors = data["tests"]["test_counted.py::test_errors"]
    assert errors["kv_errors"] == {"rate_limited": 1, "quota": 1, "other": 0}
    assert errors["kv"]["writes"] == 1000
    assert data["tests"]["test_counted.py::test_over_budget"]["over_budget"] == [
        "expected at most 1 KV writes, 2 were made (@pytest.mark.kv_budget: writes=1 per test)"
    ]

    totals = data["totals"]
    assert totals["kv"] == {"reads": 2, "writes": 1008, "deletes": 1, "lists": 1}
    assert totals["kv_errors"] == {"rate_limited": 1, "quota": 1, "other": 0}
    assert totals["do_hit_rate"] == round(2 / 3, 6)
    assert totals["route_share"] == {"do": round(2 / 1010, 6), "kv": round(1008 / 1010, 6)}
    assert totals["top_write_sites"][0] == {"site": SAVE_SITE, "writes": 1006}
    assert totals["bypasses"] == {"allowed": 1, "rejected": 1, "refused_by_kv": 0}
    assert totals["tests_over_budget"] == ["test_counted.py::test_over_budget"]


COUNTED_NAMES = [
    "test_kv_operations",
    "test_do_operations",
    "test_errors",
    "test_allowed_bypass",
    "test_rejected_bypass",
    "test_over_budget",
]


def test_write_json_atomically_writes_sorted_json_and_creates_folders(tmp_path):
    path = tmp_path / "a" / "b" / "report.json"
    write_json_atomically(path, {"b": 1, "a": [2]})
    assert path.read_text() == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'


def test_write_json_atomically_leaves_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("old\n")

    def refuse(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_json_atomically(path, {"new": True})
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["report.json"]


# --- the baseline gate ------------------------------------------------------------------------

GATE_TESTS = textwrap.dedent(
    """
    import mydal

    def test_a(kv_namespace):
        for i in range(2):
            mydal.save(kv_namespace, f"a{i}")

    def test_b(kv_namespace):
        for i in range(2):
            mydal.save(kv_namespace, f"b{i}")
        mydal.remove(kv_namespace, "b0")
        kv_namespace.list()
    """
)
# test_a makes one more write, from a call site the baseline has not seen.
GROWN_MYDAL = MYDAL + textwrap.dedent(
    """
    def audit(kv, key):
        kv.put("audit:" + key, "v")
    """
)
GROWN_TESTS = GATE_TESTS.replace(
    'mydal.save(kv_namespace, f"a{i}")',
    'mydal.save(kv_namespace, f"a{i}")\n    mydal.audit(kv_namespace, "a")',
)
AUDIT_SITE = f"mydal.py:{_line(GROWN_MYDAL, 'def audit') + 1}:audit"
GREW = "KV writes grew beyond the baseline (allowed growth: {}):"


@pytest.fixture
def gate(pytester: pytest.Pytester) -> pytest.Pytester:
    """The gate project, its baseline saved at ``base.json``."""
    _project(pytester, test_gate=GATE_TESTS)
    result = pytester.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-save-baseline=base.json")
    assert result.ret == 0
    return pytester


def _grow(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mydal=GROWN_MYDAL, test_gate=GROWN_TESTS)


def _gate_run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-baseline=base.json", *args)


def _table(result: pytest.RunResult) -> list[list[str]]:
    """The gate table's rows, split into columns (header first)."""
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if line.startswith("KV writes grew beyond"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        rows.append(line.split())
    return rows


def test_the_saved_baseline_keeps_writes_deletes_and_lists_by_node_id(gate):
    data = json.loads((gate.path / "base.json").read_text())
    assert data == {
        "version": 1,
        "tests": {
            "test_gate.py::test_a": {
                "writes": 2,
                "deletes": 0,
                "lists": 0,
                "write_sites": [SAVE_SITE],
            },
            "test_gate.py::test_b": {
                "writes": 2,
                "deletes": 1,
                "lists": 1,
                "write_sites": [SAVE_SITE],
            },
        },
        "totals": {"writes": 4, "deletes": 1, "lists": 1},
    }


def test_the_same_tests_pass_the_gate(gate):
    result = _gate_run(gate)
    assert result.ret == 0
    assert "KV writes within the baseline (allowed growth: 0)" in result.stdout.lines


def test_more_writes_fail_the_session_with_a_table(gate):
    _grow(gate)
    result = _gate_run(gate)
    result.assert_outcomes(passed=2)
    assert result.ret == 1
    assert GREW.format(0) in result.stdout.lines
    assert _table(result) == [
        ["test", "baseline", "now", "growth"],
        ["test_gate.py::test_a", "2", "3", "+1"],
        ["new", "call", "site:", AUDIT_SITE],
        ["TOTAL", "4", "5", "+1"],
    ]


@pytest.mark.parametrize("growth", ["1", "50%"])
def test_max_growth_allows_that_much(gate, growth):
    _grow(gate)
    result = _gate_run(gate, f"--dualcache-max-growth={growth}")
    assert result.ret == 0
    assert f"KV writes within the baseline (allowed growth: {growth})" in result.stdout.lines


def test_a_percentage_applies_to_each_test_and_the_total_apart(gate):
    _grow(gate)
    result = _gate_run(gate, "--dualcache-max-growth=40%")  # test_a +50%, the total +25%
    assert result.ret == 1
    assert GREW.format("40%") in result.stdout.lines
    assert [row[0] for row in _table(result)] == ["test", "test_gate.py::test_a", "new"]


def test_new_tests_are_listed_not_failed(gate):
    gate.makepyfile(
        test_new="import mydal\n\ndef test_c(kv_namespace):\n    mydal.save(kv_namespace, 'k')\n"
    )
    result = _gate_run(gate)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "KV writes within the baseline (allowed growth: 0)",
            "tests not in the baseline (not gated): 1",
            "  test_new.py::test_c",
        ]
    )


def _brackets_literal(pattern: str) -> str:
    """``pattern`` for fnmatch with its ``[`` matched literally (JSON paths have them)."""
    return pattern.replace("[", "[[]")


NOT_A_BASELINE = "baseline {path} is not a dualcache baseline (save one with *): "


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "baseline {path} does not exist"),
        ("{not json", "baseline {path} is not readable JSON: *"),
        (
            '{"version": 2, "tests": {}, "totals": {}}',
            "baseline {path} has version 2 (a newer pytest-dualcache wrote it); this "
            "pytest-dualcache reads version 1: save the baseline again with this one",
        ),
        ('{"version": 0, "tests": {}}', "baseline {path} has version 0; this *"),
        ('{"version": "1", "tests": {}}', NOT_A_BASELINE + 'version: expected an integer, got "1"'),
        ('{"version": true, "tests": {}}', NOT_A_BASELINE + "version: expected an integer*"),
        ('{"tests": {}}', NOT_A_BASELINE + "version: missing"),
        ("[]", NOT_A_BASELINE + 'the top level: expected an object with "version"*, got []'),
    ],
    ids=[
        "missing",
        "corrupt",
        "newer-version",
        "unknown-older-version",
        "version-as-text",
        "version-as-bool",
        "no-version",
        "not-a-baseline",
    ],
)
def test_an_unusable_baseline_is_a_usage_error(pytester, content, message):
    pytester.makepyfile("def test_x(): pass")
    path = pytester.path / "base.json"
    if content is not None:
        path.write_text(content)
    result = pytester.runpytest("--dualcache", *SKIP_SUITE, f"--dualcache-baseline={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = f"ERROR: --dualcache-baseline: {message.format(path=path)}"
    result.stderr.fnmatch_lines([_brackets_literal(expected)])


ENTRY = 'tests["test_x.py::test_x"]'


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ('{"version": 1, "tests": {"test_x.py::test_x": 5}, "totals": {}}', f"{ENTRY}: *"),
        ('{"version": 1, "tests": {}, "totals": {"writes": "many"}}', "totals.writes: *"),
        ('{"version": 1, "tests": [], "totals": {}}', "tests: expected an object*"),
        ('{"version": 1, "totals": {}}', "tests: missing*"),
        ('{"version": 1, "tests": {}, "totals": 7}', "totals: expected an object*"),
        (
            '{"version": 1, "tests": {"test_x.py::test_x": {"writes": 1, "write_sites": 3}}}',
            f"{ENTRY}.write_sites: expected a list of call sites, got 3",
        ),
        (
            '{"version": 1, "tests": {"test_x.py::test_x": {"writes": 1, '
            '"write_sites": ["a.py:1:f", "b.py:2:g", ["c.py:3:h"]]}}}',
            f"{ENTRY}.write_sites[2]: expected a call site string (path:line:function), "
            'got ["c.py:3:h"]',
        ),
        (
            '{"version": 1, "tests": {"test_x.py::test_x": {"writes": -1}}}',
            f"{ENTRY}.writes: expected an integer >= 0, got -1",
        ),
        (
            '{"version": 1, "tests": {"test_x.py::test_x": {"writes": 1.5}}}',
            f"{ENTRY}.writes: expected an integer >= 0, got 1.5",
        ),
        (
            '{"version": 1, "tests": {"test_x.py::test_x": {"writes": 1, "deletes": true}}}',
            f"{ENTRY}.deletes: expected an integer >= 0, got true",
        ),
    ],
    ids=[
        "test-entry",
        "total",
        "tests-a-list",
        "tests-missing",
        "totals-an-int",
        "write-sites-an-int",
        "write-sites-a-list-of-lists",
        "negative-writes",
        "fractional-writes",
        "deletes-a-bool",
    ],
)
def test_a_malformed_baseline_body_is_a_usage_error_naming_the_field(pytester, content, where):
    pytester.makepyfile(test_x="def test_x(kv_namespace):\n    kv_namespace.put('k', 'v')\n")
    (pytester.path / "base.json").write_text(content)
    result = pytester.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-baseline=base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    prefix = NOT_A_BASELINE.format(path="base.json")
    result.stderr.fnmatch_lines(
        [_brackets_literal(f"ERROR: --dualcache-baseline: {prefix}{where}")]
    )


@pytest.mark.parametrize(
    "option",
    [
        "--dualcache-report=r.json",
        "--dualcache-save-baseline=b.json",
        "--dualcache-baseline=b.json",
        "--dualcache-max-growth=1",
    ],
)
def test_gate_options_need_dualcache(pytester, option):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: {option.split('=')[0]} only work together with --dualcache"]
    )


@pytest.mark.parametrize("value", ["lots", "-1", "1.5", "%", "inf"])
def test_a_bad_max_growth_is_a_usage_error(pytester, value):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--dualcache", *SKIP_SUITE, f"--dualcache-max-growth={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --dualcache-max-growth: expected a count*"])


@pytest.mark.parametrize(
    ("text", "before", "after", "allowed"),
    [
        ("0", 4, 4, True),
        ("0", 4, 5, False),
        ("2", 4, 6, True),
        ("2", 4, 7, False),
        ("25%", 4, 5, True),
        ("25%", 4, 6, False),
        ("50%", 0, 1, False),
        ("0", 5, 2, True),
    ],
)
def test_growth_allows_a_count_or_a_percentage_of_the_baseline(text, before, after, allowed):
    assert Growth.parse(text).allows(before, after) is allowed


def test_growth_refuses_nan_percent():
    with pytest.raises(ValueError, match="expected a count"):
        Growth.parse("nan%")


# --- memory over a session ------------------------------------------------------------------

RELEASE_TESTS = textwrap.dedent(
    """
    import gc
    import weakref

    kept = []

    def test_first(kv_namespace):
        kv_namespace.get("k")
        kept.append(weakref.ref(kv_namespace.ledger))

    def test_second():
        gc.collect()
        assert kept[0]() is None, "the first test's ledger is still alive"
    """
)


def test_a_finished_tests_ledgers_are_released_without_dualcache(pytester):
    pytester.makepyfile(test_release=RELEASE_TESTS)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_finished_tests_ledgers_are_released_under_dualcache(pytester):
    pytester.makepyfile(test_release=RELEASE_TESTS)
    result = pytester.runpytest("--dualcache", *SKIP_SUITE, "-p", "no:randomly")
    result.assert_outcomes(passed=2)


# --- pytest-xdist ---------------------------------------------------------------------------

MORE_TESTS = textwrap.dedent(
    """
    import pytest
    import mydal

    @pytest.mark.parametrize("n", range(4))
    def test_more(kv_namespace, do_cache, n):
        for i in range(n):
            mydal.save(kv_namespace, f"m{i}")
            do_cache.set(f"m{i}", i, ttl=60)
            do_cache.get(f"m{i}")
        kv_namespace.get("absent")
    """
)


def test_xdist_gives_the_same_report_baseline_and_gate(gate):
    gate.makepyfile(test_more=MORE_TESTS)
    gate.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-save-baseline=base.json")
    _grow(gate)
    outputs = {}
    for mode, extra in (("plain", ()), ("xdist", ("-n", "2"))):
        args = (
            "--dualcache",
            *SKIP_SUITE,
            *LEAN,
            *extra,
            "--dualcache-baseline=base.json",
            f"--dualcache-report={mode}.json",
            f"--dualcache-save-baseline={mode}-base.json",
        )
        run = gate.runpytest_subprocess if extra else gate.runpytest
        result = run(*args)
        assert result.ret == 1, mode
        result.assert_outcomes(passed=6)
        outputs[mode] = result
    plain, xdist = outputs["plain"], outputs["xdist"]
    assert (gate.path / "xdist.json").read_bytes() == (gate.path / "plain.json").read_bytes()
    assert (gate.path / "xdist-base.json").read_bytes() == (
        gate.path / "plain-base.json"
    ).read_bytes()
    assert _section(xdist) == _section(plain)
    assert _table(xdist) == _table(plain)
    assert GREW.format(0) in _section(plain)


MODULE_FIXTURE_TESTS = textwrap.dedent(
    """
    import pytest
    import mydal
    from pytest_dualcache import DualCacheEnv

    @pytest.fixture(scope="module")
    def seeded():
        env = DualCacheEnv()
        for i in range(5):
            mydal.save(env.kv, f"seed{i}")
        return env

    @pytest.mark.parametrize("n", range(6))
    def test_reads_the_seed(seeded, n):
        mydal.save(seeded.kv, f"x{n}")
    """
)


def test_xdist_counts_a_module_fixtures_writes_once(pytester):
    _project(pytester, test_seeded=MODULE_FIXTURE_TESTS)
    for mode, extra in (("plain", ()), ("xdist", ("-n", "2"))):
        run = pytester.runpytest_subprocess if extra else pytester.runpytest
        run("--dualcache", *SKIP_SUITE, *LEAN, *extra, f"--dualcache-report={mode}.json")
    plain = json.loads((pytester.path / "plain.json").read_text())
    xdist = json.loads((pytester.path / "xdist.json").read_text())
    # Only the test functions' own writes count (6); the module fixture's 5 are setup,
    # charged to no test, so the figure is the same however xdist shares the fixture.
    assert plain["totals"]["kv"]["writes"] == 6
    assert xdist["totals"]["kv"]["writes"] == 6
    assert plain["tests"] == xdist["tests"]


CRASH_TESTS = textwrap.dedent(
    """
    import os
    import mydal

    def test_crash(kv_namespace):
        mydal.save(kv_namespace, "before-the-crash")
        if os.environ.get("PYTEST_XDIST_WORKER"):
            os._exit(1)
    """
)


def test_a_crashed_worker_is_reported_never_dropped(pytester):
    _project(pytester, test_crash=CRASH_TESTS, test_more=MORE_TESTS)
    result = pytester.runpytest_subprocess(
        "--dualcache", *SKIP_SUITE, *LEAN, "-n", "2", "--dualcache-report=crash.json"
    )
    assert result.ret == 1
    result.assert_outcomes(passed=4, failed=1)
    section = _section(result)
    assert sum(line.startswith("WORKER CRASHED: gw") for line in section) == 1
    assert "  missing from the totals: test_crash.py::test_crash" in section
    assert "KV operations: 4 reads, 6 writes, 0 deletes, 0 lists over 4 tests" in section
    data = json.loads((pytester.path / "crash.json").read_text())
    assert data["missing_tests"] == ["test_crash.py::test_crash"]
    assert len(data["crashed_workers"]) == 1 and data["crashed_workers"][0].startswith("gw")
    assert "test_crash.py::test_crash" not in data["tests"]
    assert len(data["tests"]) == 4


def test_a_ledger_filled_by_hand_with_unknown_operations_never_breaks_the_report(pytester):
    pytester.makeini("[pytest]\ndualcache_kv_allow = *::*\n")
    pytester.makepyfile(
        """
        from pytest_dualcache.ledger import Ledger

        def test_hand_made_rows(kv_namespace):
            kv_namespace.ledger.record("scan", "k", 0.0, 0, True)
            Ledger("DO", kind="do").record("put", "k", 0.0, 1, True)
            kv_namespace.put("counted", "v")
        """
    )
    result = pytester.runpytest("--dualcache", *SKIP_SUITE)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["KV operations: 0 reads, 1 writes, 0 deletes, 0 lists over 1 tests"]
    )


SURROGATE_KEY_TESTS = textwrap.dedent(
    """
    def test_lone_surrogate_key(kv_namespace):
        kv_namespace.put("k\\ud800", "v")  # KV accepts lone surrogates in keys
    """
)


def test_a_bypass_to_a_lone_surrogate_key_reaches_the_controller_under_xdist(pytester):
    # xdist's channel carries only UTF-8: the key shows as its escape, and no worker crashes.
    _project(pytester, test_surrogate=SURROGATE_KEY_TESTS)
    result = pytester.runpytest_subprocess(
        "--dualcache", *SKIP_SUITE, *LEAN, "-n", "2", "--dualcache-report=surrogate.json"
    )
    result.assert_outcomes(failed=1)  # a rejected bypass, reported as one
    report = json.loads((pytester.path / "surrogate.json").read_text())
    (entry,) = [t for t in report["tests"].values() if t["bypasses"]["rejected"]]
    assert entry["bypasses"]["rejected"][0]["key"] == "k\\ud800"
    assert report["crashed_workers"] == []
