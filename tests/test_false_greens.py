"""No false greens (issue 15): a run that tested no DAL, a factory that cannot make one, a
gate that failed, or a file argument must each say so plainly, driven through pytester."""

from __future__ import annotations

import json

# pytester restores sys.modules after each in-process run: preloading what the contract
# suite and hypothesis's terminal summary import keeps every --dualcache run from
# re-importing them.
import hypothesis.internal.observability  # noqa: F401
import pytest
import pytest_dualcache.contracts.test_registered  # noqa: F401

SUITE = "pytest_dualcache/contracts/test_registered.py::"
FB_1 = ("-k", "test_app or FB_1")
APP = "def test_app(kv_namespace):\n    pass\n"

FACTORIES = """
    from pytest_dualcache.abstraction import CacheAbstraction


    class NoDelete:
        def __init__(self, env):
            self.env = env

        def put(self, key, value, ttl=None):
            return None

        def get(self, key):
            return None


    class NotCallable:
        put = get = delete = "not a method"


    def good(env):
        return CacheAbstraction(env)


    def raises(env):
        raise RuntimeError("no database configured")


    def returns_none(env):
        return None


    def not_callable(env):
        return NotCallable()


    async def async_good(env):
        return CacheAbstraction(env)


    async def async_none(env):
        return None


    def expected_but_none(env):
        return None


    expected_but_none.dualcache_expected_failure = "kept to show the migration"


    def writes_on_creation(env):
        env.kv.put("scratch", "written while checking")
        return CacheAbstraction(env)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with its own test file and an importable factories module."""
    pytester.makepyfile(test_app=APP, factories=FACTORIES)
    pytester.syspathinsert()
    return pytester


def _final_line(result: pytest.RunResult) -> str:
    return next(line for line in reversed(result.outlines) if line.startswith("="))


# --- no factory registered ----------------------------------------------------------------------


def test_without_a_factory_the_header_report_and_final_line_say_so(project):
    report = project.path / "report.json"
    result = project.runpytest("--dualcache", *FB_1, f"--dualcache-report={report}")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "dualcache: NO DAL FACTORY REGISTERED: the contract suite tests the bundled "
            "reference CacheAbstraction, not your DAL; register yours with dualcache_factory*",
            "*= dualcache KV report =*",
            "NO DAL FACTORY REGISTERED: the contract suite tested the bundled reference*"
            "--dualcache-factory=mypkg.testing:make_dal",
        ]
    )
    final = _final_line(result)
    assert "ran against the bundled reference (no DAL factory registered)" in final, final
    ran = int(final.split(" ran against the bundled reference")[0].rsplit(", ", 1)[1])
    assert ran == result.parseoutcomes()["passed"] - 1 > 0  # every suite test but test_app
    data = json.loads(report.read_text())
    assert data["factories"] == {"names": ["reference"], "registered": False}


def test_a_registered_factory_takes_the_notice_away(project):
    result = project.runpytest("--dualcache", *FB_1, "--dualcache-factory=mine=factories:good")
    assert result.ret == 0
    assert "NO DAL FACTORY" not in result.stdout.str()
    assert "ran against the bundled reference" not in _final_line(result)


def test_a_hook_factory_counts_as_registered(project):
    project.makeconftest(
        "from factories import good\n\n"
        "def pytest_dualcache_factories(config):\n    return {'hooked': good}\n"
    )
    result = project.runpytest("--dualcache", *FB_1)
    assert "NO DAL FACTORY" not in result.stdout.str()


# --- each factory checked once at session start --------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (
            "factories:raises",
            "raised RuntimeError: no database configured when called on a fresh env",
        ),
        ("factories:returns_none", "returned None"),
        ("factories:NoDelete", "returned an instance of NoDelete without delete"),
        (
            "factories:not_callable",
            "returned an instance of NotCallable whose put, get, delete are not callable",
        ),
        ("factories:async_none", "returned None"),
        ("factories:expected_but_none", "returned None"),
    ],
)
def test_a_factory_that_makes_no_dal_is_one_usage_error(project, spec, problem):
    result = project.runpytest("--dualcache", f"--dualcache-factory=bad={spec}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    module, _, name = spec.partition(":")
    result.stderr.fnmatch_lines(
        [f"ERROR: dualcache factory 'bad' ({module}.{name}): {problem}; the contract suite*"]
    )
    assert "passed" not in result.stdout.str() and "failed" not in result.stdout.str()


def test_async_factories_pass_the_check(project):
    result = project.runpytest("--dualcache", *FB_1, "--dualcache-factory=factories:async_good")
    assert result.ret == 0, result.stdout.str()


def test_the_scratch_env_appears_in_no_report(project):
    report = project.path / "report.json"
    result = project.runpytest(
        "--dualcache",
        "-k",
        "test_app",
        "--dualcache-factory=w=factories:writes_on_creation",
        f"--dualcache-report={report}",
    )
    assert result.ret == 0
    data = json.loads(report.read_text())
    assert data["totals"]["kv"]["writes"] == 0


# --- empty names and DAL modules ---------------------------------------------------------------


def test_an_empty_factory_name_is_a_usage_error(project):
    result = project.runpytest("--dualcache", "--dualcache-factory==factories:good")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --dualcache-factory: '=factories:good' has an empty*"])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("src/mydal.py", "'src/mydal.py' is a path; give the module's import name*"),
        ("mydal.py", "'mydal.py' is a path*"),
        ("no_such_dal_module", "cannot import 'no_such_dal_module'; is its folder on sys.path*"),
    ],
)
def test_a_bad_dal_module_is_a_usage_error(project, entry, message):
    project.makeini(f"[pytest]\ndualcache_dal_modules = {entry}\n")
    result = project.runpytest("--dualcache", "test_app.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: ini dualcache_dal_modules: {message}"])


def test_a_dal_module_beside_the_tests_is_importable_once_they_are(pytester):
    """Rootdir-relative imports: the module imports only once pytest imported its test file."""
    sub = pytester.mkdir("app")
    (sub / "beside.py").write_text("def save(kv):\n    kv.put('k', 'v')\n")
    (sub / "test_beside.py").write_text(
        "import beside\n\ndef test_save(kv_namespace):\n    beside.save(kv_namespace)\n"
    )
    pytester.makeini("[pytest]\ndualcache_dal_modules = beside\n")
    result = pytester.runpytest("--dualcache", "app/test_beside.py")
    assert result.ret == 0, result.stdout.str()


# --- the gate in the final line -------------------------------------------------------------------


def test_a_gate_failure_is_in_the_final_summary_line(project):
    project.makepyfile(test_writes="def test_w(kv_namespace):\n    kv_namespace.put('a', 'v')\n")
    project.makeini("[pytest]\ndualcache_kv_allow = test_writes.py::*\n")
    baseline = project.path / "baseline.json"
    baseline.write_text(
        json.dumps({"version": 1, "tests": {"test_writes.py::test_w": {"writes": 0}}})
    )
    result = project.runpytest(
        "--dualcache",
        "test_writes.py",
        "--dualcache-factory=factories:good",
        f"--dualcache-baseline={baseline}",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    final = _final_line(result)
    assert "1 passed, 1 KV gate failed" in final, final


# --- which arguments add the suite ----------------------------------------------------------------


def _ran(reprec: pytest.HookRecorder) -> set[str]:
    return {r.nodeid for r in reprec.getreports("pytest_runtest_logreport") if r.when == "call"}


def test_a_file_argument_runs_that_file_and_not_the_suite(project):
    assert _ran(project.inline_run("--dualcache", "test_app.py")) == {"test_app.py::test_app"}


def test_a_node_id_argument_runs_that_test_and_not_the_suite(project):
    reprec = project.inline_run("--dualcache", "test_app.py::test_app")
    assert _ran(reprec) == {"test_app.py::test_app"}


def test_dualcache_suite_adds_the_suite_to_a_file_argument(project):
    ran = _ran(project.inline_run("--dualcache", "--dualcache-suite", "test_app.py", *FB_1))
    assert "test_app.py::test_app" in ran and any(n.startswith(SUITE) for n in ran)


@pytest.mark.parametrize("args", [(), (".",), ("--rootdir=.", ".")])
def test_no_path_or_a_directory_adds_the_suite(project, args):
    ran = _ran(project.inline_run("--dualcache", *args, *FB_1))
    assert "test_app.py::test_app" in ran and any(n.startswith(SUITE) for n in ran)


def test_testpaths_add_the_suite(project):
    tests = project.mkdir("tests")
    (tests / "test_more.py").write_text("def test_more():\n    pass\n")
    project.makeini("[pytest]\ntestpaths = tests\n")
    ran = _ran(project.inline_run("--dualcache", "-k", "test_more or FB_1"))
    assert "tests/test_more.py::test_more" in ran and any(n.startswith(SUITE) for n in ran)


def test_dualcache_suite_needs_dualcache(project):
    result = project.runpytest("--dualcache-suite")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --dualcache-suite only work* together with --dualcache"])


# --- bypasses KV refused --------------------------------------------------------------------------

REFUSED = """
    import pytest
    from pytest_dualcache import KVError


    def test_refused_direct_write(kv_namespace):
        with pytest.raises(KVError):
            kv_namespace.put("", "v")  # KV refuses an empty key: nothing is written
"""


def test_a_bypass_kv_refused_is_listed_apart_and_fails_nothing(project):
    project.makepyfile(test_refused=REFUSED)
    report = project.path / "report.json"
    result = project.runpytest("--dualcache", "test_refused.py", f"--dualcache-report={report}")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "KV writes bypassing the cache layer: 0 rejected, 0 allowed "
            "(1 more refused by KV, not counted)"
        ]
    )
    data = json.loads(report.read_text())
    (test,) = data["tests"].values()
    (entry,) = test["bypasses"]["refused_by_kv"]
    assert entry["key"] == "" and entry["caller"].startswith("test_refused.py:")
    assert test["bypasses"]["rejected"] == [] == test["bypasses"]["allowed"]
    assert data["totals"]["bypasses"] == {"allowed": 0, "rejected": 0, "refused_by_kv": 1}


# --- the report's two groups ----------------------------------------------------------------------


def test_the_report_separates_the_application_from_the_contract_suite(project):
    project.makepyfile(test_app="def test_app(kv_namespace):\n    kv_namespace.put('mine', 'v')\n")
    project.makeini("[pytest]\ndualcache_kv_allow = test_app.py::*\n")
    report = project.path / "report.json"
    result = project.runpytest(
        "--dualcache",
        *FB_1,
        "--dualcache-factory=mine=factories:good",
        f"--dualcache-report={report}",
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "your tests:",
            "KV operations: 0 reads, 1 writes, 0 deletes, 0 lists over 1 tests",
            "*",
            "top KV-writing call sites:",
            "       1  test_app.py:2:test_app",
            "contract suite (against mine):",
            "KV operations: * over * tests",
        ],
        consecutive=False,
    )
    data = json.loads(report.read_text())
    application, contract = data["groups"]["application"], data["groups"]["contract"]
    assert application["tests"] == 1 and contract["tests"] == data["totals"]["tests"] - 1 > 0
    assert application["top_write_sites"] == [{"site": "test_app.py:2:test_app", "writes": 1}]
    assert application["route_share"] == {"do": 0.0, "kv": 1.0}
    assert data["tests"]["test_app.py::test_app"]["group"] == "application"
    suite = [test for nodeid, test in data["tests"].items() if nodeid.startswith(SUITE)]
    assert suite and {test["group"] for test in suite} == {"contract"}
    sites = [row["site"] for row in contract["top_write_sites"]]
    assert sites and not any(site.startswith("/") for site in sites), sites
