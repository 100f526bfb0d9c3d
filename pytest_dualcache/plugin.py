"""pytest wiring for dualcache: options, ini keys, fixtures and hooks, nothing else.

Nothing here imports a backend at import time: the emulators load when a fixture first
asks for them, and the contract suite only under ``--dualcache``, so a session that never
uses them pays for this module and ``settings`` alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
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
KV_SESSION_KEY = pytest.StashKey[Any]()
NESTED_KEY = pytest.StashKey[bool]()  # a session started while another one's ledgers live
SUITE_IDS_KEY = pytest.StashKey[list[str]]()  # suite node ids named on the command line

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
    group.addoption(
        "--dualcache-redis-url",
        metavar="URL",
        help="run the DO cache's redis engine on this server (default: $DUALCACHE_REDIS_URL, "
        "else an in-process fakeredis); each env gets its own key prefix and cleans up",
    )
    group.addoption(
        "--dualcache-report",
        metavar="PATH",
        help="write the KV report (per test and totals) as JSON to PATH",
    )
    group.addoption(
        "--dualcache-save-baseline",
        metavar="PATH",
        help="save per-test and total KV writes as a baseline to commit on the main branch",
    )
    group.addoption(
        "--dualcache-baseline",
        metavar="PATH",
        help="fail the session when KV writes grew beyond the baseline at PATH",
    )
    group.addoption(
        "--dualcache-max-growth",
        metavar="N|P%",
        help="KV writes a test (or the total) may grow by over the baseline: a count or a "
        "percentage (default: 0)",
    )
    for name, (default, help_text) in INI_KEYS.items():
        parser.addini(name, f"{help_text} (default: {default})", default=default)
    parser.addini(
        "dualcache_factory",
        "DAL factories for the contract suite, one [NAME=]MODULE:CALLABLE per line",
        type="linelist",
        default=[],
    )
    parser.addini(
        "dualcache_kv_budget",
        "default KV budget of every test under --dualcache, e.g. writes=50/day",
        default="",
    )
    parser.addini(
        "dualcache_dal_modules",
        "modules (and their submodules) whose KV writes count as via the cache layer",
        type="linelist",
        default=[],
    )
    parser.addini(
        "dualcache_kv_allow",
        "callers allowed to write KV directly: globs on path::function, one per line",
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
    config.addinivalue_line(
        "markers",
        "kv_budget(writes=None, deletes=None, lists=None, reads=None, per='test'): most KV "
        "operations of each kind the test may make, per test or per simulated UTC day "
        "(checked under --dualcache)",
    )
    if config.getoption("help", default=False):
        return  # --help must work even when an ini value is broken
    settings = resolve_settings(config)
    config.stash[SETTINGS_KEY] = settings
    if settings.redis_url:
        from .durable import forget_lost_servers

        forget_lost_servers()  # a session nested in another (pytester) starts with none lost
    gate_options = [
        "--dualcache-report",
        "--dualcache-save-baseline",
        "--dualcache-baseline",
        "--dualcache-max-growth",
    ]
    if not settings.enabled:
        given = [o for o in gate_options if config.getoption(o.lstrip("-").replace("-", "_"))]
        if given:
            raise pytest.UsageError(f"{', '.join(given)} only work together with --dualcache")
        ledger = sys.modules.get("pytest_dualcache.ledger")
        if ledger is not None:  # a session inside another (pytester): keep them apart
            ledger.enter_session(None)
            config.stash[NESTED_KEY] = True
        return
    from .budget import BudgetError, KVBudget
    from .factories import registered_factories
    from .session import KVSession
    from .session import gate_options as read_gate_options

    factories = registered_factories(config)
    config.stash[FACTORIES_KEY] = factories
    # Node ids of the suite given on the command line (pasted from a report) name no file
    # on disk: take them out of the paths to collect and select the suite's items with them.
    named = [(arg, _suite_node_id(config, arg)) for arg in config.args]
    suite_ids = [node for _, node in named if node is not None]
    if suite_ids:
        config.args[:] = [arg for arg, node in named if node is None]
        config.stash[SUITE_IDS_KEY] = suite_ids
    try:
        default_budget = KVBudget.parse(
            config.getini("dualcache_kv_budget"), "ini dualcache_kv_budget"
        )
    except BudgetError as exc:
        raise pytest.UsageError(str(exc)) from None
    modules = {getattr(factory, "__module__", None) for factory in factories.values()}
    modules.update(config.getini("dualcache_dal_modules"))
    session = KVSession(
        config,
        default_budget=default_budget,
        dal_modules=tuple(sorted(name for name in modules if name)),
        allowed_callers=config.getini("dualcache_kv_allow"),
        gate=read_gate_options(config),
    )
    config.stash[KV_SESSION_KEY] = session
    config.pluginmanager.register(session, "dualcache-session")


def _suite_node_id(config: pytest.Config, arg: str) -> str | None:
    """The suite node id ``arg`` names, or None if it names none.

    Reports show the suite's node ids relative to the current directory, which is not always
    the rootdir the ids are relative to (``pytest -c sub/pytest.ini`` from above ``sub``):
    both forms name it.
    """
    from .contracts.paths import SUITE_NODEID

    path, separator, rest = arg.partition("::")
    if path != SUITE_NODEID:
        try:
            shown_from = config.invocation_params.dir
            path = (shown_from / path).resolve().relative_to(config.rootpath.resolve()).as_posix()
        except (ValueError, OSError, RuntimeError):  # outside the rootdir, or unresolvable
            return None
    return SUITE_NODEID + separator + rest if path == SUITE_NODEID else None


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """After a test (its env closed), stop the session if the real Redis server was lost:
    later tests would run against no DO at all, and their results would not mean what they say.
    """
    result = yield
    settings = item.config.stash.get(SETTINGS_KEY, None)
    if settings is not None and settings.redis_url and not item.session.shouldstop:
        from .durable import lost_servers

        lost = lost_servers()
        if lost:
            item.session.shouldstop = (
                f"dualcache: {lost[0]}; stopping the session, since the DO cache of every "
                "later test would be gone"
            )
    return result


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(KV_SESSION_KEY, None)
    if session is not None:
        session.unconfigure()
    elif config.stash.get(NESTED_KEY, False):
        sys.modules["pytest_dualcache.ledger"].leave_session()
    durable = sys.modules.get("pytest_dualcache.durable")
    settings = config.stash.get(SETTINGS_KEY, None)
    if durable is not None and settings is not None and settings.redis_url:
        durable.close_server_clients()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    """Under ``--dualcache``, add the shipped contract suite (before -k, -m and --lf select).

    Not when the command line names only node ids (``file.py::test``): those tests were chosen.
    """
    config = session.config
    if FACTORIES_KEY not in config.stash:
        return
    chosen = config.stash.get(SUITE_IDS_KEY, [])
    if not chosen and (
        config.args_source == pytest.Config.ArgsSource.ARGS
        and config.args
        and all("::" in arg for arg in config.args)
    ):
        return
    from .contracts import collected_suite
    from .contracts.paths import SUITE_NODEID

    suite = list(collected_suite(session))
    if chosen:
        suite = [item for item in suite if any(_selects(node, item.nodeid) for node in chosen)]
    # Announced like any collected module's items: "collected N items / M deselected"
    # counts them, and plugins that follow pytest_itemcollected see them.
    for item in suite:
        session.ihook.pytest_itemcollected(item=item)
    session.ihook.pytest_collectreport(
        report=pytest.CollectReport(SUITE_NODEID, "passed", None, suite)
    )
    items.extend(suite)


def _selects(chosen: str, nodeid: str) -> bool:
    return nodeid == chosen or nodeid.startswith((chosen + "::", chosen + "["))


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.enabled:
        return None
    factories = ", ".join(config.stash.get(FACTORIES_KEY, {}))
    engine = settings.do_engine + (f" on {settings.redis_url}" if settings.redis_url else "")
    return (
        f"dualcache: KV plan {settings.kv_plan}, DO engine {engine}, "
        f"bindings {settings.names.do}/{settings.names.kv}, flag {settings.names.flag}; "
        f"contract suite against: {factories}"
    )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or settings.enabled:
        return
    reports = (report for reports in terminalreporter.stats.values() for report in reports)
    if config.getini("dualcache_kv_budget").strip() or any(
        "kv_budget" in getattr(report, "keywords", ()) for report in reports
    ):
        terminalreporter.write_line(
            "dualcache: KV budgets were not checked (run with --dualcache to enforce them)"
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


@pytest.fixture
def kv_budget() -> Any:
    """``with kv_budget(writes=3): ...`` fails the test if the block makes more KV writes.

    Counts every KV namespace's successful operations of each kind (``writes``,
    ``deletes``, ``lists``, ``reads``) made inside the block; ``per="day"`` applies the
    limits to each UTC day of the virtual clock. Enforced with or without ``--dualcache``.
    """
    from .budget import failing_kv_budget

    return failing_kv_budget
