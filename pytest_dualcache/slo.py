"""Success criteria as gates: the ``dualcache_slo`` marker and ini key, measured and judged.

The seed judged its migration by four numbers: a DO hit rate above 70 %, 98 % of writes on
the DO, zero KV rate-limit errors, and KV writes under 50 a day. A gate names such metrics
with a limit: ``@pytest.mark.dualcache_slo(do_hit_rate=0.70, kv_errors=0)`` over one test,
or ini ``dualcache_slo = "do_hit_rate>=0.70, kv_errors=0"`` over the application's tests of
the session (never the contract suite). ``do_hit_rate`` is the built-in DO cache's (a
user's Durable Object storage is not a cache); ``do_write_share`` counts every DO write, as
the report's route share does. Each metric is a floor (a rate: at least) or a
ceiling (a count or a time: at most); ``name=N`` means what the marker's ``name=N`` means,
and ``>=``/``<=`` spell the same direction out.

``p95_ms`` is a ceiling on response times: the p95 of each request name's
``dualcache_env.request`` blocks (the slowest name is the figure), simulated by the latency
model (``latency.py``); with the model off a ``p95_ms`` gate is a usage error, not a pass.

Each test's figures travel as plain data (``slo_metrics.evidence``, in the test's report
entry as ``slo_evidence`` when the session's gate needs them), so pytest-xdist carries them
to the controller, which sums them (``merge``) for the session's gate, and a merge of shard
reports judges it again (``judge_session``). A miss lists the operations that drove it, by
call site (and, over the session, by test); a ``p95_ms`` miss lists the slow requests.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .budget import KVBudget, operation_lines
from .latency import pooled, summarize
from .ledger import OperationRecord
from .slo_metrics import (  # the measuring half: what each gate reads, and how
    Measurement,
    cache_misses,
    evidence,
    kv_error_records,
    kv_writes,
    measure,
    merge,
    with_requests,
)

if TYPE_CHECKING:
    import pytest

    from .recorder import Scope

#: The ini key of the session's gate, as its verdicts name their source.
INI_SOURCE = "ini dualcache_slo"
#: Where the session's gate is reported, in the JSON's ``scope`` and the terminal.
SESSION = "session"
#: Most call sites and tests a session failure lists for each figure.
TOP = 20
MARKER = "@pytest.mark.dualcache_slo"


class Metric(NamedTuple):
    """One measurable criterion: its name, direction and what its limit may be."""

    name: str
    #: ">=" for a floor (rates), "<=" for a ceiling (counts, times).
    comparison: str
    #: "rate" (0..1), "count" (an int >= 0) or "ms" (a number >= 0).
    unit: str


METRICS: Mapping[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("do_hit_rate", ">=", "rate"),
        Metric("do_write_share", ">=", "rate"),
        Metric("kv_errors", "<=", "count"),
        Metric("kv_writes_per_day", "<=", "count"),
        Metric("p95_ms", "<=", "ms"),
    )
}
_TERM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|=)\s*(\S+)\s*")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")


class SLOError(ValueError):
    """A gate that cannot be read or cannot be measured: the message names its source."""


@dataclass(frozen=True)
class Gate:
    """One criterion: ``metric`` compared with ``limit`` (``do_hit_rate >= 0.7``)."""

    metric: str
    limit: float

    @property
    def comparison(self) -> str:
        """The metric's direction: ">=" for a floor, "<=" for a ceiling."""
        return METRICS[self.metric].comparison

    def holds(self, measured: float) -> bool:
        """Whether ``measured`` meets the limit."""
        return measured >= self.limit if self.comparison == ">=" else measured <= self.limit

    def __str__(self) -> str:
        """``do_hit_rate >= 0.7``: how messages and the terminal name the gate."""
        return f"{self.metric} {self.comparison} {self.limit:g}"


@dataclass(frozen=True)
class Objectives:
    """The gates of one marker or of the ini key, with where they came from."""

    gates: tuple[Gate, ...]
    source: str

    @classmethod
    def of(cls, source: str, **limits: object) -> Objectives:
        """Gates from keyword limits (the marker's signature), each value checked."""
        if not limits:
            raise SLOError(f"{source}: name at least one metric ({', '.join(METRICS)})")
        gates = []
        for name, limit in limits.items():
            metric = METRICS.get(name)
            if metric is None:
                raise SLOError(f"{source}: unknown metric {name!r}; use {', '.join(METRICS)}")
            gates.append(Gate(name, _checked(source, metric, limit)))
        return cls(tuple(gates), source)

    @classmethod
    def parse(cls, text: str, source: str) -> Objectives | None:
        """Gates from ini text such as ``"do_hit_rate>=0.70, kv_errors=0"`` (None if blank)."""
        limits: dict[str, object] = {}
        for term in filter(None, (part.strip() for part in text.replace(";", ",").split(","))):
            match = _TERM.fullmatch(term)
            if match is None:
                raise SLOError(
                    f"{source}: cannot read {term!r}; write metric>=N, metric<=N or metric=N, "
                    "e.g. do_hit_rate>=0.70"
                )
            name, comparison, amount = match.groups()
            metric = METRICS.get(name)
            if metric is None:
                raise SLOError(f"{source}: unknown metric {name!r}; use {', '.join(METRICS)}")
            if comparison != "=" and comparison != metric.comparison:
                bound = "a floor" if metric.comparison == ">=" else "a ceiling"
                raise SLOError(
                    f"{source}: {term!r}: {name} is {bound}; write {name}{metric.comparison}N "
                    f"(or {name}=N)"
                )
            if name in limits:
                raise SLOError(f"{source}: {name} is given twice")
            if not _NUMBER.fullmatch(amount):
                raise SLOError(f"{source}: {term!r}: {amount!r} is not a number >= 0")
            limits[name] = float(amount) if "." in amount else int(amount)
        return cls.of(source, **limits) if limits else None

    def check_measurable(self, *, latency_on: bool) -> None:
        """Refuse a gate this session cannot measure: ``p95_ms`` needs the latency model
        (with it off every response time would be 0 ms, a pass that means nothing)."""
        if not latency_on and any(gate.metric == "p95_ms" for gate in self.gates):
            raise SLOError(
                f"{self.source}: p95_ms needs the simulated latency model, which is off; set "
                "ini dualcache_latency = seed (or a PATH.toml) to time requests"
            )

    @classmethod
    def of_session(cls, results: Iterable[Mapping[str, Any]]) -> Objectives | None:
        """The session's gates as its JSON verdicts state them (None: the report has none)."""
        gates = tuple(Gate(r["metric"], r["limit"]) for r in results if r["scope"] == SESSION)
        return cls(gates, INI_SOURCE) if gates else None

    def __str__(self) -> str:
        """Every gate, comma-separated, for messages that name them all."""
        return ", ".join(map(str, self.gates))


def _checked(source: str, metric: Metric, limit: object) -> float:
    """``limit`` if it suits ``metric`` (a rate in 0..1, a count an int >= 0)."""
    number = not isinstance(limit, bool) and isinstance(limit, int | float)
    if metric.unit == "rate" and not (number and 0 <= limit <= 1):  # type: ignore[operator]
        raise SLOError(f"{source}: {metric.name} is a rate from 0 to 1, got {limit!r}")
    if metric.unit == "count" and not (isinstance(limit, int) and number and limit >= 0):
        raise SLOError(f"{source}: {metric.name} must be an int >= 0, got {limit!r}")
    if metric.unit == "ms" and not (number and limit >= 0):  # type: ignore[operator]
        raise SLOError(f"{source}: {metric.name} must be a number of ms >= 0, got {limit!r}")
    return limit  # type: ignore[return-value]


def marker_objectives(args: tuple[Any, ...], kwargs: Mapping[str, object]) -> Objectives:
    """The marker's gates; positional arguments are refused (a limit needs its metric)."""
    if args:
        raise SLOError(f"{MARKER} takes keyword limits only, e.g. dualcache_slo(kv_errors=0)")
    return Objectives.of(MARKER, **kwargs)


def judge_test(
    marker: pytest.Mark | None,
    for_session: bool,
    records: list[OperationRecord],
    scope: Scope,
    data: dict[str, Any],
    item: pytest.Item,
    rootdir: Path,
    latency_on: bool,
) -> tuple[list[dict[str, Any]] | None, list[tuple[str, str, str]]]:
    """A test's SLO verdicts for its report (None: no marker), and each miss of its marker's
    gates as (headline, details, details without the headline). When the session's gate
    needs it (``for_session``), the test's evidence goes into ``data`` as ``slo_evidence``."""
    try:
        objectives = None if marker is None else marker_objectives(marker.args, marker.kwargs)
        if objectives is not None:
            objectives.check_measurable(latency_on=latency_on)
    except SLOError as exc:  # a marker added while the test ran: collection checked the rest
        return None, [(str(exc), "", "")]
    if objectives is None and not for_session:
        return None, []
    cache = scope.records(kind="do", where=lambda ledger: ledger.do_cache)
    found = evidence(records, cache, data["do"]["sets"], rootdir)
    if for_session:
        data["slo_evidence"] = found
    if objectives is None:
        return None, []
    verdicts = judge(objectives, with_requests(found, data), item.nodeid, "this test")
    requests = {item.nodeid: data.get("requests", {})}
    misses = [
        (
            verdict.headline,
            describe_test_miss(verdict, records, cache, requests),
            describe_test_miss(verdict, records, cache, requests, headline=False),
        )
        for verdict in verdicts
        if not verdict.passed
    ]
    return [verdict.to_json() for verdict in verdicts], misses


def judge_session(
    objectives: Objectives, tests: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Verdict], dict[str, dict[str, Any]]]:
    """The session's gates over the application's tests (those of ``tests``, report
    entries, that carry ``slo_evidence``), and each test's evidence by node id, sorted."""
    by_test = {
        nodeid: with_requests(tests[nodeid]["slo_evidence"], tests[nodeid])
        for nodeid in sorted(tests)
        if "slo_evidence" in tests[nodeid]
    }
    where = f"the application's {len(by_test)} test{'' if len(by_test) == 1 else 's'}"
    return judge(objectives, merge(by_test.values()), SESSION, where), by_test


# --- judging -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One gate judged over one scope (a test's node id, or the session)."""

    gate: Gate
    source: str
    scope: str
    measured: Measurement
    #: The scope in words: "this test", "the application's tests".
    where: str

    @property
    def passed(self) -> bool:
        """Met; a figure that could not be measured is a miss, never a pass."""
        value = self.measured.value
        return value is not None and self.gate.holds(value)

    @property
    def headline(self) -> str:
        """``expected do_hit_rate >= 0.7, measured 0.5: 2 of 4 DO cache gets hit (source)``."""
        value = self.measured.value
        if value is None:
            return (
                f"{self.source}: {self.gate.metric} cannot be measured: {self.measured.figures}; "
                f"remove the gate or {_NEEDS[self.gate.metric]}"
            )
        over = f" over {self.where}" if self.scope == SESSION else ""
        return (
            f"expected {self.gate}{over}, measured {value:g}: {self.measured.figures} "
            f"({self.source})"
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON report's entry (``report_data``'s ``slo`` section)."""
        return {
            "scope": self.scope,
            "metric": self.gate.metric,
            "comparison": self.gate.comparison,
            "limit": self.gate.limit,
            "measured": self.measured.value,
            "passed": self.passed,
        }


_NEEDS = {
    "do_hit_rate": "read through the built-in DO cache (DualCacheEnv.do, the do_cache fixture)",
    "do_write_share": "write through the DO cache or KV",
    "p95_ms": "time requests: with dualcache_env.request(name): ...",
}


def judge(
    objectives: Objectives, found: Mapping[str, Any], scope: str, where: str
) -> list[Verdict]:
    """Every gate of ``objectives`` over the evidence ``found`` of ``scope``."""
    return [
        Verdict(gate, objectives.source, scope, measure(gate, found, where), where)
        for gate in objectives.gates
    ]


def describe_test_miss(
    verdict: Verdict,
    records: list[OperationRecord],
    cache_records: list[OperationRecord],
    requests: Mapping[str, Mapping[str, list[int]]],
    *,
    headline: bool = True,
) -> str:
    """A test's miss: the headline (unless said already) and each operation that drove it
    (for ``p95_ms``, its slow requests: ``requests`` are its own, under its node id)."""
    lines = [verdict.headline] if headline else []
    metric = verdict.gate.metric
    if verdict.measured.value is None:
        return "\n".join(lines)
    if metric == "p95_ms":
        return "\n".join(lines + slow_request_lines(verdict.gate.limit, requests, by_test=False))
    if metric == "kv_writes_per_day":
        budget = KVBudget.of(verdict.source, per="day", writes=int(verdict.gate.limit))
        for violation in budget.violations(kv_writes(records)):
            lines.append(violation.describe(headline=False))
        return "\n".join(lines)
    chosen, label = _DRIVERS[metric](records, cache_records)
    lines.append(f"{len(chosen)} {label} by call site:")
    lines.extend(operation_lines(chosen))
    return "\n".join(lines)


_DRIVERS: dict[str, Callable[..., tuple[list[OperationRecord], str]]] = {
    "do_hit_rate": lambda records, cache: (cache_misses(cache), "DO cache misses"),
    "do_write_share": lambda records, cache: (kv_writes(records), "KV-routed writes"),
    "kv_errors": lambda records, cache: (kv_error_records(records), "KV errors"),
}


def describe_session_miss(verdict: Verdict, by_test: Mapping[str, Mapping[str, Any]]) -> str:
    """A session miss: the headline, then what drove it by call site and by test, capped."""
    lines = [verdict.headline]
    if verdict.measured.value is None:
        return "\n".join(lines)
    if verdict.gate.metric == "p95_ms":
        requests = {nodeid: found["requests"] for nodeid, found in by_test.items()}
        lines += slow_request_lines(verdict.gate.limit, requests, by_test=True)
    elif verdict.gate.metric == "kv_writes_per_day":
        for day in verdict.measured.days:
            label = f"KV writes on {day} (UTC)"
            lines += _grouped(
                label, by_test, lambda found, day=day: found["kv_writes"].get(day, {})
            )
    else:
        label, counts_of = _SESSION_DRIVERS[verdict.gate.metric]
        lines += _grouped(label, by_test, counts_of)
    return "\n".join(lines)


def _all_days(found: Mapping[str, Any]) -> Counter[str]:
    """A test's KV writes by call site over all its days."""
    total: Counter[str] = Counter()
    for day_sites in found["kv_writes"].values():
        total.update(day_sites)
    return total


_SESSION_DRIVERS: dict[str, tuple[str, Callable[[Mapping[str, Any]], Mapping[str, int]]]] = {
    "do_hit_rate": ("DO cache misses", lambda found: found["cache_misses"]),
    "do_write_share": ("KV-routed writes", _all_days),
    "kv_errors": ("KV errors", lambda found: found["kv_errors"]),
}


def _grouped(
    label: str,
    by_test: Mapping[str, Mapping[str, Any]],
    counts_of: Callable[[Mapping[str, Any]], Mapping[str, int]],
) -> list[str]:
    """``N label by call site:`` and ``by test:``, most first, at most ``TOP`` of each."""
    sites: Counter[str] = Counter()
    tests: Counter[str] = Counter()
    for nodeid, found in by_test.items():
        counts = counts_of(found)
        sites.update(counts)
        if counts:
            tests[nodeid] = sum(counts.values())
    lines = [f"{sum(sites.values())} {label} by call site:"]
    for heading, counter in (("", sites), ("by test:", tests)):
        if heading:
            lines.append(heading)
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
        lines.extend(f"  {count:>5} x {name}" for name, count in ranked[:TOP])
        if len(ranked) > TOP:
            lines.append(f"  ... and {len(ranked) - TOP} more")
    return lines


def slow_request_lines(
    limit_ms: float, requests: Mapping[str, Mapping[str, list[int]]], *, by_test: bool
) -> list[str]:
    """A ``p95_ms`` miss's detail: each request name whose p95 is over ``limit_ms``, slowest
    first, with its figures; ``by_test``: then the tests with requests slower than the
    limit, most first (``requests``: each test's durations by name, by node id)."""
    figures = summarize(pooled(requests.values()))
    over = sorted(
        (name for name, data in figures.items() if data["p95_ms"] > limit_ms),
        key=lambda name: (-figures[name]["p95_ms"], name),
    )
    lines = [
        f"{len(over)} request name{'' if len(over) == 1 else 's'} over {limit_ms:g} ms at p95:"
    ]
    for name in over[:TOP]:
        data = figures[name]
        lines.append(
            f"  {name}: {data['count']} requests, p50 {data['p50_ms']:g} ms, p95 "
            f"{data['p95_ms']:g} ms, p99 {data['p99_ms']:g} ms, max {data['max_ms']:g} ms"
        )
    if not by_test:
        return lines
    slow = Counter(
        {
            nodeid: sum(us > limit_ms * 1000 for name in over for us in durations.get(name, ()))
            for nodeid, durations in requests.items()
        }
    )
    ranked = sorted(((n, c) for n, c in slow.items() if c), key=lambda item: (-item[1], item[0]))
    lines.append(f"requests slower than {limit_ms:g} ms by test:")
    lines.extend(f"  {count:>5} x {nodeid}" for nodeid, count in ranked[:TOP])
    if len(ranked) > TOP:
        lines.append(f"  ... and {len(ranked) - TOP} more")
    return lines


#: Said under a shard's missed session gates (``--dualcache-shard``), which do not fail it.
SHARD_NOTE = (
    "note: a shard judges the session's SLO gates over its own tests only, so a miss here "
    "does not fail it: `python -m pytest_dualcache merge` judges them over every shard, and "
    "`python -m pytest_dualcache gate` fails on a miss there"
)


def render(results: list[dict[str, Any]]) -> list[str]:
    """The KV report's lines: one per gate, session first, then tests by node id."""
    if not results:
        return []
    lines = [f"SLO gates: {sum(not r['passed'] for r in results)} missed of {len(results)}"]
    for result in results:
        measured = "n/a" if result["measured"] is None else f"{result['measured']:g}"
        scope = "session (your tests)" if result["scope"] == SESSION else result["scope"]
        verdict = "passed" if result["passed"] else "MISSED"
        lines.append(
            f"  {verdict}: {scope}: {result['metric']} {result['comparison']} "
            f"{result['limit']:g}, measured {measured}"
        )
    return lines


def ordered(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON's order: the session's gates first, then by node id, each in metric order."""
    names = list(METRICS)
    return sorted(
        results,
        key=lambda r: (r["scope"] != SESSION, r["scope"], names.index(r["metric"])),
    )
