"""``DualCacheContract``: every clause in one class, for a DAL plugged in through ``make_dal``."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from pytest_dualcache import shared_freeze
from pytest_dualcache.plugin import CONTRACT_HARNESS_KEY, SETTINGS_KEY
from pytest_dualcache.settings import DualCacheSettings

from .clauses import clause_guide, clause_header
from .fallback import FallbackClauses
from .flip import FlipClauses
from .harness import ContractHarness, Factory
from .local_cache import LocalCacheClauses
from .serialization import SerializationClauses
from .state import StateMachineClauses
from .ttl import TTLClauses


class ClauseReporter:
    """Adds the broken clause and the operations to a failed contract test's report.

    Registered by the first contract test of a session, so other sessions pay nothing.
    """

    name = "dualcache-clause-reporter"

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        marker = item.get_closest_marker("dualcache_clause")
        if report.failed and call.when == "call" and marker is not None:
            harness = item.stash.get(CONTRACT_HARNESS_KEY, None)
            story = harness.transcript() if harness is not None else "(no operations recorded)"
            story += "\n\n" + clause_guide(marker.args[0])
            title = clause_header(marker.args[0])
            if hasattr(report.longrepr, "addsection"):
                report.longrepr.addsection(title, story)  # type: ignore[union-attr]
            else:
                report.longrepr = f"{title}\n{report.longrepr}\n\n{story}"
        return report


class DualCacheContract(
    TTLClauses,
    SerializationClauses,
    FallbackClauses,
    LocalCacheClauses,
    FlipClauses,
    StateMachineClauses,
):
    """The whole dual-cache contract. Subclass it and override the ``make_dal`` fixture::

        class TestMyDAL(DualCacheContract):
            @pytest.fixture
            def make_dal(self):
                return lambda env: MyDAL(env)

    ``make_dal(env)`` gets a ``DualCacheEnv`` and returns a DAL with ``put(key, value,
    ttl=...)``, ``get(key)`` and ``delete(key)``, plain or ``async def``. During each test
    ``time.time()``, ``datetime.now()`` and the rest read the env's virtual clock (one
    freezegun freeze, shared by consecutive contract tests), unless the factory sets
    ``dualcache_real_time = True``.
    """

    @pytest.fixture
    def make_dal(self) -> Factory:
        """The DAL factory under test: override this fixture in your subclass."""
        pytest.fail(
            f"{type(self).__name__} must override the make_dal fixture to return a factory "
            "make_dal(env) -> dal",
            pytrace=False,
        )

    @pytest.fixture
    def contract(
        self, make_dal: Factory, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[ContractHarness]:
        """The harness every clause drives, on a clock the DAL reads; sleeping advances it."""
        settings = request.config.stash.get(SETTINGS_KEY, DualCacheSettings())
        harness = ContractHarness(make_dal, settings)
        # A DAL that backs off with a plain sleep stays fast: time moves, nothing blocks.
        shared_freeze.sleep_on(monkeypatch, harness.clock)
        request.node.stash[CONTRACT_HARNESS_KEY] = harness
        if not request.config.pluginmanager.has_plugin(ClauseReporter.name):
            request.config.pluginmanager.register(ClauseReporter(), ClauseReporter.name)
        # The DAL's time.time(), datetime.now() and the like read the harness's clock. The
        # event loop keeps real time; asyncio.sleep above is what moves the virtual clock.
        # One freeze shared with the tests around this one (see shared_freeze); a factory on
        # real time runs without.
        if harness.real_time:
            shared_freeze.stop(request.config)
        else:
            shared_freeze.follow(request.config, harness.clock)
        yield harness
        harness.close()  # first: its clock reads the freeze until the freeze moves on
        if not harness.real_time:
            shared_freeze.release(request.node)
