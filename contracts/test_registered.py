"""The contract suite as ``pytest --dualcache`` collects it: once per registered factory."""

from __future__ import annotations

import pytest

from pytest_dualcache.plugin import FACTORIES_KEY

from .base import DualCacheContract
from .harness import Factory


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "registered_factory" in metafunc.fixturenames:
        factories = metafunc.config.stash[FACTORIES_KEY]
        metafunc.parametrize(
            "registered_factory", list(factories.values()), ids=list(factories), scope="class"
        )


class TestDualCacheContract(DualCacheContract):
    """Every clause, against each factory registered with dualcache_factory."""

    @pytest.fixture
    def make_dal(self, registered_factory: Factory) -> Factory:
        return registered_factory
