"""report_html.py and report_md.py: every chart drawn, everything escaped, same bytes twice."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from pytest_dualcache.bill import CostLimit, DailyUsage, Workload, cost_growth, project
from pytest_dualcache.latency import SEED_TABLE, LatencyModel, RequestRecorder
from pytest_dualcache.report import SessionReport
from pytest_dualcache.report_data import clause_matrix, daily
from pytest_dualcache.report_html import render_html
from pytest_dualcache.report_md import md_text, render_markdown

EVIL = "tests/test_x.py::test_<script>alert(1)</script>|&amp;"
EVIL_SITE = "app/<b>dal</b>.py:3:put|x"
LEGACY_TEST = "pytest_dualcache/contracts/test_registered.py::T::test_FB_2_zero_kv[legacy]"
MIGRATED_TEST = "pytest_dualcache/contracts/test_registered.py::T::test_FB_2_zero_kv[migrated]"
STATE_TEST = "pytest_dualcache/contracts/test_registered.py::T::test_STATE_model[migrated]"


def _test(group: str, writes: int, site: str, **extra: Any) -> dict[str, Any]:
    return {
        "group": group,
        "kv": {"reads": 2, "writes": writes, "deletes": 0, "lists": 0},
        "kv_errors": {"rate_limited": 0, "quota": 0, "other": 0},
        "do": {"deletes": 0, "errors": 0, "gets": 4, "hits": 3, "lists": 0, "misses": 1, "sets": 6},
        "write_sites": {site: writes} if writes else {},
        "bypasses": {"allowed": [], "rejected": [], "refused_by_kv": []},
        "over_budget": [],
        **extra,
    }


def _report() -> dict[str, Any]:
    """A report with every optional section, built by the modules that will write them."""
    session = SessionReport(factories=["migrated", "legacy"])
    evil = _test("application", 9, EVIL_SITE, over_budget=["expected at most 3 KV writes, 9"])
    evil["bypasses"]["rejected"].append({"op": "put", "key": "k<", "caller": EVIL_SITE})
    session.add(EVIL, evil)
    session.add(
        LEGACY_TEST,
        _test("contract", 2, "legacy/dal.py:1:_write", outcome="failed", transcript="put <k>"),
    )
    session.add(MIGRATED_TEST, _test("contract", 0, "", outcome="passed"))
    session.add(STATE_TEST, _test("contract", 0, "", outcome="xfailed"))
    report = session.to_json()
    legacy = Workload("legacy", DailyUsage(kv_writes=700), scale=100)
    migrated = Workload("mi<grated", DailyUsage(kv_writes=20, do_requests=1000), scale=100)
    before, after = project([migrated]).to_json(), project([legacy, migrated]).to_json()
    recorder = RequestRecorder()
    model = LatencyModel(SEED_TABLE, seed=1)
    for _ in range(20):
        with recorder.request("GET /quote?<x>"):
            recorder.record(model.latency_us("kv", "get"))
    hours = [
        {"kv_writes": hour % 5, "do_sets": 10, "do_gets": 8 if hour % 7 else 0, "do_hits": 6}
        for hour in range(30)
    ]
    report |= {
        "bill": after,
        "cost_growth": cost_growth(
            before, after, CostLimit(cents=100), {}, {EVIL_SITE: 9}
        ).to_json(),
        "gate": {
            "allowed": "0",
            "grew": [{"name": EVIL, "before": 3, "after": 9, "new_sites": [EVIL_SITE]}],
            "new_tests": [],
            "notes": [],
        },
        "latency": {"model": model.to_json(), "requests": recorder.summary()},
        "slo": [
            {
                "scope": "session",
                "metric": "do_hit_rate",
                "comparison": ">=",
                "limit": 0.7,
                "measured": 0.75,
                "passed": True,
            }
        ],
        "timeline": {"mi<grated": {"budget_per_day": 50, "hours": hours}},
    }
    return report


class Page(HTMLParser):
    """What the tests look at in a page: tags, charts, links, sources, text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.charts: list[str] = []
        self.hrefs: list[str] = []
        self.sources: list[str] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if "data-chart" in found:
            self.charts.append(str(found["data-chart"]))
        if "href" in found:
            self.hrefs.append(str(found["href"]))
        if "src" in found:
            self.sources.append(str(found["src"]))
        if "id" in found:
            self.ids.add(str(found["id"]))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_every_chart_is_drawn() -> None:
    page = Page(render_html(_report()))
    assert page.charts == [
        "kv-writes-hour:mi<grated",
        "kv-writes-day:mi<grated",
        "route-share:mi<grated",
        "do-hit-rate:mi<grated",
        "route-share",
        "do-hit-rate",
        "bill",
        "top-sites",
    ]
    assert page.tags.count("svg") == len(page.charts)


def test_the_page_needs_no_network_and_runs_no_script() -> None:
    html = render_html(_report())
    page = Page(html)
    assert "script" not in page.tags and not page.sources
    assert all(href.startswith("#") for href in page.hrefs)
    assert all(href[1:] in page.ids for href in page.hrefs)  # failures link to transcripts
    assert '<meta name="viewport"' in html


def test_user_derived_text_is_escaped() -> None:
    html = render_html(_report())
    assert "<script>" not in html and "<b>dal</b>" not in html and "mi<grated" not in html
    text = "".join(Page(html).text)
    assert "test_<script>alert(1)</script>|&amp;" in text  # shown as written
    assert "app/<b>dal</b>.py:3:put|x" in text
    assert "put <k>" in text  # the transcript


def test_the_html_is_deterministic() -> None:
    first, second = render_html(_report()), render_html(copy.deepcopy(_report()))
    assert first == second
    assert not re.search(r"\d{4}-\d{2}-\d{2}T|\d{2}:\d{2}:\d{2}", first)


def test_the_pages_figures() -> None:
    report = _report()
    text = " ".join(Page(render_html(report)).text)
    assert "$10.50" in text  # legacy: 2,100,000 KV writes x $5.00/M
    assert "kv_writes 70,000/day > 1,000" in text
    assert "2,160,000 1,000,000 $5.80" in text  # both workloads' writes, net of the 1M
    assert report["cost_growth"]["sentence"] in text
    assert "GET /quote?<x>" in text
    assert "expected at most 3 KV writes, 9" in text


def test_a_report_without_the_optional_sections_still_renders() -> None:
    session = SessionReport(factories=["migrated"])
    session.add("tests/t.py::test_a", _test("application", 1, "a.py:1:put"))
    html = render_html(session.to_json())
    page = Page(html)
    assert page.charts == ["route-share", "do-hit-rate", "top-sites"]
    assert "no per-hour figures" in html and "no bill" in html
    assert "The contract suite did not run." in html


def test_the_clause_matrix() -> None:
    report = _report()
    clauses, factories, cells = clause_matrix(report)
    assert clauses == ["FB-2", "STATE"] and factories == ["migrated", "legacy"]
    assert cells["FB-2", "legacy"]["worst"] == "failed"
    assert cells["FB-2", "legacy"]["failed"] == [LEGACY_TEST]
    assert cells["STATE", "migrated"]["worst"] == "xfailed"
    html = render_html(report)
    assert html.count(">transcript</a>") == 1


def test_clause_and_factory_from_node_ids_and_outcomes_from_waivers() -> None:
    report = _report()
    for nodeid in (LEGACY_TEST, MIGRATED_TEST):
        report["tests"][nodeid].pop("outcome")
    report["waivers"] = [
        {
            "factory": "legacy",
            "clause": "FB-2",
            "xfailed": [LEGACY_TEST],
            "passed": [],
            "failed": [],
        }
    ]
    _, _, cells = clause_matrix(report)
    assert cells["FB-2", "legacy"]["worst"] == "xfailed" and cells["FB-2", "legacy"]["waived"]
    assert cells["FB-2", "migrated"]["worst"] == "ran"


def test_days_sum_hours() -> None:
    hours = [{"kv_writes": 1}] * 30
    assert daily(hours, "kv_writes") == [24, 6]


def test_the_markdown_summary() -> None:
    report = _report()
    markdown = render_markdown(report)
    assert markdown == render_markdown(copy.deepcopy(report))
    assert markdown.splitlines()[0] == "## dualcache report"
    for heading in ("### Gates", "### Baseline diff", "### Projected bill"):
        assert heading in markdown
    assert md_text(report["cost_growth"]["sentence"]) in markdown
    assert ":x: cost (limit $1.00)" in markdown
    assert ":x: KV writes grew beyond the baseline" in markdown
    slo = ":white_check_mark: SLO do\\_hit\\_rate \\>= 0.7 (session): measured 0.75"
    assert f"- {slo}" in markdown
    assert "| legacy | 100 | $10.50 | kv\\_writes 70,000/day > 1,000 |" in markdown
    assert "**$" in markdown and "/month**" in markdown
    site_row = f"| 9 | {md_text(EVIL_SITE)} |"
    assert site_row in markdown


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a|b", "a\\|b"),
        ("<script>", "\\<script\\>"),
        ("x_y*z", "x\\_y\\*z"),
        ("two\nlines", "two lines"),
    ],
)
def test_markdown_escaping(text: str, escaped: str) -> None:
    assert md_text(text) == escaped


def test_a_markdown_summary_without_optional_sections() -> None:
    session = SessionReport()
    markdown = render_markdown(session.to_json())
    assert "No baseline was compared." in markdown
    assert "No test declared a workload: no bill." in markdown
    assert "No KV writes." in markdown
