"""The killer of mutation testing: every contract clause against the reference.

Through the public extension point (a ``DualCacheContract`` subclass), not a registered
factory: mutmut's self-check makes every call of the mutated code raise, and a registered
factory that raises at session start is a usage error, not the failing test mutmut expects.
"""

from __future__ import annotations

import pytest
from pytest_dualcache.contracts import DualCacheContract
from pytest_dualcache.contracts.harness import Factory

from pytest_dualcache.abstraction import CacheAbstraction


class TestReference(DualCacheContract):
    @pytest.fixture
    def make_dal(self) -> Factory:
        return CacheAbstraction
