"""The contract suite as ``pytest --dualcache`` collects it: once per registered factory."""

from __future__ import annotations

import pytest

from pytest_dualcache.plugin import SETTINGS_KEY

from .base import DualCacheContract
from .harness import Factory


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "registered_factory" in metafunc.fixturenames:
        settings = metafunc.config.stash[SETTINGS_KEY]
        marker = metafunc.definition.get_closest_marker("dualcache_clause")
        clause = marker.args[0] if marker is not None and marker.args else None
        waived = {
            waiver.factory: waiver.reason for waiver in settings.waivers if waiver.clause == clause
        }
        metafunc.parametrize(
            "registered_factory",
            [
                _param(name, factory, clause, waived.get(name))
                for name, factory in settings.factories.items()
            ],
            scope="class",
        )


def _param(name: str, factory: Factory, clause: str | None, waived: str | None) -> object:
    """A factory as a test parameter. A clause it waives runs as non-strict xfail with the
    reason; one that declares ``dualcache_expected_failure`` (a DAL kept to show what breaks,
    such as the pre-migration one) runs as xfail throughout."""
    marks = []
    if waived is not None:
        marks.append(pytest.mark.xfail(reason=f"waived {clause}: {waived}", strict=False))
        marks.append(pytest.mark.dualcache_waived(factory=name, clause=clause, reason=waived))
    reason = getattr(factory, "dualcache_expected_failure", None)
    if reason:
        marks.append(pytest.mark.xfail(reason=reason, strict=False))
    return pytest.param(factory, id=name, marks=marks)


class TestDualCacheContract(DualCacheContract):
    """Every clause, against each factory registered with dualcache_factory."""

    @pytest.fixture
    def make_dal(self, registered_factory: Factory) -> Factory:
        return registered_factory
