"""What it costs: the dualcache_workload marker, the projected month (the JSON ``bill`` and
the terminal block), the cost gate (--dualcache-max-cost-growth) and the CLI's
--max-cost-growth, each against bills computed by hand from pricing.py's constants."""

from __future__ import annotations

import json
import textwrap

# pytester restores sys.modules after each in-process run: preloading what the contract
# suite and hypothesis's terminal summary import keeps every --dualcache run from
# re-importing them.
import hypothesis.internal.observability  # noqa: F401
import pytest
import pytest_dualcache.contracts.test_registered  # noqa: F401

from pytest_dualcache.bill import CostLimit
from pytest_dualcache.cli import BAD_INPUT, GATE_FAILED, OK, main
from pytest_dualcache.clock import DEFAULT_START
from pytest_dualcache.report_html import render_html
from pytest_dualcache.report_md import md_text
from pytest_dualcache.workload import (
    NO_BASELINE_BILL,
    NO_BILL,
    NOTES,
    Declared,
    WorkloadError,
    bill_section,
    judge_cost,
    marker_workload,
    scale_conflicts,
)

SKIP_SUITE = ("-k", "not TestDualCacheContract")
#: The hour (since the epoch) the virtual clock starts in: every test's first hour here.
MONDAY_HOUR = int(DEFAULT_START // 3600)
ALLOW_TEST_WRITES = "[pytest]\ndualcache_kv_allow = test_*.py::*\n"

#: Two workloads. "shop" spans two simulated days:
#:   day 1: 10 KV puts, 40 KV gets, a DO cache set and two DO cache gets (a hit, a miss);
#:   day 2: 10 KV puts, a KV delete, a KV list.
#: "batch": one KV put on one day.
SHOP_AND_BATCH = """
    import pytest


    @pytest.mark.dualcache_workload(scale=1000, name="shop")
    def test_shop(kv_namespace, do_cache, dualcache_clock):
        for i in range(10):
            kv_namespace.put(f"k{i}", "v")
        for _ in range(40):
            kv_namespace.get("k0")
        do_cache.set("a", 1, ttl=3600)
        do_cache.get("a")
        do_cache.get("b")
        dualcache_clock.advance(86_400)
        for i in range(10):
            kv_namespace.put(f"j{i}", "v")
        kv_namespace.delete("k1")
        kv_namespace.list()


    @pytest.mark.dualcache_workload(scale=100_000, name="batch")
    def test_batch(kv_namespace):
        kv_namespace.put("summary", "v")


    def test_not_a_workload(kv_namespace):
        kv_namespace.put("other", "v")
"""

# "shop", per simulated day (2 days): 10 writes, 20 reads, 0.5 deletes, 0.5 lists, 1.5 DO
# requests (3 cache operations / 2), 1 DO row read (2 gets / 2), 0.5 rows written (1 set / 2).
# A month at scale 1,000 is each x 30 x 1,000 = x 30,000:
#   kv_writes  300,000 x $5.00/M  = $1.50     -> 150 cents
#   kv_reads   600,000 x $0.50/M  = $0.30     ->  30
#   kv_deletes  15,000 x $5.00/M  = $0.075    ->   8 (7.5 rounds half up)
#   kv_lists    15,000 x $5.00/M  = $0.075    ->   8
#   do_requests 45,000 x $0.15/M  = $0.00675  ->   1 (0.675)
#   rows read   30,000 x $0.001/M = $0.00003  ->   0
#   rows written 15,000 x $1.00/M = $0.015    ->   2 (1.5)
SHOP_LINES = {
    "kv_writes": 150,
    "kv_reads": 30,
    "kv_deletes": 8,
    "kv_lists": 8,
    "do_requests": 1,
    "do_sqlite_rows_read": 0,
    "do_sqlite_rows_written": 2,
}
SHOP_GROSS = 199  # 150 + 30 + 8 + 8 + 1 + 0 + 2
# "batch": 1 write a day x 30 x 100,000 = 3,000,000 writes x $5.00/M = $15.00.
BATCH_GROSS = 1500
# The account: 3,300,000 KV writes, 1,000,000 included: 2,300,000 x $5.00/M = $11.50; every
# other meter stays within its allowance (600,000 reads of 10 M; 45,000 DO requests of 1 M).
NET = 1150


def _bill_run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run the shop-and-batch project under --dualcache (the contract suite left out)."""
    pytester.makepyfile(test_usage=SHOP_AND_BATCH)
    pytester.makeini(ALLOW_TEST_WRITES)
    return pytester.runpytest("--dualcache", *SKIP_SUITE, *args)


def _zero_lines(lines: dict[str, int]) -> dict[str, int]:
    """``lines`` with every other meter of the SQLite-backed bill at 0 cents."""
    meters = {"kv_storage", "do_duration", "do_sqlite_storage", *SHOP_LINES}
    return {meter: lines.get(meter, 0) for meter in sorted(meters)}


# --- the marker -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((2,), {}, "takes keywords only"),
        ((), {"scale": 0}, "scale (production volume over simulated volume) must be a number > 0"),
        ((), {"scale": -1.5}, "must be a number > 0, got -1.5"),
        ((), {"scale": "10"}, "must be a number > 0, got '10'"),
        ((), {"scale": True}, "must be a number > 0, got True"),
        ((), {"scale": float("inf")}, "must be a number > 0, got inf"),
        ((), {"scale": 2, "instances": 3}, "unknown argument 'instances'; use scale and name"),
        ((), {"name": ""}, "name must be a non-empty string"),
    ],
)
def test_a_bad_marker_is_refused_naming_the_marker(args, kwargs, message):
    with pytest.raises(WorkloadError, match=r"^@pytest\.mark\.dualcache_workload") as caught:
        marker_workload(args, kwargs)
    assert message in str(caught.value)


def test_the_marker_defaults_to_scale_1_and_the_node_id():
    assert marker_workload((), {}) == Declared(None, 1.0)
    assert marker_workload((), {"scale": 20, "name": "api"}) == Declared("api", 20.0)
    assert scale_conflicts({"a": Declared("w", 2.0), "b": Declared("w", 2.0)}) is None
    conflict = scale_conflicts({"t::a": Declared("w", 2.0), "t::b": Declared("w", 3.0)})
    assert conflict is not None and "scale 2 by t::a and 3 by t::b" in conflict


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("dualcache_workload(scale=0)", "must be a number > 0, got 0"),
        ("dualcache_workload(7)", "takes keywords only"),
    ],
)
def test_a_bad_marker_stops_the_session_naming_the_test(pytester, marker, message):
    pytester.makepyfile(
        test_bad=f"import pytest\n\n@pytest.mark.{marker}\ndef test_x():\n    pass\n"
    )
    result = pytester.runpytest("--dualcache", *SKIP_SUITE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: test_bad.py::test_x: @pytest.mark.dualcache_workload*{message}*"]
    )


def test_tests_sharing_a_workload_must_share_its_scale(pytester):
    pytester.makepyfile(
        test_two="""
        import pytest

        @pytest.mark.dualcache_workload(scale=2, name="api")
        def test_a():
            pass

        @pytest.mark.dualcache_workload(scale=3, name="api")
        def test_b():
            pass
        """
    )
    result = pytester.runpytest("--dualcache", *SKIP_SUITE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*workload 'api' is declared with scale 2 by test_two.py::test_a and 3 by *test_b*"]
    )


def test_without_dualcache_a_workload_changes_nothing(pytester):
    pytester.makepyfile(test_usage=SHOP_AND_BATCH)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3)
    assert "projected month" not in result.stdout.str()


# --- the bill ---------------------------------------------------------------------------------


def test_each_workload_test_carries_its_usage_a_simulated_day(pytester):
    result = _bill_run(pytester, "--dualcache-report=r.json")
    result.assert_outcomes(passed=3)
    tests = json.loads((pytester.path / "r.json").read_text())["tests"]
    shop = tests["test_usage.py::test_shop"]["workload"]
    start_hour, hours = shop.pop("start_hour"), shop.pop("hours")
    assert start_hour == MONDAY_HOUR  # the virtual clock's start, in hours since the epoch
    assert len(hours) == 25  # day 1's hour 0 to day 2's hour 0
    assert hours[0] == {"kv_writes": 10, "do_sets": 1, "do_gets": 2, "do_hits": 1}
    assert hours[24] == {"kv_writes": 10, "do_sets": 0, "do_gets": 0, "do_hits": 0}
    assert all(hour == dict.fromkeys(hours[0], 0) for hour in hours[1:24])
    assert shop == {
        "name": "shop",
        "scale": 1000,
        "days": 2,
        "daily": {  # the test's counts over its 2 simulated days
            "kv_reads": 20,
            "kv_writes": 10,
            "kv_deletes": 0.5,
            "kv_lists": 0.5,
            "kv_stored_bytes": 0,
            "do_requests": 1.5,
            "do_duration_s": 0,
            "do_reads": 1,
            "do_writes": 0.5,
            "do_deletes": 0,
            "do_stored_bytes": 0,
        },
    }
    assert tests["test_usage.py::test_batch"]["workload"]["daily"]["kv_writes"] == 1
    assert tests["test_usage.py::test_batch"]["workload"]["days"] == 1
    assert "workload" not in tests["test_usage.py::test_not_a_workload"]


def test_the_timeline_adds_each_workloads_hours_and_the_page_draws_it(pytester):
    _bill_run(pytester, "--dualcache-report=r.json").assert_outcomes(passed=3)
    report = json.loads((pytester.path / "r.json").read_text())
    timeline = report["timeline"]
    assert list(timeline) == ["batch", "shop"]  # test_not_a_workload declares none
    assert timeline["batch"] == {
        "budget_per_day": None,
        "hours": [{"kv_writes": 1, "do_sets": 0, "do_gets": 0, "do_hits": 0}],
    }
    shop = timeline["shop"]["hours"]
    assert [hour["kv_writes"] for hour in shop] == [10, *[0] * 23, 10]
    page = render_html(report)
    for chart in ("kv-writes-hour:shop", "kv-writes-day:shop", "do-hit-rate:shop"):
        assert f'data-chart="{chart}"' in page


def test_the_json_bill_is_the_hand_computed_one(pytester):
    _bill_run(pytester, "--dualcache-report=r.json").assert_outcomes(passed=3)
    bill = json.loads((pytester.path / "r.json").read_text())["bill"]
    assert list(bill["workloads"]) == ["batch", "shop"]
    shop = bill["workloads"]["shop"]
    assert shop["lines_cents"] == _zero_lines(SHOP_LINES)
    assert shop["gross_cents"] == SHOP_GROSS
    assert shop["monthly"]["kv_writes"] == 300_000 and shop["monthly"]["do_requests"] == 45_000
    # 10 writes a day x 1,000 = 10,000 a day, past the free plan's 1,000.
    assert shop["free_plan_crossed"] == {"kv_writes": {"limit": 1000, "per_day": 10_000}}
    assert bill["workloads"]["batch"]["gross_cents"] == BATCH_GROSS
    total = bill["total"]
    assert total["gross_cents"] == SHOP_GROSS + BATCH_GROSS == 1699
    assert total["net_lines_cents"] == _zero_lines({"kv_writes": NET})
    assert total["usage_cents"] == NET
    assert total["total_cents"] == NET + 500  # the $5.00 Workers Paid subscription
    # 3,300,000 writes / 30 days = 110,000 a day.
    assert total["free_plan_crossed"] == {"kv_writes": {"limit": 1000, "per_day": 110_000}}
    assert bill["notes"] == list(NOTES)
    assert "Durable Object duration is not simulated" in bill["notes"][0]


def test_the_terminal_shows_the_projected_month(pytester):
    result = _bill_run(pytester)
    result.stdout.fnmatch_lines(
        [
            "*= dualcache KV report =*",
            "projected month (30 days at Workers Paid prices of 2026-12-01), gross per workload:",
            "      $15.00  batch (scale 100,000)",
            "              crosses the free plan's daily limits: kv_writes 100,000 a day > 1,000",
            "       $1.99  shop (scale 1,000)",
            "              crosses the free plan's daily limits: kv_writes 10,000 a day > 1,000",
            "  total: $16.99 gross; $11.50 beyond the Workers Paid allowances + $5.00 "
            "subscription = $16.50/month",
            "  all together, crosses the free plan's daily limits: kv_writes 110,000 a day > 1,000",
            "  note: Durable Object duration is not simulated: its GB-s are 0 in this bill",
            "  note: stored bytes *",
        ]
    )
    again = _bill_run(pytester)  # the same tests print the same block
    assert _block(again.stdout.lines) == _block(result.stdout.lines)
    assert len(_block(result.stdout.lines)) == 9


def _block(lines: list[str]) -> list[str]:
    """The "projected month" block of a run's output."""
    start = next(i for i, line in enumerate(lines) if line.startswith("projected month ("))
    end = next(i for i, line in enumerate(lines) if line.startswith("  note: stored bytes"))
    return lines[start : end + 1]


def test_no_workload_no_bill(pytester):
    pytester.makepyfile(test_plain="def test_x(kv_namespace):\n    kv_namespace.get('a')\n")
    result = pytester.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-report=r.json")
    assert result.ret == 0
    assert "projected month" not in result.stdout.str()
    assert "bill" not in json.loads((pytester.path / "r.json").read_text())


def test_tests_sharing_a_name_add_up_into_one_workload():
    def entry(writes: int) -> dict[str, object]:
        return {
            "workload": {"name": "api", "scale": 10, "days": 1, "daily": {"kv_writes": writes}},
            "write_sites": {},
        }

    bill = bill_section({"t::a": entry(2), "t::b": entry(3)})
    assert bill is not None and list(bill["workloads"]) == ["api"]
    # (2 + 3) writes a day x 30 x 10 = 1,500 writes x $5.00/M = $0.0075 -> 1 cent
    assert bill["workloads"]["api"]["monthly"]["kv_writes"] == 1500
    assert bill["workloads"]["api"]["gross_cents"] == 1


# --- the cost gate ----------------------------------------------------------------------------

BATCH = """
    import pytest


    @pytest.mark.dualcache_workload(scale=100_000, name="batch")
    def test_batch(kv_namespace):
        kv_namespace.put("summary", "v")
"""
# One more write a simulated day, from a new line (line 7 of the file).
GROWN_BATCH = BATCH + '        kv_namespace.put("detail", "v")\n'


def _cost_project(pytester: pytest.Pytester, source: str = BATCH) -> None:
    pytester.makepyfile(test_batch=textwrap.dedent(source))
    pytester.makeini(ALLOW_TEST_WRITES)


def _cost_run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """The grown project against ``base.json``; KV growth allowed, so only cost gates."""
    return pytester.runpytest(
        "--dualcache",
        *SKIP_SUITE,
        "--dualcache-baseline=base.json",
        "--dualcache-max-growth=100%",
        *args,
    )


@pytest.fixture
def grown(pytester: pytest.Pytester) -> pytest.Pytester:
    """The batch project with its baseline saved, then grown by one KV write a day."""
    _cost_project(pytester)
    saved = pytester.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-save-baseline=base.json")
    assert saved.ret == 0
    base = json.loads((pytester.path / "base.json").read_text())
    assert base["bill"]["total"]["gross_cents"] == BATCH_GROSS
    assert base["bill_write_sites"] == {"test_batch.py:6:test_batch": 3_000_000}
    _cost_project(pytester, GROWN_BATCH)
    return pytester


# Grown: 2 writes a day x 30 x 100,000 = 6,000,000 writes x $5.00/M = $30.00, $15.00 more;
# the added 3,000,000 writes all come from the new line.
SENTENCE = "this change adds $15.00/month: +3,000,000 KV writes, 100 % of them from "
NEW_SITE = "test_batch.py:7:test_batch"


def test_the_cost_gate_fails_a_dearer_month(grown):
    result = _cost_run(grown, "--dualcache-max-cost-growth=10%", "--dualcache-html=r.html")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1)
    assert (
        result.stdout.lines[-1].startswith("=") and "1 cost gate failed" in result.stdout.lines[-1]
    )
    result.stdout.fnmatch_lines(
        [
            "KV writes within the baseline (allowed growth: 100%)",
            "projected month grew beyond the baseline's (allowed growth: 10%): "
            f"{SENTENCE}{NEW_SITE}",
        ]
    )
    page = (grown.path / "r.html").read_text()
    assert "FAILED: this change adds $15.00/month" in page


def test_the_cost_gate_passes_within_its_limit(grown):
    result = _cost_run(grown, "--dualcache-max-cost-growth=$15.00", "--dualcache-md=r.md")
    assert result.ret == pytest.ExitCode.OK
    assert "cost gate failed" not in result.stdout.lines[-1]
    result.stdout.fnmatch_lines(
        [f"projected month within the baseline's (allowed growth: $15.00): {SENTENCE}{NEW_SITE}"]
    )
    summary = (grown.path / "r.md").read_text()
    assert f":white_check_mark: cost (limit $15.00): {md_text(SENTENCE)}" in summary


def test_a_baseline_without_a_bill_is_not_compared(pytester):
    pytester.makepyfile(
        test_batch="def test_batch(kv_namespace):\n    kv_namespace.put('s', 'v')\n"
    )
    pytester.makeini(ALLOW_TEST_WRITES)
    pytester.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-save-baseline=base.json")
    assert "bill" not in json.loads((pytester.path / "base.json").read_text())
    _cost_project(pytester)
    result = _cost_run(pytester, "--dualcache-max-cost-growth=0", "--dualcache-md=r.md")
    result.stdout.fnmatch_lines([f"note: {NO_BASELINE_BILL}"])
    assert "projected month within" not in result.stdout.str()
    assert "cost gate failed" not in result.stdout.lines[-1]
    assert f"- note: {md_text(NO_BASELINE_BILL)}" in (pytester.path / "r.md").read_text()
    assert judge_cost({"tests": {}}, {}, CostLimit(cents=0)).failed is False
    # A baseline with a bill, a session without a workload: not compared either.
    billed = {"bill": {"total": {"gross_cents": 100, "monthly": {}}}}
    verdict = judge_cost(billed, {"t::x": {"write_sites": {}}}, CostLimit(cents=0))
    assert (verdict.note, verdict.failed) == (NO_BILL, False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--dualcache-baseline=base.json", "--dualcache-max-cost-growth=lots"),
            "--dualcache-max-cost-growth: expected a dollar amount (e.g. 4.10 or $4.10) or a "
            "percentage (e.g. 10%), got 'lots'",
        ),
        (
            ("--dualcache-baseline=base.json", "--dualcache-max-cost-growth=1.005"),
            "--dualcache-max-cost-growth: a dollar amount has at most 2 decimals*",
        ),
        (
            ("--dualcache-max-cost-growth=1",),
            "--dualcache-max-cost-growth: needs --dualcache-baseline (the bill to compare with)",
        ),
    ],
)
def test_a_bad_cost_limit_is_a_usage_error_naming_the_option(grown, args, message):
    result = grown.runpytest("--dualcache", *SKIP_SUITE, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_the_cost_limit_needs_dualcache(pytester):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest("--dualcache-max-cost-growth=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--dualcache-max-cost-growth only work together with --dualcache"]
    )


# --- the CLI ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "code", "verdict"),
    [
        ("10%", GATE_FAILED, "grew beyond"),
        ("15", OK, "within"),
        ("$14.99", GATE_FAILED, "grew beyond"),
    ],
)
def test_the_cli_gate_runs_the_same_cost_gate(grown, capsys, limit, code, verdict):
    plugin = _cost_run(grown, f"--dualcache-max-cost-growth={limit}", "--dualcache-report=r.json")
    capsys.readouterr()
    path = str(grown.path)
    args = ["gate", f"{path}/r.json", "--baseline", f"{path}/base.json", "--max-growth=100%"]
    assert main([*args, f"--max-cost-growth={limit}"]) == code
    out = capsys.readouterr().out.splitlines()
    shown = CostLimit.parse(limit, "x")
    line = (
        f"projected month {verdict} the baseline's (allowed growth: {shown}): {SENTENCE}{NEW_SITE}"
    )
    assert out[-1] == line
    assert line in plugin.stdout.lines  # the plugin printed the same verdict
    assert plugin.ret == (1 if code == GATE_FAILED else 0)


def test_the_cli_refuses_a_bad_cost_limit_and_skips_the_cost_gate_without_one(grown, capsys):
    _cost_run(grown, "--dualcache-report=r.json")
    capsys.readouterr()
    path = str(grown.path)
    args = ["gate", f"{path}/r.json", "--baseline", f"{path}/base.json", "--max-growth=100%"]
    assert main([*args, "--max-cost-growth=ten"]) == BAD_INPUT
    assert "error: --max-cost-growth: expected a dollar amount" in capsys.readouterr().err
    assert main(args) == OK
    assert "projected month" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("bill", "where"),
    [
        ({"total": {"monthly": {}}}, "bill.total.gross_cents: expected an integer, got null"),
        ({"total": {"gross_cents": 5, "monthly": []}}, "bill.total.monthly: expected an object"),
        ([], 'bill: expected an object with "total", got []'),
    ],
)
def test_a_baseline_with_a_malformed_bill_is_a_usage_error_naming_the_field(grown, bill, where):
    base = json.loads((grown.path / "base.json").read_text())
    (grown.path / "base.json").write_text(json.dumps({**base, "bill": bill}))
    result = _cost_run(grown, "--dualcache-max-cost-growth=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*is not a dualcache baseline*{where}*"])


def test_the_marker_is_registered(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.dualcache_workload(scale=1.0, name=None): *"])
