"""The contract suite catches every deliberately broken DAL in ``examples/broken/``.

One in-process run of ``pytest --dualcache`` with every broken factory and the reference
registered at once: the reference runs every clause and must fail nothing; each broken DAL
runs the clause it breaks, and at least one of those tests must fail.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

# pytester restores sys.modules after an in-process run: preloading what hypothesis's
# terminal summary imports keeps the run from re-importing hypothesis.
import hypothesis.internal.observability  # noqa: F401
import pytest
from hypothesis import Phase, settings

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "reference=pytest_dualcache.abstraction:CacheAbstraction"
NO_SHRINK = "dualcache-broken-dals"
FIND_ONLY = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target)


def broken_dals() -> dict[str, str]:
    """``examples.broken.EXPECTED``: read from its file, as the examples are not installed."""
    path = REPO_ROOT / "examples" / "broken" / "__init__.py"
    spec = importlib.util.spec_from_file_location("_broken_dals_expected", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.EXPECTED)


EXPECTED = broken_dals()


@dataclass(frozen=True)
class SuiteRun:
    """What the one contract run produced: node ids collected and node ids that failed."""

    collected: tuple[str, ...]
    failed: tuple[str, ...]


def factory_of(nodeid: str) -> str:
    """The factory a contract test ran against: the first part of its parameter id."""
    params = nodeid.rpartition("::")[2].partition("[")[2].rstrip("]")
    return params.split("-")[0]


def of_factory(nodeids: tuple[str, ...], factory: str, clause_id: str = "") -> list[str]:
    """The node ids among ``nodeids`` that test ``clause_id`` (any clause if empty) on ``factory``.

    A clause's tests are named for it: "TTL-6" -> ``test_TTL_6_...``.
    """
    prefix = f"test_{clause_id.replace('-', '_')}_" if clause_id else "test_"
    return [
        nodeid
        for nodeid in nodeids
        if factory_of(nodeid) == factory and nodeid.rpartition("::")[2].startswith(prefix)
    ]


def selection() -> str:
    """``-k``: every test of the reference, and each broken DAL's tests of its clause.

    A broken DAL's other clauses say nothing about the bug it carries, and running all of
    them for fifteen DALs is what made this module slow.
    """
    wanted = [
        f"({name} and test_{clause_id.replace('-', '_')}_)" for name, clause_id in EXPECTED.items()
    ]
    return " or ".join(["reference", *wanted])


def run_suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, examples: str
) -> SuiteRun:
    """Run the contract suite once against every broken DAL and the reference."""
    monkeypatch.syspath_prepend(str(REPO_ROOT))  # examples.broken, for the factory specs
    factories = [f"--dualcache-factory={name}=examples.broken.{name}:make_dal" for name in EXPECTED]
    # Shrinking a broken DAL's failing property or state-machine run only polishes the
    # example and costs minutes; whether it fails is all this run needs. The contract's
    # settings inherit the profile loaded at the time, and the outer session's comes back.
    previous = settings.get_current_profile_name()
    settings.register_profile(NO_SHRINK, settings.default, phases=FIND_ONLY)
    settings.load_profile(NO_SHRINK)
    try:
        reprec = pytester.inline_run(
            "--dualcache",
            examples,
            f"--dualcache-factory={REFERENCE}",
            *factories,
            "-k",
            selection(),
        )
    finally:
        settings.load_profile(previous)
    reports = reprec.getreports("pytest_runtest_logreport")
    collected = tuple(report.nodeid for report in reports if report.when == "setup")
    # A strict xfail (a known reference bug) that passes for a DAL without that bug fails the
    # run as XPASS(strict); it says nothing about the clause the DAL breaks, so leave it out.
    failed = tuple(
        report.nodeid
        for report in reports
        if report.failed and not str(report.longrepr).startswith("[XPASS(strict)]")
    )
    return SuiteRun(collected, failed)


def test_every_broken_dal_fails_its_clause_and_the_reference_fails_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, quick_suite_examples: str
) -> None:
    # One test, not one per DAL: the run is the cost (a whole suite run), and xdist would
    # make it once per worker that got one of them.
    from pytest_dualcache.contracts import CLAUSES

    run = run_suite(pytester, monkeypatch, quick_suite_examples)
    not_run, not_caught = [], []
    for name, clause_id in EXPECTED.items():
        collected = of_factory(run.collected, name, clause_id)
        if not collected:
            not_run.append(f"{name}: no contract test of {clause_id} ran")
        elif not of_factory(run.failed, name, clause_id):
            not_caught.append(f"{name} breaks {clause_id}, but all {len(collected)} passed")
    assert not_run == [] and not_caught == [], "\n".join(not_run + not_caught)
    ran = of_factory(run.collected, "reference")
    assert {c for c in CLAUSES if of_factory(tuple(ran), "reference", c)} == set(CLAUSES), (
        "the reference runs every clause"
    )
    assert of_factory(run.failed, "reference") == []
