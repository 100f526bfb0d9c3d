"""The Python Worker example (examples/workers_app): the seed's DualCacheDO as the team's own
Durable Object class meets every clause of the contract through its stub, and the Worker's
own tests pass through ``dualcache_worker``; read from the session's JSON report."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from pytest_dualcache.contracts import CLAUSES

CLAUSE_OF_TEST = re.compile(r"::test_([A-Z]+)(?:_(\d+))?_")


def test_the_durable_object_class_meets_every_clause_and_the_worker_tests_pass(
    copy_example: Callable[..., pytest.Pytester], quick_suite_examples: str
) -> None:
    pytester = copy_example("workers_app")
    result = pytester.runpytest_subprocess(
        "--dualcache", "--dualcache-report=report.json", "-p", "no:randomly", quick_suite_examples
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    assert set(result.parseoutcomes()) == {"passed"}, result.parseoutcomes()
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["factories"] == {"names": ["worker"], "registered": True}
    groups = {data["group"] for data in report["tests"].values()}
    clauses = {
        match.group(1) if match.group(2) is None else f"{match.group(1)}-{match.group(2)}"
        for nodeid in report["tests"]
        if (match := CLAUSE_OF_TEST.search(nodeid))
    }
    assert groups == {"application", "contract"} and set(CLAUSES) <= clauses
    assert report["groups"]["contract"]["do_calls"]["rpc"] > 0  # through the stub
    assert report["groups"]["application"]["tests"] == 8
