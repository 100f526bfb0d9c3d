"""latency.py: the seed's table, TOML models, seeded draws, requests and their percentiles."""

from __future__ import annotations

import json
from pathlib import Path

# pytester restores sys.modules after each in-process run: preloading what the contract
# suite and hypothesis's terminal summary import keeps every --dualcache run from
# re-importing them.
import hypothesis.internal.observability  # noqa: F401
import pytest
import pytest_dualcache.contracts.test_registered  # noqa: F401

from pytest_dualcache.latency import (
    SEED_TABLE,
    LatencyModel,
    RequestRecorder,
    latency_section,
    nearest_rank,
    pooled,
    render,
    resolve,
    summarize,
)

SOURCE = "ini dualcache_latency"
SKIP_SUITE = ("-k", "not TestDualCacheContract")
# Plugins the subprocess runs do not need (each xdist worker would load them too).
LEAN = ("-p", "no:benchmark", "-p", "no:cacheprovider")


def _reports(result: pytest.RunResult) -> dict[str, pytest.TestReport]:
    """Each test's call report by test name (the in-process run keeps them)."""
    return {
        report.nodeid.rpartition("::")[2]: report
        for report in result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
        if report.when == "call"
    }


def test_off_is_no_model_and_seed_is_the_seeds_table(tmp_path: Path) -> None:
    assert resolve("off", SOURCE, tmp_path) is None
    model = resolve("seed", SOURCE, tmp_path)
    assert model is not None and model.table is SEED_TABLE


def test_the_seed_table_is_the_migration_plans_figures() -> None:
    """The seed: "Cache write (DAL) 50ms KV, <1ms DO"; "Cache read (DAL) 10-50ms" on KV."""
    model = LatencyModel(SEED_TABLE)
    assert {model.latency_us("kv", "put") for _ in range(20)} == {50_000}
    reads = [model.latency_us("kv", "get") for _ in range(200)]
    assert all(10_000 <= r <= 50_000 for r in reads) and len(set(reads)) > 1
    assert all(model.latency_us("do", op) < 1000 for op in ("get", "set") for _ in range(50))


def test_draws_are_deterministic_per_seed_and_per_operation() -> None:
    first, second = LatencyModel(SEED_TABLE, seed=3), LatencyModel(SEED_TABLE, seed=3)
    plain = [first.latency_us("kv", "get") for _ in range(10)]
    interleaved = []
    for _ in range(10):  # other operations drawn in between change nothing
        second.latency_us("do", "get")
        interleaved.append(second.latency_us("kv", "get"))
    assert plain == interleaved
    other = LatencyModel(SEED_TABLE, seed=4)
    assert [other.latency_us("kv", "get") for _ in range(10)] != plain


def test_an_operation_without_a_figure_costs_nothing() -> None:
    assert LatencyModel({"kv": {}}).latency_us("kv", "get") == 0
    assert LatencyModel(SEED_TABLE).latency_us("r2", "get") == 0


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "latency.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_toml_model(tmp_path: Path) -> None:
    _toml(
        tmp_path,
        "seed = 7\n[kv]\nget = { min_ms = 1, max_ms = 2 }\nput = 50\n[do]\ndefault = 0.5\n",
    )
    model = resolve("latency.toml", SOURCE, tmp_path)
    assert model is not None and model.seed == 7
    assert model.latency_us("kv", "put") == 50_000
    assert 1000 <= model.latency_us("kv", "get") <= 2000
    assert model.latency_us("do", "list") == 500
    assert model.to_json()["table"]["do"] == {"default": {"min_ms": 0.5, "max_ms": 0.5}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[kv]\nget = 'fast'\n", r"latency\.toml: \[kv\]\.get: expected milliseconds"),
        ("[kv]\nget = -1\n", r"\[kv\]\.get: expected milliseconds >= 0"),
        ("[kv]\nget = { min_ms = 5 }\n", r"\[kv\]\.get: expected keys min_ms and max_ms"),
        ("[do]\nget = { min_ms = 5, max_ms = 1 }\n", r"\[do\]\.get: max_ms 1.0 is below"),
        ("[do]\nget = { min_ms = true, max_ms = 1 }\n", r"\[do\]\.get\.min_ms: expected"),
        ("seed = 1.5\n", r"latency\.toml: seed: expected an integer"),
        ("[r2]\nget = 1\n", r"latency\.toml: r2: unknown key"),
        ("kv = 3\n", r"latency\.toml: kv: expected a table"),
        ("[kv\n", r"latency\.toml is not valid TOML"),
    ],
)
def test_toml_errors_name_the_source_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    _toml(tmp_path, text)
    with pytest.raises(ValueError, match=rf"^ini dualcache_latency: .*{message}"):
        resolve("latency.toml", SOURCE, tmp_path)


def test_a_missing_file_or_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^ini dualcache_latency: cannot read .*nope\.toml"):
        resolve("nope.toml", SOURCE, tmp_path)
    with pytest.raises(ValueError, match=r"expected off, seed or a PATH\.toml, got 'fast'"):
        resolve("fast", SOURCE, tmp_path)


@pytest.mark.parametrize(
    ("percent", "expected"),
    # The textbook nearest-rank example: 15, 20, 35, 40, 50. p30: ceil(1.5) = 2nd -> 20;
    # p40: ceil(2) = 2nd -> 20; p50: ceil(2.5) = 3rd -> 35; p100: 5th -> 50; p0: 1st.
    [(0, 15), (30, 20), (40, 20), (50, 35), (95, 50), (100, 50)],
)
def test_nearest_rank_by_hand(percent: int, expected: int) -> None:
    assert nearest_rank([50, 15, 40, 20, 35], percent) == expected


def test_nearest_rank_of_a_hundred_values() -> None:
    """1..100: p50 is the 50th value, p95 the 95th, p99 the 99th."""
    values = list(range(100, 0, -1))
    assert [nearest_rank(values, p) for p in (50, 95, 99)] == [50, 95, 99]
    with pytest.raises(ValueError):
        nearest_rank([], 50)


def test_a_request_sums_the_latencies_inside_it() -> None:
    recorder = RequestRecorder()
    recorder.record(999)  # outside any request: charged to none
    for spent in ([10_000, 50_000], [2_000], [500, 500, 500], []):
        with recorder.request("GET /quote"):
            for latency in spent:
                recorder.record(latency)
    assert recorder.durations["GET /quote"] == [60_000, 2_000, 1_500, 0]
    assert recorder.summary() == {
        "GET /quote": {"count": 4, "p50_ms": 1.5, "p95_ms": 60.0, "p99_ms": 60.0, "max_ms": 60.0}
    }


def test_nested_requests_both_count_and_a_raising_block_is_kept() -> None:
    recorder = RequestRecorder()
    with pytest.raises(RuntimeError), recorder.request("outer"):
        recorder.record(1_000)
        with recorder.request("inner"):
            recorder.record(250)
        raise RuntimeError("boom")
    assert recorder.durations == {"outer": [1_250], "inner": [250]}
    with recorder.request("after"):
        recorder.record(5)
    assert recorder.durations["outer"] == [1_250]  # closed: no longer charged


def test_a_closing_request_leaves_an_outer_one_that_spent_the_same_open() -> None:
    recorder = RequestRecorder()
    with recorder.request("outer"):
        with recorder.request("inner"):
            recorder.record(5)  # both have spent 5 when the inner one closes
        recorder.record(3)
    assert recorder.durations == {"inner": [5], "outer": [8]}


def test_a_fresh_model_draws_from_the_start_of_its_streams() -> None:
    model = LatencyModel(SEED_TABLE, seed=5, source="seed")
    drawn = [model.latency_us("kv", "get") for _ in range(3)]
    fresh = model.fresh()
    assert (fresh.table, fresh.seed, fresh.source) == (SEED_TABLE, 5, "seed")
    assert [fresh.latency_us("kv", "get") for _ in range(3)] == drawn


def test_the_summary_pools_each_names_durations_over_tests() -> None:
    per_test = [{"put": [50_000, 50_000], "get": [10_000]}, {"put": [1_000]}, {}]
    assert pooled(per_test) == {"put": [50_000, 50_000, 1_000], "get": [10_000]}
    section = latency_section(
        {"source": "seed", "seed": 0, "table": {}},
        {"b::t": {"requests": {"put": [1_000]}}, "a::t": {"requests": {"put": [50_000] * 2}}},
    )
    assert section["requests"] == {
        "put": {"count": 3, "p50_ms": 50.0, "p95_ms": 50.0, "p99_ms": 50.0, "max_ms": 50.0}
    }
    assert summarize({"never": []}) == {}
    assert render(section) == [
        "simulated response times (latency model seed, seed 0):",
        "  put: 3 requests, p50 50 ms, p95 50 ms, p99 50 ms, max 50 ms",
    ]
    assert render(None) == []


# --- wired end to end: the seed's table, measured on a DAL ---------------------------------------

# The seed's DAL shape: the DO cache when the flag says so, else KV.
SEED_DAL = """
import json

from pytest_dualcache import is_do_cache_enabled


class SeedDAL:
    def __init__(self, env):
        self.env = env

    def put(self, key, value):
        if is_do_cache_enabled(self.env):
            self.env.do.set(key, value, ttl=3600)
        else:
            self.env.kv.put(key, json.dumps(value), expiration_ttl=3600)
"""

SEED_TESTS = """
import pytest
from seed_dal import SeedDAL

START = 1_767_571_200.0  # the virtual clock's start


@pytest.mark.dualcache_slo(p95_ms=1)
def test_puts_on_the_do(dualcache_env):
    dal = SeedDAL(dualcache_env)
    for i in range(20):
        with dualcache_env.request("DAL put, DO route"):
            dal.put(f"signal:{i}", {"i": i})
    assert round(dualcache_env.clock.now() - START, 6) == 0.011528  # 20 draws under 1 ms


@pytest.mark.dualcache_slo(p95_ms=1)
def test_puts_on_kv(dualcache_env, dualcache_flag):
    dualcache_flag.disable()
    dal = SeedDAL(dualcache_env)
    for i in range(20):
        with dualcache_env.request("DAL put, KV route"):
            dal.put(f"signal:{i}", {"i": i})
    rows = dualcache_env.kv.ledger.records
    # each row keeps the time its put started; the clock moved on 50 ms after each
    assert [round(row.at - START, 6) for row in rows[:3]] == [0.0, 0.05, 0.1]
    assert round(dualcache_env.clock.now() - START, 6) == 1.0
"""

#: Seed 0's stream for ("do", "set"): 20 draws, uniform in 100..999 us.
DO_PUTS_US = [577, 535, 532, 392, 958, 798, 893, 797, 167, 271]
DO_PUTS_US += [656, 309, 920, 361, 437, 770, 277, 570, 656, 652]
KV_HEADLINE = (
    "expected p95_ms <= 1, measured 50: p95 of 20 'DAL put, KV route' requests "
    "(@pytest.mark.dualcache_slo)"
)


def _seed_project(pytester: pytest.Pytester, ini: str = "") -> None:
    pytester.makepyfile(seed_dal=SEED_DAL, test_seed_latency=SEED_TESTS)
    pytester.makeini(f"[pytest]\ndualcache_latency = seed\ndualcache_dal_modules = seed_dal\n{ini}")


def test_the_seed_table_on_a_dal_put_kv_50_ms_the_do_under_1_ms(pytester: pytest.Pytester) -> None:
    _seed_project(pytester)
    result = pytester.runpytest(
        "--dualcache",
        *SKIP_SUITE,
        "--dualcache-report=kv.json",
        "--dualcache-md=summary.md",
        "--dualcache-html=page.html",
    )
    result.assert_outcomes(passed=1, failed=1)
    report = json.loads((pytester.path / "kv.json").read_text())
    tests = report["tests"]
    assert tests["test_seed_latency.py::test_puts_on_the_do"]["requests"] == {
        "DAL put, DO route": DO_PUTS_US
    }
    assert tests["test_seed_latency.py::test_puts_on_kv"]["requests"] == {
        "DAL put, KV route": [50_000] * 20
    }
    assert sum(DO_PUTS_US) == 11_528
    assert report["latency"] == {
        "model": LatencyModel(SEED_TABLE).to_json(),
        "requests": {
            "DAL put, DO route": {
                "count": 20,
                "p50_ms": 0.57,
                "p95_ms": 0.92,
                "p99_ms": 0.958,
                "max_ms": 0.958,
            },
            "DAL put, KV route": {
                "count": 20,
                "p50_ms": 50.0,
                "p95_ms": 50.0,
                "p99_ms": 50.0,
                "max_ms": 50.0,
            },
        },
    }
    assert report["latency"]["model"]["table"]["kv"]["put"] == {"min_ms": 50.0, "max_ms": 50.0}
    assert [
        (r["scope"].rpartition("::")[2], r["measured"], r["passed"]) for r in report["slo"]
    ] == [
        ("test_puts_on_kv", 50.0, False),
        ("test_puts_on_the_do", 0.92, True),
    ]
    result.stdout.fnmatch_lines(
        [
            KV_HEADLINE,
            "simulated response times (latency model seed, seed 0):",
            "  DAL put, DO route: 20 requests, p50 0.57 ms, p95 0.92 ms, p99 0.958 ms, "
            "max 0.958 ms",
            "  DAL put, KV route: 20 requests, p50 50 ms, p95 50 ms, p99 50 ms, max 50 ms",
            "SLO gates: 1 missed of 2",
        ]
    )
    failure = str(_reports(result)["test_puts_on_kv"].longrepr)
    assert failure == KV_HEADLINE
    sections = dict(_reports(result)["test_puts_on_kv"].sections)
    assert sections["dualcache KV operations"] == (
        "1 request name over 1 ms at p95:\n"
        "  DAL put, KV route: 20 requests, p50 50 ms, p95 50 ms, p99 50 ms, max 50 ms"
    )
    markdown = (pytester.path / "summary.md").read_text()
    assert (
        "### Simulated response times (latency model seed, seed 0)\n\n"
        "| request | count | p50 ms | p95 ms | p99 ms | max ms |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: |\n"
        "| DAL put, DO route | 20 | 0.57 | 0.92 | 0.958 | 0.958 |\n"
        "| DAL put, KV route | 20 | 50 | 50 | 50 | 50 |\n"
    ) in markdown
    page = (pytester.path / "page.html").read_text()
    assert "<p>Latency model: seed, seed 0.</p>" in page
    assert "<code>DAL put, KV route</code>" in page


def test_the_ini_gate_over_the_sessions_requests(pytester: pytest.Pytester) -> None:
    _seed_project(pytester, "dualcache_slo = p95_ms<=1\n")
    pytester.makepyfile(
        test_seed_latency=SEED_TESTS.replace("@pytest.mark.dualcache_slo(p95_ms=1)\n", "")
    )
    result = pytester.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-report=kv.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "  MISSED: session (your tests): p95_ms <= 1, measured 50",
            "expected p95_ms <= 1 over the application's 2 tests, measured 50: p95 of 20 "
            "'DAL put, KV route' requests, the slowest of 2 request names (ini dualcache_slo)",
            "1 request name over 1 ms at p95:",
            "  DAL put, KV route: 20 requests, p50 50 ms, p95 50 ms, p99 50 ms, max 50 ms",
            "requests slower than 1 ms by test:",
            "     20 x test_seed_latency.py::test_puts_on_kv",
            "*2 passed*1 SLO gate failed*",
        ]
    )
    session = json.loads((pytester.path / "kv.json").read_text())["slo"]
    assert session == [
        {
            "scope": "session",
            "metric": "p95_ms",
            "comparison": "<=",
            "limit": 1,
            "measured": 50.0,
            "passed": False,
        }
    ]


def test_requests_time_nothing_with_the_model_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        seed_dal=SEED_DAL,
        test_off="""
        from seed_dal import SeedDAL

        def test_off(dualcache_env):
            with dualcache_env.request("DAL put"):
                SeedDAL(dualcache_env).put("k", 1)
            assert dualcache_env.latency is None
            assert dualcache_env.clock.now() == 1_767_571_200.0
        """,
    )
    pytester.makeini("[pytest]\ndualcache_dal_modules = seed_dal\n")
    result = pytester.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-report=kv.json")
    result.assert_outcomes(passed=1)
    report = json.loads((pytester.path / "kv.json").read_text())
    assert "latency" not in report and "requests" not in report["tests"]["test_off.py::test_off"]
    assert "simulated response times" not in result.stdout.str()


def test_the_model_applies_without_dualcache_too(pytester: pytest.Pytester) -> None:
    """It is part of the emulated environment, like the KV plan; reports and gates are
    ``--dualcache``'s."""
    pytester.makepyfile(
        test_plain="""
        def test_plain(dualcache_env):
            dualcache_env.kv.put("k", "v")
            assert round(dualcache_env.clock.now() - 1_767_571_200.0, 6) == 0.05
        """
    )
    pytester.makeini("[pytest]\ndualcache_latency = seed\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "simulated response times" not in result.stdout.str()


def test_a_contract_test_never_spends_latency(pytester: pytest.Pytester) -> None:
    """The fixture gives no model to a test of the contract suite (``dualcache_clause``), and
    the suite's own tests report the same figures with the model on as off."""
    pytester.makepyfile(
        test_clause="""
        import pytest

        @pytest.mark.dualcache_clause("TTL-1")
        def test_clause(dualcache_env):
            with dualcache_env.request("clause"):
                dualcache_env.kv.put("k", "v")
            assert dualcache_env.latency is None
            assert dualcache_env.clock.now() == 1_767_571_200.0
        """
    )
    reports = {}
    for mode in ("off", "seed"):
        pytester.makeini(f"[pytest]\ndualcache_latency = {mode}\n")
        result = pytester.runpytest(
            "--dualcache", "-k", "test_clause or TTL_1", f"--dualcache-report={mode}.json"
        )
        result.assert_outcomes(passed=5)  # ours and TTL-1's four
        reports[mode] = json.loads((pytester.path / f"{mode}.json").read_text())
    assert reports["seed"]["latency"]["requests"] == {}
    assert reports["seed"]["tests"] == reports["off"]["tests"]
    assert reports["seed"]["groups"]["contract"]["tests"] == 5


def test_xdist_carries_each_tests_requests_to_the_controller(pytester: pytest.Pytester) -> None:
    _seed_project(pytester)
    pytester.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-report=plain.json")
    pytester.runpytest_subprocess(
        "--dualcache", *SKIP_SUITE, *LEAN, "-n", "2", "--dualcache-report=xdist.json"
    )
    plain = (pytester.path / "plain.json").read_text()
    assert (pytester.path / "xdist.json").read_text() == plain
    assert json.loads(plain)["latency"]["requests"]["DAL put, KV route"]["count"] == 20


def test_a_rest_write_lands_on_the_same_namespace_and_spends_a_kv_write(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("httpx", reason="needs the [rest] extra")
    pytester.makepyfile(
        test_rest="""
        import httpx

        def test_rest_put(cloudflare_api, dualcache_env):
            api = cloudflare_api
            url = (
                f"{api.base_url}/accounts/{api.account_id}/storage/kv/namespaces/"
                f"{api.namespace_id()}/values/k"
            )
            with dualcache_env.request("REST put"):
                response = httpx.put(
                    url, content=b"v", headers={"Authorization": f"Bearer {api.token}"}
                )
            assert response.status_code == 200
            assert round(dualcache_env.clock.now() - 1_767_571_200.0, 6) == 0.05
        """
    )
    pytester.makeini("[pytest]\ndualcache_latency = seed\ndualcache_kv_allow = test_rest.py::*\n")
    result = pytester.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-report=kv.json")
    result.assert_outcomes(passed=1)
    report = json.loads((pytester.path / "kv.json").read_text())
    assert report["tests"]["test_rest.py::test_rest_put"]["requests"] == {"REST put": [50_000]}
