"""Merging the JSON reports of a sharded run into the report one unsplit run would write.

Each shard's report carries ``"shard": "I/N"``. The merge rebuilds a ``SessionReport`` from
the shards' tests, waivers and session facts and lets it compute the totals, so the merged
file is what ``report.py`` itself writes for those tests; nothing is summed twice.

What a shard cannot tell us is refused rather than guessed: a missing or repeated shard,
shards of different report or plugin versions, a test in two shards, factories or waivers
that differ, and sections this merge does not know how to combine. ``deselected`` is the
one figure a splitter muddles (pytest-split deselects the other shards' tests): a shard
that says how many of its deselections were the split's (``split_deselected``) is exact;
shards that say nothing must agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .report import REPORT_VERSION, WAIVER_OUTCOMES, SessionReport

SHARD_KEY = "shard"
#: Top-level keys a shard may carry beyond ``SessionReport.to_json``'s.
SHARD_ONLY_KEYS = (SHARD_KEY, "split_deselected", "plugin_version")
#: Recomputed from the tests by ``SessionReport``, never read from a shard.
DERIVED_KEYS = ("complete", "totals", "groups", "bill", "timeline")


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
    _check_same(ordered, "version", "report version")
    _check_same(ordered, "plugin_version", "pytest-dualcache version")
    _check_same(ordered, "factories", "factories")
    first_name, first = ordered[0]
    if first["version"] != REPORT_VERSION:
        raise ShardError(
            f"{first_name}: report version {first['version']}; this pytest-dualcache merges "
            f"version {REPORT_VERSION}: run the shards with it"
        )
    known = {*SessionReport().to_json(), *DERIVED_KEYS, *SHARD_ONLY_KEYS}
    for name, report in ordered:
        extra = sorted(set(report) - known)
        if extra:
            raise ShardError(f"{name}: cannot merge the section {extra[0]!r} of a shard report")
    merged = SessionReport(
        factories=list(first["factories"]["names"]),
        factories_registered=bool(first["factories"]["registered"]),
        waivers=_merged_waivers(ordered),
        deselected=_deselected(ordered),
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
    return merged.to_json()


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


def _check_same(ordered: Sequence[tuple[str, Mapping[str, Any]]], key: str, what: str) -> None:
    """Every shard has the same ``key`` (or none has it)."""
    first_name, first = ordered[0]
    for name, report in ordered[1:]:
        if report.get(key) != first.get(key):
            raise ShardError(
                f"shards of different {what}: {first_name} has {first.get(key)!r}, "
                f"{name} has {report.get(key)!r}"
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
    """Tests deselected on purpose (-k, -m), the same in every shard once the split's own
    deselections are taken off."""
    counts = {name: r["deselected"] - r.get("split_deselected", 0) for name, r in ordered}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{name}: {count}" for name, count in counts.items())
        raise ShardError(
            f"the shards deselected different numbers of tests ({shown}); a shard must say "
            'how many the split itself deselected ("split_deselected")'
        )
    return next(iter(counts.values()))
