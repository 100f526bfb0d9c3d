"""What the SLO gates measure: each test's figures as plain data (``evidence``), summed over
the session (``merge``), and a metric's figure over them (``measure``).

Evidence is plain data so that it travels: pytest-xdist carries it to the controller, and
the JSON report keeps each application test's (``slo_evidence``) so that a merge of shard
reports judges the session's gates again exactly as an unsplit run did. Response times are
not in it: they are the test's ``requests`` (``latency.py``), joined in by ``with_requests``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .budget import spans
from .latency import nearest_rank
from .ledger import OperationRecord
from .report import call_site_text

if TYPE_CHECKING:
    from .slo import Gate

#: The errors ``kv_errors`` counts: the KV namespace's answers (not injected faults).
KV_ERROR_TYPES = ("KVRateLimitError", "KVQuotaError")


def kv_error_records(records: Iterable[OperationRecord]) -> list[OperationRecord]:
    """The 429s and quota errors KV answered (retried or not); injected faults left out."""
    return [
        r
        for r in records
        if r.store_kind == "kv" and not r.ok and r.error_type in KV_ERROR_TYPES and not r.injected
    ]


def kv_writes(records: Iterable[OperationRecord]) -> list[OperationRecord]:
    """The successful KV writes (what a KV budget's ``writes`` counts)."""
    return [r for r in records if r.store_kind == "kv" and r.ok and r.op == "put"]


def cache_misses(cache_records: Iterable[OperationRecord]) -> list[OperationRecord]:
    """The built-in DO cache's gets that found nothing (as the report counts them)."""
    return [r for r in cache_records if r.op == "get" and r.ok and not r.bytes]


def evidence(
    records: list[OperationRecord],
    cache_records: list[OperationRecord],
    do_writes: int,
    rootdir: Path,
) -> dict[str, Any]:
    """One test's figures as plain data: built-in DO cache gets and misses by call site, DO
    writes (``do_writes``: the report's DO sets), KV writes by UTC day and call site, and the
    KV errors KV answered by error and call site."""

    def sites(chosen: Iterable[OperationRecord]) -> dict[str, int]:
        """Operations counted by call site (relative to the rootdir, as the report shows it)."""
        return dict(sorted(Counter(call_site_text(r, rootdir) for r in chosen).items()))

    gets = [r for r in cache_records if r.op == "get" and r.ok]
    errors = Counter(
        f"{r.error_type} ({r.status}) at {call_site_text(r, rootdir)}"
        for r in kv_error_records(records)
    )
    return {
        "cache_gets": len(gets),
        "cache_misses": sites(cache_misses(cache_records)),
        "do_writes": do_writes,
        "kv_writes": {
            day.isoformat(): sites(day_records)
            for day, day_records in spans(kv_writes(records), "day")
            if day is not None
        },
        "kv_errors": dict(sorted(errors.items())),
    }


def with_requests(found: Mapping[str, Any], test: Mapping[str, Any]) -> dict[str, Any]:
    """A test's evidence with its timed requests (``test``: its report entry), as measured."""
    return {**found, "requests": test.get("requests", {})}


def merge(evidences: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of several tests' evidence (the session's); request durations pooled by name."""
    total: dict[str, Any] = {
        "cache_gets": 0,
        "cache_misses": Counter(),
        "do_writes": 0,
        "kv_writes": {},
        "kv_errors": Counter(),
        "requests": {},
    }
    for found in evidences:
        for name, durations in found.get("requests", {}).items():
            total["requests"].setdefault(name, []).extend(durations)
        total["cache_gets"] += found["cache_gets"]
        total["do_writes"] += found["do_writes"]
        total["cache_misses"].update(found["cache_misses"])
        total["kv_errors"].update(found["kv_errors"])
        for day, day_sites in found["kv_writes"].items():
            total["kv_writes"].setdefault(day, Counter()).update(day_sites)
    return total


@dataclass(frozen=True)
class Measurement:
    """A metric's figure over a scope (None: nothing to measure) and the words for it."""

    value: float | None
    figures: str
    #: The days a per-day figure went over (ISO dates), for the failure's detail.
    days: tuple[str, ...] = ()


def measure(gate: Gate, found: Mapping[str, Any], where: str) -> Measurement:
    """``gate``'s metric over the evidence ``found`` (``where``: "this test", ...)."""
    misses = sum(found["cache_misses"].values())
    kv_written = sum(sum(day.values()) for day in found["kv_writes"].values())
    if gate.metric == "do_hit_rate":
        gets = found["cache_gets"]
        if not gets:
            return Measurement(None, f"no gets on the built-in DO cache in {where}")
        return Measurement(
            _ratio(gets - misses, gets), f"{gets - misses} of {gets} DO cache gets hit"
        )
    if gate.metric == "do_write_share":
        writes = found["do_writes"] + kv_written
        if not writes:
            return Measurement(None, f"no writes to the DO or KV in {where}")
        return Measurement(
            _ratio(found["do_writes"], writes),
            f"{found['do_writes']} of {writes} writes went to the DO, {kv_written} to KV",
        )
    if gate.metric == "kv_errors":
        errors = sum(found["kv_errors"].values())
        return Measurement(errors, f"KV answered {errors} rate-limit (429) or quota errors")
    if gate.metric == "p95_ms":
        return _slowest_p95(found.get("requests", {}), where)
    per_day = {day: sum(day_sites.values()) for day, day_sites in found["kv_writes"].items()}
    busiest = max(per_day.values(), default=0)
    over = tuple(sorted(day for day, n in per_day.items() if not gate.holds(n)))
    when = f" on {max(sorted(per_day), key=per_day.__getitem__)} (UTC)" if per_day else ""
    return Measurement(busiest, f"{busiest} KV writes{when}, the busiest day", over)


def _ratio(part: int, whole: int) -> float:
    """``part / whole`` to 6 places, as the report rounds its rates (same run, same figure)."""
    return round(part / whole, 6)


def request_p95s(requests: Mapping[str, list[int]]) -> dict[str, float]:
    """Each request name's p95 in ms (nearest rank over its durations in microseconds)."""
    return {
        name: nearest_rank(durations, 95) / 1000
        for name, durations in sorted(requests.items())
        if durations
    }


def _slowest_p95(requests: Mapping[str, list[int]], where: str) -> Measurement:
    """``p95_ms``: the p95 of the slowest request name (the gate holds for every name)."""
    p95s = request_p95s(requests)
    if not p95s:
        return Measurement(None, f"no requests were timed in {where}")
    slowest = max(p95s, key=p95s.__getitem__)  # the first in name order among equals
    names = f", the slowest of {len(p95s)} request names" if len(p95s) > 1 else ""
    return Measurement(
        p95s[slowest], f"p95 of {len(requests[slowest])} {slowest!r} requests{names}"
    )
