"""The JSON report as one self-contained HTML page, readable on a phone.

Charts are inline SVG written here, with no JavaScript and no charting library: the page
must open with no network (no CDN), be byte-identical for the same report (a library's
generated ids and embedded versions would not be), stay readable where scripts are blocked
(CI artifact viewers, mail), and add no dependency to a test plugin. The charts needed are
bars and lines against a few limit lines, which take a hundred lines of SVG, not a library.

Every string from the report (node ids, call sites, keys, workload names) is escaped. The
optional sections it reads (``bill``, ``timeline``, ``latency``, ``slo``, ``gate``,
``cost_growth``, per-test ``outcome``/``transcript``) are documented in ``report_data``.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from .bill import dollars
from .limits import KV_DAILY_QUOTAS
from .report_data import (
    clause_matrix,
    daily,
    over_budget,
    ratio,
    rejected_bypasses,
    top_sites,
)

WIDTH, HEIGHT, PAD = 640, 220, 36
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fff}
main{max-width:60rem;margin:auto;padding:0 .8rem 2rem}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccd}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.9rem}
td,th{border:1px solid #ccd;padding:.2rem .45rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
svg{width:100%;height:auto;max-width:40rem;display:block}
.bar{fill:#3b6fb6}.bar.kv{fill:#c0504d}.limit{stroke:#c0504d;stroke-dasharray:4 3}
.budget{stroke:#d08a00;stroke-dasharray:6 3}.line{fill:none;stroke:#3b6fb6;stroke-width:2}
.dot{fill:#3b6fb6}figure{margin:.8rem 0}figcaption{font-size:.85rem;color:#445}
.axis{stroke:#889}text{font-size:11px;fill:#333}
.passed{background:#e3f4e3}.failed{background:#f9d7d5}.xfailed{background:#eee}
.xpassed{background:#fff3c4}.waived{outline:2px dashed #889}
code{font-size:.85rem;word-break:break-all}
"""


def render_html(report: dict[str, Any], title: str = "dualcache report") -> str:
    """The whole page for ``report`` (a JSON report as a dict); deterministic."""
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>",
        f"<h1>{escape(title)}</h1>",
        _summary(report),
        _timelines(report),
        _routes(report),
        _bill(report),
        _sites(report),
        _bypasses(report),
        _budgets(report),
        _matrix(report),
        _latency(report),
        "</main></body></html>\n",
    ]
    return "\n".join(part for part in parts if part)


# --- charts -----------------------------------------------------------------------------------


def _svg(chart: str, title: str, body: list[str], height: int = HEIGHT) -> str:
    """An accessible SVG chart named ``chart`` (``data-chart``, for tests and readers), its
    title shown as a caption too: two charts of one section can look alike."""
    return (
        f"<figure><figcaption>{escape(title)}</figcaption>"
        f'<svg data-chart="{escape(chart)}" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg></figure>"
    )


def _y(value: float, top: float) -> float:
    """The y coordinate of ``value`` on a plot whose top is ``top``."""
    return round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value / top if top else 0), 2)


def column_chart(
    chart: str, title: str, values: list[int], lines: list[tuple[str, float, str]]
) -> str:
    """Columns over time (hours, days) with horizontal limit ``lines`` (label, value, class)."""
    top = max([*values, *(value for _, value, _ in lines), 1])
    step = (WIDTH - 2 * PAD) / max(len(values), 1)
    body = [
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" '
        f'y2="{HEIGHT - PAD}"/>',
        f'<text x="2" y="{PAD - 4}">{_number(top)}</text>',
    ]
    for index, value in enumerate(values):
        y = _y(value, top)
        body.append(
            f'<rect class="bar kv" x="{round(PAD + index * step, 2)}" y="{y}" '
            f'width="{round(max(step - 1, 0.5), 2)}" height="{round(HEIGHT - PAD - y, 2)}">'
            f"<title>{index}: {value:,}</title></rect>"
        )
    for label, value, css in lines:
        y = _y(value, top)
        body.append(f'<line class="{css}" x1="{PAD}" y1="{y}" x2="{WIDTH - PAD}" y2="{y}"/>')
        body.append(
            f'<text x="{WIDTH - PAD}" y="{y - 3}" text-anchor="end">'
            f"{escape(label)} {_number(value)}</text>"
        )
    return _svg(chart, title, body)


def line_chart(chart: str, title: str, values: list[float | None]) -> str:
    """Fractions (0..1) over time as a line; an hour without data breaks it."""
    step = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)
    body = [
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" '
        f'y2="{HEIGHT - PAD}"/>',
        f'<text x="2" y="{PAD - 4}">100%</text>',
    ]
    run: list[tuple[float, float]] = []
    for index, value in enumerate([*values, None]):
        if value is not None:
            run.append((round(PAD + index * step, 2), _y(value, 1)))
        elif len(run) == 1:  # an hour with no data either side: a line of one point draws nothing
            body.append(f'<circle class="dot" cx="{run[0][0]}" cy="{run[0][1]}" r="2.5"/>')
            run = []
        elif run:
            points = " ".join(f"{x},{y}" for x, y in run)
            body.append(f'<polyline class="line" points="{points}"/>')
            run = []
    return _svg(chart, title, body)


def bar_chart(chart: str, title: str, rows: list[tuple[str, float, str]]) -> str:
    """Horizontal bars, one per (label, value, shown value), scaled to the largest."""
    top = max([value for _, value, _ in rows] + [1e-9])
    row_height = 26
    height = row_height * len(rows) + 8
    body = []
    for index, (label, value, shown) in enumerate(rows):
        y = 4 + index * row_height
        width = round((WIDTH * 0.45) * value / top, 2)
        body.append(f'<text x="0" y="{y + 15}">{escape(_short(label))}</text>')
        body.append(
            f'<rect class="bar" x="{WIDTH * 0.45}" y="{y + 3}" width="{width}" '
            f'height="{row_height - 8}"><title>{escape(label)}</title></rect>'
        )
        body.append(
            f'<text x="{round(WIDTH * 0.45 + width + 4, 2)}" y="{y + 15}">{escape(shown)}</text>'
        )
    return _svg(chart, title, body, height)


def _number(value: float) -> str:
    """``1,000`` for a whole number, ``41.7`` otherwise, and ``0.0042`` below 1 (GB-months)."""
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}" if abs(value) >= 1 else f"{value:.2g}"


def _short(label: str, most: int = 48) -> str:
    """A label cut to ``most`` characters from the left (a call site's end says most)."""
    return label if len(label) <= most else "…" + label[-(most - 1) :]


# --- sections ---------------------------------------------------------------------------------


def _section(title: str, *body: str) -> str:
    anchor = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>' + "".join(body) + "</section>"


def _table(head: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    """A table of already-escaped cells (columns in ``numeric`` right-aligned)."""
    numeric = numeric or set()
    header = "".join(f"<th>{cell}</th>" for cell in head)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell}</td>' if index in numeric else f"<td>{cell}</td>"
            for index, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><tr>{header}</tr>{body}</table></div>'


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction * 100:.1f}%"


def _summary(report: dict[str, Any]) -> str:
    totals = report.get("totals", {})
    kv, do = totals.get("kv", {}), totals.get("do", {})
    rows = [
        ["tests", f"{totals.get('tests', 0):,}"],
        [
            "KV reads / writes / deletes / lists",
            " / ".join(f"{kv.get(k, 0):,}" for k in ("reads", "writes", "deletes", "lists")),
        ],
        ["DO gets / sets", f"{do.get('gets', 0):,} / {do.get('sets', 0):,}"],
        ["DO hit rate", _percent(totals.get("do_hit_rate"))],
        ["writes on the DO", _percent(totals.get("route_share", {}).get("do"))],
    ]
    if not report.get("complete", True):
        reasons = "; ".join(report.get("incomplete_reasons", []))
        rows.append(["SESSION INCOMPLETE", escape(reasons)])
    cost = report.get("cost_growth")
    if cost:
        rows.append(
            ["cost gate", ("FAILED: " if cost["exceeded"] else "") + escape(cost["sentence"])]
        )
    for gate in report.get("slo", []):
        verdict = "met" if gate["passed"] else "MISSED"
        rows.append(
            [
                f"SLO {escape(str(gate['metric']))} ({escape(str(gate['scope']))})",
                f"{verdict}: {escape(str(gate['measured']))} {escape(str(gate['comparison']))} "
                f"{escape(str(gate['limit']))}",
            ]
        )
    return _section("Summary", _table(["figure", "value"], rows))


def _timelines(report: dict[str, Any]) -> str:
    timeline = report.get("timeline")
    if not timeline:
        return _section(
            "KV writes over simulated time",
            "<p>This report has no per-hour figures (no <code>timeline</code> section): the "
            "session did not record operations by simulated hour.</p>",
        )
    quotas = KV_DAILY_QUOTAS["free"] or {}
    parts = []
    for name, workload in sorted(timeline.items()):
        hours = workload.get("hours", [])
        budget = workload.get("budget_per_day")
        lines = [("free plan", quotas.get("write", 0), "limit")]
        if budget is not None:
            lines.insert(0, ("budget", budget, "budget"))
        hour_lines = [(f"{label} / 24", value / 24, css) for label, value, css in lines]
        share = [
            ratio(h.get("do_sets", 0), h.get("do_sets", 0) + h.get("kv_writes", 0)) for h in hours
        ]
        hits = [ratio(h.get("do_hits", 0), h.get("do_gets", 0)) for h in hours]
        parts += [
            f"<h3>{escape(name)}</h3>",
            column_chart(
                f"kv-writes-hour:{name}",
                f"{name}: KV writes per simulated hour",
                [h.get("kv_writes", 0) for h in hours],
                hour_lines,
            ),
            column_chart(
                f"kv-writes-day:{name}",
                f"{name}: KV writes per simulated day",
                daily(hours, "kv_writes"),
                lines,
            ),
            line_chart(f"route-share:{name}", f"{name}: share of writes on the DO per hour", share),
            line_chart(f"do-hit-rate:{name}", f"{name}: DO hit rate per hour", hits),
        ]
    return _section("KV writes over simulated time", *parts)


def _routes(report: dict[str, Any]) -> str:
    groups = report.get("groups", {})
    share_rows = [
        (group, data["route_share"]["do"] or 0.0, _percent(data["route_share"]["do"]))
        for group, data in sorted(groups.items())
        if data.get("tests")
    ]
    hit_rows = [
        (group, data["do_hit_rate"] or 0.0, _percent(data["do_hit_rate"]))
        for group, data in sorted(groups.items())
        if data.get("tests")
    ]
    return _section(
        "Route share and DO hit rate",
        bar_chart("route-share", "Share of cache writes on the DO, by group", share_rows),
        bar_chart("do-hit-rate", "DO hit rate, by group", hit_rows),
    )


def _bill(report: dict[str, Any]) -> str:
    bill = report.get("bill")
    if not bill:
        return _section("Projected bill", "<p>No test declared a workload: no bill.</p>")
    workloads = bill["workloads"]
    rows = [
        [
            escape(name),
            f"{data['scale']:,}",
            dollars(data["gross_cents"]),
            escape(
                ", ".join(
                    f"{m} {v['per_day']:,}/day > {v['limit']:,}"
                    for m, v in data["free_plan_crossed"].items()
                )
                or "none"
            ),
        ]
        for name, data in workloads.items()
    ]
    total = bill["total"]
    summary = _table(
        ["", "per month"],
        [
            ["gross, all workloads", dollars(total["gross_cents"])],
            ["beyond the Workers Paid allowances", dollars(total["usage_cents"])],
            ["Workers Paid subscription", dollars(total["subscription_cents"])],
            ["total", f"<strong>{dollars(total['total_cents'])}</strong>"],
        ],
        {1},
    )
    meters = [
        [
            escape(meter),
            _number(quantity),
            _number(total["included"][meter]),
            dollars(total["net_lines_cents"][meter]),
        ]
        for meter, quantity in total["monthly"].items()
        if quantity
    ]
    return _section(
        f"Projected bill ({bill['days']}-day month, prices of {bill['prices_read_on']})",
        bar_chart(
            "bill",
            "Gross cost per workload, per month",
            [
                (name, data["gross_cents"], dollars(data["gross_cents"]))
                for name, data in workloads.items()
            ],
        ),
        _table(["workload", "scale", "gross", "free plan limits crossed"], rows, {1, 2}),
        _table(["meter", "a month", "included", "beyond, net"], meters, {1, 2, 3}),
        summary,
        *(f"<p>Note: {escape(note)}.</p>" for note in bill.get("notes", [])),
    )


def _sites(report: dict[str, Any]) -> str:
    sites = top_sites(report)
    if not sites:
        return _section("Top KV-writing call sites (your tests)", "<p>No KV writes.</p>")
    return _section(
        "Top KV-writing call sites (your tests)",
        bar_chart(
            "top-sites",
            "KV writes by call site",
            [(row["site"], row["writes"], f"{row['writes']:,}") for row in sites],
        ),
        _table(
            ["writes", "call site"],
            [[f"{row['writes']:,}", f"<code>{escape(row['site'])}</code>"] for row in sites],
            {0},
        ),
    )


def _bypasses(report: dict[str, Any]) -> str:
    counts = report.get("totals", {}).get("bypasses", {})
    text = ", ".join(
        f"{counts.get(k, 0):,} {k.replace('_', ' ')}"
        for k in ("rejected", "allowed", "refused_by_kv")
    )
    rows = [[f"{n:,}", f"<code>{escape(site)}</code>"] for site, n in rejected_bypasses(report)]
    return _section(
        "KV writes bypassing the cache layer",
        f"<p>{text}</p>",
        _table(["count", "rejected write"], rows, {0}) if rows else "",
    )


def _budgets(report: dict[str, Any]) -> str:
    over = over_budget(report)
    if not over:
        return _section("Tests over budget", "<p>None.</p>")
    items = "".join(
        f"<li><code>{escape(nodeid)}</code><ul>"
        + "".join(f"<li>{escape(line)}</li>" for line in lines)
        + "</ul></li>"
        for nodeid, lines in over
    )
    return _section("Tests over budget", f"<ul>{items}</ul>")


def _transcript_id(nodeid: str) -> str:
    return "transcript-" + re.sub(r"[^A-Za-z0-9_-]+", "-", nodeid).strip("-")


def _matrix(report: dict[str, Any]) -> str:
    clauses, factories, cells = clause_matrix(report)
    if not cells:
        return _section("Contract clauses by factory", "<p>The contract suite did not run.</p>")
    rows = []
    for clause in clauses:
        row = [f"<strong>{escape(clause)}</strong>"]
        for factory in factories:
            cell = cells.get((clause, factory))
            if cell is None:
                row.append("")
                continue
            text = ", ".join(f"{n} {o}" for o, n in sorted(cell["counts"].items()))
            links = "".join(
                f' <a href="#{_transcript_id(nodeid)}">transcript</a>'
                for nodeid in cell["failed"]
                if report["tests"][nodeid].get("transcript")
            )
            css = cell["worst"] + (" waived" if cell["waived"] else "")
            row.append(
                f'<span class="{css}">{escape(text)}{" (waived)" if cell["waived"] else ""}'
                f"</span>{links}"
            )
        rows.append(row)
    transcripts = "".join(
        f'<details id="{_transcript_id(nodeid)}"><summary><code>{escape(nodeid)}</code>'
        f"</summary><pre>{escape(data['transcript'])}</pre></details>"
        for nodeid, data in sorted(report["tests"].items())
        if data.get("transcript") and data.get("outcome") == "failed"
    )
    note = (
        ""
        if any(d.get("outcome") for d in report["tests"].values())
        else ("<p>The report records no test outcomes: cells without a waiver show “ran”.</p>")
    )
    return _section(
        "Contract clauses by factory",
        note,
        _table(["clause", *map(escape, factories)], rows),
        transcripts,
    )


def _latency(report: dict[str, Any]) -> str:
    latency = report.get("latency")
    if not latency:
        return ""
    rows = [
        [
            f"<code>{escape(name)}</code>",
            f"{data['count']:,}",
            *(f"{data[key]:g}" for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
        ]
        for name, data in latency["requests"].items()
    ]
    source = escape(str(latency["model"]["source"]))
    return _section(
        "Simulated response times",
        f"<p>Latency model: {source}, seed {latency['model']['seed']}.</p>",
        _table(["request", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows, {1, 2, 3, 4, 5}),
    )
