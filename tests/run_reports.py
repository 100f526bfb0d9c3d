"""What an in-process pytester run reported, by test name (tests of the plugin read it)."""

from __future__ import annotations

import pytest


def call_reports(result: pytest.RunResult) -> dict[str, pytest.TestReport]:
    """Each test's call report by test name (the in-process run keeps them)."""
    return {
        report.nodeid.rpartition("::")[2]: report
        for report in result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
        if report.when == "call"
    }


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Each test's outcome by test name."""
    return {name: report.outcome for name, report in call_reports(result).items()}
