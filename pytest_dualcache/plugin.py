"""pytest wiring for dualcache: options, ini keys, fixtures and hooks, nothing else.

Nothing here imports a backend at import time: the emulators load when a fixture first
asks for them, and the contract suite only under ``--dualcache``, so a session that never
uses them pays for this module and ``settings`` alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .settings import INI_KEYS, DualCacheSettings, resolve_settings

if TYPE_CHECKING:
    from .clock import VirtualClock
    from .durable import DurableObjectCache
    from .env import DualCacheEnv, FeatureFlag
    from .kv import KVNamespace
    from .workers import WorkersEnv

SETTINGS_KEY = pytest.StashKey[DualCacheSettings]()
FACTORIES_KEY = pytest.StashKey[dict[str, Any]]()
#: The ContractHarness of a running contract test, for its failure report.
CONTRACT_HARNESS_KEY = pytest.StashKey[Any]()

CONTRACTS_PACKAGE = "pytest_dualcache.contracts"
# Contract modules import the emulators; rewrite their asserts like test modules'.
pytest.register_assert_rewrite(CONTRACTS_PACKAGE)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dualcache", "two-tier cache (Durable Object + Workers KV) testing")
    group.addoption(
        "--dualcache",
        action="store_true",
        default=False,
        help="run the dualcache contract suite against the registered DAL factories "
        "(the fixtures work without it)",
    )
    group.addoption(
        "--dualcache-factory",
        action="append",
        metavar="[NAME=]MODULE:CALLABLE",
        help="a DAL factory make_dal(env) for the contract suite (repeatable; replaces the "
        "dualcache_factory ini list)",
    )
    group.addoption(
        "--dualcache-examples",
        type=_positive_int,
        default=None,
        metavar="N",
        help="hypothesis examples per property and state-machine test (default: 25)",
    )
    for name, (default, help_text) in INI_KEYS.items():
        parser.addini(name, f"{help_text} (default: {default})", default=default)
    parser.addini(
        "dualcache_factory",
        "DAL factories for the contract suite, one [NAME=]MODULE:CALLABLE per line",
        type="linelist",
        default=[],
    )


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "dualcache_clause(id): the dual-cache contract clause a test proves"
    )
    if config.getoption("help", default=False):
        return  # --help must work even when an ini value is broken
    settings = resolve_settings(config)
    config.stash[SETTINGS_KEY] = settings
    if settings.enabled:
        from .factories import registered_factories

        config.stash[FACTORIES_KEY] = registered_factories(config)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    """Under ``--dualcache``, add the shipped contract suite (before -k, -m and --lf select)."""
    if FACTORIES_KEY not in session.config.stash:
        return
    from .contracts import collected_suite

    items.extend(collected_suite(session))


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.enabled:
        return None
    factories = ", ".join(config.stash.get(FACTORIES_KEY, {}))
    return (
        f"dualcache: KV plan {settings.kv_plan}, DO engine {settings.do_engine}, "
        f"bindings {settings.names.do}/{settings.names.kv}, flag {settings.names.flag}; "
        f"contract suite against: {factories}"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and call.when == "call":
        marker = item.get_closest_marker("dualcache_clause")
        harness = item.stash.get(CONTRACT_HARNESS_KEY, None)
        if marker is not None:
            from .contracts.clauses import clause_header

            story = harness.transcript() if harness is not None else "(no operations recorded)"
            title = clause_header(marker.args[0])
            if hasattr(report.longrepr, "addsection"):
                report.longrepr.addsection(title, story)  # type: ignore[union-attr]
            else:
                report.longrepr = f"{title}\n{report.longrepr}\n\n{story}"
    return report


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

    env = DualCacheEnv.from_settings(_settings(request), dualcache_clock)
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
