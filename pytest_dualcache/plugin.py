"""pytest wiring for dualcache: the option, the ini keys, the fixtures and the hooks.

Nothing here imports a backend at import time: the emulators load when a fixture first
asks for them, so a session that never uses them pays only for this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .settings import INI_KEYS, DualCacheSettings, resolve_settings

if TYPE_CHECKING:
    from .clock import VirtualClock
    from .durable import DurableObjectCache
    from .env import DualCacheEnv, FeatureFlag
    from .kv import KVNamespace
    from .workers import WorkersEnv

SETTINGS_KEY = pytest.StashKey[DualCacheSettings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dualcache", "two-tier cache (Durable Object + Workers KV) testing")
    group.addoption(
        "--dualcache",
        action="store_true",
        default=False,
        help="run the dualcache contract suite and enforce KV budgets (fixtures work without it)",
    )
    for name, (default, help_text) in INI_KEYS.items():
        parser.addini(name, f"{help_text} (default: {default})", default=default)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("help", default=False):
        return  # --help must work even when an ini value is broken
    config.stash[SETTINGS_KEY] = resolve_settings(config)


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.enabled:
        return None
    return (
        f"dualcache: KV plan {settings.kv_plan}, DO engine {settings.do_engine}, "
        f"bindings {settings.names.do}/{settings.names.kv}, flag {settings.names.flag}"
    )


def _settings(request: pytest.FixtureRequest) -> DualCacheSettings:
    return request.config.stash.get(SETTINGS_KEY, DualCacheSettings())


@pytest.fixture
def dualcache_clock() -> VirtualClock:
    """The test's virtual clock: every backend of ``dualcache_env`` reads it."""
    from .clock import VirtualClock

    return VirtualClock()


@pytest.fixture
def dualcache_env(
    request: pytest.FixtureRequest, dualcache_clock: VirtualClock
) -> Iterator[DualCacheEnv]:
    """A fresh Worker env: KV namespace, DO cache, flag var (``"true"``), on the test's clock."""
    from .env import DualCacheEnv

    settings = _settings(request)
    env = DualCacheEnv(
        dualcache_clock,
        names=settings.names,
        kv_plan=settings.kv_plan,
        do_engine=settings.do_engine,
    )
    yield env
    env.close()


@pytest.fixture
def kv_namespace(dualcache_env: DualCacheEnv) -> KVNamespace:
    """The env's Workers KV namespace (limits enforced, every operation recorded)."""
    return dualcache_env.kv


@pytest.fixture
def do_cache(dualcache_env: DualCacheEnv) -> DurableObjectCache:
    """The env's Durable Object cache."""
    assert dualcache_env.do is not None
    return dualcache_env.do


@pytest.fixture
def dualcache_flag(dualcache_env: DualCacheEnv) -> FeatureFlag:
    """The env's DO-cache feature flag: ``enable()``, ``disable()``, ``enabled``."""
    return dualcache_env.flag


@pytest.fixture
def dualcache_workers_env(dualcache_env: DualCacheEnv) -> WorkersEnv:
    """The same env as a Python Worker sees it: async bindings with JS names, string vars."""
    return dualcache_env.workers()
