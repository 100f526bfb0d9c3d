"""SLO gates: parsing and measuring (slo.py), the dualcache_slo marker and the ini key."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

# pytester restores sys.modules after each in-process run: preloading what the contract
# suite and hypothesis's terminal summary import keeps every --dualcache run from
# re-importing them.
import hypothesis.internal.observability  # noqa: F401
import pytest
import pytest_dualcache.contracts.test_registered  # noqa: F401
from run_reports import call_reports, outcomes

from pytest_dualcache import DualCacheEnv, VirtualClock
from pytest_dualcache.kv import KVRateLimitError
from pytest_dualcache.ledger import CallSite, Ledger, OperationRecord
from pytest_dualcache.recorder import Recorder
from pytest_dualcache.slo import (
    METRICS,
    SESSION,
    TOP,
    Gate,
    Objectives,
    SLOError,
    describe_session_miss,
    evidence,
    judge,
    judge_session,
    kv_error_records,
    marker_objectives,
    measure,
    merge,
    ordered,
    render,
    slow_request_lines,
)

SKIP_SUITE = ("-k", "not TestDualCacheContract")
MONDAY = 1_767_571_200.0  # 2026-01-05T00:00:00Z, the virtual clock's start
DAY = 86_400
INI = "ini dualcache_slo"
MARKER = "@pytest.mark.dualcache_slo"
LATENCY_OFF = (
    "p95_ms needs the simulated latency model, which is off; set ini dualcache_latency = seed "
    "(or a PATH.toml) to time requests"
)
SLO_NOT_CHECKED = "dualcache: SLO gates were not checked (run with --dualcache to enforce them)"


def _final_line(result: pytest.RunResult) -> str:
    """The run's final summary line ("2 passed, 1 SLO gate failed in ...")."""
    return result.stdout.lines[-1]


def _record(
    op: str = "put",
    *,
    at: float = MONDAY,
    ok: bool = True,
    kind: str = "kv",
    nbytes: int = 3,
    line: int = 7,
    error: type[Exception] | None = None,
    injected: bool = False,
) -> OperationRecord:
    """A ledger row as ``Ledger.record`` makes it, for the measuring functions."""
    site = CallSite("/src/dal.py", line, "save")
    error_type = None if error is None else error.__name__
    status = 429 if error is KVRateLimitError else None
    return OperationRecord(
        "CACHE_KV" if kind == "kv" else "CACHE_DO",
        op,
        "k",
        at,
        nbytes,
        ok,
        None if ok else "refused",
        site,
        None,
        kind,
        error_type,
        status,
        injected,
    )


# --- parsing: the marker's keywords -------------------------------------------------------------


def test_of_keeps_each_gate_with_its_metrics_direction():
    objectives = Objectives.of(
        MARKER, do_hit_rate=0.7, do_write_share=0.98, kv_errors=0, kv_writes_per_day=50
    )
    assert [str(gate) for gate in objectives.gates] == [
        "do_hit_rate >= 0.7",
        "do_write_share >= 0.98",
        "kv_errors <= 0",
        "kv_writes_per_day <= 50",
    ]
    assert objectives.source == MARKER


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({}, "name at least one metric (do_hit_rate, do_write_share, kv_errors, "),
        ({"hit_rate": 0.7}, "unknown metric 'hit_rate'; use do_hit_rate, do_write_share, "),
        ({"do_hit_rate": 1.5}, "do_hit_rate is a rate from 0 to 1, got 1.5"),
        ({"do_write_share": -0.1}, "do_write_share is a rate from 0 to 1, got -0.1"),
        ({"do_hit_rate": True}, "do_hit_rate is a rate from 0 to 1, got True"),
        ({"do_hit_rate": "0.7"}, "do_hit_rate is a rate from 0 to 1, got '0.7'"),
        ({"kv_errors": -1}, "kv_errors must be an int >= 0, got -1"),
        ({"kv_writes_per_day": 2.5}, "kv_writes_per_day must be an int >= 0, got 2.5"),
        ({"kv_writes_per_day": False}, "kv_writes_per_day must be an int >= 0, got False"),
        ({"p95_ms": -5}, "p95_ms must be a number of ms >= 0, got -5"),
    ],
)
def test_of_refuses_bad_limits_naming_the_source_and_the_bad_part(limits, message):
    with pytest.raises(SLOError) as info:
        Objectives.of(MARKER, **limits)
    assert str(info.value).startswith(f"{MARKER}: {message}")


def test_p95_ms_is_measurable_only_with_the_latency_model():
    objectives = Objectives.parse("kv_errors=0, p95_ms<=5", INI)
    assert objectives is not None
    assert objectives.gates == (Gate("kv_errors", 0), Gate("p95_ms", 5))
    objectives.check_measurable(latency_on=True)
    with pytest.raises(SLOError) as info:
        objectives.check_measurable(latency_on=False)
    assert str(info.value) == f"{INI}: {LATENCY_OFF}"
    Objectives.of(MARKER, kv_errors=0).check_measurable(latency_on=False)  # no p95_ms: fine


def test_the_marker_takes_keywords_only():
    with pytest.raises(SLOError, match=r"takes keyword limits only, e\.g\. dualcache_slo\("):
        marker_objectives((0.7,), {})
    assert marker_objectives((), {"kv_errors": 0}).gates == (Gate("kv_errors", 0),)


# --- parsing: the ini text ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "  ", ",", " ; , "])
def test_parse_of_blank_text_is_no_gate(text):
    assert Objectives.parse(text, INI) is None


@pytest.mark.parametrize(
    ("text", "gates"),
    [
        (
            "do_hit_rate>=0.70, do_write_share>=0.98, kv_errors=0",
            [Gate("do_hit_rate", 0.7), Gate("do_write_share", 0.98), Gate("kv_errors", 0)],
        ),
        # "=" means what the marker's keyword means: at least a rate, at most a count.
        (
            "do_hit_rate=0.5; kv_writes_per_day <= 50",
            [Gate("do_hit_rate", 0.5), Gate("kv_writes_per_day", 50)],
        ),
        (" kv_errors <= 3 ", [Gate("kv_errors", 3)]),
        ("do_write_share>=1", [Gate("do_write_share", 1)]),
    ],
)
def test_parse_reads_each_form(text, gates):
    objectives = Objectives.parse(text, INI)
    assert objectives is not None
    assert list(objectives.gates) == gates
    assert objectives.source == INI


def test_parse_gives_counts_as_ints_and_rates_as_numbers():
    objectives = Objectives.parse("kv_errors=0, do_hit_rate>=0.7", INI)
    assert objectives is not None
    limits = [gate.limit for gate in objectives.gates]
    assert limits == [0, 0.7] and type(limits[0]) is int


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("do_hit_rate", "cannot read 'do_hit_rate'; write metric>=N, metric<=N or metric=N"),
        ("do_hit_rate>>0.7", "cannot read 'do_hit_rate>>0.7'"),
        ("do_hit_rate 0.7", "cannot read 'do_hit_rate 0.7'"),
        ("hit_rate>=0.7", "unknown metric 'hit_rate'; use do_hit_rate, "),
        ("do_hit_rate<=0.7", "'do_hit_rate<=0.7': do_hit_rate is a floor; write do_hit_rate>=N"),
        ("kv_errors>=1", "'kv_errors>=1': kv_errors is a ceiling; write kv_errors<=N"),
        ("kv_errors=-1", "'kv_errors=-1': '-1' is not a number >= 0"),
        ("kv_errors=lots", "'kv_errors=lots': 'lots' is not a number >= 0"),
        ("do_hit_rate>=70", "do_hit_rate is a rate from 0 to 1, got 70"),
        ("kv_writes_per_day<=0.5", "kv_writes_per_day must be an int >= 0, got 0.5"),
        ("kv_errors=0, kv_errors=1", "kv_errors is given twice"),
    ],
)
def test_parse_errors_name_the_ini_key_and_the_bad_part(text, message):
    with pytest.raises(SLOError) as info:
        Objectives.parse(text, INI)
    assert str(info.value).startswith(f"{INI}: {message}")


def test_every_metric_is_a_floor_or_a_ceiling():
    assert {name: metric.comparison for name, metric in METRICS.items()} == {
        "do_hit_rate": ">=",
        "do_write_share": ">=",
        "kv_errors": "<=",
        "kv_writes_per_day": "<=",
        "p95_ms": "<=",
    }
    assert Gate("do_hit_rate", 0.7).holds(0.7) and not Gate("do_hit_rate", 0.7).holds(0.699999)
    assert Gate("kv_errors", 0).holds(0) and not Gate("kv_errors", 0).holds(1)


# --- measuring ----------------------------------------------------------------------------------


def test_kv_errors_are_the_429s_and_quota_errors_kv_answered_not_injected_faults():
    from pytest_dualcache.kv import KVQuotaError

    answered = _record(ok=False, error=KVRateLimitError)
    quota = _record(ok=False, error=KVQuotaError)
    records = [
        answered,
        quota,
        _record(ok=False, error=KVRateLimitError, injected=True),  # kv.fail(error=...)
        _record(ok=False, error=ValueError),  # a 400 and the like: the caller's mistake
        _record(ok=True),
    ]
    assert kv_error_records(records) == [answered, quota]


def test_an_injected_fault_is_recorded_as_injected_and_a_real_429_is_not():
    env = DualCacheEnv(VirtualClock())
    env.kv.put("k", "v")
    with pytest.raises(KVRateLimitError):
        env.kv.put("k", "again")  # KV's own answer: 1 write per second per key
    env.kv.fail(times=1, error=KVRateLimitError(429, "injected"))
    with pytest.raises(KVRateLimitError):
        env.kv.put("other", "v")
    env.kv.fail(times=1)  # the default injected fault: a 503
    with pytest.raises(Exception, match="503"):
        env.kv.get("k")
    failed = [record for record in env.kv.ledger.records if not record.ok]
    assert [(r.error_type, r.status, r.injected) for r in failed] == [
        ("KVRateLimitError", 429, False),
        ("KVRateLimitError", 429, True),
        ("KVError", 503, True),
    ]
    assert kv_error_records(failed) == failed[:1]


def test_only_the_built_in_do_caches_ledger_is_marked_for_the_hit_rate():
    recorder = Recorder()
    previous = recorder.activate()
    try:
        cache_env = DualCacheEnv(VirtualClock())
        user_object = Ledger("CACHE_DO", kind="do")  # a user's Durable Object: same binding
        scope = recorder.scope()
        cache_env.do.get("missing")  # type: ignore[union-attr]
        user_object.record("get", "entry", MONDAY, 0, True)
        cache = scope.records(kind="do", where=lambda ledger: ledger.do_cache)
        everything = scope.records(kind="do")
        scope.close()
    finally:
        Recorder.restore(previous)
    assert [record.key for record in cache] == ["missing"]
    assert [record.key for record in everything] == ["missing", "entry"]


def test_evidence_and_measure_over_one_test(tmp_path):
    cache = [_record("get", kind="do", nbytes=n, line=20 + n) for n in (5, 5, 5, 0)]
    records = [
        *(_record("put", at=MONDAY + 60 * i) for i in range(3)),
        _record("put", at=MONDAY + DAY),
        _record("put", ok=False, error=KVRateLimitError),
    ]
    found = evidence(records, cache, do_writes=12, rootdir=tmp_path)
    assert found == {
        "cache_gets": 4,
        "cache_misses": {"/src/dal.py:20:save": 1},
        "do_writes": 12,
        "kv_writes": {
            "2026-01-05": {"/src/dal.py:7:save": 3},
            "2026-01-06": {"/src/dal.py:7:save": 1},
        },
        "kv_errors": {"KVRateLimitError (429) at /src/dal.py:7:save": 1},
    }
    assert json.loads(json.dumps(found)) == found  # plain data: xdist carries it
    figures = {
        name: measure(Gate(name, 1), found, "this test") for name in METRICS if name != "p95_ms"
    }
    assert figures["do_hit_rate"].value == 0.75
    assert figures["do_hit_rate"].figures == "3 of 4 DO cache gets hit"
    assert figures["do_write_share"].value == 0.75  # 12 DO writes, 4 KV writes
    assert figures["kv_errors"].value == 1
    assert figures["kv_writes_per_day"].value == 3
    assert (
        figures["kv_writes_per_day"].figures == "3 KV writes on 2026-01-05 (UTC), the busiest day"
    )
    assert figures["kv_writes_per_day"].days == ("2026-01-05",)  # over the limit of 1


def test_a_ratio_with_nothing_to_measure_is_none_never_a_pass(tmp_path):
    found = evidence([], [], do_writes=0, rootdir=tmp_path)
    (hit_rate, share, errors, per_day) = judge(
        Objectives.of(MARKER, do_hit_rate=0, do_write_share=0, kv_errors=0, kv_writes_per_day=0),
        found,
        "t.py::test",
        "this test",
    )
    assert (hit_rate.measured.value, hit_rate.passed) == (None, False)
    assert hit_rate.headline == (
        f"{MARKER}: do_hit_rate cannot be measured: no gets on the built-in DO cache in this "
        "test; remove the gate or read through the built-in DO cache (DualCacheEnv.do, the "
        "do_cache fixture)"
    )
    assert (share.measured.value, share.passed) == (None, False)
    assert (errors.measured.value, errors.passed) == (0, True)
    assert (per_day.measured.value, per_day.passed) == (0, True)


def test_merge_sums_tests_by_day_and_site():
    a = {
        "cache_gets": 2,
        "cache_misses": {"s1": 1},
        "do_writes": 3,
        "kv_writes": {"2026-01-05": {"w": 2}},
        "kv_errors": {},
    }
    b = {
        "cache_gets": 1,
        "cache_misses": {"s1": 1, "s2": 1},
        "do_writes": 0,
        "kv_writes": {"2026-01-05": {"w": 1, "v": 1}, "2026-01-06": {"w": 4}},
        "kv_errors": {"e": 2},
    }
    total = merge([a, b])
    assert total["cache_gets"] == 3 and total["do_writes"] == 3
    assert dict(total["cache_misses"]) == {"s1": 2, "s2": 1}
    assert {day: dict(sites) for day, sites in total["kv_writes"].items()} == {
        "2026-01-05": {"w": 3, "v": 1},
        "2026-01-06": {"w": 4},
    }
    assert dict(total["kv_errors"]) == {"e": 2}


def _timed(requests: dict[str, list[int]]) -> dict[str, object]:
    """A test's evidence with nothing but its timed requests (durations in microseconds)."""
    found = evidence([], [], do_writes=0, rootdir=Path("/"))
    return {**found, "requests": requests}


def test_p95_ms_is_the_p95_of_the_slowest_request_name():
    # get: the 19th of 20 by nearest rank is 10 ms (one 50 ms outlier); put: 50 ms
    found = _timed({"get": [10_000] * 19 + [50_000], "put": [50_000] * 3})
    (p95,) = judge(Objectives.of(MARKER, p95_ms=5), found, "t.py::test", "this test")
    assert (p95.measured.value, p95.passed) == (50.0, False)
    assert p95.headline == (
        "expected p95_ms <= 5, measured 50: p95 of 3 'put' requests, the slowest of 2 "
        f"request names ({MARKER})"
    )
    (met,) = judge(Objectives.of(MARKER, p95_ms=50), found, "t.py::test", "this test")
    assert (met.measured.value, met.passed) == (50.0, True)
    assert slow_request_lines(5, {"t.py::test": found["requests"]}, by_test=False) == [
        "2 request names over 5 ms at p95:",
        "  put: 3 requests, p50 50 ms, p95 50 ms, p99 50 ms, max 50 ms",
        "  get: 20 requests, p50 10 ms, p95 10 ms, p99 50 ms, max 50 ms",
    ]
    assert slow_request_lines(20, {"t.py::test": found["requests"]}, by_test=False)[0] == (
        "1 request name over 20 ms at p95:"
    )


def test_p95_ms_without_requests_cannot_be_measured_never_a_pass():
    (p95,) = judge(Objectives.of(MARKER, p95_ms=5), _timed({}), "t.py::test", "this test")
    assert (p95.measured.value, p95.passed) == (None, False)
    assert p95.headline == (
        f"{MARKER}: p95_ms cannot be measured: no requests were timed in this test; remove "
        "the gate or time requests: with dualcache_env.request(name): ..."
    )


def test_the_session_pools_requests_and_names_the_slow_tests():
    tests = {
        "b.py::test_kv": {"slo_evidence": _timed({}), "requests": {"put": [50_000] * 4}},
        "a.py::test_do": {"slo_evidence": _timed({}), "requests": {"put": [500] * 16}},
        "c.py::test_contract": {"requests": {"put": [90_000]}},  # no evidence: not judged
    }
    for data in tests.values():
        data.get("slo_evidence", {}).pop("requests", None)  # the JSON keeps them apart
    verdicts, by_test = judge_session(Objectives.of(INI, p95_ms=1), tests)
    assert list(by_test) == ["a.py::test_do", "b.py::test_kv"]
    assert merge(by_test.values())["requests"] == {"put": [500] * 16 + [50_000] * 4}
    (verdict,) = verdicts
    # 20 puts: the 19th by nearest rank is one of the four 50 ms ones
    assert (verdict.measured.value, verdict.passed) == (50.0, False)
    assert describe_session_miss(verdict, by_test).splitlines() == [
        "expected p95_ms <= 1 over the application's 2 tests, measured 50: p95 of 20 'put' "
        f"requests ({INI})",
        "1 request name over 1 ms at p95:",
        "  put: 20 requests, p50 0.5 ms, p95 50 ms, p99 50 ms, max 50 ms",
        "requests slower than 1 ms by test:",
        "      4 x b.py::test_kv",
    ]


def test_a_session_miss_lists_sites_and_tests_most_first_and_capped():
    by_test = {
        f"t.py::test_{i:02}": {
            "cache_gets": 0,
            "cache_misses": {},
            "do_writes": 0,
            "kv_writes": {"2026-01-05": {f"dal.py:{i}:put": i + 1}},
            "kv_errors": {},
        }
        for i in range(TOP + 5)
    }
    (verdict,) = judge(
        Objectives.of(INI, kv_writes_per_day=10),
        merge(by_test.values()),
        SESSION,
        "the application's 25 tests",
    )
    text = describe_session_miss(verdict, by_test).splitlines()
    assert text[0] == (
        "expected kv_writes_per_day <= 10 over the application's 25 tests, measured 325: "
        f"325 KV writes on 2026-01-05 (UTC), the busiest day ({INI})"
    )
    assert text[1] == "325 KV writes on 2026-01-05 (UTC) by call site:"
    assert text[2] == f"     25 x dal.py:{TOP + 4}:put"
    assert text[2 + TOP] == "  ... and 5 more"
    assert text[3 + TOP] == "by test:"
    assert text[4 + TOP] == f"     25 x t.py::test_{TOP + 4:02}"
    assert text[-1] == "  ... and 5 more"
    assert len(text) == 2 * (TOP + 2) + 1


def test_ordered_and_rendered_session_first_then_by_node_id():
    results = [
        {
            "scope": "b.py::t",
            "metric": "kv_errors",
            "comparison": "<=",
            "limit": 0,
            "measured": 2,
            "passed": False,
        },
        {
            "scope": "a.py::t",
            "metric": "kv_errors",
            "comparison": "<=",
            "limit": 0,
            "measured": 0,
            "passed": True,
        },
        {
            "scope": "a.py::t",
            "metric": "do_hit_rate",
            "comparison": ">=",
            "limit": 0.7,
            "measured": None,
            "passed": False,
        },
        {
            "scope": SESSION,
            "metric": "kv_errors",
            "comparison": "<=",
            "limit": 0,
            "measured": 0,
            "passed": True,
        },
    ]
    assert render(ordered(results)) == [
        "SLO gates: 2 missed of 4",
        "  passed: session (your tests): kv_errors <= 0, measured 0",
        "  MISSED: a.py::t: do_hit_rate >= 0.7, measured n/a",
        "  passed: a.py::t: kv_errors <= 0, measured 0",
        "  MISSED: b.py::t: kv_errors <= 0, measured 2",
    ]
    assert render([]) == []


# --- the marker, through pytest -----------------------------------------------------------------

MARKER_TESTS = textwrap.dedent(
    """
    import pytest
    from pytest_dualcache import KVRateLimitError

    def read(do_cache, hits, misses):
        do_cache.set("hit", 1, ttl=60)
        for _ in range(hits):
            do_cache.get("hit")
        for i in range(misses):
            do_cache.get(f"miss{i}")  # THE MISS

    def write(kv, do_cache, kv_writes, do_writes, tag=""):
        for i in range(kv_writes):
            kv.put(f"{tag}k{i}", "v")  # THE PUT
        for i in range(do_writes):
            do_cache.set(f"{tag}d{i}", 1, ttl=60)

    def rate_limited(kv, times):
        for i in range(times):
            kv.put(f"hot{i}", "v")
            with pytest.raises(KVRateLimitError):
                kv.put(f"hot{i}", "again")  # THE 429

    @pytest.mark.dualcache_slo(do_hit_rate=0.7)
    def test_hit_rate_met(do_cache):
        read(do_cache, hits=7, misses=3)

    @pytest.mark.dualcache_slo(do_hit_rate=0.7)
    def test_hit_rate_missed(do_cache):
        read(do_cache, hits=6, misses=4)

    @pytest.mark.dualcache_slo(do_write_share=0.75)
    def test_write_share_met(kv_namespace, do_cache):
        write(kv_namespace, do_cache, kv_writes=1, do_writes=3)

    @pytest.mark.dualcache_slo(do_write_share=0.75)
    def test_write_share_missed(kv_namespace, do_cache):
        write(kv_namespace, do_cache, kv_writes=2, do_writes=3)

    @pytest.mark.dualcache_slo(kv_errors=1)
    def test_kv_errors_met(kv_namespace):
        rate_limited(kv_namespace, 1)

    @pytest.mark.dualcache_slo(kv_errors=0)
    def test_kv_errors_missed(kv_namespace):
        rate_limited(kv_namespace, 2)

    @pytest.mark.dualcache_slo(kv_errors=0)
    def test_injected_faults_are_not_kv_errors(kv_namespace):
        kv_namespace.fail(times=1)
        with pytest.raises(Exception):
            kv_namespace.put("a", "v")
        kv_namespace.fail(times=1, error=KVRateLimitError(429, "injected"))
        with pytest.raises(KVRateLimitError):
            kv_namespace.put("b", "v")

    @pytest.mark.dualcache_slo(kv_errors=0)
    def test_a_quota_error_is_a_kv_error(kv_namespace):
        for i in range(1001):  # the free plan's 1,000 writes a day, and one more
            try:
                kv_namespace.put(f"q{i}", "v")
            except Exception:
                pass

    @pytest.mark.dualcache_slo(kv_writes_per_day=3)
    def test_writes_per_day_met(kv_namespace, do_cache, dualcache_clock):
        for day in range(3):
            write(kv_namespace, do_cache, kv_writes=3, do_writes=0, tag=f"d{day}")
            dualcache_clock.advance(86_400)

    @pytest.mark.dualcache_slo(kv_writes_per_day=3)
    def test_writes_per_day_missed_on_tuesday(kv_namespace, do_cache, dualcache_clock):
        for day in range(3):
            write(kv_namespace, do_cache, kv_writes=3 + (day == 1), do_writes=0, tag=f"d{day}")
            dualcache_clock.advance(86_400)

    @pytest.mark.dualcache_slo(do_hit_rate=0.5)
    def test_hit_rate_without_the_do_cache(kv_namespace):
        kv_namespace.get("k")

    @pytest.mark.dualcache_slo(do_hit_rate=0.9, kv_errors=0)
    def test_failing_on_its_own(do_cache):
        read(do_cache, hits=1, misses=1)
        assert False, "its own failure"
    """
)


def _line(needle: str, source: str = MARKER_TESTS) -> int:
    """The 1-based line of ``needle`` in ``source`` as pytester writes it (stripped)."""
    lines = source.strip("\n").splitlines()
    (number,) = [i for i, text in enumerate(lines, 1) if needle in text]
    return number


@pytest.fixture
def marker_run(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(test_slo_marker=MARKER_TESTS)
    pytester.makeini("[pytest]\ndualcache_kv_allow = test_slo_marker.py::*\n")
    return pytester.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-report=kv.json")


def test_marker_outcomes_for_each_metric(marker_run):
    assert outcomes(marker_run) == {
        "test_hit_rate_met": "passed",
        "test_hit_rate_missed": "failed",
        "test_write_share_met": "passed",
        "test_write_share_missed": "failed",
        "test_kv_errors_met": "passed",
        "test_kv_errors_missed": "failed",
        "test_injected_faults_are_not_kv_errors": "passed",
        "test_a_quota_error_is_a_kv_error": "failed",
        "test_writes_per_day_met": "passed",
        "test_writes_per_day_missed_on_tuesday": "failed",
        "test_hit_rate_without_the_do_cache": "failed",
        "test_failing_on_its_own": "failed",
    }
    assert marker_run.ret == pytest.ExitCode.TESTS_FAILED


def test_marker_miss_of_the_hit_rate_lists_the_do_misses(marker_run, pytester):
    report = call_reports(marker_run)["test_hit_rate_missed"]
    assert str(report.longrepr) == (
        f"expected do_hit_rate >= 0.7, measured 0.6: 6 of 10 DO cache gets hit ({MARKER})"
    )
    site = f"{pytester.path / 'test_slo_marker.py'}:{_line('# THE MISS')}:read"
    assert dict(report.sections)["dualcache KV operations"].splitlines() == [
        "4 DO cache misses by call site:",
        f"      4 x {site} (first key 'miss0', last 'miss3')",
        "each operation, oldest first:",
        *(f"  get 'miss{i}' 0 B at {site} [CACHE_DO, t=2026-01-05 00:00:00]" for i in range(4)),
    ]


def test_marker_miss_of_the_write_share_lists_the_kv_routed_writes(marker_run, pytester):
    report = call_reports(marker_run)["test_write_share_missed"]
    assert str(report.longrepr) == (
        "expected do_write_share >= 0.75, measured 0.6: 3 of 5 writes went to the DO, 2 to "
        f"KV ({MARKER})"
    )
    site = f"{pytester.path / 'test_slo_marker.py'}:{_line('# THE PUT')}:write"
    section = dict(report.sections)["dualcache KV operations"]
    assert section.splitlines()[:2] == [
        "2 KV-routed writes by call site:",
        f"      2 x {site} (first key 'k0', last 'k1')",
    ]


def test_marker_miss_of_kv_errors_lists_the_429s_with_kvs_answer(marker_run, pytester):
    report = call_reports(marker_run)["test_kv_errors_missed"]
    assert str(report.longrepr) == (
        f"expected kv_errors <= 0, measured 2: KV answered 2 rate-limit (429) or quota errors "
        f"({MARKER})"
    )
    site = f"{pytester.path / 'test_slo_marker.py'}:{_line('# THE 429')}:rate_limited"
    lines = dict(report.sections)["dualcache KV operations"].splitlines()
    assert lines[:3] == [
        "2 KV errors by call site:",
        f"      2 x {site} (first key 'hot0', last 'hot1')",
        "each operation, oldest first:",
    ]
    assert lines[3].startswith(f"  put 'hot0' 0 B at {site} [CACHE_KV, t=2026-01-05 00:00:00]: ")
    assert "429" in lines[3]


def test_marker_counts_quota_errors_and_leaves_injected_faults_out(marker_run):
    reports = call_reports(marker_run)
    quota = str(reports["test_a_quota_error_is_a_kv_error"].longrepr)
    assert quota.startswith("expected kv_errors <= 0, measured 1: ")
    assert reports["test_injected_faults_are_not_kv_errors"].passed


def test_marker_writes_per_day_reuses_the_daily_budget(marker_run, pytester):
    report = call_reports(marker_run)["test_writes_per_day_missed_on_tuesday"]
    assert str(report.longrepr) == (
        "expected kv_writes_per_day <= 3, measured 4: 4 KV writes on 2026-01-06 (UTC), the "
        f"busiest day ({MARKER})"
    )
    site = f"{pytester.path / 'test_slo_marker.py'}:{_line('# THE PUT')}:write"
    lines = dict(report.sections)["dualcache KV operations"].splitlines()
    assert lines[:2] == [
        "4 KV writes on 2026-01-06 (UTC) by call site:",
        f"      4 x {site} (first key 'd1k0', last 'd1k3')",
    ]
    assert sum("t=2026-01-06 00:00:00" in line for line in lines) == 4


def test_a_hit_rate_gate_without_the_do_cache_is_an_error_not_a_pass(marker_run):
    report = call_reports(marker_run)["test_hit_rate_without_the_do_cache"]
    assert str(report.longrepr) == (
        f"{MARKER}: do_hit_rate cannot be measured: no gets on the built-in DO cache in this "
        "test; remove the gate or read through the built-in DO cache (DualCacheEnv.do, the "
        "do_cache fixture)"
    )


def test_a_test_failing_on_its_own_keeps_its_failure_and_shows_the_miss(marker_run):
    report = call_reports(marker_run)["test_failing_on_its_own"]
    assert report.longrepr.reprcrash.message.startswith("AssertionError: its own failure")
    assert (
        "expected do_hit_rate >= 0.9, measured 0.5"
        in dict(report.sections)["dualcache KV operations"]
    )


def test_marker_results_in_the_terminal_and_the_json(marker_run, pytester):
    report = json.loads((pytester.path / "kv.json").read_text())
    slo = report["slo"]
    scope = "test_slo_marker.py::"
    assert [
        (entry["scope"].removeprefix(scope), entry["metric"], entry["measured"], entry["passed"])
        for entry in slo
    ] == [
        ("test_a_quota_error_is_a_kv_error", "kv_errors", 1, False),
        ("test_failing_on_its_own", "do_hit_rate", 0.5, False),
        ("test_failing_on_its_own", "kv_errors", 0, True),
        ("test_hit_rate_met", "do_hit_rate", 0.7, True),
        ("test_hit_rate_missed", "do_hit_rate", 0.6, False),
        ("test_hit_rate_without_the_do_cache", "do_hit_rate", None, False),
        ("test_injected_faults_are_not_kv_errors", "kv_errors", 0, True),
        ("test_kv_errors_met", "kv_errors", 1, True),
        ("test_kv_errors_missed", "kv_errors", 2, False),
        ("test_write_share_met", "do_write_share", 0.75, True),
        ("test_write_share_missed", "do_write_share", 0.6, False),
        ("test_writes_per_day_met", "kv_writes_per_day", 3, True),
        ("test_writes_per_day_missed_on_tuesday", "kv_writes_per_day", 4, False),
    ]
    assert {
        "scope": f"{scope}test_hit_rate_met",
        "metric": "do_hit_rate",
        "comparison": ">=",
        "limit": 0.7,
        "measured": 0.7,
        "passed": True,
    } in slo
    assert len(slo) == 13  # test_failing_on_its_own has two gates
    marker_run.stdout.fnmatch_lines(
        [
            "SLO gates: 7 missed of 13",
            f"  passed: {scope}test_hit_rate_met: do_hit_rate >= 0.7, measured 0.7",
            f"  MISSED: {scope}test_hit_rate_missed: do_hit_rate >= 0.7, measured 0.6",
        ]
    )
    assert "SLO gate failed" not in _final_line(marker_run)  # no session gate was set


def test_marker_is_not_enforced_without_dualcache(pytester):
    pytester.makepyfile(test_slo_marker=MARKER_TESTS)
    result = pytester.runpytest()
    assert outcomes(result)["test_hit_rate_missed"] == "passed"
    assert result.stdout.lines.count(SLO_NOT_CHECKED) == 1


# --- the session's gate (ini dualcache_slo) -----------------------------------------------------

SESSION_TESTS = textwrap.dedent(
    """
    def test_reads(do_cache):
        do_cache.set("hit", 1, ttl=60)
        for _ in range(7):
            do_cache.get("hit")
        for i in range(3):
            do_cache.get(f"miss{i}")  # THE MISS

    def test_writes(kv_namespace, do_cache):
        for i in range(2):
            kv_namespace.put(f"k{i}", "v")  # THE PUT
        for i in range(97):
            do_cache.set(f"d{i}", 1, ttl=60)
    """
)


def _session_run(pytester: pytest.Pytester, slo: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_slo_session=SESSION_TESTS)
    pytester.makeini(
        f"[pytest]\ndualcache_kv_allow = test_slo_session.py::*\ndualcache_slo = {slo}\n"
    )
    return pytester.runpytest("--dualcache", *(args or SKIP_SUITE), "--dualcache-report=kv.json")


def test_a_session_gate_met_passes_the_session(pytester):
    result = _session_run(
        pytester, "do_hit_rate>=0.70, do_write_share>=0.98, kv_errors=0, kv_writes_per_day<=2"
    )
    assert result.ret == pytest.ExitCode.OK
    assert _final_line(result).startswith("=") and "2 passed" in _final_line(result)
    assert "SLO gate failed" not in _final_line(result)
    slo = json.loads((pytester.path / "kv.json").read_text())["slo"]
    assert slo == [
        {
            "scope": SESSION,
            "metric": "do_hit_rate",
            "comparison": ">=",
            "limit": 0.7,
            "measured": 0.7,
            "passed": True,
        },
        {
            "scope": SESSION,
            "metric": "do_write_share",
            "comparison": ">=",
            "limit": 0.98,
            "measured": 0.98,
            "passed": True,
        },
        {
            "scope": SESSION,
            "metric": "kv_errors",
            "comparison": "<=",
            "limit": 0,
            "measured": 0,
            "passed": True,
        },
        {
            "scope": SESSION,
            "metric": "kv_writes_per_day",
            "comparison": "<=",
            "limit": 2,
            "measured": 2,
            "passed": True,
        },
    ]
    result.stdout.fnmatch_lines(
        [
            "SLO gates: 0 missed of 4",
            "  passed: session (your tests): do_hit_rate >= 0.7, measured 0.7",
        ]
    )


def test_a_session_gate_missed_fails_the_session_named_in_the_final_line(pytester):
    result = _session_run(pytester, "do_hit_rate>=0.80, do_write_share>=0.99, kv_errors=0")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert outcomes(result) == {"test_reads": "passed", "test_writes": "passed"}
    assert re.search(r" 2 passed, \d+ deselected, 1 SLO gate failed in ", _final_line(result))
    path = "test_slo_session.py"
    miss, put = _line("# THE MISS", SESSION_TESTS), _line("# THE PUT", SESSION_TESTS)
    result.stdout.fnmatch_lines(
        [
            "SLO gates: 2 missed of 3",
            "  MISSED: session (your tests): do_hit_rate >= 0.8, measured 0.7",
            "  MISSED: session (your tests): do_write_share >= 0.99, measured 0.98",
            "  passed: session (your tests): kv_errors <= 0, measured 0",
            "expected do_hit_rate >= 0.8 over the application's 2 tests, measured 0.7: 7 of 10 "
            "DO cache gets hit (ini dualcache_slo)",
            "3 DO cache misses by call site:",
            f"      3 x {path}:{miss}:test_reads",
            "by test:",
            f"      3 x {path}::test_reads",
            "expected do_write_share >= 0.99 over the application's 2 tests, measured 0.98: "
            "98 of 100 writes went to the DO, 2 to KV (ini dualcache_slo)",
            "2 KV-routed writes by call site:",
            f"      2 x {path}:{put}:test_writes",
            "by test:",
            f"      2 x {path}::test_writes",
        ]
    )
    slo = json.loads((pytester.path / "kv.json").read_text())["slo"]
    assert [(entry["metric"], entry["passed"]) for entry in slo] == [
        ("do_hit_rate", False),
        ("do_write_share", False),
        ("kv_errors", True),
    ]


SESSION_KV_TESTS = textwrap.dedent(
    """
    import pytest
    from pytest_dualcache import KVRateLimitError

    def test_rate_limited(kv_namespace):
        kv_namespace.put("hot", "v")
        with pytest.raises(KVRateLimitError):
            kv_namespace.put("hot", "again")  # THE 429
        kv_namespace.fail(times=1, error=KVRateLimitError(429, "injected"))
        with pytest.raises(KVRateLimitError):
            kv_namespace.put("cold", "v")

    def test_two_days(kv_namespace, dualcache_clock):
        kv_namespace.put("monday", "v")  # THE MONDAY PUT
        dualcache_clock.advance(86_400)
        kv_namespace.put("tuesday", "v")
    """
)


def test_session_gates_on_kv_errors_and_writes_per_day_sum_the_tests(pytester):
    pytester.makepyfile(test_slo_kv=SESSION_KV_TESTS)
    pytester.makeini(
        "[pytest]\ndualcache_kv_allow = test_slo_kv.py::*\n"
        "dualcache_slo = kv_errors=0, kv_writes_per_day=1\n"
    )
    result = pytester.runpytest("--dualcache", *SKIP_SUITE)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert outcomes(result) == {"test_rate_limited": "passed", "test_two_days": "passed"}
    assert "1 SLO gate failed" in _final_line(result)
    path = "test_slo_kv.py"
    result.stdout.fnmatch_lines(
        [
            "  MISSED: session (your tests): kv_errors <= 0, measured 1",
            "  MISSED: session (your tests): kv_writes_per_day <= 1, measured 2",
            "expected kv_errors <= 0 over the application's 2 tests, measured 1: KV answered 1 "
            "rate-limit (429) or quota errors (ini dualcache_slo)",
            "1 KV errors by call site:",
            f"      1 x KVRateLimitError (429) at {path}:{_line('# THE 429', SESSION_KV_TESTS)}"
            ":test_rate_limited",
            "by test:",
            f"      1 x {path}::test_rate_limited",
            # Each test's clock starts on Monday 2026-01-05: the session's day sums them.
            "expected kv_writes_per_day <= 1 over the application's 2 tests, measured 2: 2 KV "
            "writes on 2026-01-05 (UTC), the busiest day (ini dualcache_slo)",
            "2 KV writes on 2026-01-05 (UTC) by call site:",
            "by test:",
            f"      1 x {path}::test_rate_limited",
            f"      1 x {path}::test_two_days",
        ]
    )


def test_a_session_hit_rate_gate_without_do_gets_is_an_error_not_a_pass(pytester):
    result = _session_run(
        pytester, "do_hit_rate>=0.5", "-k", "test_writes and not TestDualCacheContract"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "1 SLO gate failed" in _final_line(result)
    result.stdout.fnmatch_lines(
        [
            f"{INI}: do_hit_rate cannot be measured: no gets on the built-in DO cache in the "
            "application's 1 test; remove the gate or read through the built-in DO cache *"
        ]
    )


def test_the_session_gate_leaves_the_contract_suite_out(pytester, quick_suite_examples):
    # The suite writes KV and misses the DO on purpose (FLIP-1 flips the flag): its figures
    # would miss each of these gates.
    result = _session_run(
        pytester,
        "kv_writes_per_day<=2, do_hit_rate>=0.7",
        "-k",
        "FLIP_1 or test_slo_session",
        quick_suite_examples,
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    report = json.loads((pytester.path / "kv.json").read_text())
    assert report["groups"]["contract"]["tests"] >= 1
    assert report["groups"]["contract"]["kv"]["writes"] > 0
    measured = {entry["metric"]: entry["measured"] for entry in report["slo"]}
    assert measured == {"kv_writes_per_day": 2, "do_hit_rate": 0.7}


def test_the_json_slo_section_is_byte_identical_run_after_run(pytester):
    first = _session_run(pytester, "do_hit_rate>=0.80, kv_errors=0")
    text = (pytester.path / "kv.json").read_text()
    second = pytester.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-report=kv.json")
    assert first.ret == second.ret == pytest.ExitCode.TESTS_FAILED
    assert (pytester.path / "kv.json").read_text() == text
    assert '"slo": [' in text


def test_no_gate_anywhere_leaves_the_slo_section_out(pytester):
    pytester.makepyfile("def test_nothing(): pass")
    pytester.runpytest("--dualcache", *SKIP_SUITE, "--dualcache-report=kv.json")
    assert "slo" not in json.loads((pytester.path / "kv.json").read_text())


def test_the_ini_gate_is_not_enforced_without_dualcache(pytester):
    pytester.makepyfile(test_slo_session=SESSION_TESTS)
    pytester.makeini("[pytest]\ndualcache_slo = do_hit_rate>=0.99\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.OK
    assert result.stdout.lines.count(SLO_NOT_CHECKED) == 1


# --- usage errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("do_hit_rate", f"{INI}: cannot read 'do_hit_rate'; write metric>=N"),
        ("hit_rate>=0.7", f"{INI}: unknown metric 'hit_rate'"),
        ("do_hit_rate>=1.2", f"{INI}: do_hit_rate is a rate from 0 to 1, got 1.2"),
        ("kv_errors=-1", f"{INI}: 'kv_errors=-1': '-1' is not a number >= 0"),
        ("do_write_share<=0.9", f"{INI}: 'do_write_share<=0.9': do_write_share is a floor"),
        ("p95_ms<=5", f"{INI}: {LATENCY_OFF}"),
    ],
)
def test_a_bad_ini_gate_is_a_usage_error(pytester, value, message):
    pytester.makepyfile("def test_nothing(): pass")
    pytester.makeini(f"[pytest]\ndualcache_slo = {value}\n")
    result = pytester.runpytest("--dualcache", *SKIP_SUITE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("0.7", f"{MARKER} takes keyword limits only"),
        ("", f"{MARKER}: name at least one metric"),
        ("hit_rate=0.7", f"{MARKER}: unknown metric 'hit_rate'"),
        ("do_hit_rate=70", f"{MARKER}: do_hit_rate is a rate from 0 to 1, got 70"),
        ("kv_errors=-1", f"{MARKER}: kv_errors must be an int >= 0, got -1"),
        ("p95_ms=5", f"{MARKER}: {LATENCY_OFF}"),
    ],
)
def test_a_bad_marker_is_a_usage_error_at_collection(pytester, arguments, message):
    pytester.makepyfile(
        test_bad=f"import pytest\n\n@pytest.mark.dualcache_slo({arguments})\ndef test_x(): pass\n"
    )
    result = pytester.runpytest("--dualcache", *SKIP_SUITE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: test_bad.py::test_x: {message}*"])
    assert call_reports(result) == {}  # no test ran


def test_a_bad_marker_added_while_the_test_runs_fails_that_test(pytester):
    # What an xdist worker does with any bad marker: its UsageError would be an INTERNALERROR.
    pytester.makepyfile(
        test_late="""
        import pytest

        def test_x(request, do_cache):
            request.applymarker(pytest.mark.dualcache_slo(hit_rate=0.7))
            do_cache.get("k")
        """
    )
    result = pytester.runpytest("--dualcache", *SKIP_SUITE)
    report = call_reports(result)["test_x"]
    assert str(report.longrepr).startswith(f"{MARKER}: unknown metric 'hit_rate'; use ")
    assert "dualcache KV operations" not in dict(report.sections)


def test_the_marker_is_registered(pytester):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.dualcache_slo(do_hit_rate=None, *"])
