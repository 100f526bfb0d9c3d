"""KV budgets: KVBudget, the kv_budget block and fixture, the marker and the ini default."""

from __future__ import annotations

import datetime as dt
import textwrap

# pytester restores sys.modules after each in-process run: preloading what the contract
# suite and hypothesis's terminal summary import keeps every --dualcache run from
# re-importing them.
import hypothesis.internal.observability  # noqa: F401
import pytest
import pytest_dualcache.contracts.test_registered  # noqa: F401
from run_reports import call_reports, outcomes

from pytest_dualcache import DualCacheEnv, VirtualClock
from pytest_dualcache.budget import (
    BudgetError,
    KVBudget,
    KVBudgetExceeded,
    Violation,
    failing_kv_budget,
    kv_budget,
)
from pytest_dualcache.kv import KVRateLimitError
from pytest_dualcache.ledger import CallSite, OperationRecord

SKIP_SUITE = ("-k", "not TestDualCacheContract")
MONDAY = dt.datetime(2026, 1, 5, tzinfo=dt.UTC).timestamp()  # the virtual clock's start
DAY = 86_400
NOT_CHECKED = "dualcache: KV budgets were not checked (run with --dualcache to enforce them)"


def _op(op: str = "put", at: float = MONDAY, *, ok: bool = True, key: str = "k") -> OperationRecord:
    site = CallSite("/src/dal.py", 7, "save")
    return OperationRecord("CACHE_KV", op, key, at, 3, ok, None if ok else "refused", site)


def _line(source: str, needle: str) -> int:
    """The 1-based line of ``needle`` in dedented ``source`` (the call sites a failure shows)."""
    lines = source.strip("\n").splitlines()  # pytester writes the source stripped
    (number,) = [i for i, text in enumerate(lines, 1) if needle in text]
    return number


# --- KVBudget.of ------------------------------------------------------------------------------


def test_of_keeps_the_given_limits_and_drops_none():
    budget = KVBudget.of("src", writes=3, deletes=None, lists=0, reads=None)
    assert budget == KVBudget({"writes": 3, "lists": 0}, "test", "src")
    assert str(budget) == "writes=3, lists=0 per test"


def test_of_takes_per_day():
    assert KVBudget.of("src", per="day", reads=5).per == "day"


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"write": 3}, "src: unknown budget kind write; use writes, deletes, lists, reads"),
        ({"writes": -1}, "src: writes must be an int >= 0 or None, got -1"),
        ({"reads": True}, "src: reads must be an int >= 0 or None, got True"),
        ({"lists": 2.0}, "src: lists must be an int >= 0 or None, got 2.0"),
        ({"deletes": "3"}, "src: deletes must be an int >= 0 or None, got '3'"),
        ({"writes": 1, "per": "week"}, "src: per must be 'test' or 'day', got 'week'"),
    ],
)
def test_of_refuses_bad_limits_naming_the_source(limits, message):
    with pytest.raises(BudgetError) as info:
        KVBudget.of("src", **limits)
    assert str(info.value) == message


# --- KVBudget.parse ---------------------------------------------------------------------------

INI = "ini dualcache_kv_budget"


@pytest.mark.parametrize("text", ["", "   ", ",", " ; , "])
def test_parse_of_blank_text_is_no_budget(text):
    assert KVBudget.parse(text, INI) is None


@pytest.mark.parametrize(
    ("text", "limits", "per"),
    [
        ("writes=50/day", {"writes": 50}, "day"),
        ("writes=50/day, deletes=10/day", {"writes": 50, "deletes": 10}, "day"),
        ("writes=5; reads=100", {"writes": 5, "reads": 100}, "test"),
        (" lists = 2 / day ", {"lists": 2}, "day"),
        ("writes=0/test", {"writes": 0}, "test"),
    ],
)
def test_parse_reads_limits_and_one_period(text, limits, per):
    assert KVBudget.parse(text, INI) == KVBudget(limits, per, INI)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("writes", "cannot read 'writes'; write kind=N or kind=N/day, e.g. writes=50/day"),
        ("writes=lots", "cannot read 'writes=lots'"),
        ("writes=-1", "cannot read 'writes=-1'"),
        ("writes=1.5", "cannot read 'writes=1.5'"),
        ("writes=/day", "cannot read 'writes=/day'"),
        ("write=5", "unknown budget kind write; use writes, deletes, lists, reads"),
        ("writes=5/week", "per must be 'test' or 'day', got 'week'"),
        ("writes=5/day, reads=9", "all limits must share one period, got ['day', 'test']"),
    ],
)
def test_parse_errors_name_the_source(text, message):
    with pytest.raises(BudgetError) as info:
        KVBudget.parse(text, INI)
    assert str(info.value).startswith(f"{INI}: ")
    assert message in str(info.value)


def test_parse_of_a_superscript_digit_is_a_budget_error():
    with pytest.raises(BudgetError, match=f"^{INI}: cannot read"):
        KVBudget.parse("writes=²", INI)


# --- violations -------------------------------------------------------------------------------


def test_a_test_budget_at_its_limit_has_no_violation():
    assert KVBudget.of("src", writes=3).violations([_op()] * 3) == []


def test_one_over_a_test_budget_is_a_violation_with_every_counted_operation():
    records = [_op(key=f"k{i}") for i in range(4)] + [_op("get")]
    (violation,) = KVBudget.of("src", writes=3).violations(records)
    assert (violation.kind, violation.limit, violation.day) == ("writes", 3, None)
    assert [r.key for r in violation.records] == ["k0", "k1", "k2", "k3"]
    assert (
        violation.headline == "expected at most 3 KV writes, 4 were made (src: writes=3 per test)"
    )


def test_each_kind_counts_its_own_operation():
    records = [_op("get"), _op("get"), _op("list"), _op("delete"), _op("delete"), _op("put")]
    budget = KVBudget.of("src", reads=1, lists=1, deletes=1, writes=1)
    # in the order the budget names its limits
    assert [(v.kind, len(v.records)) for v in budget.violations(records)] == [
        ("reads", 2),
        ("deletes", 2),
    ]


def test_refused_operations_are_not_counted_but_mentioned():
    records = [_op(ok=False), _op(), _op(ok=False)]
    budget = KVBudget.of("src", writes=1)
    assert budget.violations(records) == []
    (violation,) = budget.violations([*records, _op()])
    assert len(violation.records) == 2 and violation.refused == 2
    assert violation.describe().endswith("  (2 more were refused by KV and not counted)")


def test_per_day_budgets_split_at_midnight_utc():
    budget = KVBudget.of("src", per="day", writes=1)
    last_second, midnight = MONDAY + DAY - 1, MONDAY + DAY
    assert budget.violations([_op(at=last_second), _op(at=midnight)]) == []
    (violation,) = budget.violations([_op(at=MONDAY), _op(at=last_second), _op(at=midnight)])
    assert violation.day == dt.date(2026, 1, 5)
    assert violation.headline == (
        "expected at most 1 KV writes on 2026-01-05 (UTC), 2 were made (src: writes=1 per day)"
    )


def test_per_day_budgets_report_every_day_over_in_order():
    records = [_op(at=MONDAY + day * DAY + i) for day in (3, 0, 3, 0, 5) for i in range(2)]
    budget = KVBudget.of("src", per="day", writes=3)
    assert [(v.day, len(v.records)) for v in budget.violations(records)] == [
        (dt.date(2026, 1, 5), 4),
        (dt.date(2026, 1, 8), 4),
    ]


def test_a_per_test_budget_sums_over_days():
    records = [_op(at=MONDAY + day * DAY) for day in range(3)]
    assert len(KVBudget.of("src", writes=2).violations(records)) == 1
    assert KVBudget.of("src", writes=2, per="day").violations(records) == []


def test_describe_lists_each_operation_with_key_bytes_and_caller():
    (violation,) = KVBudget.of("src", writes=0).violations([_op(key="price:AAPL")])
    assert violation.describe().splitlines() == [
        "expected at most 0 KV writes, 1 were made (src: writes=0 per test)",
        "by call site:",
        "      1 x /src/dal.py:7:save (first key 'price:AAPL', last 'price:AAPL')",
        "each operation, oldest first:",
        "  put 'price:AAPL' 3 B at /src/dal.py:7:save [CACHE_KV, t=2026-01-05 00:00:00]",
    ]


def test_describe_groups_by_call_site_most_first_and_can_leave_out_the_headline():
    other = CallSite("/src/job.py", 3, "nightly")
    records = [_op(key="a"), _op(key="b")._replace(call_site=other), _op(key="c")]
    (violation,) = KVBudget.of("src", writes=1).violations(records)
    assert violation.describe(headline=False).splitlines()[:3] == [
        "3 KV writes by call site:",
        "      2 x /src/dal.py:7:save (first key 'a', last 'c')",
        "      1 x /src/job.py:3:nightly (first key 'b', last 'b')",
    ]


def test_describe_shortens_very_long_lists():
    (violation,) = KVBudget.of("src", writes=0).violations([_op(key=f"k{i}") for i in range(5)])
    lines = violation.describe(most=2).splitlines()
    assert lines[4:] == [
        "  put 'k0' 3 B at /src/dal.py:7:save [CACHE_KV, t=2026-01-05 00:00:00]",
        "  put 'k1' 3 B at /src/dal.py:7:save [CACHE_KV, t=2026-01-05 00:00:00]",
        "  ... and 3 more",
    ]
    assert isinstance(violation, Violation)


# --- the kv_budget block ----------------------------------------------------------------------


def test_the_block_counts_only_operations_made_inside_it():
    env = DualCacheEnv()
    env.kv.put("before", "v")
    with kv_budget(writes=1):
        env.kv.put("inside", "v")
    env.kv.put("after", "v")


def test_the_block_counts_every_kv_namespace_but_not_the_do():
    env = DualCacheEnv()
    other = env.add_kv_namespace("OTHER_KV")
    with pytest.raises(KVBudgetExceeded) as info, kv_budget(writes=1):
        env.kv.put("a", "v")
        other.put("b", "v")
        env.do.set("c", "v", ttl=60)
    assert str(info.value).splitlines()[0].startswith("expected at most 1 KV writes, 2 were made")
    assert "[OTHER_KV, t=" in str(info.value)
    assert "'c'" not in str(info.value)


def test_the_block_does_not_count_refused_writes():
    env = DualCacheEnv()
    with kv_budget(writes=1):
        env.kv.put("k", "v")
        with pytest.raises(KVRateLimitError):
            env.kv.put("k", "again")  # same key within the second: 429, no quota used


@pytest.mark.parametrize(
    "error",
    [
        LookupError("the DAL's own failure"),
        AssertionError("a failed assert inside the block"),
        StopIteration("an iterator ran out"),
        KeyboardInterrupt(),
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_exception_inside_the_block_propagates_unchanged(error):
    env = DualCacheEnv()
    with pytest.raises(type(error)) as info, failing_kv_budget(writes=0):
        env.kv.put("over", "budget")
        raise error
    assert info.value is error
    assert info.value.__context__ is None and info.value.__cause__ is None


def test_the_block_yields_its_budget_and_refuses_a_bad_one():
    with kv_budget(reads=2, per="day") as budget:
        assert budget == KVBudget({"reads": 2}, "day", "kv_budget()")
    with pytest.raises(BudgetError, match=r"^kv_budget\(\): writes must be"), kv_budget(writes=-1):
        pass


def test_the_block_per_day_uses_the_virtual_clock():
    clock = VirtualClock()
    env = DualCacheEnv(clock)
    with kv_budget(writes=1, per="day"):
        for day in range(3):
            env.kv.put(f"day{day}", "v")
            clock.advance(DAY)
    over = "on 2026-01-08 \\(UTC\\), 2 were made"
    with pytest.raises(KVBudgetExceeded, match=over), kv_budget(writes=1, per="day"):
        env.kv.put("a", "v")
        env.kv.put("b", "v")


# --- the kv_budget fixture, through pytest ------------------------------------------------------

FIXTURE_TESTS = textwrap.dedent(
    """
    import pytest
    from pytest_dualcache import KVRateLimitError

    def test_seven_writes_over_three(kv_namespace, kv_budget):
        with kv_budget(writes=3):
            for i in range(7):
                kv_namespace.put(f"k{i}", "v" * i)  # THE PUT

    def test_three_writes_at_three(kv_namespace, kv_budget):
        with kv_budget(writes=3, deletes=None, lists=None, reads=None):
            for i in range(3):
                kv_namespace.put(f"k{i}", "v")

    def test_exception_inside_the_block(kv_namespace, kv_budget):
        with kv_budget(writes=0):
            kv_namespace.put("k", "v")
            raise ValueError("the DAL broke")

    def test_reads_over(kv_namespace, kv_budget):
        with kv_budget(reads=1):
            kv_namespace.get("a")
            kv_namespace.get_with_metadata("b")

    def test_lists_over(kv_namespace, kv_budget):
        with kv_budget(lists=0):
            kv_namespace.list(prefix="p")

    def test_deletes_over(kv_namespace, kv_budget):
        with kv_budget(deletes=1, writes=10):
            kv_namespace.delete("a")
            kv_namespace.delete("b")

    def test_refused_writes_are_free(kv_namespace, kv_budget):
        with kv_budget(writes=1):
            kv_namespace.put("k", "v")
            with pytest.raises(KVRateLimitError):
                kv_namespace.put("k", "v")

    def test_per_day_within(kv_namespace, dualcache_clock, kv_budget):
        with kv_budget(writes=2, per="day"):
            for day in range(3):
                kv_namespace.put(f"a{day}", "v")
                kv_namespace.put(f"b{day}", "v")
                dualcache_clock.advance(86_400)

    def test_per_day_over_on_wednesday(kv_namespace, dualcache_clock, kv_budget):
        with kv_budget(writes=2, per="day"):
            for day in range(3):
                for i in range(2 + (day == 2)):
                    kv_namespace.put(f"k{day}-{i}", "v")
                dualcache_clock.advance(86_400)
    """
)

FIXTURE_OUTCOMES = {
    "test_seven_writes_over_three": "failed",
    "test_three_writes_at_three": "passed",
    "test_exception_inside_the_block": "failed",
    "test_reads_over": "failed",
    "test_lists_over": "failed",
    "test_deletes_over": "failed",
    "test_refused_writes_are_free": "passed",
    "test_per_day_within": "passed",
    "test_per_day_over_on_wednesday": "failed",
}


@pytest.fixture
def fixture_run(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(test_fixture_budget=FIXTURE_TESTS)
    # Under --dualcache the direct writes would be bypasses: allow this module's callers.
    pytester.makeini("[pytest]\ndualcache_kv_allow = test_fixture_budget.py::*\n")
    return pytester.runpytest()


def test_fixture_failure_names_the_limit_and_lists_every_write(fixture_run, pytester):
    longrepr = str(call_reports(fixture_run)["test_seven_writes_over_three"].longrepr)
    path = pytester.path / "test_fixture_budget.py"
    line = _line(FIXTURE_TESTS, "# THE PUT")
    site = f"{path}:{line}:test_seven_writes_over_three"
    assert longrepr.splitlines() == [
        "expected at most 3 KV writes, 7 were made (kv_budget(): writes=3 per test)",
        "by call site:",
        f"      7 x {site} (first key 'k0', last 'k6')",
        "each operation, oldest first:",
        *(f"  put 'k{i}' {i} B at {site} [CACHE_KV, t=2026-01-05 00:00:00]" for i in range(7)),
    ]
    fixture_run.stdout.fnmatch_lines(
        ["*_ test_seven_writes_over_three _*", "expected at most 3 KV writes, 7 were made *"]
    )


def test_fixture_outcomes_without_dualcache(fixture_run):
    assert outcomes(fixture_run) == FIXTURE_OUTCOMES
    assert NOT_CHECKED not in fixture_run.stdout.lines


def test_fixture_is_enforced_the_same_under_dualcache(pytester):
    pytester.makepyfile(test_fixture_budget=FIXTURE_TESTS)
    pytester.makeini("[pytest]\ndualcache_kv_allow = test_fixture_budget.py::*\n")
    result = pytester.runpytest("--dualcache", *SKIP_SUITE)
    assert outcomes(result) == FIXTURE_OUTCOMES
    seven = str(call_reports(result)["test_seven_writes_over_three"].longrepr)
    assert seven.startswith("expected at most 3 KV writes, 7 were made")


def test_fixture_lets_an_exception_in_the_block_through_unchanged(fixture_run):
    report = call_reports(fixture_run)["test_exception_inside_the_block"]
    assert report.longrepr.reprcrash.message == "ValueError: the DAL broke"
    assert "expected at most" not in str(report.longrepr)


@pytest.mark.parametrize(
    ("test", "headline"),
    [
        ("test_reads_over", "expected at most 1 KV reads, 2 were made"),
        ("test_lists_over", "expected at most 0 KV lists, 1 were made"),
        ("test_deletes_over", "expected at most 1 KV deletes, 2 were made"),
        (
            "test_per_day_over_on_wednesday",
            "expected at most 2 KV writes on 2026-01-07 (UTC), 3 were made",
        ),
    ],
)
def test_fixture_limits_of_each_kind(fixture_run, test, headline):
    lines = str(call_reports(fixture_run)[test].longrepr).splitlines()
    assert lines[0].startswith(headline + " (kv_budget(): ")
    made = int(headline.split(", ")[1].split()[0])
    assert lines[1] == "by call site:"
    assert len([line for line in lines if line.endswith(":00]")]) == made  # every operation


# --- the marker -------------------------------------------------------------------------------

MARKER_TESTS = textwrap.dedent(
    """
    import pytest
    from pytest_dualcache import KVRateLimitError

    def write(kv, count, tag=""):
        for i in range(count):
            kv.put(f"{tag}k{i}", "v")  # THE PUT

    @pytest.mark.kv_budget(writes=3)
    def test_at_the_limit(kv_namespace):
        write(kv_namespace, 3)

    @pytest.mark.kv_budget(writes=3)
    def test_one_over(kv_namespace):
        write(kv_namespace, 4)

    @pytest.mark.kv_budget(writes=5, per="day")
    def test_a_week_at_the_daily_limit(kv_namespace, dualcache_clock):
        for day in range(7):
            write(kv_namespace, 5, tag=f"d{day}")
            dualcache_clock.advance(86_400)

    @pytest.mark.kv_budget(writes=5, per="day")
    def test_a_week_one_over_on_thursday(kv_namespace, dualcache_clock):
        for day in range(7):
            write(kv_namespace, 5 + (day == 3), tag=f"d{day}")
            dualcache_clock.advance(86_400)

    @pytest.mark.kv_budget(reads=1, lists=1, deletes=1)
    def test_three_kinds_over(kv_namespace):
        for _ in range(2):
            kv_namespace.get("k")
            kv_namespace.list()
            kv_namespace.delete("k")

    @pytest.mark.kv_budget(writes=1)
    def test_refused_writes_are_free(kv_namespace, do_cache):
        write(kv_namespace, 1)
        with pytest.raises(KVRateLimitError):
            write(kv_namespace, 1)
        do_cache.set("do", "v", ttl=60)

    @pytest.mark.kv_budget(writes=0)
    def test_over_budget_and_failing_anyway(kv_namespace):
        write(kv_namespace, 1)
        assert False, "its own failure"
    """
)


@pytest.fixture
def marker_run(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(test_marker_budget=MARKER_TESTS)
    pytester.makeini("[pytest]\ndualcache_kv_allow = test_marker_budget.py::*\n")
    return pytester.runpytest("--dualcache", *SKIP_SUITE)


def test_marker_outcomes(marker_run):
    assert outcomes(marker_run) == {
        "test_at_the_limit": "passed",
        "test_one_over": "failed",
        "test_a_week_at_the_daily_limit": "passed",
        "test_a_week_one_over_on_thursday": "failed",
        "test_three_kinds_over": "failed",
        "test_refused_writes_are_free": "passed",
        "test_over_budget_and_failing_anyway": "failed",
    }


def test_marker_failure_has_a_clear_longrepr_and_a_section(marker_run, pytester):
    report = call_reports(marker_run)["test_one_over"]
    headline = (
        "expected at most 3 KV writes, 4 were made (@pytest.mark.kv_budget: writes=3 per test)"
    )
    assert str(report.longrepr) == headline
    site = f"{pytester.path / 'test_marker_budget.py'}:{_line(MARKER_TESTS, '# THE PUT')}:write"
    assert dict(report.sections)["dualcache KV operations"].splitlines() == [
        "4 KV writes by call site:",
        f"      4 x {site} (first key 'k0', last 'k3')",
        "each operation, oldest first:",
        *(f"  put 'k{i}' 1 B at {site} [CACHE_KV, t=2026-01-05 00:00:00]" for i in range(4)),
    ]
    marker_run.stdout.fnmatch_lines(
        ["*_ test_one_over _*", headline, "*- dualcache KV operations -*", "4 KV writes by*"]
    )
    # Said once in the failure (the short summary's FAILED line repeats it, as for any test).
    assert marker_run.stdout.lines.count(headline) == 1


def test_marker_per_day_holds_each_day_of_a_simulated_week(marker_run):
    report = call_reports(marker_run)["test_a_week_one_over_on_thursday"]
    assert str(report.longrepr) == (
        "expected at most 5 KV writes on 2026-01-08 (UTC), 6 were made "
        "(@pytest.mark.kv_budget: writes=5 per day)"
    )
    section = dict(report.sections)["dualcache KV operations"]
    assert section.count(" put ") == 6 and section.count("t=2026-01-08 00:00:00") == 6


def test_marker_reports_every_kind_over(marker_run):
    assert str(call_reports(marker_run)["test_three_kinds_over"].longrepr).splitlines() == [
        f"expected at most 1 KV {kind}, 2 were made "
        "(@pytest.mark.kv_budget: reads=1, lists=1, deletes=1 per test)"
        for kind in ("reads", "lists", "deletes")
    ]


def test_marker_keeps_a_tests_own_failure_and_adds_the_section(marker_run):
    report = call_reports(marker_run)["test_over_budget_and_failing_anyway"]
    assert report.longrepr.reprcrash.message.startswith("AssertionError: its own failure")
    assert "expected at most 0 KV writes, 1 were made" in dict(report.sections).get(
        "dualcache KV operations", ""
    )


def test_marker_is_not_enforced_without_dualcache(pytester):
    pytester.makepyfile(test_marker_budget=MARKER_TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=6, failed=1)  # only the test failing on its own
    assert result.stdout.lines.count(NOT_CHECKED) == 1


# --- the ini default ----------------------------------------------------------------------------

INI_TESTS = textwrap.dedent(
    """
    import pytest

    def write(kv, count, tag=""):
        for i in range(count):
            kv.put(f"{tag}k{i}", "v")

    def test_default_within(kv_namespace, dualcache_clock):
        write(kv_namespace, 2, "mon")
        dualcache_clock.advance(86_400)
        write(kv_namespace, 2, "tue")

    def test_default_over(kv_namespace):
        write(kv_namespace, 3)

    @pytest.mark.kv_budget(writes=10)
    def test_marker_raises_the_limit(kv_namespace):
        write(kv_namespace, 5)

    @pytest.mark.kv_budget(writes=1)
    def test_marker_lowers_the_limit(kv_namespace):
        write(kv_namespace, 2)

    @pytest.mark.kv_budget(reads=100)
    def test_marker_replaces_the_whole_default(kv_namespace):
        write(kv_namespace, 5)
    """
)


def test_ini_budget_applies_to_every_test_and_the_marker_overrides_it(pytester):
    pytester.makepyfile(test_ini_budget=INI_TESTS)
    pytester.makeini(
        "[pytest]\ndualcache_kv_budget = writes=2/day\ndualcache_kv_allow = test_ini_budget.py::*\n"
    )
    result = pytester.runpytest("--dualcache", *SKIP_SUITE)
    assert outcomes(result) == {
        "test_default_within": "passed",
        "test_default_over": "failed",
        "test_marker_raises_the_limit": "passed",
        "test_marker_lowers_the_limit": "failed",
        "test_marker_replaces_the_whole_default": "passed",
    }
    reports = call_reports(result)
    assert str(reports["test_default_over"].longrepr) == (
        "expected at most 2 KV writes on 2026-01-05 (UTC), 3 were made "
        "(ini dualcache_kv_budget: writes=2 per day)"
    )
    assert str(reports["test_marker_lowers_the_limit"].longrepr) == (
        "expected at most 1 KV writes, 2 were made (@pytest.mark.kv_budget: writes=1 per test)"
    )


def test_the_ini_default_does_not_hold_the_shipped_contract_suite(pytester):
    pytester.makepyfile(test_own="def test_own(): pass")
    pytester.makeini("[pytest]\ndualcache_kv_budget = writes=1/day\n")
    result = pytester.runpytest("--dualcache", "-k", "FLIP_1 or test_own")
    result.assert_outcomes(passed=3)  # FLIP-1 against the reference, on both routes


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("writes=lots", "ini dualcache_kv_budget: cannot read 'writes=lots'"),
        ("writes=5/week", "ini dualcache_kv_budget: per must be 'test' or 'day', got 'week'"),
        ("write=5", "ini dualcache_kv_budget: unknown budget kind write"),
        ("writes=1/day, reads=2", "ini dualcache_kv_budget: all limits must share one period"),
    ],
)
def test_a_bad_ini_budget_is_a_usage_error(pytester, value, message):
    pytester.makepyfile("def test_nothing(): pass")
    pytester.makeini(f"[pytest]\ndualcache_kv_budget = {value}\n")
    result = pytester.runpytest("--dualcache", *SKIP_SUITE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*"])


# --- bad marker arguments -----------------------------------------------------------------------

BAD_MARKERS = textwrap.dedent(
    """
    import pytest

    @pytest.mark.kv_budget(5)
    def test_positional():
        pass

    @pytest.mark.kv_budget(write=5)
    def test_unknown_kind():
        pass

    @pytest.mark.kv_budget(writes=5, per="week")
    def test_bad_period():
        pass

    @pytest.mark.kv_budget(writes=True)
    def test_bool_limit():
        pass

    @pytest.mark.kv_budget(writes=-1)
    def test_negative_limit():
        pass
    """
)


def test_bad_marker_arguments_fail_the_test_with_a_clear_message(pytester):
    pytester.makepyfile(test_bad_markers=BAD_MARKERS)
    result = pytester.runpytest("--dualcache", *SKIP_SUITE)
    messages = {name: str(report.longrepr) for name, report in call_reports(result).items()}
    assert messages == {
        "test_positional": (
            "@pytest.mark.kv_budget takes keyword limits only, e.g. kv_budget(writes=50)"
        ),
        "test_unknown_kind": (
            "@pytest.mark.kv_budget: unknown budget kind write; use writes, deletes, lists, reads"
        ),
        "test_bad_period": "@pytest.mark.kv_budget: per must be 'test' or 'day', got 'week'",
        "test_bool_limit": "@pytest.mark.kv_budget: writes must be an int >= 0 or None, got True",
        "test_negative_limit": "@pytest.mark.kv_budget: writes must be an int >= 0 or None, got -1",
    }
    result.assert_outcomes(failed=5)


# --- "KV budgets were not checked" --------------------------------------------------------------


@pytest.mark.parametrize(
    ("ini", "source", "shown"),
    [
        ("", "import pytest\n@pytest.mark.kv_budget(writes=1)\ndef test_x(): pass\n", True),
        ("dualcache_kv_budget = writes=50/day\n", "def test_x(): pass\n", True),
        ("", "def test_x(kv_budget):\n    with kv_budget(writes=1): pass\n", False),
        ("", "def test_x(): pass\n", False),
    ],
    ids=["marker", "ini", "fixture-only", "no-budget"],
)
def test_without_dualcache_one_line_says_budgets_were_not_checked(pytester, ini, source, shown):
    pytester.makepyfile(test_not_checked=source)
    pytester.makeini(f"[pytest]\n{ini}")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert result.stdout.lines.count(NOT_CHECKED) == int(shown)
    assert sum("budgets were not checked" in line for line in result.stdout.lines) == int(shown)


def test_under_dualcache_the_not_checked_line_is_absent(pytester):
    pytester.makepyfile(
        test_not_checked="import pytest\n@pytest.mark.kv_budget(writes=1)\ndef test_x(): pass\n"
    )
    pytester.makeini("[pytest]\ndualcache_kv_budget = writes=50/day\n")
    result = pytester.runpytest("--dualcache", *SKIP_SUITE)
    result.assert_outcomes(passed=1)
    assert NOT_CHECKED not in result.stdout.lines


def test_the_not_checked_line_is_printed_under_xdist(pytester):
    pytester.makepyfile(
        test_not_checked="import pytest\n@pytest.mark.kv_budget(writes=1)\ndef test_x(): pass\n"
    )
    # No --dualcache: the workers need neither hypothesis's plugin nor pytest-benchmark.
    lean = ("-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:cacheprovider")
    result = pytester.runpytest_subprocess("-n", "2", *lean)
    result.assert_outcomes(passed=1)
    assert result.stdout.lines.count(NOT_CHECKED) == 1
