"""The shipped dual-cache contract suite.

``pytest --dualcache`` runs it against every registered factory; to run it from your own
tests, subclass ``DualCacheContract`` and override its ``make_dal`` fixture.
"""

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from pytest_dualcache.pytest_compromises import collect_report, suite_module

from .base import DualCacheContract
from .clauses import CLAUSES, clause
from .harness import MISSING, ContractHarness, DALHandle, PutOutcome, strict_equal
from .paths import SUITE_NODEID

__all__ = [
    "CLAUSES",
    "MISSING",
    "ContractHarness",
    "DALHandle",
    "DualCacheContract",
    "PutOutcome",
    "clause",
    "strict_equal",
]


def collected_suite(session: pytest.Session, chosen: Sequence[str] = ()) -> Iterator[pytest.Item]:
    """The contract suite's items, one set per registered factory, collected as pytest does.

    Each collector goes through ``pytest_make_collect_report`` and ``pytest_collectreport``
    and each item through ``pytest_itemcollected`` (what pytest's own collection does), so
    "collected N items" counts the suite and plugins that follow collection see it. With
    node ids ``chosen`` (pasted from a report), only the nodes they name are collected.
    Selection (``-k``, ``-m``, ``--lf``) still applies to the items afterwards.
    """
    from . import test_registered

    path = Path(test_registered.__file__)
    yield from _collect(session, suite_module(session, path, SUITE_NODEID, test_registered), chosen)


def _collect(
    session: pytest.Session, node: pytest.Item | pytest.Collector, chosen: Sequence[str]
) -> Iterator[pytest.Item]:
    if isinstance(node, pytest.Item):
        node.ihook.pytest_itemcollected(item=node)
        yield node
        return
    node.ihook.pytest_collectstart(collector=node)
    report = collect_report(node)
    if report.passed:
        if chosen:
            report.result[:] = [n for n in report.result if _leads_to(n.nodeid, chosen)]
        for child in report.result:
            yield from _collect(session, child, chosen)
    node.ihook.pytest_collectreport(report=report)


def _leads_to(nodeid: str, chosen: Sequence[str]) -> bool:
    """Whether ``nodeid`` is one of the ``chosen`` nodes, inside one, or on the way to one."""
    return any(node.startswith(nodeid + "::") or selects(node, nodeid) for node in chosen)


def selects(chosen: str, nodeid: str) -> bool:
    """Whether the node id ``chosen`` names ``nodeid`` or a node that contains it."""
    return nodeid == chosen or nodeid.startswith((chosen + "::", chosen + "["))
