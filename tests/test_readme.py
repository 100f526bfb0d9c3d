"""The README's Quick start is what CI runs: keep the two in step."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ci_command(name: str) -> str:
    match = re.search(rf"^{name}='(.+)'$", (ROOT / ".ci" / "run").read_text(), re.MULTILINE)
    assert match, f".ci/run defines {name}"
    return match.group(1)


def _quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_has_exactly_two_one_line_commands():
    assert len(_quick_start_commands()) == 2


def test_ci_runs_the_readme_main_job_and_test_commands():
    main_job, tests = _quick_start_commands()
    assert _ci_command("MAIN_JOB") == main_job
    assert _ci_command("TESTS") == tests


def test_the_clause_table_states_every_clause_as_the_suite_does():
    from pytest_dualcache.contracts.clauses import CLAUSES

    readme = (ROOT / "README.md").read_text()
    for clause_id, statement in CLAUSES.items():
        assert f"| {clause_id} | {statement} |" in readme, f"README clause row for {clause_id}"


def test_every_clause_has_the_docs_section_its_failure_message_points_at():
    from pytest_dualcache.contracts.clauses import CLAUSES

    guide = (ROOT / "docs" / "contract.md").read_text()
    sections = set(re.findall(r"^### (\S+)$", guide, re.MULTILINE))
    assert set(CLAUSES) <= sections, f"no section for {sorted(set(CLAUSES) - sections)}"
