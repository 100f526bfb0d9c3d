"""KV budgets: how many KV operations a block, a test or a simulated day may make.

A budget names limits by kind (``writes``, ``deletes``, ``lists``, ``reads``) and applies
them either to the whole span (``per="test"``) or to each UTC day of the virtual clock
(``per="day"``), the way Cloudflare's free-plan quotas reset at 00:00 UTC. Only successful
operations count (a refused write used no quota); a failure lists every counted operation
with its caller, so nobody has to re-run to see what happened.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .ledger import OperationRecord
from .limits import KV_OPERATIONS, SECONDS_PER_DAY
from .recorder import current_recorder

#: The order budget kinds are named in messages: writes first, what budgets are about.
_KIND_ORDER = ("writes", "deletes", "lists", "reads")
#: Budget kinds and the KV operation (ledger op) each counts, from ``limits.KV_OPERATIONS``.
KINDS: Mapping[str, str] = {
    kind: method
    for kind in _KIND_ORDER
    for method, operation in KV_OPERATIONS.items()
    if operation.counted_as == kind
}
PERIODS = ("test", "day")


class BudgetError(ValueError):
    """A budget that cannot be read: the message names where it came from."""


@dataclass(frozen=True)
class KVBudget:
    """Limits by kind (``None``: no limit) over a test or over each UTC day."""

    limits: Mapping[str, int]
    per: str = "test"
    source: str = "kv_budget"

    @classmethod
    def of(cls, source: str, *, per: str = "test", **limits: object) -> KVBudget:
        """A budget from keyword limits (the marker's and the fixture's signature)."""
        unknown = sorted(set(limits) - set(KINDS))
        if unknown:
            raise BudgetError(
                f"{source}: unknown budget kind {', '.join(unknown)}; use {', '.join(KINDS)}"
            )
        if per not in PERIODS:
            raise BudgetError(f"{source}: per must be 'test' or 'day', got {per!r}")
        checked: dict[str, int] = {}
        for kind, limit in limits.items():
            if limit is None:
                continue
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise BudgetError(f"{source}: {kind} must be an int >= 0 or None, got {limit!r}")
            checked[kind] = limit
        return cls(checked, per, source)

    @classmethod
    def parse(cls, text: str, source: str) -> KVBudget | None:
        """A budget from ini text such as ``"writes=50/day, deletes=10/day"`` (None if blank)."""
        limits: dict[str, object] = {}
        periods = set()
        for term in filter(None, (part.strip() for part in text.replace(";", ",").split(","))):
            kind, equals, amount = term.partition("=")
            number, slash, period = amount.strip().partition("/")
            if not equals or not re.fullmatch(r"[0-9]+", number.strip()):
                raise BudgetError(
                    f"{source}: cannot read {term!r}; write kind=N or kind=N/day, "
                    "e.g. writes=50/day"
                )
            limits[kind.strip()] = int(number)
            periods.add(period.strip() if slash else "test")
        if not limits:
            return None
        if len(periods) > 1:
            raise BudgetError(f"{source}: all limits must share one period, got {sorted(periods)}")
        return cls.of(source, per=periods.pop(), **limits)

    def violations(self, records: list[OperationRecord]) -> list[Violation]:
        """What ``records`` (KV operations, in order) did beyond this budget."""
        found = []
        for day, day_records in spans(records, self.per):
            for kind, limit in self.limits.items():
                counted = [r for r in day_records if r.op == KINDS[kind] and r.ok]
                if len(counted) > limit:
                    refused = sum(1 for r in day_records if r.op == KINDS[kind] and not r.ok)
                    found.append(Violation(self, kind, limit, counted, day, refused))
        return found

    def __str__(self) -> str:
        limits = ", ".join(f"{kind}={limit}" for kind, limit in self.limits.items())
        return f"{limits} per {self.per}"


@dataclass(frozen=True)
class Violation:
    """One limit exceeded: which, by which operations, on which day (per-day budgets)."""

    budget: KVBudget
    kind: str
    limit: int
    records: list[OperationRecord] = field(repr=False)
    day: dt.date | None = None
    refused: int = 0

    @property
    def headline(self) -> str:
        """``expected at most 3 KV writes, 7 were made`` (and the day, per day)."""
        when = f" on {self.day.isoformat()} (UTC)" if self.day is not None else ""
        return (
            f"expected at most {self.limit} KV {self.kind}{when}, {len(self.records)} were made "
            f"({self.budget.source}: {self.budget})"
        )

    def describe(self, most: int = 200, *, headline: bool = True) -> str:
        """The headline, the operations grouped by call site, then each with its caller.

        Without ``headline`` (the failure message states it already) a short label stands
        in for it, so a test's output says the limit once.
        """
        when = f" on {self.day.isoformat()} (UTC)" if self.day is not None else ""
        label = f"{len(self.records)} KV {self.kind}{when}"
        lines = [self.headline, "by call site:"] if headline else [f"{label} by call site:"]
        lines.extend(operation_lines(self.records, most))
        if self.refused:
            lines.append(f"  ({self.refused} more were refused by KV and not counted)")
        return "\n".join(lines)


def operation_lines(records: list[OperationRecord], most: int = 200) -> list[str]:
    """Each call site with its count (most first), then each operation, oldest first, up to
    ``most``: what a failure lists so that nobody re-runs to see what happened."""
    lines = []
    sites: dict[str, list[OperationRecord]] = {}
    for record in records:
        sites.setdefault(record.caller, []).append(record)
    for site, made in sorted(sites.items(), key=lambda item: -len(item[1])):
        lines.append(
            f"  {len(made):>5} x {site} (first key {made[0].key!r}, last {made[-1].key!r})"
        )
    lines.append("each operation, oldest first:")
    for record in records[:most]:
        failure = "" if record.ok else f": {record.error}"
        lines.append(
            f"  {record.op} {record.key!r} {record.bytes} B at {record.caller} "
            f"[{record.store}, t={_utc(record.at)}]{failure}"
        )
    if len(records) > most:
        lines.append(f"  ... and {len(records) - most} more")
    return lines


def spans(
    records: list[OperationRecord], per: str
) -> Iterator[tuple[dt.date | None, list[OperationRecord]]]:
    """``records`` as one span (``per="test"``, day None) or split by UTC day of the virtual
    clock (``per="day"``, the way KV's daily quotas reset), days in order."""
    if per == "test":
        yield None, records
        return
    days: dict[int, list[OperationRecord]] = {}
    for record in records:
        days.setdefault(int(record.at // SECONDS_PER_DAY), []).append(record)
    for day, day_records in sorted(days.items()):
        yield dt.date(1970, 1, 1) + dt.timedelta(days=day), day_records


def _utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


class KVBudgetExceeded(AssertionError):
    """Raised by the ``kv_budget`` block when its operations went over budget."""


@contextmanager
def kv_budget(
    *,
    writes: int | None = None,
    deletes: int | None = None,
    lists: int | None = None,
    reads: int | None = None,
    per: str = "test",
) -> Iterator[KVBudget]:
    """Fail if the block makes more KV operations of a kind than allowed, on every namespace.

    An exception raised inside the block propagates unchanged (no budget check on top).
    """
    budget = KVBudget.of(
        "kv_budget()", per=per, writes=writes, deletes=deletes, lists=lists, reads=reads
    )
    scope = current_recorder().scope()
    try:
        yield budget
        violations = budget.violations(scope.records(kind="kv"))
    finally:
        scope.close()
    if violations:
        raise KVBudgetExceeded("\n".join(v.describe() for v in violations))


@contextmanager
def failing_kv_budget(**limits: Any) -> Iterator[KVBudget]:
    """``kv_budget`` for a test: going over budget fails the test with the operations."""
    __tracebackhide__ = True
    try:
        with kv_budget(**limits) as budget:
            yield budget
    except KVBudgetExceeded as exc:
        message = str(exc)
    else:
        return
    import pytest

    pytest.fail(message, pytrace=False)
