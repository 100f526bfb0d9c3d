"""Under --dualcache: what an incomplete session writes, output paths checked at startup and
written safely (symlinks, FIFOs, devices), and every baseline shape that was ever saved."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

# pytester restores sys.modules after each in-process run: preloading what the contract
# suite and hypothesis's terminal summary import keeps every --dualcache run from
# re-importing them.
import hypothesis.internal.observability  # noqa: F401
import pytest
import pytest_dualcache.contracts.test_registered  # noqa: F401

from pytest_dualcache.output_files import output_problem, write_json_atomically

# The inner runs skip the contract suite, keep the tests in file order (-x and friends stop
# after a given test: the order is the scenario) and cache nothing.
QUIET = ("-k", "not TestDualCacheContract", "-p", "no:randomly", "-p", "no:cacheprovider")
MYDAL = "def save(kv, key):\n    kv.put(key, 'v')\n"
INI = "[pytest]\ndualcache_dal_modules = mydal\n"
OLD_BASELINE = '{"old": "baseline, committed"}\n'
NOT_WRITTEN = "KV baseline NOT written to base.json: the session was incomplete ({}), *"


def _project(pytester: pytest.Pytester, tests: str) -> None:
    pytester.makepyfile(mydal=MYDAL, test_project=textwrap.dedent(tests))
    pytester.makeini(INI)


def _run(pytester: pytest.Pytester, *args: str, in_subprocess: bool = False) -> pytest.RunResult:
    """Run the project saving a baseline over an old one and writing a report."""
    (pytester.path / "base.json").write_text(OLD_BASELINE)
    options = (
        "--dualcache",
        *QUIET,
        "--dualcache-save-baseline=base.json",
        "--dualcache-report=report.json",
        *args,
    )
    if in_subprocess:
        return pytester.runpytest_subprocess(*options)
    # An inner KeyboardInterrupt is the scenario: pytester must not raise it in this test.
    return pytester.runpytest(*options, no_reraise_ctrlc=True)


def _report(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "report.json").read_text())


def _assert_incomplete(pytester: pytest.Pytester, result: pytest.RunResult, reason: str) -> None:
    """No baseline written (the old one kept), the report says why, and so does the summary."""
    assert (pytester.path / "base.json").read_text() == OLD_BASELINE
    report = _report(pytester)
    assert (report["complete"], report["incomplete_reasons"]) == (False, [reason])
    result.stdout.fnmatch_lines(
        [
            f"SESSION INCOMPLETE ({reason}): these figures cover only the tests that ran",
            'KV report written to report.json (marked "complete": false)',
            NOT_WRITTEN.format(reason),
        ]
    )
    assert "KV baseline written" not in result.stdout.str()


# --- an incomplete session writes no baseline (issue 10, item 3) ----------------------------

INTERRUPTED = """
    import mydal

    def test_first(kv_namespace):
        mydal.save(kv_namespace, "a")

    def test_interrupted(kv_namespace):
        mydal.save(kv_namespace, "b")
        raise KeyboardInterrupt

    def test_never_run(kv_namespace):
        mydal.save(kv_namespace, "c")
"""


def test_keyboard_interrupt_writes_no_baseline_and_an_incomplete_report(pytester):
    _project(pytester, INTERRUPTED)
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    _assert_incomplete(pytester, result, "interrupted (KeyboardInterrupt)")
    assert list(_report(pytester)["tests"]) == ["test_project.py::test_first"]


def test_an_interrupted_report_is_deterministic(pytester):
    _project(pytester, INTERRUPTED)
    _run(pytester)
    first = (pytester.path / "report.json").read_bytes()
    _run(pytester)
    assert (pytester.path / "report.json").read_bytes() == first


STOPPING = """
    import mydal

    def test_fails_first(kv_namespace):
        mydal.save(kv_namespace, "a")
        assert False

    def test_fails_second():
        assert False

    def test_never_run(kv_namespace):
        mydal.save(kv_namespace, "c")
"""


@pytest.mark.parametrize(("option", "failures"), [("-x", 1), ("--maxfail=2", 2)])
def test_a_session_stopped_by_maxfail_writes_no_baseline(pytester, option, failures):
    _project(pytester, STOPPING)
    result = _run(pytester, option)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    _assert_incomplete(pytester, result, f"stopped early: stopping after {failures} failures")
    assert "test_project.py::test_never_run" not in _report(pytester)["tests"]


def test_pytest_exit_in_a_test_writes_no_baseline(pytester):
    _project(pytester, "import pytest\n\ndef test_exit():\n    pytest.exit('enough')\n")
    result = _run(pytester)
    _assert_incomplete(pytester, result, "stopped by pytest.exit(): enough")


def test_a_plugin_setting_shouldstop_makes_the_session_incomplete(pytester):
    # How a plugin (or a test) stops the session after a test: a lost Redis server, say.
    _project(
        pytester,
        """
        def test_loses_its_server(request):
            request.session.shouldstop = "the Redis server went away"

        def test_never_run():
            pass
        """,
    )
    result = _run(pytester)
    _assert_incomplete(pytester, result, "stopped early: the Redis server went away")


def test_a_baseline_gate_is_not_run_for_an_interrupted_session(pytester):
    _project(pytester, INTERRUPTED)
    (pytester.path / "gate.json").write_text('{"version": 1, "tests": {}}')
    result = _run(pytester, "--dualcache-baseline=gate.json")
    result.stdout.fnmatch_lines(
        ["KV writes not compared with the baseline: the session stopped early"]
    )


@pytest.mark.parametrize(
    "selection", [("-k", "test_first"), ("--deselect=test_project.py::test_second",)]
)
def test_a_selection_is_complete_and_records_what_it_deselected(pytester, selection):
    _project(
        pytester,
        """
        import mydal

        def test_first(kv_namespace):
            mydal.save(kv_namespace, "a")

        def test_second(kv_namespace):
            mydal.save(kv_namespace, "b")
        """,
    )
    result = _run(pytester, *selection)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["KV baseline written to base.json"])
    baseline = json.loads((pytester.path / "base.json").read_text())
    assert list(baseline["tests"]) == ["test_project.py::test_first"]
    report = _report(pytester)
    assert (report["complete"], report["incomplete_reasons"]) == (True, [])
    # -k also deselects the contract suite: at least test_second is among them.
    assert report["deselected"] == result.parseoutcomes()["deselected"] >= 1


XDIST = ("-n", "2", "-p", "no:benchmark")
CRASH = """
    import os
    import mydal

    def test_crash(kv_namespace):
        mydal.save(kv_namespace, "a")
        os._exit(1)

    def test_fine(kv_namespace):
        mydal.save(kv_namespace, "b")
"""


def test_a_crashed_xdist_worker_writes_no_baseline(pytester):
    _project(pytester, CRASH)
    result = _run(pytester, *XDIST, in_subprocess=True)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert (pytester.path / "base.json").read_text() == OLD_BASELINE
    report = _report(pytester)
    assert report["complete"] is False
    assert report["incomplete_reasons"] == ["an xdist worker crashed"]
    result.stdout.fnmatch_lines([NOT_WRITTEN.format("an xdist worker crashed")])


def test_xdist_stopped_by_x_writes_no_baseline(pytester):
    _project(pytester, "def test_fails():\n    assert False\n")
    result = _run(pytester, *XDIST, "-x", in_subprocess=True)
    assert result.ret != pytest.ExitCode.OK
    assert (pytester.path / "base.json").read_text() == OLD_BASELINE
    assert _report(pytester)["incomplete_reasons"] == ["stopped early: stopping after 1 failures"]


def test_xdist_records_what_the_workers_deselected(pytester):
    _project(pytester, "def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    _run(pytester, "-k", "test_a")
    plain = _report(pytester)
    _run(pytester, "-k", "test_a", *XDIST, in_subprocess=True)
    assert _report(pytester) == plain
    assert plain["deselected"] >= 1 and plain["complete"] is True


# --- output paths are checked at startup (issue 10, item 6) --------------------------------


@pytest.fixture
def one_test(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    return pytester


def _usage_error(pytester: pytest.Pytester, option: str, path: object) -> pytest.RunResult:
    result = pytester.runpytest("--dualcache", *QUIET, f"{option}={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "test_one" not in result.stdout.str()  # stopped before running anything
    return result


@pytest.mark.parametrize("option", ["--dualcache-report", "--dualcache-save-baseline"])
def test_an_output_path_that_is_a_directory_is_a_usage_error(one_test, option):
    folder = one_test.mkdir("out")
    result = _usage_error(one_test, option, folder)
    result.stderr.fnmatch_lines([f"ERROR: {option}: cannot write {folder}: it is a directory"])


def test_an_output_path_linking_to_a_directory_is_a_usage_error(one_test):
    folder = one_test.mkdir("out")
    (one_test.path / "link.json").symlink_to(folder)
    result = _usage_error(one_test, "--dualcache-report", "link.json")
    result.stderr.fnmatch_lines(
        [f"ERROR: --dualcache-report: cannot write link.json (-> {folder}): it is a directory"]
    )


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_output_path_under_proc_is_a_usage_error(one_test):
    result = _usage_error(one_test, "--dualcache-save-baseline", "/proc/kv-baseline.json")
    result.stderr.fnmatch_lines(
        [
            "ERROR: --dualcache-save-baseline: cannot write /proc/kv-baseline.json: cannot "
            "create a file in /proc (*)"
        ]
    )


def test_an_output_path_below_a_file_is_a_usage_error(one_test):
    (one_test.path / "plain.txt").write_text("a file, not a folder\n")
    path = one_test.path / "plain.txt" / "sub" / "report.json"
    result = _usage_error(one_test, "--dualcache-report", path)
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --dualcache-report: cannot write {path}: {one_test.path / 'plain.txt'} "
            "is not a directory"
        ]
    )


def test_missing_parent_folders_of_an_output_path_are_created(one_test):
    result = one_test.runpytest("--dualcache", *QUIET, "--dualcache-report=a/b/report.json")
    assert result.ret == pytest.ExitCode.OK
    assert json.loads((one_test.path / "a" / "b" / "report.json").read_text())["complete"]


def test_the_startup_check_creates_and_truncates_nothing(tmp_path):
    existing = tmp_path / "report.json"
    existing.write_text("kept\n")
    assert output_problem(existing) is None
    assert output_problem(tmp_path / "new" / "deeper" / "report.json") is None
    assert existing.read_text() == "kept\n"
    assert os.listdir(tmp_path) == ["report.json"]  # no folder made, no probe file left


# --- what the report write does to the path it is given (issue 10, item 15) -----------------


def test_a_symlink_writes_through_to_its_target(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_json_atomically(link, {"a": 1})
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real.json"]


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "later" / "real.json")
    write_json_atomically(link, {"a": 1})
    assert link.is_symlink()
    assert json.loads((tmp_path / "later" / "real.json").read_text()) == {"a": 1}


def test_a_replaced_regular_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old\n")
    path.chmod(0o640)
    write_json_atomically(path, {"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert json.loads(path.read_text()) == {"a": 1}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_written_in_place_never_replaced(tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_json_atomically(fifo, {"a": 1})
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert json.loads(received[0]) == {"a": 1}
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["report.fifo"]


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_dev_null_is_written_in_place_and_stays_a_device(one_test):
    result = one_test.runpytest("--dualcache", *QUIET, "--dualcache-report=/dev/null")
    assert result.ret == pytest.ExitCode.OK
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    write_json_atomically(Path("/dev/null"), {"a": 1})
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/stdout"), reason="needs /dev/stdout")
def test_dev_stdout_on_a_pipe_is_written_in_place(one_test):
    # /dev/stdout -> /proc/self/fd/1 -> pipe:[...]: no file to replace, and none to create.
    process = one_test.popen(
        [sys.executable, "-m", "pytest", "--dualcache", *QUIET, "--dualcache-report=/dev/stdout"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, (out + err).decode()
    assert b'  "complete": true,\n' in out
    assert b"KV report written to /dev/stdout" in out


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_dev_full_fails_the_run_with_a_clear_line_and_stays_a_device(one_test):
    try:
        result = one_test.runpytest("--dualcache", *QUIET, "--dualcache-report=/dev/full")
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["KV report NOT written to /dev/full: No space left on device"])
        output = result.stdout.str() + result.stderr.str()
        assert "Traceback" not in output and "INTERNALERROR" not in output
        with pytest.raises(OSError, match="No space left on device"):
            write_json_atomically(Path("/dev/full"), {"a": 1})
    finally:
        assert stat.S_ISCHR(os.lstat("/dev/full").st_mode), "/dev/full was replaced"


# --- every baseline shape ever saved still loads (issue 10, item 7) ------------------------

GATED = """
    import mydal

    def test_a(kv_namespace):
        mydal.save(kv_namespace, "a1")
        mydal.save(kv_namespace, "a2")

    def test_b(kv_namespace):
        mydal.save(kv_namespace, "b1")
"""
SITE = "mydal.py:2:save"
# Version 1, as --dualcache-save-baseline has written it since the gate shipped (3095e7a):
# every test with writes, deletes, lists and its sorted write sites, and the totals.
VERSION_1 = {
    "version": 1,
    "tests": {
        "test_project.py::test_a": {"writes": 1, "deletes": 0, "lists": 0, "write_sites": [SITE]},
        "test_project.py::test_b": {"writes": 1, "deletes": 0, "lists": 0, "write_sites": [SITE]},
    },
    "totals": {"writes": 2, "deletes": 0, "lists": 0},
}


def _gate(pytester: pytest.Pytester, baseline: dict) -> pytest.RunResult:
    _project(pytester, GATED)
    (pytester.path / "gate.json").write_text(json.dumps(baseline))
    return pytester.runpytest("--dualcache", *QUIET, "--dualcache-baseline=gate.json")


def test_a_version_1_baseline_as_first_saved_still_gates(pytester):
    result = _gate(pytester, VERSION_1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # test_a: 1 -> 2 writes
    result.stdout.fnmatch_lines(["KV writes grew beyond the baseline (allowed growth: 0):"])
    assert "note:" not in result.stdout.str()


def test_a_baseline_without_write_sites_gates_and_notes_the_sites_it_cannot_show(pytester):
    baseline = json.loads(json.dumps(VERSION_1))
    for entry in baseline["tests"].values():
        del entry["write_sites"]
    result = _gate(pytester, baseline)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "  test_project.py::test_a  * 1 * 2 * +1",
            "note: the baseline lists no write sites for 1 grown tests: their new call sites "
            "are not shown",
        ]
    )


def test_a_baseline_without_write_counts_skips_those_tests_with_a_note(pytester):
    baseline = json.loads(json.dumps(VERSION_1))
    del baseline["tests"]["test_project.py::test_a"]["writes"]
    del baseline["totals"]
    result = _gate(pytester, baseline)
    assert result.ret == pytest.ExitCode.OK  # test_a grew, but its count is unknown
    result.stdout.fnmatch_lines(
        [
            "KV writes within the baseline (allowed growth: 0)",
            "note: the baseline has no KV write count for 1 of these tests: they are not gated "
            "(save the baseline again to gate them)",
        ]
    )


def test_a_keyboard_interrupt_on_an_xdist_worker_writes_no_baseline(pytester):
    _project(pytester, INTERRUPTED)
    result = _run(pytester, *XDIST, in_subprocess=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert (pytester.path / "base.json").read_text() == OLD_BASELINE
    report = _report(pytester)
    assert report["complete"] is False
    reason = "interrupted (KeyboardInterrupt on an xdist worker)"
    assert report["incomplete_reasons"] == [reason]
    result.stdout.fnmatch_lines([NOT_WRITTEN.format(reason)])
    assert not report["crashed_workers"]  # interrupted, not crashed
