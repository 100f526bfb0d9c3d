"""Hooks a project can implement (in a conftest.py or a plugin) to extend dualcache."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest


@pytest.hookspec
def pytest_dualcache_factories(config: pytest.Config) -> Mapping[str, Callable[[Any], Any]]:
    """Return ``{name: make_dal}`` factories the contract suite runs against.

    ``make_dal(env)`` gets a ``DualCacheEnv`` and returns a DAL with ``put``, ``get`` and
    ``delete`` (plain or ``async def``). The results of every implementation are merged with
    the factories named by ``--dualcache-factory`` or the ``dualcache_factory`` ini key.
    """
