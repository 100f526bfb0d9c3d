"""KVNamespace agrees with Miniflare on the whole corpus, except the listed differences.

Run from the repository root after `npm ci` in conformance/:
    python -m pytest conformance -q
"""

from __future__ import annotations

from pathlib import Path

import driver
import pytest


def test_kv_namespace_agrees_with_miniflare(capsys: pytest.CaptureFixture[str]) -> None:
    if not driver.miniflare_installed():
        pytest.skip(driver.MINIFLARE_MISSING)
    report = driver.run()
    with capsys.disabled():
        print(f"\n{report.summary()}")
    problems = report.problems()
    assert not problems, "\n\n".join(problems)


def test_every_listed_difference_names_real_cases() -> None:
    ids = {case.id for case in driver.corpus()}
    for name, difference in driver.KNOWN_DIFFERENCES.items():
        assert difference.kind in (driver.INTENTIONAL, driver.BUG), name
        assert difference.cases, name
        assert set(difference.cases) <= ids, f"{name}: {set(difference.cases) - ids}"


def test_readme_shows_the_differences_table() -> None:
    readme = (Path(__file__).parent / "README.md").read_text(encoding="utf-8")
    assert driver.differences_table() in readme, (
        "conformance/README.md is out of date: paste `python conformance/driver.py --table`"
    )
