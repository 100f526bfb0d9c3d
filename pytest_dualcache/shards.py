"""Merging the JSON reports of a sharded run into the report one unsplit run would write.

Each shard's report carries ``"shard": "I/N"``. The merge rebuilds a ``SessionReport`` from
the shards' tests, waivers and session facts and lets it compute the totals, so the merged
file is what ``report.py`` itself writes for those tests; nothing is summed twice.

What a shard cannot tell us is refused rather than guessed: a missing or repeated shard,
shards of different report or plugin versions, a test in two shards, factories or waivers
that differ, and sections this merge does not know how to combine. ``deselected`` is the
one figure a splitter muddles (pytest-split deselects the other shards' tests, as ``-k``
would): each shard also lists the tests it kept and deselected (``shard_tests``), and the
unsplit run deselects what some shard deselected and none kept, whether the shards split
one collection (pytest-split) or collected different paths.

SLO verdicts: a test's (its marker's) are kept as its shard judged them; the session's
(ini ``dualcache_slo``) are judged again over every shard's application tests, from the
``slo_evidence`` each carries, as an unsplit run judges them. The ``latency`` section's
model must be the same in every shard; its figures are derived from the tests' requests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .report import REPORT_VERSION, WAIVER_OUTCOMES, SessionReport
from .slo import SESSION, Objectives, judge_session

SHARD_KEY = "shard"
#: Top-level keys a shard may carry beyond ``SessionReport.to_json``'s.
SHARD_ONLY_KEYS = (SHARD_KEY, "shard_tests", "plugin_version")
#: Recomputed from the tests by ``SessionReport``, never read from a shard.
DERIVED_KEYS = ("complete", "totals", "groups", "bill", "timeline")
#: Combined by this merge: ``slo`` (see the module) and ``latency`` (its model checked).
MERGED_KEYS = ("slo", "latency")


class ShardError(ValueError):
    """The shards cannot be merged; the message names the shard and what is wrong."""


def parse_shard(text: object, name: str) -> tuple[int, int]:
    """``"I/N"`` as ``(I, N)`` with 1 <= I <= N."""
    match = re.fullmatch(r"(\d+)/(\d+)", text) if isinstance(text, str) else None
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise ShardError(f'{name}: "shard" must be "I/N" with 1 <= I <= N, got {text!r}')
    return int(match[1]), int(match[2])


def merge_shards(reports: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The merged report of ``reports`` (by the name to show in errors, e.g. the file).

    Raises ``ShardError`` for anything that would make the merged report not the one an
    unsplit run of the same tests writes.
    """
    if not reports:
        raise ShardError("no shard reports to merge")
    ordered = _in_shard_order(reports)
    _check_same(ordered, "report version", lambda report: report.get("version"))
    _check_same(ordered, "pytest-dualcache version", lambda report: report.get("plugin_version"))
    _check_same(ordered, "factories", lambda report: report.get("factories"))
    _check_same(
        ordered,
        "latency models (ini dualcache_latency)",  # its figures pool only then
        lambda report: report.get("latency", {}).get("model"),
    )
    first_name, first = ordered[0]
    if first["version"] != REPORT_VERSION:
        raise ShardError(
            f"{first_name}: report version {first['version']}; this pytest-dualcache merges "
            f"version {REPORT_VERSION}: run the shards with it"
        )
    known = {*SessionReport().to_json(), *DERIVED_KEYS, *SHARD_ONLY_KEYS, *MERGED_KEYS}
    for name, report in ordered:
        extra = sorted(set(report) - known)
        if extra:
            raise ShardError(f"{name}: cannot merge the section {extra[0]!r} of a shard report")
    merged = SessionReport(
        factories=list(first["factories"]["names"]),
        factories_registered=bool(first["factories"]["registered"]),
        waivers=_merged_waivers(ordered),
        deselected=_deselected(ordered),
        latency_model=first["latency"]["model"] if "latency" in first else None,
    )
    owner: dict[str, str] = {}
    for name, report in ordered:
        for nodeid, data in report["tests"].items():
            if nodeid in owner:
                raise ShardError(f"{nodeid} is in both {owner[nodeid]} and {name}")
            owner[nodeid] = name
            merged.add(nodeid, data)
        for reason in report["incomplete_reasons"]:
            merged.stop(reason)
        merged.crashed_workers.extend(report["crashed_workers"])
        merged.missing_tests.extend(report["missing_tests"])
    _merge_slo(ordered, merged)
    return merged.to_json()


def _merge_slo(ordered: Sequence[tuple[str, Mapping[str, Any]]], merged: SessionReport) -> None:
    """The tests' SLO verdicts of every shard, and the session's judged again over all the
    shards' application tests (refused when a shard's gates differ or a test lacks the
    evidence to judge them)."""
    if not any("slo" in report for _, report in ordered):
        return
    gates = "session SLO gates (ini dualcache_slo)"
    _check_same(ordered, gates, _session_gates, lambda found: found or "none")
    merged.add_slo(
        result
        for _, report in ordered
        for result in report.get("slo", [])
        if result["scope"] != SESSION
    )
    objectives = Objectives.of_session(
        result for result in ordered[0][1].get("slo", []) if result["scope"] == SESSION
    )
    if objectives is None:
        return
    for nodeid, data in merged.tests.items():
        if data.get("group") == "application" and "slo_evidence" not in data:
            shard = _owner(ordered, nodeid)
            raise ShardError(
                f"cannot judge the session's SLO gates again: {nodeid} (in {shard}) carries no "
                "slo_evidence, the figures they are judged on; run every shard with this "
                "pytest-dualcache and the same ini dualcache_slo"
            )
    verdicts, _ = judge_session(objectives, merged.tests)
    merged.add_slo(verdict.to_json() for verdict in verdicts)


def _session_gates(report: Mapping[str, Any]) -> str:
    """A shard's session SLO gates as text (``do_hit_rate >= 0.7, ...``; "" for none)."""
    objectives = Objectives.of_session(
        result for result in report.get("slo", []) if result["scope"] == SESSION
    )
    return "" if objectives is None else str(objectives)


def _owner(ordered: Sequence[tuple[str, Mapping[str, Any]]], nodeid: str) -> str:
    """The name of the shard whose report holds ``nodeid``."""
    return next(name for name, report in ordered if nodeid in report["tests"])


def _in_shard_order(
    reports: Mapping[str, Mapping[str, Any]],
) -> list[tuple[str, Mapping[str, Any]]]:
    """The reports sorted by shard index, every index 1..N present exactly once."""
    seen: dict[int, str] = {}
    totals: dict[int, str] = {}
    for name, report in reports.items():
        if SHARD_KEY not in report:
            raise ShardError(f'{name}: not a shard report (no "shard": "I/N")')
        index, total = parse_shard(report[SHARD_KEY], name)
        totals.setdefault(total, name)
        if index in seen:
            raise ShardError(f"{name} and {seen[index]} are both shard {index}/{total}")
        seen[index] = name
    if len(totals) > 1:
        (a, name_a), (b, name_b) = sorted(totals.items())[:2]
        raise ShardError(f"{name_a} is one of {a} shards but {name_b} one of {b}")
    (total,) = totals
    missing = [str(index) for index in range(1, total + 1) if index not in seen]
    if missing:
        raise ShardError(f"shard {', '.join(missing)} of {total} missing")
    return [(seen[index], reports[seen[index]]) for index in sorted(seen)]


def _check_same(
    ordered: Sequence[tuple[str, Mapping[str, Any]]],
    what: str,
    value: Callable[[Mapping[str, Any]], object],
    shown: Callable[[Any], object] = repr,
) -> None:
    """Every shard has the same ``value(report)``; else ShardError naming two that differ."""
    first_name, first = ordered[0]
    for name, report in ordered[1:]:
        if value(report) != value(first):
            raise ShardError(
                f"shards of different {what}: {first_name} has {shown(value(first))}, "
                f"{name} has {shown(value(report))}"
            )


def _merged_waivers(ordered: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The waivers (same in every shard) with each outcome's tests from all shards."""
    definitions = [
        [{k: w[k] for k in w if k not in WAIVER_OUTCOMES} for w in report["waivers"]]
        for _, report in ordered
    ]
    for (name, _), definition in zip(ordered[1:], definitions[1:], strict=True):
        if definition != definitions[0]:
            raise ShardError(f"{name} declares other waivers than {ordered[0][0]}")
    merged = [dict(waiver, **{o: [] for o in WAIVER_OUTCOMES}) for waiver in definitions[0]]
    for _, report in ordered:
        for target, waiver in zip(merged, report["waivers"], strict=True):
            for outcome in WAIVER_OUTCOMES:
                target[outcome] = sorted([*target[outcome], *waiver[outcome]])
    return merged


def _deselected(ordered: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
    """Tests the unsplit run deselects on purpose (-k, -m): those some shard deselected and
    no shard kept. Shards that do not list their tests must have deselected the same number."""
    if not all("shard_tests" in report for _, report in ordered):
        counts = {name: report["deselected"] for name, report in ordered}
        if len(set(counts.values())) > 1:
            shown = ", ".join(f"{name}: {count}" for name, count in counts.items())
            raise ShardError(
                f"the shards deselected different numbers of tests ({shown}) and do not list "
                'the tests each kept ("shard_tests"): write them with this pytest-dualcache'
            )
        return next(iter(counts.values()))
    kept = {nodeid for _, report in ordered for nodeid in report["shard_tests"]["selected"]}
    return len(
        {nodeid for _, report in ordered for nodeid in report["shard_tests"]["deselected"]} - kept
    )


def shard_facts(shard: tuple[int, int], selected: list[str], deselected: list[str]) -> dict:
    """What a shard's report adds for the merge: which shard it is, the tests it kept and
    deselected, and the plugin version that wrote it (shards of different versions are not
    merged)."""
    from importlib.metadata import version

    return {
        SHARD_KEY: "{}/{}".format(*shard),
        "shard_tests": {"selected": sorted(selected), "deselected": sorted(deselected)},
        "plugin_version": version("pytest-dualcache"),
    }
