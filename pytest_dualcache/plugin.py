"""pytest wiring for dualcache: options, ini keys, fixtures and hooks, nothing else.

Nothing here imports a backend at import time: the emulators load when a fixture first
asks for them, and the contract suite only under ``--dualcache``, so a session that never
uses them pays for this module and ``settings`` alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .recorder import Recorder
from .settings import SETTINGS, DualCacheSettings, given, resolve_settings

if TYPE_CHECKING:
    from .clock import VirtualClock
    from .durable import DurableObjectCache
    from .env import DualCacheEnv, FeatureFlag
    from .kv import KVNamespace
    from .latency import RequestRecorder
    from .rest import CloudflareAPI
    from .runtime.worker import WorkerClient
    from .workers import WorkersEnv

SETTINGS_KEY = pytest.StashKey[DualCacheSettings]()
#: The ContractHarness of a running contract test, for its failure report.
CONTRACT_HARNESS_KEY = pytest.StashKey[Any]()
KV_SESSION_KEY = pytest.StashKey[Any]()
#: The session's Recorder (every ledger made during it joins it), and the one it replaced.
RECORDER_KEY = pytest.StashKey[Recorder]()
PREVIOUS_RECORDER_KEY = pytest.StashKey[Recorder]()
SUITE_IDS_KEY = pytest.StashKey[list[str]]()  # suite node ids named on the command line
#: True when this session installed the workers/pyodide/js import hook (and so removes it).
SHIM_INSTALLED_KEY = pytest.StashKey[bool]()
#: A test's ``dualcache_env.request`` blocks (with the latency model on), for its report.
REQUESTS_KEY: pytest.StashKey[RequestRecorder] = pytest.StashKey()

CONTRACTS_PACKAGE = "pytest_dualcache.contracts"
# Contract modules import the emulators; rewrite their asserts like test modules'.
pytest.register_assert_rewrite(CONTRACTS_PACKAGE)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dualcache", "two-tier cache (Durable Object + Workers KV) testing")
    for setting in SETTINGS.values():
        if setting.ini is not None:
            # No default here: unset reads as blank, and the resolver applies SETTINGS' default.
            parser.addini(setting.ini, setting.help_text(), type=setting.ini_type)
        if setting.option is None:
            continue
        extra: dict[str, Any] = {"action": setting.action} if setting.action else {}
        if setting.metavar:
            extra["metavar"] = setting.metavar
        if setting.parse:
            extra["type"] = setting.parse
        # argparse formats help with %: a literal one ("10%") must be doubled.
        group.addoption(setting.option, help=setting.help_text().replace("%", "%%"), **extra)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "dualcache_clause(id): the dual-cache contract clause a test proves"
    )
    config.addinivalue_line(
        "markers",
        "dualcache_waived(factory, clause, reason): a contract clause the factory waives "
        "(set by dualcache on the suite's tests)",
    )
    config.addinivalue_line(
        "markers",
        "kv_budget(writes=None, deletes=None, lists=None, reads=None, per='test'): most KV "
        "operations of each kind the test may make, per test or per simulated UTC day "
        "(checked under --dualcache)",
    )
    config.addinivalue_line(
        "markers",
        "dualcache_slo(do_hit_rate=None, do_write_share=None, kv_errors=None, "
        "kv_writes_per_day=None, p95_ms=None): success criteria the test must meet: rates at "
        "least, counts at most (checked under --dualcache)",
    )
    config.addinivalue_line(
        "markers",
        "dualcache_workload(scale=1.0, name=None): the test simulates production traffic at "
        "1/scale of its volume; the KV report projects its month's Cloudflare bill (under "
        "--dualcache; name defaults to the node id)",
    )
    if config.getoption("help", default=False):
        return  # --help must work even when an ini value is broken
    settings = resolve_settings(config, before_user_code=lambda known: _install_shim(config, known))
    config.stash[SETTINGS_KEY] = settings
    if settings.redis_url:
        from .durable import forget_lost_servers

        forget_lost_servers()  # a session nested in another (pytester) starts with none lost
    if settings.enabled and settings.wrangler is not None:
        from .runtime.worker import load_worker

        load_worker(settings.wrangler)  # a missing class or module stops the session here
    if settings.enabled and not hasattr(config, "workerinput"):  # xdist: checked already
        from .factories import check_factories

        check_factories(settings.factories, settings)
    # Each session records on its own: one nested in another (pytester) neither sees nor
    # feeds the outer one's scopes and classification.
    recorder = Recorder()
    config.stash[RECORDER_KEY] = recorder
    config.stash[PREVIOUS_RECORDER_KEY] = recorder.activate()
    if not settings.enabled:
        return
    from .contracts.paths import SUITE_NODEID
    from .pytest_compromises import take_suite_node_ids
    from .session import KVSession

    # Node ids of the suite given on the command line (pasted from a report) name no file
    # on disk: take them out of the paths to collect and select the suite's items with them.
    suite_ids = take_suite_node_ids(config, SUITE_NODEID)
    if suite_ids:
        config.stash[SUITE_IDS_KEY] = suite_ids
    session = KVSession(config, settings, recorder)
    config.stash[KV_SESSION_KEY] = session
    config.pluginmanager.register(session, "dualcache-session")


def _install_shim(config: pytest.Config, settings: DualCacheSettings) -> None:
    """Make the workers/pyodide/js modules importable for the session, when settings say so,
    before any factory module (which may import them) is imported."""
    if settings.workers_shim:
        from .runtime import importer

        config.stash[SHIM_INSTALLED_KEY] = not importer.is_installed()
        importer.install()


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After a test (its env closed), stop the session if the real Redis server was lost:
    later tests would run against no DO at all, and their results would not mean what they say.
    Before its fixtures end, a ``dualcache_worker`` test notes the next test (see the fixture).
    """
    from .shared_freeze import note_next_item

    note_next_item(item, nextitem)
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
    if config.stash.get(SHIM_INSTALLED_KEY, False):
        from .runtime import importer

        importer.uninstall()
    previous = config.stash.get(PREVIOUS_RECORDER_KEY, None)
    if previous is not None:
        Recorder.restore(previous)
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is not None and settings.redis_url:
        from .durable import close_server_clients

        close_server_clients()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    """Under ``--dualcache``, add the shipped contract suite (before -k, -m and --lf select)."""
    config = session.config
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.enabled:
        return
    chosen = config.stash.get(SUITE_IDS_KEY, [])
    if not (chosen or settings.suite or _arguments_add_the_suite(config)):
        return
    from .contracts import collected_suite

    items.extend(collected_suite(session, chosen))


def _arguments_add_the_suite(config: pytest.Config) -> bool:
    """No path (``testpaths`` or the current directory) or a directory argument adds the suite;
    file and node-id arguments name the tests wanted, and do not.
    """
    if config.args_source != pytest.Config.ArgsSource.ARGS or not config.args:
        return True
    here = config.invocation_params.dir
    return any("::" not in arg and (here / arg).is_dir() for arg in config.args)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.enabled:
        return None
    factories = ", ".join(settings.factories)
    engine = settings.do_engine + (f" on {settings.redis_url}" if settings.redis_url else "")
    lines = [
        f"dualcache: KV plan {settings.kv_plan}, DO engine {engine}, "
        f"bindings {settings.names.do}/{settings.names.kv}, flag {settings.names.flag}; "
        f"contract suite against: {factories}"
    ]
    if not settings.factories_registered:
        from .factories import REGISTER_HINT

        lines.append(
            "dualcache: NO DAL FACTORY REGISTERED: the contract suite tests the bundled "
            f"reference CacheAbstraction, not your DAL; {REGISTER_HINT}"
        )
    return lines


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or settings.enabled:
        return
    reports = [report for reports in terminalreporter.stats.values() for report in reports]
    keywords = [getattr(report, "keywords", ()) for report in reports]
    if settings.kv_budget_spec or any("kv_budget" in words for words in keywords):
        terminalreporter.write_line(
            "dualcache: KV budgets were not checked (run with --dualcache to enforce them)"
        )
    if given(config, "slo") or any("dualcache_slo" in words for words in keywords):
        terminalreporter.write_line(
            "dualcache: SLO gates were not checked (run with --dualcache to enforce them)"
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
    """A fresh Worker env: KV namespace, DO cache, flag var (``"true"``), on the test's clock.

    With ini ``dualcache_latency`` on, its stores spend the model's latencies and
    ``dualcache_env.request(name)`` times blocks into the test's report; never in a test of
    the contract suite (``dualcache_clause``), whose clauses' timing must not change.
    """
    from .env import DualCacheEnv

    settings = _settings(request)
    latency = settings.latency
    if request.node.get_closest_marker("dualcache_clause") is not None:
        latency = None
    requests = None
    if latency is not None:
        from .latency import RequestRecorder

        requests = request.node.stash.setdefault(REQUESTS_KEY, RequestRecorder())
    env = DualCacheEnv.from_settings(settings, dualcache_clock, latency=latency, requests=requests)
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
def dualcache_worker(
    request: pytest.FixtureRequest, dualcache_env: DualCacheEnv, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WorkerClient]:
    """The Worker of the wrangler config on the test's env: ``fetch(path, method=...,
    headers=..., body=...)``, ``await fetch_async(...)``, ``scheduled(cron=...)``,
    ``durable_object(binding, name)``, ``storage(binding, name)``, ``restart(binding, name)``.

    The Worker and its Durable Objects read the test's clock (``time.time()``,
    ``datetime.now()``): a ``dualcache_clock.freeze()`` lasts as long as the fixture, and is
    handed on to the next test if that one uses the fixture too. ``time.sleep`` and
    ``asyncio.sleep`` advance that clock instead of blocking, as in the contract suite.
    """
    wrangler = _settings(request).wrangler
    if wrangler is None:
        from .settings import WRANGLER_CONFIG_NAMES

        pytest.fail(
            "dualcache_worker needs a wrangler config: none of "
            f"{', '.join(WRANGLER_CONFIG_NAMES)} is in the rootdir ({request.config.rootpath}) "
            "and ini dualcache_wrangler_config names none",
            pytrace=False,
        )
    from . import shared_freeze
    from .runtime.worker import WorkerClient

    client = WorkerClient(dualcache_env, wrangler)
    shared_freeze.follow(request.config, dualcache_env.clock)
    shared_freeze.sleep_on(monkeypatch, dualcache_env.clock)
    yield client
    client.close()
    shared_freeze.release(request.node)


@pytest.fixture
def cloudflare_api(
    request: pytest.FixtureRequest, dualcache_env: DualCacheEnv
) -> Iterator[CloudflareAPI]:
    """Cloudflare's KV REST API over the env's namespaces; httpx, requests and aiohttp reach it.

    Other hosts are refused (loopback and your respx/responses/aioresponses mocks excepted); ``url``
    serves the same API on a loopback socket for other processes. Needs the ``[rest]`` extra.
    """
    from .rest.fixture import cloudflare_api_fixture

    wrangler = _settings(request).wrangler
    wrangler_ids = wrangler.kv_namespace_ids() if wrangler is not None else None
    yield from cloudflare_api_fixture(request, dualcache_env, wrangler_ids=wrangler_ids)


@pytest.fixture
def kv_budget() -> Any:
    """``with kv_budget(writes=3): ...`` fails the test if the block makes more KV writes.

    Counts every KV namespace's successful operations of each kind (``writes``,
    ``deletes``, ``lists``, ``reads``) made inside the block; ``per="day"`` applies the
    limits to each UTC day of the virtual clock. Enforced with or without ``--dualcache``.
    """
    from .budget import failing_kv_budget

    return failing_kv_budget
