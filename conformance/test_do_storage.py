"""The runtime's Durable Object storage agrees with Miniflare's, except the listed differences.

Run from the repository root after `npm ci` in conformance/:
    python -m pytest conformance -q
"""

from __future__ import annotations

from pathlib import Path

import do_storage
import driver
import pytest


def test_durable_object_storage_agrees_with_miniflare(capsys: pytest.CaptureFixture[str]) -> None:
    if not do_storage.miniflare_installed():
        pytest.skip(do_storage.MINIFLARE_MISSING)
    report = do_storage.run()
    with capsys.disabled():
        print(f"\n{report.summary()}")
    problems = report.problems()
    assert not problems, "\n\n".join(problems)


def test_every_listed_difference_names_real_cases() -> None:
    ids = {case.id for case in do_storage.corpus()}
    for name, difference in do_storage.KNOWN_DIFFERENCES.items():
        assert difference.kind in (do_storage.INTENTIONAL, do_storage.BUG), name
        assert difference.cases and set(difference.cases) <= ids, name


def test_readme_shows_the_differences_table() -> None:
    readme = (Path(__file__).parent / "README.md").read_text(encoding="utf-8")
    assert driver.differences_table(do_storage.KNOWN_DIFFERENCES) in readme, (
        "conformance/README.md is out of date: paste `python conformance/do_storage.py --table`"
    )
