"""The shipped dual-cache contract suite.

``pytest --dualcache`` runs it against every registered factory; to run it from your own
tests, subclass ``DualCacheContract`` and override its ``make_dal`` fixture.
"""

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

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


class _SuiteModule(pytest.Module):
    """The shipped suite module, imported by its package name wherever it is installed."""

    def _getobj(self) -> ModuleType:
        from . import test_registered

        return test_registered


def collected_suite(session: pytest.Session) -> Iterator[pytest.Item]:
    """The contract suite's items, one set per registered factory.

    Collected directly rather than through the collection hooks: ``--lf`` skips files that
    are not among the paths of last run's failures, and the suite's node id names no file
    under the rootdir. Selection (``-k``, ``-m``, ``--lf``) still applies to the items.
    """
    path = Path(__file__).with_name("test_registered.py")
    yield from _items(_SuiteModule.from_parent(session, path=path, nodeid=SUITE_NODEID))


def _items(collector: pytest.Collector) -> Iterator[pytest.Item]:
    for node in collector.collect():
        if isinstance(node, pytest.Item):
            yield node
        else:
            yield from _items(node)
