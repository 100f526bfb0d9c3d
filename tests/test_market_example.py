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


def command_arguments(script: str, starts: Callable[[list[str], int], bool]) -> list[list[str]]:
    """The arguments of every command in a ``run:`` script whose word at an index makes
    ``starts(words, index)`` true, in order (up to a ``&&``, ``||``, ``;`` or ``|``)."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for index in range(len(words)):
            if starts(words, index):
                arguments = []
                for argument in words[index + 1 :]:
                    if argument in {"&&", "||", ";", "|"}:
                        break
                    arguments.append(argument)
                commands.append(arguments)
    return commands


def pytest_arguments(script: str) -> list[list[str]]:
    """The arguments of every pytest command in a ``run:`` script, in order."""
    return command_arguments(
        script, lambda words, i: words[i] == "pytest" or words[i].endswith("/pytest")
    )


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


# The sharded variant (dualcache-sharded.yml): pull requests only; main's baseline comes from
# dualcache.yml's push job, which the merge job downloads by that workflow's name.
SHARDED_WORKFLOW = ROOT / "examples" / "ci" / "dualcache-sharded.yml"
EXPRESSION = re.compile(r"\$\{\{\s*([\w.-]+)\s*\}\}")


def substituted(text: str, values: dict[str, str]) -> str:
    """``text`` with each ``${{ name }}`` replaced by ``values[name]`` (GitHub's expressions,
    given the concrete values a run would have); an expression not in ``values`` fails."""

    def value(match: re.Match[str]) -> str:
        assert match.group(1) in values, f"no value for {match.group(0)} in {text!r}"
        return values[match.group(1)]

    return EXPRESSION.sub(value, text)


def cli_arguments(script: str) -> list[list[str]]:
    """The arguments of every ``python -m pytest_dualcache`` command in a ``run:`` script."""
    return command_arguments(
        script, lambda words, i: i > 0 and words[i] == "pytest_dualcache" and words[i - 1] == "-m"
    )


def load_workflow(path: Path) -> dict[str, Any]:
    import yaml  # PyYAML: part of the test extra

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def shard_commands(workflow: dict[str, Any]) -> tuple[list[int], dict[int, list[list[str]]]]:
    """The shard job's matrix groups, and the pytest commands each group runs (the
    ``${{ }}`` expressions substituted as GitHub would)."""
    job = workflow["jobs"]["shards"]
    groups = job["strategy"]["matrix"]["group"]
    commands = {
        group: [
            command
            for step in job["steps"]
            for command in pytest_arguments(
                substituted(step.get("run", ""), {"matrix.group": str(group)})
            )
        ]
        for group in groups
    }
    return groups, commands


def test_sharded_ci_workflow_merges_the_shards_then_gates_and_posts_the_summary() -> None:
    import fnmatch

    from pytest_dualcache.cli import build_parser

    workflow = load_workflow(SHARDED_WORKFLOW)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert set(triggers) == {"pull_request"}  # main's baseline is dualcache.yml's
    env, jobs = workflow["env"], workflow["jobs"]

    # Each shard runs its half, marks its report I/N and uploads it.
    groups, commands = shard_commands(workflow)
    assert groups == [1, 2]
    total = len(groups)
    shard_jobs = jobs["shards"]
    assert shard_jobs["strategy"]["fail-fast"] is False  # every shard reports
    reports = []
    for group in groups:
        (command,) = commands[group]
        report = f"shard-{group}.json"
        assert command == [
            "--dualcache",
            f"--splits={total}",
            f"--group={group}",
            f"--dualcache-shard={group}/{total}",
            f"--dualcache-report={report}",
        ]
        (upload,) = [s for s in shard_jobs["steps"] if "upload-artifact" in s.get("uses", "")]
        values = {"matrix.group": str(group), "env.PROJECT": env["PROJECT"]}
        assert substituted(upload["with"]["path"], values) == f"{env['PROJECT']}/{report}"
        reports.append((substituted(upload["with"]["name"], values), report))
    assert len({name for name, _ in reports}) == total

    # The merge job waits for the shards, downloads every shard's report into one folder...
    job = jobs["merge-and-gate"]
    assert job["needs"] in ("shards", ["shards"])
    assert job["permissions"]["pull-requests"] == "write"
    assert job["permissions"]["actions"] == "read"  # main's baseline artifact
    steps = job["steps"]
    (download,) = [s for s in steps if "download-artifact" in s.get("uses", "")]
    assert download["uses"] == "actions/download-artifact@v4"
    assert download["with"]["merge-multiple"] is True
    assert all(fnmatch.fnmatch(name, download["with"]["pattern"]) for name, _ in reports)

    # ...then runs merge -> gate -> md, each a command line the CLI's own parser accepts.
    cli = [
        (i, arguments) for i, s in enumerate(steps) for arguments in cli_arguments(s.get("run", ""))
    ]
    parsed, gates = {}, []
    for index, arguments in cli:
        try:
            args = build_parser().parse_args(arguments)
        except SystemExit:
            pytest.fail(f"python -m pytest_dualcache refuses {shlex.join(arguments)}")
        parsed.setdefault(args.command, (index, args))
        gates += [args] if args.command == "gate" else []
    # With main's baseline the gate compares KV writes too; without one, the SLO gates only.
    assert [gate.baseline is None for gate in gates] == [False, True]
    assert len({gate.report for gate in gates}) == 1
    assert [args.command for _, args in sorted(parsed.values(), key=lambda p: p[0])] == [
        "merge",
        "gate",
        "md",
    ]
    (merge_at, merge), (gate_at, gate), (md_at, md) = (parsed[c] for c in ("merge", "gate", "md"))
    assert download_index(steps) < merge_at < gate_at < md_at
    (shard_glob,) = merge.shards
    assert all(fnmatch.fnmatch(report, str(shard_glob)) for _, report in reports)
    assert gate.report == md.report == merge.output
    # The gate reads the baseline dualcache.yml's push job saves, downloaded by name.
    baseline_step = next(s for s in steps[:gate_at] if "run download" in s.get("run", ""))
    assert '--workflow "$BASELINE_WORKFLOW"' in baseline_step["run"]
    assert '--name "$BASELINE_ARTIFACT"' in baseline_step["run"]
    main_workflow = load_workflow(SHARDED_WORKFLOW.parent / env["BASELINE_WORKFLOW"])
    main_env = {f"env.{name}": value for name, value in main_workflow["env"].items()}
    assert main_env["env.PROJECT"] == env["PROJECT"]
    (push_job,) = [j for j in main_workflow["jobs"].values() if "'push'" in j.get("if", "")]
    (saved,) = [s for s in push_job["steps"] if "upload-artifact" in s.get("uses", "")]
    assert substituted(saved["with"]["name"], main_env) == env["BASELINE_ARTIFACT"]
    assert substituted(saved["with"]["path"], main_env) == f"{env['PROJECT']}/{gate.baseline}"

    # The summary goes on the job page and, as one comment edited on each push, on the PR;
    # both also when the gate failed (a failed step skips the steps after it otherwise).
    md_step = steps[md_at]
    assert "!cancelled()" in md_step["if"]
    assert '>> "$GITHUB_STEP_SUMMARY"' in md_step["run"]
    (comment,) = [s for s in steps[md_at + 1 :] if "gh pr comment" in s.get("run", "")]
    assert "!cancelled()" in comment["if"]
    assert comment["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert comment["env"]["PR"] == "${{ github.event.pull_request.number }}"
    assert "--body-file" in comment["run"] and "--method PATCH" in comment["run"]
    assert str(md.output) in md_step["run"]


def download_index(steps: list[dict[str, Any]]) -> int:
    """Where the shard reports are downloaded in the merge job's steps."""
    return next(i for i, step in enumerate(steps) if "download-artifact" in step.get("uses", ""))


def test_sharded_ci_workflow_shards_split_every_test_once_with_options_the_plugin_accepts(
    pytester: pytest.Pytester,
) -> None:
    """Each shard's command, as GitHub runs it, in a tiny project: pytest, pytest-split and
    the plugin accept it, and the shards between them collect each test (the contract suite
    the plugin adds included) exactly once."""
    pytest.importorskip("pytest_split")
    groups, commands = shard_commands(load_workflow(SHARDED_WORKFLOW))
    pytester.makepyfile("def test_one():\n    pass\n\ndef test_two():\n    pass\n")

    def collected(arguments: list[str]) -> list[str]:
        result = pytester.runpytest_inprocess(*arguments, "--co", "-q", "-p", "no:cacheprovider")
        assert result.ret == pytest.ExitCode.OK, f"refused: pytest {shlex.join(arguments)}"
        return [line for line in result.outlines if "::" in line]

    every = collected(["--dualcache"])
    assert any("contracts/" in nodeid for nodeid in every)  # the plugin's suite is there
    shards = {group: collected(command) for group in groups for command in commands[group]}
    assert all(shards.values())  # no shard is empty
    assert sorted(nodeid for shard in shards.values() for nodeid in shard) == sorted(every)
    # The plugin's own check of the shard's value has teeth here too.
    refused = [*commands[groups[0]][0][:-2], f"--dualcache-shard={len(groups) + 1}/{len(groups)}"]
    result = pytester.runpytest_inprocess(*refused, "--co", "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
