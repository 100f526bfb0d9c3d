"""The contract suite as ``pytest --dualcache`` collects it: once per registered factory."""

from __future__ import annotations

import pytest

from pytest_dualcache.plugin import SETTINGS_KEY

from .base import DualCacheContract
from .harness import Factory


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "registered_factory" in metafunc.fixturenames:
        factories = metafunc.config.stash[SETTINGS_KEY].factories
        metafunc.parametrize(
            "registered_factory",
            [_param(name, factory) for name, factory in factories.items()],
            scope="class",
        )


def _param(name: str, factory: Factory) -> object:
    """A factory as a test parameter; one that declares ``dualcache_expected_failure``
    (a DAL kept to show what breaks, such as the pre-migration one) runs as xfail."""
    reason = getattr(factory, "dualcache_expected_failure", None)
    if not reason:
        return pytest.param(factory, id=name)
    return pytest.param(factory, id=name, marks=pytest.mark.xfail(reason=reason, strict=False))


class TestDualCacheContract(DualCacheContract):
    """Every clause, against each factory registered with dualcache_factory."""

    @pytest.fixture
    def make_dal(self, registered_factory: Factory) -> Factory:
        return registered_factory
