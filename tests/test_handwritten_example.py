"""The hand-written DAL example (examples/handwritten_dal) passes the whole contract suite.

It is written from scratch by docs/contract.md, without the reference CacheAbstraction or
any of its parts, so this is the proof that the contract can be learned from the document:
every contract test passes against it (none fails, errors, skips or runs as xfail), every
clause of ``CLAUSES`` has at least one passing test, and the team's own tests pass too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_dualcache.contracts import CLAUSES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "handwritten_dal"
CONTRACT_TEST = re.compile(
    r"contracts/test_registered\.py::\S+::test_([A-Z]+)(?:_(\d+))?_\w*\[handwritten\b\S*\s+PASSED"
)


@pytest.fixture
def example(copy_example: Callable[..., pytest.Pytester]) -> pytest.Pytester:
    """The pytester directory holding a copy of the example project (its ini file included)."""
    return copy_example("handwritten_dal")


def test_handwritten_dal_passes_every_contract_test(
    example: pytest.Pytester, quick_suite_examples: str
) -> None:
    result = example.runpytest_subprocess(
        "--dualcache", "-v", "-p", "no:cacheprovider", "-p", "no:randomly", quick_suite_examples
    )
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.OK, output[-3000:]
    outcomes = result.parseoutcomes()
    for outcome in ("failed", "errors", "skipped", "xfailed", "xpassed"):
        assert outcomes.get(outcome, 0) == 0, f"{outcomes}\n{output[-3000:]}"
    passed_clauses = {
        match.group(1) if match.group(2) is None else f"{match.group(1)}-{match.group(2)}"
        for match in CONTRACT_TEST.finditer(output)
    }
    missing = set(CLAUSES) - passed_clauses
    assert not missing, f"clauses without a passing test: {sorted(missing)}"
    contract = re.findall(r"test_registered\.py::\S+\[handwritten\S*\s+PASSED", output)
    app_tests = re.findall(r"tests/test_app\.py::\w+ PASSED", output)
    assert len(app_tests) == 3, output[-3000:]
    assert len(contract) + len(app_tests) == outcomes["passed"], output[-3000:]


def test_handwritten_dal_imports_nothing_of_the_reference() -> None:
    source = (EXAMPLE / "handwritten" / "dal.py").read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not {name for name in imported if name.startswith("pytest_dualcache")}, imported


#: The hand-written DAL with the bug LOC-1's DO-refused test names: stamps of time alone.
TIME_ONLY_STAMPS = """
    from handwritten.dal import HandwrittenDAL


    class TimeOnlyStamps(HandwrittenDAL):
        def _stamp(self):
            return [self._now(), 0]


    def make_dal(env):
        return TimeOnlyStamps(env)
"""


def test_a_dal_stamping_by_time_alone_is_told_of_the_same_instant_tie(
    example: pytest.Pytester,
) -> None:
    example.makepyfile(time_only=TIME_ONLY_STAMPS)
    result = example.runpytest_inprocess(
        "--dualcache",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "--dualcache-factory=timeonly=time_only:make_dal",
        "-k",
        "LOC_1_put_the_do_refused and timeonly",
    )
    result.assert_outcomes(failed=1, passed=1)  # an outage hides the DO's "v1": no tie read
    result.stdout.fnmatch_lines(
        ["*got 'v1'. Both puts were made at the same virtual instant*sequence number*"]
    )
