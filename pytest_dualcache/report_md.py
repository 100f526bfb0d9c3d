"""The JSON report as GitHub-flavoured Markdown, for ``GITHUB_STEP_SUMMARY`` and PR comments.

Gates first (what a reviewer must act on), then the baseline diff, the bill, the simulated
response times and the top KV-writing call sites. The optional sections it reads are
documented in ``report_data``; a section the report lacks gets one line saying so, except
``latency``, left out with the model off (the default) so such a report reads as before.
Text from the report is escaped so a node id or call site cannot break a table or inject
markup.
"""

from __future__ import annotations

import re
from typing import Any

from .bill import dollars
from .report_data import over_budget, rejected_bypasses, top_sites

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~&])")


def md_text(text: object) -> str:
    """``text`` with Markdown's special characters backslash-escaped, on one line."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table of already-escaped cells; numbers right-aligned by the caller's
    choice of ``---:`` (a head cell ending in ``:`` marks a numeric column)."""
    names = [cell.rstrip(":") for cell in head]
    align = ["---:" if cell.endswith(":") else "---" for cell in head]
    lines = ["| " + " | ".join(names) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_markdown(report: dict[str, Any], title: str = "dualcache report") -> str:
    """The summary for ``report`` (a JSON report as a dict); deterministic."""
    lines = [f"## {md_text(title)}", ""]
    lines += _gates(report)
    lines += _baseline(report)
    lines += _bill(report)
    lines += _latency(report)
    lines += _sites(report)
    return "\n".join(lines).rstrip("\n") + "\n"


def _gates(report: dict[str, Any]) -> list[str]:
    lines = ["### Gates", ""]
    if not report.get("complete", True):
        reasons = "; ".join(report.get("incomplete_reasons", []))
        lines.append(f"- :warning: **session incomplete** ({md_text(reasons)}): partial figures")
    cost = report.get("cost_growth")
    if cost:
        mark = ":x:" if cost["exceeded"] else ":white_check_mark:"
        lines.append(f"- {mark} cost (limit {md_text(cost['limit'])}): {md_text(cost['sentence'])}")
    gate = report.get("gate")
    if gate:
        mark = ":x:" if gate["grew"] else ":white_check_mark:"
        verdict = "grew beyond" if gate["grew"] else "within"
        lines.append(
            f"- {mark} KV writes {verdict} the baseline (allowed growth: "
            f"{md_text(gate['allowed'])})"
        )
    for slo in report.get("slo", []):
        mark = ":white_check_mark:" if slo["passed"] else ":x:"
        lines.append(
            f"- {mark} SLO {md_text(slo['metric'])} {md_text(slo['comparison'])} "
            f"{md_text(slo['limit'])} ({md_text(slo['scope'])}): measured "
            f"{md_text(slo['measured'])}"
        )
    over = over_budget(report)
    mark = ":x:" if over else ":white_check_mark:"
    lines.append(f"- {mark} tests over budget: {len(over)}")
    lines += [f"  - {md_text(nodeid)}: {md_text('; '.join(found))}" for nodeid, found in over]
    rejected = rejected_bypasses(report)
    mark = ":x:" if rejected else ":white_check_mark:"
    lines.append(
        f"- {mark} rejected KV writes bypassing the cache layer: {sum(n for _, n in rejected)}"
    )
    lines += [f"  - {n} x {md_text(site)}" for site, n in rejected]
    return [*lines, ""]


def _baseline(report: dict[str, Any]) -> list[str]:
    gate = report.get("gate")
    if not gate:
        return ["### Baseline diff", "", "No baseline was compared.", ""]
    lines = ["### Baseline diff", ""]
    if gate["grew"]:
        rows = [
            [
                md_text(row["name"]),
                f"{row['before']:,}",
                f"{row['after']:,}",
                f"{row['after'] - row['before']:+,}",
                "<br>".join(md_text(site) for site in row["new_sites"]),
            ]
            for row in gate["grew"]
        ]
        lines += _table(["test", "baseline:", "now:", "growth:", "new call sites"], rows)
    else:
        lines.append("No test wrote more KV than the baseline allows.")
    if gate.get("new_tests"):
        lines += ["", f"Tests not in the baseline (not gated): {len(gate['new_tests'])}"]
    lines += [f"- note: {md_text(note)}" for note in gate.get("notes", [])]
    return [*lines, ""]


def _bill(report: dict[str, Any]) -> list[str]:
    bill = report.get("bill")
    if not bill:
        return ["### Projected bill", "", "No test declared a workload: no bill.", ""]
    rows = []
    for name, data in bill["workloads"].items():
        crossed = ", ".join(
            f"{md_text(meter)} {found['per_day']:,}/day > {found['limit']:,}"
            for meter, found in data["free_plan_crossed"].items()
        )
        rows.append(
            [md_text(name), f"{data['scale']:,}", dollars(data["gross_cents"]), crossed or "none"]
        )
    total = bill["total"]
    lines = [
        f"### Projected bill ({bill['days']}-day month, Workers Paid, prices of "
        f"{md_text(bill['prices_read_on'])})",
        "",
    ]
    lines += _table(["workload", "scale:", "gross/month:", "free plan limits crossed"], rows)
    lines += [
        "",
        f"Gross {dollars(total['gross_cents'])}; beyond the allowances "
        f"{dollars(total['usage_cents'])}; with the {dollars(total['subscription_cents'])} "
        f"subscription **{dollars(total['total_cents'])}/month**.",
        "",
    ]
    lines += [f"- note: {md_text(note)}" for note in bill.get("notes", [])]
    return [*lines, ""] if bill.get("notes") else lines


def _latency(report: dict[str, Any]) -> list[str]:
    """p50/p95/p99 per request name; nothing when the model was off (the default), so a
    report without it reads as before."""
    latency = report.get("latency")
    if not latency:
        return []
    model = latency["model"]
    lines = [
        f"### Simulated response times (latency model {md_text(model['source'])}, seed "
        f"{md_text(model['seed'])})",
        "",
    ]
    if not latency["requests"]:
        return [*lines, "No requests were timed (with dualcache\\_env.request(name): ...).", ""]
    rows = [
        [md_text(name), f"{data['count']:,}"]
        + [f"{data[key]:g}" for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
        for name, data in latency["requests"].items()
    ]
    head = ["request", "count:", "p50 ms:", "p95 ms:", "p99 ms:", "max ms:"]
    return [*lines, *_table(head, rows), ""]


def _sites(report: dict[str, Any]) -> list[str]:
    sites = top_sites(report)
    if not sites:
        return ["### Top KV-writing call sites (your tests)", "", "No KV writes.", ""]
    rows = [[f"{row['writes']:,}", md_text(row["site"])] for row in sites]
    return [
        "### Top KV-writing call sites (your tests)",
        "",
        *_table(["writes:", "call site"], rows),
        "",
    ]
