"""cli.py: merge, gate, html and md on JSON reports, checked against what the plugin writes and
prints for the same tests. Most cases call ``main`` in-process; one runs ``python -m``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

# pytester restores sys.modules after each in-process run: preloading what the contract
# suite and hypothesis's terminal summary import keeps every --dualcache run from
# re-importing them.
import hypothesis.internal.observability  # noqa: F401
import pytest
import pytest_dualcache.contracts.test_registered  # noqa: F401

from pytest_dualcache.baseline import NOT_COMPARED, Growth, baseline_of, compare
from pytest_dualcache.cli import BAD_INPUT, GATE_FAILED, OK, PROG, main
from pytest_dualcache.report import REPORT_VERSION, SessionReport, summarize
from pytest_dualcache.report_html import render_html
from pytest_dualcache.report_md import render_markdown
from pytest_dualcache.settings import SETTINGS

# The inner runs name their test files (so the contract suite is not added), keep the tests
# in file order (-x stops after a given test), cache nothing and load no benchmark plugin.
QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:benchmark")
MYDAL = textwrap.dedent(
    """
    def save(kv, key):
        kv.put(key, "v")

    def remove(kv, key):
        kv.delete(key)

    def audit(kv, key):
        kv.put("audit:" + key, "v")
    """
)
TEST_ONE = textwrap.dedent(
    """
    import mydal

    def test_a(kv_namespace):
        for i in range(2):
            mydal.save(kv_namespace, f"a{i}")

    def test_b(kv_namespace, do_cache):
        mydal.save(kv_namespace, "b")
        kv_namespace.get("b")
        kv_namespace.list()
    """
)
TEST_TWO = textwrap.dedent(
    """
    import mydal

    def test_c(kv_namespace):
        mydal.save(kv_namespace, "c")
        mydal.remove(kv_namespace, "c")
    """
)
# test_a makes one more write, from a call site the baseline has not seen.
GROWN_ONE = TEST_ONE.replace(
    'mydal.save(kv_namespace, f"a{i}")',
    'mydal.save(kv_namespace, f"a{i}")\n    mydal.audit(kv_namespace, "a")',
)
FILES = ("test_one.py", "test_two.py")
#: The line of audit's write in mydal.py as pytester writes it (the source stripped).
AUDIT_LINE = MYDAL.strip("\n").splitlines().index('    kv.put("audit:" + key, "v")') + 1


def _project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(mydal=MYDAL, test_one=TEST_ONE, test_two=TEST_TWO)
    pytester.makeini("[pytest]\ndualcache_dal_modules = mydal\n")
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--dualcache", *QUIET, *args)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    """``main(argv)``'s exit code, stdout lines and stderr lines (only its own)."""
    capsys.readouterr()  # what an inner pytester run printed
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def _following(lines: list[str], expected: list[str]) -> list[str]:
    """The ``len(expected)`` lines of ``lines`` from the first that equals ``expected[0]``."""
    start = lines.index(expected[0])
    return lines[start : start + len(expected)]


# --- synthetic reports, for the fast cases ----------------------------------------------------

SITE = "app/dal.py:3:save"


def _entry(writes: int) -> dict[str, Any]:
    """A test's entry as ``report.summarize`` writes it, with ``writes`` KV writes."""
    data = summarize([], Path("."))
    data["kv"]["writes"] = writes
    data["write_sites"] = {SITE: writes} if writes else {}
    return data


def _report(writes: dict[str, int], *, shard: str | None = None) -> dict[str, Any]:
    session = SessionReport(factories=["reference"], factories_registered=False)
    for nodeid, count in writes.items():
        session.add(nodeid, _entry(count))
    data = session.to_json()
    return data if shard is None else {**data, "shard": shard}


def _write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


BEFORE = {"t.py::test_x": 2, "t.py::test_y": 4}


@pytest.fixture
def gate_files(tmp_path: Path) -> Path:
    """``base.json`` saved from BEFORE; the report under test is written per test."""
    baseline = baseline_of(SessionReport(tests=_report(BEFORE)["tests"]))
    _write(tmp_path / "base.json", baseline)
    return tmp_path


# --- merge ------------------------------------------------------------------------------------


def test_merged_real_shards_are_byte_identical_to_the_unsplit_run(pytester, capsys):
    _project(pytester)
    assert _run(pytester, *FILES, "--dualcache-report=full.json").ret == 0
    for index, name in enumerate(FILES, start=1):
        shard = (f"--dualcache-report=shard-{index}.json", f"--dualcache-shard={index}/2")
        assert _run(pytester, name, *shard).ret == 0
        assert json.loads((pytester.path / f"shard-{index}.json").read_text())["shard"] == (
            f"{index}/2"
        )
    full = (pytester.path / "full.json").read_bytes()
    assert len(json.loads(full)["tests"]) == 3  # the scenario: both files' tests, one report
    for order in (("shard-1.json", "shard-2.json"), ("shard-2.json", "shard-1.json")):
        paths = [str(pytester.path / name) for name in order]
        code, out, err = _cli(capsys, "merge", *paths, "-o", str(pytester.path / "merged.json"))
        assert (code, out, err) == (OK, [], [])
        assert (pytester.path / "merged.json").read_bytes() == full


def _refusals(tmp: Path) -> list[tuple[list[str], str]]:
    """Merge command lines (shard paths) and the error each must give."""
    one, two = {"t.py::test_x": 1}, {"t.py::test_y": 2}
    s1 = _write(tmp / "s1.json", _report(one, shard="1/2"))
    s2 = _write(tmp / "s2.json", _report(two, shard="2/2"))
    old = _write(tmp / "old.json", {**_report(two, shard="2/2"), "version": 1})
    overlap = _write(tmp / "overlap.json", _report({**one, **two}, shard="2/2"))
    unsharded = _write(tmp / "unsharded.json", _report(two))
    bad_test = _report(two, shard="2/2")
    bad_test["tests"]["t.py::test_y"]["kv"]["writes"] = "2"
    bad = _write(tmp / "bad-test.json", bad_test)
    return [
        ([str(s1)], "shard 2 of 2 missing"),
        ([str(s1), str(overlap)], f"t.py::test_x is in both {s1} and {overlap}"),
        ([str(s1), str(old)], f"shards of different report version: {s1} has 2, {old} has 1"),
        ([str(s1), str(unsharded)], f'{unsharded}: not a shard report (no "shard": "I/N")'),
        ([str(s1), str(s2), str(s1)], f"{s1}: given twice"),
        ([str(s1), str(tmp / "s3.json")], f"{tmp / 's3.json'}: no such file"),
        ([str(s1), str(_write(tmp / "cut.json", '{"version": 2'))], f"{tmp}/cut.json: not valid"),
        ([str(s1), str(_write(tmp / "list.json", []))], f"{tmp}/list.json: not a dualcache KV"),
        (
            [str(s1), str(bad)],
            f"{bad}: tests[\"t.py::test_y\"]: 'kv' is not an object of integers >= 0",
        ),
    ]


def test_what_merge_shards_refuses_exits_2_in_one_line_and_writes_nothing(tmp_path, capsys):
    output = _write(tmp_path / "kv-report.json", "the previous run's report\n")
    for shards, message in _refusals(tmp_path):
        before = sorted(os.listdir(tmp_path))
        code, out, err = _cli(capsys, "merge", *shards, "-o", str(output))
        assert code == BAD_INPUT, message
        assert out == []
        assert len(err) == 1 and err[0].startswith(f"{PROG} merge: error: {message}"), err
        assert output.read_text() == "the previous run's report\n"  # untouched
        assert sorted(os.listdir(tmp_path)) == before  # no temporary file left behind


def test_merge_refuses_an_output_it_cannot_write_before_reading_anything(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    code, _, err = _cli(capsys, "merge", "missing.json", "-o", str(tmp_path / "out"))
    assert code == BAD_INPUT
    assert err == [f"{PROG} merge: error: cannot write {tmp_path / 'out'}: it is a directory"]


def test_merge_needs_an_output(tmp_path, capsys):
    shard = _write(tmp_path / "s1.json", _report({"t.py::test_x": 1}, shard="1/1"))
    code, _, err = _cli(capsys, "merge", str(shard))
    assert code == BAD_INPUT  # argparse's exit code for a bad command line
    assert err[-1].endswith("error: the following arguments are required: -o/--output")
    assert sorted(os.listdir(tmp_path)) == ["s1.json"]


# --- gate -------------------------------------------------------------------------------------


def test_gate_passes_and_fails_with_the_lines_the_plugin_prints(pytester, capsys):
    _project(pytester)
    assert _run(pytester, *FILES, "--dualcache-save-baseline=base.json").ret == 0
    for grown in (False, True):
        if grown:
            pytester.makepyfile(test_one=GROWN_ONE)
        result = _run(
            pytester, *FILES, "--dualcache-baseline=base.json", "--dualcache-report=r.json"
        )
        assert result.ret == (1 if grown else 0)
        code, out, err = _cli(capsys, "gate", "r.json", "--baseline", "base.json")
        assert code == (GATE_FAILED if grown else OK)
        assert err == []
        verdict = "grew beyond" if grown else "within"
        assert out[0].startswith(f"KV writes {verdict} the baseline (allowed growth: 0)")
        assert out == _following(result.stdout.lines, out)
    assert f"      new call site: mydal.py:{AUDIT_LINE}:audit" in out  # the grown run's table


def test_pages_with_a_baseline_are_the_plugins_pages_under_its_baseline(pytester, capsys):
    """``md``/``html --baseline`` on a report (a merged one, say) write what the plugin's
    ``--dualcache-md``/``-html`` write under ``--dualcache-baseline``: the gate in the page."""
    _project(pytester)
    assert _run(pytester, *FILES, "--dualcache-save-baseline=base.json").ret == 0
    pytester.makepyfile(test_one=GROWN_ONE)
    pages = ("--dualcache-md=plugin.md", "--dualcache-html=plugin.html")
    gated = ("--dualcache-baseline=base.json", "--dualcache-report=r.json")
    result = _run(pytester, *FILES, *gated, *pages)
    assert result.ret == 1
    for page in ("md", "html"):
        code, _, err = _cli(capsys, page, "r.json", "-o", f"cli.{page}", "--baseline", "base.json")
        assert (code, err) == (OK, [])
        cli_page = (pytester.path / f"cli.{page}").read_text()
        assert cli_page == (pytester.path / f"plugin.{page}").read_text()
        assert f"mydal.py:{AUDIT_LINE}:audit" in cli_page  # the new call site, in the gate's table


def test_an_incomplete_report_is_not_gated_as_the_plugin_does_not_gate_it(pytester, capsys):
    pytester.makepyfile(mydal=MYDAL, test_one="def test_fails():\n    assert False\n" + TEST_ONE)
    pytester.makeini("[pytest]\ndualcache_dal_modules = mydal\n")
    _write(pytester.path / "base.json", {"version": 1, "tests": {}})
    args = ("test_one.py", "-x", "--dualcache-baseline=base.json", "--dualcache-report=r.json")
    result = _run(pytester, *args)
    assert result.ret == 1
    code, out, err = _cli(capsys, "gate", "r.json", "--baseline", "base.json")
    assert (code, err) == (GATE_FAILED, [])
    assert out == [
        "SESSION INCOMPLETE (stopped early: stopping after 1 failures): these figures cover "
        "only the tests that ran",
        NOT_COMPARED,
    ]
    assert set(out) <= set(result.stdout.lines)  # the plugin says both


@pytest.mark.parametrize(
    ("now", "growth", "code"),
    [
        (BEFORE, [], OK),
        ({"t.py::test_x": 3, "t.py::test_y": 4}, [], GATE_FAILED),
        ({"t.py::test_x": 3, "t.py::test_y": 4}, ["--max-growth", "1"], OK),
        ({"t.py::test_x": 3, "t.py::test_y": 4}, ["--max-growth", "50%"], OK),
        ({"t.py::test_x": 4, "t.py::test_y": 4}, ["--max-growth=50%"], GATE_FAILED),
        ({**BEFORE, "t.py::test_new": 9}, [], OK),
    ],
)
def test_gate_exit_code_and_lines_follow_max_growth(gate_files, capsys, now, growth, code):
    _write(gate_files / "r.json", _report(now))
    base = str(gate_files / "base.json")
    result_code, out, _ = _cli(
        capsys, "gate", str(gate_files / "r.json"), "--baseline", base, *growth
    )
    allowed = Growth.parse(growth[-1].split("=")[-1] if growth else "0")
    baseline = json.loads((gate_files / "base.json").read_text())
    expected = compare(baseline, baseline_of(SessionReport(tests=_report(now)["tests"])), allowed)
    assert (result_code, out) == (code, expected.render(allowed))


def test_gate_defaults_to_the_plugins_max_growth(gate_files, capsys):
    _write(gate_files / "r.json", _report(BEFORE))
    base = str(gate_files / "base.json")
    code, out, _ = _cli(capsys, "gate", str(gate_files / "r.json"), "--baseline", base)
    default = Growth.parse(SETTINGS["max_growth"].default)
    assert (code, out) == (OK, [f"KV writes within the baseline (allowed growth: {default})"])


def _slo(metric: str, comparison: str, limit: float, measured: float, scope: str = "session"):
    """An ``slo`` entry of a report (``slo.Verdict.to_json``)."""
    passed = measured <= limit if comparison == "<=" else measured >= limit
    return {"scope": scope, "metric": metric, "comparison": comparison, "limit": limit} | {
        "measured": measured,
        "passed": passed,
    }


@pytest.mark.parametrize("with_baseline", [True, False])
def test_gate_fails_on_a_missed_session_slo_gate_of_the_report(gate_files, capsys, with_baseline):
    """A merged report's session gates were judged over every shard (``merge``): ``gate``
    fails where the unsplit run would have; a test's own gate already failed that test."""
    report = _report(BEFORE)
    report["slo"] = [
        _slo("do_hit_rate", ">=", 0.7, 0.5),
        _slo("kv_errors", "<=", 0, 0),
        _slo("kv_errors", "<=", 0, 3, scope="t.py::test_x"),
    ]
    _write(gate_files / "r.json", report)
    baseline = ["--baseline", str(gate_files / "base.json")] if with_baseline else []
    code, out, _ = _cli(capsys, "gate", str(gate_files / "r.json"), *baseline)
    assert code == GATE_FAILED
    assert out[-3:] == [
        "SLO gates: 1 missed of 2",
        "  MISSED: session (your tests): do_hit_rate >= 0.7, measured 0.5",
        "  passed: session (your tests): kv_errors <= 0, measured 0",
    ]
    assert ("KV writes within the baseline (allowed growth: 0)" in out) is with_baseline
    report["slo"][0] = _slo("do_hit_rate", ">=", 0.7, 0.9)
    _write(gate_files / "r.json", report)
    assert _cli(capsys, "gate", str(gate_files / "r.json"), *baseline)[0] == OK


def _gate_refusals(tmp: Path) -> list[tuple[list[str], str]]:
    """Gate command lines (after the report) and the error each must give."""
    base = str(tmp / "base.json")
    old = _write(tmp / "old.json", {**_report(BEFORE), "version": 1})
    torn = _report(BEFORE)
    torn["complete"] = False  # and no reason given
    return [
        ([str(tmp / "r.json"), "--baseline", base, "--max-growth", "lots"], "--max-growth: "
         "expected a count (e.g. 5) or a percentage (e.g. 10%) >= 0, got 'lots'"),
        ([str(tmp / "r.json"), "--baseline", str(tmp / "no.json")],
         f"baseline {tmp / 'no.json'} does not exist"),
        ([str(tmp / "r.json"), "--baseline", str(_write(tmp / "b2.json", {"tests": {}}))],
         f"baseline {tmp / 'b2.json'} is not a dualcache baseline"),
        ([str(old), "--baseline", base],
         f"{old}: report version 1; this pytest-dualcache reads version {REPORT_VERSION}"),
        ([str(_write(tmp / "torn.json", torn)), "--baseline", base],
         f'{tmp / "torn.json"}: "complete" is false but "incomplete_reasons" is empty'),
        ([str(tmp / "base.json"), "--baseline", base], f"{base}: not a dualcache KV report"),
    ]  # fmt: skip


def test_bad_gate_input_exits_2_in_one_line(gate_files, capsys):
    _write(gate_files / "r.json", _report(BEFORE))
    for argv, message in _gate_refusals(gate_files):
        code, out, err = _cli(capsys, "gate", *argv)
        assert (code, out) == (BAD_INPUT, []), message
        assert len(err) == 1 and err[0].startswith(f"{PROG} gate: error: {message}"), err


# --- html and md ------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "render"), [("html", render_html), ("md", render_markdown)])
def test_renders_are_the_renderers_output_byte_for_byte_every_time(
    tmp_path, capsys, command, render
):
    report = _report({"t.py::test_x": 3, "t.py::<b>test</b>": 1})
    report["incomplete_reasons"], report["complete"] = ["interrupted (KeyboardInterrupt)"], False
    source = _write(tmp_path / "r.json", report)
    outputs = []
    for name in ("first", "second"):
        output = tmp_path / name
        assert _cli(capsys, command, str(source), "-o", str(output)) == (OK, [], [])
        outputs.append(output.read_bytes())
    assert outputs[0] == outputs[1] == render(report).encode("utf-8")
    assert b"KeyboardInterrupt" in outputs[0]  # the incomplete session is shown, not hidden


@pytest.mark.parametrize("command", ["html", "md"])
def test_a_render_of_bad_input_writes_nothing(tmp_path, capsys, command):
    output = _write(tmp_path / "out", "kept\n")
    source = _write(tmp_path / "r.json", {"version": REPORT_VERSION, "complete": True, "tests": {}})
    code, out, err = _cli(capsys, command, str(source), "-o", str(output))
    assert (code, out) == (BAD_INPUT, [])
    assert err == [
        f"{PROG} {command}: error: {source}: not a whole dualcache KV report: "
        "'incomplete_reasons' is missing"
    ]
    assert output.read_text() == "kept\n"
    assert sorted(os.listdir(tmp_path)) == ["out", "r.json"]


def test_a_failed_write_keeps_the_old_file_whole_and_exits_2(tmp_path, capsys, monkeypatch):
    source = _write(tmp_path / "r.json", _report(BEFORE))
    output = _write(tmp_path / "report.html", "last run's page\n")

    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)  # the rename that would publish the page
    code, out, err = _cli(capsys, "html", str(source), "-o", str(output))
    assert (code, out) == (BAD_INPUT, [])
    assert err == [f"{PROG} html: error: cannot write {output}: No space left on device"]
    assert output.read_text() == "last run's page\n"
    assert sorted(os.listdir(tmp_path)) == ["r.json", "report.html"]  # the temporary is gone


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("merge", "Merge shard reports into the report one unsplit run writes (byte-identical)."),
        (
            "gate",
            "Fail (exit 1) on KV writes grown beyond a baseline, or a missed SLO gate.",
        ),
        ("html", "Render a report as one self-contained HTML page."),
        ("md", "Render a report as a Markdown summary."),
    ],
)
def test_each_subcommand_says_what_it_does_in_one_line(capsys, command, says):
    assert main([command, "--help"]) == OK
    paragraphs = capsys.readouterr().out.split("\n\n")
    assert paragraphs[1] == says  # under the usage, before the arguments
    assert main(["--help"]) == OK
    assert " ".join(capsys.readouterr().out.split()).count(f"{command} {says}") == 1


# --- python -m --------------------------------------------------------------------------------


def test_python_m_runs_the_gate_without_importing_pytest(gate_files):
    _write(gate_files / "r.json", _report({"t.py::test_x": 3, "t.py::test_y": 4}))
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pytest_dualcache", "gate", "r.json",
         "--baseline", "base.json", "--max-growth", "0"],
        cwd=gate_files, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == GATE_FAILED
    assert result.stdout.splitlines() == [
        "KV writes grew beyond the baseline (allowed growth: 0):",
        "  test          baseline    now  growth",
        "  t.py::test_x         2      3      +1",
        "  TOTAL                6      7      +1",
    ]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "pytest_dualcache.cli" in imported
    assert not {"pytest", "_pytest"} & imported
