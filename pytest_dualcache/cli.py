"""``python -m pytest_dualcache``: merge, gate and render JSON KV reports without pytest.

A sharded CI run writes one ``--dualcache-report`` per shard; a last job merges them
(``merge``), gates the merged report against the committed baseline (``gate``) and renders
it (``html``, ``md``). Each subcommand runs what the plugin runs (``shards.merge_shards``,
``baseline.compare``, the renderers, ``output_files``' writer), so the CLI and the plugin
cannot disagree about a file or a verdict.

Exit codes: 0 done; 1 the gate failed (KV writes grew, the month got dearer beyond
``--max-cost-growth``, a session SLO gate of the report was missed, or the report is
incomplete and so cannot pass); 2 bad input, said in one line on stderr naming the file,
with no file written.
Importing this module imports no pytest; only a ``--baseline`` without ``--max-growth``
does, to read the plugin's default from ``settings``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .baseline import (
    NOT_COMPARED,
    BaselineError,
    GateResult,
    Growth,
    baseline_of,
    compare,
    load_baseline,
)
from .bill import CostLimit
from .output_files import output_problem, write_json_atomically, write_text_atomically
from .report import REPORT_VERSION, WAIVER_OUTCOMES, SessionReport
from .report_html import render_html
from .report_md import render_markdown
from .shards import ShardError, merge_shards
from .slo import SESSION, ordered
from .slo import render as render_slo
from .workload import CostVerdict, gate_sections, judge_cost

OK, GATE_FAILED, BAD_INPUT = 0, 1, 2
PROG = "python -m pytest_dualcache"
#: The type of each top-level key ``SessionReport.to_json`` writes.
REPORT_FIELDS: dict[str, type] = {
    "complete": bool,
    "incomplete_reasons": list,
    "deselected": int,
    "factories": dict,
    "tests": dict,
    "totals": dict,
    "groups": dict,
    "waivers": list,
    "crashed_workers": list,
    "missing_tests": list,
}
#: Each test's entries (as ``report.summarize`` writes them) that hold counts, by name.
COUNT_FIELDS = ("kv", "kv_errors", "do", "write_sites")


class InputError(Exception):
    """Input a subcommand cannot use; the message names the file and what is wrong."""


# --- reading --------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """The JSON value in ``path``, else an InputError naming the file (no traceback for CI)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None


def report_problem(data: object, *, other_versions: bool = False) -> str | None:
    """Why ``data`` is not a JSON report of this version, or None if it is one.

    Checks what the subcommands read, so a wrong file is a message, not a traceback. With
    ``other_versions``, a report of another version passes unchecked: ``merge_shards``
    refuses it naming the shards' versions.
    """
    if not isinstance(data, dict) or not {"version", "complete", "tests"} <= data.keys():
        return (  # "complete" tells a report (of any version) from a baseline
            'not a dualcache KV report (expected an object with "version", "complete" and '
            '"tests", as --dualcache-report writes)'
        )
    if data["version"] != REPORT_VERSION:
        if other_versions:
            return None
        return (
            f"report version {data['version']!r}; this pytest-dualcache reads version "
            f"{REPORT_VERSION}: write the report again with it"
        )
    for key, kind in REPORT_FIELDS.items():
        if key not in data:
            return f"not a whole dualcache KV report: {key!r} is missing"
        if not isinstance(data[key], kind) or (kind is int and isinstance(data[key], bool)):
            return f"{key!r} is not a JSON {_json_type(kind)}"
    reasons = data["incomplete_reasons"]
    if data["complete"] == bool(reasons):  # never let a torn file pass as complete
        return (
            f'"complete" is true but "incomplete_reasons" lists {json.dumps(reasons)}'
            if reasons
            else '"complete" is false but "incomplete_reasons" is empty'
        )
    factories = data["factories"]
    if not isinstance(factories.get("names"), list) or not isinstance(
        factories.get("registered"), bool
    ):
        return '"factories" needs "names" (a list) and "registered" (true or false)'
    for index, waiver in enumerate(data["waivers"]):
        if not isinstance(waiver, dict) or not all(
            isinstance(waiver.get(outcome), list) for outcome in WAIVER_OUTCOMES
        ):
            return f"waivers[{index}] needs the lists {', '.join(map(repr, WAIVER_OUTCOMES))}"
    for nodeid, test in data["tests"].items():
        problem = _test_problem(test)
        if problem is not None:
            return f"tests[{json.dumps(nodeid)}]: {problem}"
    return None


def _test_problem(test: object) -> str | None:
    """Why one test's entry is not what ``report.summarize`` writes, or None."""
    if not isinstance(test, dict):
        return "expected an object"
    for field in COUNT_FIELDS:
        counts = test.get(field)
        if not isinstance(counts, dict) or not all(_is_count(n) for n in counts.values()):
            return f"{field!r} is not an object of integers >= 0"
    if "writes" not in test["kv"]:
        return "'kv' has no 'writes'"
    if not isinstance(test.get("bypasses"), dict) or not isinstance(test.get("over_budget"), list):
        return "'bypasses' must be an object and 'over_budget' a list"
    return None


def _is_count(value: object) -> bool:
    """An integer >= 0, and not a bool (JSON's true is no count)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _json_type(kind: type) -> str:
    """JSON's name for the Python type ``kind``."""
    return {bool: "boolean", int: "integer", dict: "object", list: "array"}[kind]


def read_report(path: Path) -> dict[str, Any]:
    """The JSON report in ``path``, checked; else an InputError naming the file."""
    data = read_json(path)
    problem = report_problem(data)
    if problem is not None:
        raise InputError(f"{path}: {problem}")
    return data


def max_growth(text: str | None) -> Growth:
    """``--max-growth`` read as the plugin reads ``--dualcache-max-growth``: the same parser,
    default and messages, so a value means the same in both."""
    source = "--max-growth"
    if text is None:
        from .settings import SETTINGS  # imports pytest; the default is written there once

        text, source = SETTINGS["max_growth"].default, "the default"
    try:
        return Growth.parse(text)
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from None


def max_cost_growth(text: str | None) -> CostLimit | None:
    """``--max-cost-growth`` read as the plugin reads ``--dualcache-max-cost-growth`` (None:
    no cost gate, as in the plugin)."""
    try:
        return None if text is None else CostLimit.parse(text, "--max-cost-growth")
    except ValueError as exc:
        raise InputError(str(exc)) from None


def check_output(path: Path) -> None:
    """Refuse an output path that cannot be written before any work is done."""
    problem = output_problem(path)
    if problem is not None:
        raise InputError(problem)


def write_output(path: Path, write: Callable[[], None]) -> None:
    """Run ``write`` (an atomic writer to ``path``); an OSError becomes an InputError."""
    try:
        write()
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


# --- the subcommands ------------------------------------------------------------------------


def run_merge(args: argparse.Namespace) -> int:
    """Merge shard reports into the report one unsplit run writes, byte for byte."""
    check_output(args.output)
    reports: dict[str, Mapping[str, Any]] = {}
    for path in args.shards:
        if str(path) in reports:
            raise InputError(f"{path}: given twice")
        data = read_json(path)
        problem = report_problem(data, other_versions=True)
        if problem is not None:
            raise InputError(f"{path}: {problem}")
        reports[str(path)] = data
    merged = merge_shards(reports)
    write_output(args.output, lambda: write_json_atomically(args.output, merged))
    return OK


def run_gate(args: argparse.Namespace) -> int:
    """Gate a report as the plugin gates its session: KV writes against a baseline (as
    ``--dualcache-baseline`` does; skipped without ``--baseline``) and the report's session
    SLO gates (ini ``dualcache_slo``, judged again by ``merge`` over every shard). The same
    lines, exit 1 where the plugin fails the session."""
    growth = max_growth(args.max_growth)
    cost_limit = max_cost_growth(args.max_cost_growth)
    data = read_report(args.report)
    baseline = None if args.baseline is None else load_baseline(args.baseline)
    report = SessionReport(tests=data["tests"], stopped=list(data["incomplete_reasons"]))
    incomplete = report.incomplete_line()
    if incomplete is not None:  # partial figures: the plugin does not compare them either
        print(incomplete)
        print(NOT_COMPARED)
        return GATE_FAILED
    failed = False
    if baseline is not None:
        result, cost = judge(baseline, report, growth, cost_limit)
        for line in [*result.render(growth), *(cost.render() if cost else [])]:
            print(line)
        failed = result.failed or (cost is not None and cost.failed)
    session_gates = [result for result in data.get("slo") or [] if result["scope"] == SESSION]
    for line in render_slo(ordered(session_gates)):
        print(line)
    return GATE_FAILED if failed or not all(r["passed"] for r in session_gates) else OK


def judge(
    baseline: Mapping[str, Any],
    report: SessionReport,
    growth: Growth,
    cost_limit: CostLimit | None,
) -> tuple[GateResult, CostVerdict | None]:
    """The plugin's comparison with a baseline: KV writes, and the bill under a cost limit."""
    result = compare(baseline, baseline_of(report), growth)
    cost = None if cost_limit is None else judge_cost(baseline, report.tests, cost_limit)
    return result, cost


def run_render(args: argparse.Namespace) -> int:
    """Render a report with ``args.render`` (HTML or Markdown) into ``args.output``; with
    ``--baseline``, with the comparison the plugin's own pages show under
    ``--dualcache-baseline`` (an incomplete report is not compared, as there)."""
    check_output(args.output)
    data = read_report(args.report)
    if args.baseline is not None:
        growth = max_growth(args.max_growth)
        cost_limit = max_cost_growth(args.max_cost_growth)
        baseline = load_baseline(args.baseline)
        report = SessionReport(tests=data["tests"], stopped=list(data["incomplete_reasons"]))
        if report.complete:
            result, cost = judge(baseline, report, growth, cost_limit)
            data = {**data, **gate_sections(result, growth, cost)}
    text = args.render(data)
    write_output(args.output, lambda: write_text_atomically(args.output, text))
    return OK


# --- the command line -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand, each with a one-line description for ``--help``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Merge, gate and render pytest-dualcache JSON KV reports without pytest.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        """A subcommand whose help line and description are ``summary``."""
        return commands.add_parser(name, help=summary, description=summary)

    merge = command(
        "merge", "Merge shard reports into the report one unsplit run writes (byte-identical)."
    )
    merge.add_argument("shards", nargs="+", type=Path, metavar="SHARD", help="shard JSON reports")
    _output_argument(merge, "the merged JSON report")
    merge.set_defaults(run=run_merge)

    gate = command(
        "gate",
        "Fail (exit 1) on KV writes grown beyond a baseline, or a missed SLO gate.",
    )
    gate.add_argument("report", type=Path, metavar="REPORT", help="a JSON report")
    _baseline_arguments(gate, "without it only the report's SLO gates are judged")
    gate.set_defaults(run=run_gate)

    for name, what, render in (
        ("html", "one self-contained HTML page", render_html),
        ("md", "a Markdown summary", render_markdown),
    ):
        renderer = command(name, f"Render a report as {what}.")
        renderer.add_argument("report", type=Path, metavar="REPORT", help="a JSON report")
        _output_argument(renderer, what)
        _baseline_arguments(renderer, "with it the page shows the comparison, as the plugin's")
        renderer.set_defaults(run=run_render, render=render)
    return parser


def _baseline_arguments(parser: argparse.ArgumentParser, without: str) -> None:
    """``--baseline`` and the growth each gate allows, as the plugin's options take them."""
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="PATH",
        help=f"a baseline saved with --dualcache-save-baseline ({without})",
    )
    parser.add_argument(
        "--max-growth",
        metavar="N|P%",
        help="KV writes a test (or the total) may grow by over the baseline: a count or a "
        "percentage (default: the plugin's --dualcache-max-growth default)",
    )
    parser.add_argument(
        "--max-cost-growth",
        metavar="AMOUNT|P%",
        help="the cost gate: how much dearer than the baseline's the projected month of the "
        "declared workloads may get, in dollars (4.10) or as a percentage (10%%)",
    )


def _output_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """The required ``-o PATH`` of a subcommand that writes ``what``."""
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="PATH",
        help=f"where to write {what} (replaced atomically, untouched on failure)",
    )


def main(argv: list[str] | None = None) -> int:
    """Run the subcommand ``argv`` names and return its exit code (never raise for input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad command line (2, argparse said why)
        return exc.code if isinstance(exc.code, int) else BAD_INPUT
    try:
        return args.run(args)
    except (InputError, ShardError, BaselineError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return BAD_INPUT
