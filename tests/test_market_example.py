"""The market DAL example (examples/market_dal) and its CI workflow, as users run them.

The example runs from a copy, in a subprocess, with its own pyproject.toml: the contract
suite against the migrated and worker DALs and the simulated weeks must pass; the legacy
trading day must fail its budget with the seed's "before" figure and name its bypassing
call sites; every pytest command of the CI workflow must be one the plugin accepts.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "ci" / "dualcache.yml"
CONTRACT_TEST = re.compile(r"contracts/test_registered\.py::\S+::(test_\w+)\[(migrated|worker)\b")
LEGACY_SITES = {
    "tft_trading/legacy/kv_utils.py:put_with_ttl",
    "tft_trading/legacy/dal.py:_write",
}


LEGACY_DAY = "before_migration.py::test_legacy_trading_day_under_50_kv_writes"


@pytest.fixture
def example(copy_example: Callable[..., pytest.Pytester]) -> pytest.Pytester:
    """The pytester directory holding a copy of the example project (its ini file included)."""
    return copy_example("market_dal", "*.json")


def test_the_example_meets_its_contract_and_budgets_and_its_bill_shows_the_saving(
    example: pytest.Pytester, quick_suite_examples: str
) -> None:
    """One run of the example, as its README gives it, plus the legacy trading day, which
    must fail its budget: each part of what it shows is checked by a function below. One
    run, because the simulated weeks are most of its time and every check reads them."""
    # The legacy DAL's contract tests run as xfail (its factory declares the expected
    # failure) and nothing here reads them: deselected, they cost a third of this run.
    # CI's main job runs the whole example; tests/test_contract_plumbing.py checks the
    # expected-failure mechanism.
    result = example.runpytest_subprocess(
        "--dualcache",
        "-v",
        "-p",
        "no:cacheprovider",
        quick_suite_examples,
        "tests",
        LEGACY_DAY,
        "-k",
        "not (TestDualCacheContract and legacy)",
        "--dualcache-report=kv.json",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("deselected", 0) > 100, "only the legacy DAL's contract tests go"
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-3000:]
    assert (outcomes.get("failed"), outcomes.get("errors", 0)) == (1, 0)
    result.stdout.fnmatch_lines([f"FAILED {LEGACY_DAY} - *"])
    report = json.loads((example.path / "kv.json").read_text())
    check_the_migrated_dals_pass_the_contract_and_their_budgets(result)
    check_the_legacy_day_fails_its_budget_and_names_its_bypasses(result, report)
    check_the_bill_shows_the_migrations_saving(result, report)


def check_the_migrated_dals_pass_the_contract_and_their_budgets(result: pytest.RunResult) -> None:
    clauses: dict[str, set[str]] = {"migrated": set(), "worker": set()}
    for line in result.outlines:
        match = CONTRACT_TEST.search(line)
        if match and "PASSED" in line:
            clauses[match.group(2)].add(match.group(1))
    assert clauses["migrated"] and clauses["migrated"] == clauses["worker"]
    assert {name.split("_")[1] for name in clauses["worker"]} >= {"TTL", "SER", "FB", "FLIP"}
    # Each on a line of its own, in any order: an installed pytest-randomly (which the inner
    # run autoloads) shuffles the tests, and their order is not what this test is about.
    for passed in (
        "*test_a_trading_week_stays_under_50_kv_writes_a_day?migrated? PASSED*",
        "*test_a_trading_week_stays_under_50_kv_writes_a_day?worker? PASSED*",
        "*test_rollback_drill_mid_day_reports_its_kv_writes?migrated? PASSED*",
        "*test_rollback_drill_mid_day_reports_its_kv_writes?worker? PASSED*",
    ):
        result.stdout.fnmatch_lines([passed])
    # The legacy day is the only test over budget, and (below) every rejected bypass is its.
    result.stdout.fnmatch_lines(
        [
            "*= dualcache KV report =*",
            "KV operations: * writes*",
            "DO operations: *hit rate*",
            "writes by route: DO *",
            "KV writes bypassing the cache layer: * rejected, * allowed",
            "tests over budget: 1",
            f"  {LEGACY_DAY}",
        ],
        consecutive=False,
    )


def check_the_legacy_day_fails_its_budget_and_names_its_bypasses(
    result: pytest.RunResult, report: dict[str, Any]
) -> None:
    output = result.stdout.str()
    headline = re.search(
        r"expected at most 50 KV writes on 2026-01-0(\d) \(UTC\), (\d+) were made", output
    )
    assert headline, output[-3000:]
    day, made = int(headline.group(1)), int(headline.group(2))
    assert day == 5  # the clock's first day, Monday 2026-01-05
    assert 300 <= made <= 999  # the seed's "before": hundreds of KV writes a day
    rejected = {
        f"{path}:{function}": int(count)
        for count, path, function in re.findall(
            r"^  rejected: +(\d+) x put at (\S+?):\d+:(\w+)$", output, re.MULTILINE
        )
    }
    assert set(rejected) == LEGACY_SITES
    # Every rejected bypass of the session is the legacy day's: the migrated DALs make none.
    session_rejected = re.search(r"KV writes bypassing the cache layer: (\d+) rejected", output)
    assert session_rejected and int(session_rejected.group(1)) == sum(rejected.values())
    bypasses = report["tests"][LEGACY_DAY]["bypasses"]
    assert len(bypasses["rejected"]) == sum(rejected.values())
    # The day's other KV write is the analysis cache's route marker (through the cache layer).
    assert len(bypasses["rejected"]) + len(bypasses["allowed"]) == made - 1


def check_the_bill_shows_the_migrations_saving(
    result: pytest.RunResult, report: dict[str, Any]
) -> None:
    """At the declared scale (workload.INSTANCES) the legacy DAL's KV writes pass the Workers
    Paid allowance and the migrated DALs' stay far under it."""
    bill = report["bill"]
    workloads = bill["workloads"]
    assert set(workloads) == {"legacy", "migrated", "worker"}
    included = bill["total"]["included"]["kv_writes"]
    assert workloads["legacy"]["monthly"]["kv_writes"] > included
    for version in ("migrated", "worker"):
        assert workloads[version]["monthly"]["kv_writes"] < included / 10
        assert workloads[version]["gross_cents"] * 2 < workloads["legacy"]["gross_cents"]
    assert "kv_writes" in workloads["legacy"]["free_plan_crossed"]
    result.stdout.fnmatch_lines(["projected month (30 days at *", "  total: $* gross; *"])


# --- the CI workflow ---------------------------------------------------------------------------


def pytest_arguments(script: str) -> list[list[str]]:
    """The arguments of every pytest command in a ``run:`` script, in order."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for index, word in enumerate(words):
            if word == "pytest" or word.endswith("/pytest"):
                arguments = []
                for argument in words[index + 1 :]:
                    if argument in {"&&", "||", ";", "|"}:
                        break
                    arguments.append(argument)
                commands.append(arguments)
    return commands


def test_ci_workflow_gates_kv_writes_with_options_the_plugin_accepts(
    pytester: pytest.Pytester,
) -> None:
    import yaml  # PyYAML: part of the test extra

    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert "main" in triggers["push"]["branches"]
    assert "pull_request" in triggers
    jobs = workflow["jobs"]
    on_push = [job for job in jobs.values() if "'push'" in job.get("if", "")]
    on_pull_request = [job for job in jobs.values() if "'pull_request'" in job.get("if", "")]
    assert len(on_push) == len(on_pull_request) == 1

    (push_job,), (pull_request_job,) = on_push, on_pull_request
    push_runs = [pytest_arguments(step.get("run", "")) for step in push_job["steps"]]
    push_commands = [command for commands in push_runs for command in commands]
    assert push_commands == [["--dualcache", "--dualcache-save-baseline=kv-baseline.json"]]
    uploads = [step for step in push_job["steps"] if "upload-artifact" in step.get("uses", "")]
    assert uploads and uploads[0]["with"]["path"].endswith("kv-baseline.json")

    pr_steps = pull_request_job["steps"]
    download = next(i for i, step in enumerate(pr_steps) if "run download" in step.get("run", ""))
    gate = next(
        i for i, step in enumerate(pr_steps) if "--dualcache-baseline=" in step.get("run", "")
    )
    assert download < gate
    assert pytest_arguments(pr_steps[gate]["run"]) == [
        [
            "--dualcache",
            "--dualcache-baseline=kv-baseline.json",
            "--dualcache-report=kv-report.json",
        ]
    ]
    pr_commands = [
        command for step in pr_steps for command in pytest_arguments(step.get("run", ""))
    ]

    # Every command, main's first (it writes the baseline the pull-request one reads), run
    # with pytest's own parser and the plugin's option checks in a tiny project: a typo in
    # an option name or a value the plugin refuses fails here.
    pytester.makepyfile("def test_nothing():\n    pass\n")

    def accepted(arguments: list[str]) -> bool:
        options = [argument for argument in arguments if argument.startswith("-")]
        result = pytester.runpytest_inprocess(*options, "--co", "-q", "-p", "no:cacheprovider")
        return result.ret == pytest.ExitCode.OK

    for arguments in push_commands + pr_commands:
        assert all(argument.startswith("-") for argument in arguments), arguments
        assert accepted(arguments), f"the plugin refuses pytest {shlex.join(arguments)}"
    assert not accepted(["--dualcache", "--dualcache-baselin=kv-baseline.json"])
