"""--dualcache-html, --dualcache-md, $GITHUB_STEP_SUMMARY and --dualcache-shard: what a
session writes besides its JSON report, the same bytes for the same tests."""

from __future__ import annotations

import json
import textwrap

import hypothesis.internal.observability  # noqa: F401
import pytest
import pytest_dualcache.contracts.test_registered

import pytest_dualcache.session  # noqa: F401
from pytest_dualcache.report_html import render_html
from pytest_dualcache.report_md import md_text, render_markdown

QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:benchmark")
MYDAL = """
    def save(kv, key):
        kv.put(key, "v")
"""
TESTS = """
    import mydal

    def test_saves(kv_namespace):
        mydal.save(kv_namespace, "a")
        mydal.save(kv_namespace, "b")

    def test_reads(kv_namespace, do_cache):
        kv_namespace.get("a")
        do_cache.set("k", 1, ttl=60)
        do_cache.get("k")
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makepyfile(mydal=textwrap.dedent(MYDAL), test_app=textwrap.dedent(TESTS))
    pytester.makeini("[pytest]\ndualcache_dal_modules = mydal\n")
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--dualcache", "test_app.py", *QUIET, *args)


def test_the_pages_are_the_renderers_output_of_the_json_report(project):
    result = run(
        project, "--dualcache-report=r.json", "--dualcache-html=out/r.html", "--dualcache-md=r.md"
    )
    assert result.ret == pytest.ExitCode.OK
    report = json.loads((project.path / "r.json").read_text())
    assert set(report["tests"]) == {"test_app.py::test_saves", "test_app.py::test_reads"}
    html = (project.path / "out" / "r.html").read_text()
    assert html == render_html(report)
    assert html.startswith("<!DOCTYPE html>") and "mydal.py" in html  # the top write site
    markdown = (project.path / "r.md").read_text()
    assert markdown == render_markdown(report)
    assert "mydal.py" in markdown  # the top KV-writing call site


def test_the_same_tests_write_the_same_bytes(project):
    pages = []
    for _ in range(2):
        assert run(project, "--dualcache-html=r.html", "--dualcache-md=r.md").ret == 0
        pages.append(((project.path / "r.html").read_bytes(), (project.path / "r.md").read_bytes()))
    assert pages[0] == pages[1]


def test_the_markdown_shows_the_baseline_gate_it_ran(project):
    assert run(project, "--dualcache-save-baseline=base.json").ret == 0
    project.makepyfile(
        test_app=textwrap.dedent(
            TESTS.replace('"b")', '"b")\n        mydal.save(kv_namespace, "c")')
        )
    )
    result = run(project, "--dualcache-baseline=base.json", "--dualcache-md=r.md")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    markdown = (project.path / "r.md").read_text()
    assert "### Baseline diff" in markdown
    assert f"| {md_text('test_app.py::test_saves')} | 2 | 3 | +1 |" in markdown
    assert "KV gate failed" in result.outlines[-1]


def test_github_step_summary_gets_the_markdown_appended(project, monkeypatch):
    page = project.path / "step-summary.md"
    page.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(page))
    assert run(project, "--dualcache-md=r.md").ret == 0
    summary = (project.path / "r.md").read_text()
    assert page.read_text() == "earlier step\n" + summary


def test_a_step_summary_it_cannot_write_fails_the_session_and_says_so(project, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project.path / "missing" / "summary.md"))
    result = run(project)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["GitHub step summary NOT written to *summary.md: *"])


def test_the_shard_marks_the_json_report(project):
    assert run(project, "--dualcache-report=r.json", "--dualcache-shard=2/3").ret == 0
    assert json.loads((project.path / "r.json").read_text())["shard"] == "2/3"


@pytest.mark.parametrize("shard", ["0/2", "3/2", "1", "a/b"])
def test_a_bad_shard_is_a_usage_error(project, shard):
    result = run(project, f"--dualcache-shard={shard}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(['*--dualcache-shard: "shard" must be "I/N" with 1 <= I <= N*'])


@pytest.mark.parametrize(
    "option", ["--dualcache-html=r.html", "--dualcache-md=r.md", "--dualcache-shard=1/2"]
)
def test_the_page_options_need_dualcache(project, option):
    result = project.runpytest("test_app.py", *QUIET, option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option.split('=')[0]}* only work together with --dualcache"])
