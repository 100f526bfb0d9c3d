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

#: The node id the collected suite carries (its module's path inside the package).
SUITE_NODEID = "pytest_dualcache/contracts/test_registered.py"


class _SuiteModule(pytest.Module):
    """The shipped suite module, imported by its package name wherever it is installed."""

    def _getobj(self) -> ModuleType:
        from . import test_registered

        return test_registered


def collected_suite(session: pytest.Session) -> Iterator[pytest.Item]:
    """The contract suite's items, one set per registered factory."""
    path = Path(__file__).with_name("test_registered.py")
    module = _SuiteModule.from_parent(session, path=path, nodeid=SUITE_NODEID)
    yield from session.genitems(module)
