"""shards.py: shard reports merge into the report an unsplit run writes, or are refused."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from pytest_dualcache.cli import OK, main
from pytest_dualcache.report import SessionReport
from pytest_dualcache.shards import ShardError, merge_shards, parse_shard
from pytest_dualcache.slo import SHARD_NOTE

WAIVER = {"factory": "legacy", "clause": "FB-2", "reason": "writes KV", "source": "ini"}


def _test(group: str, writes: int, site: str, hits: int = 0) -> dict[str, Any]:
    """A test's entry as ``report.summarize`` writes it."""
    return {
        "group": group,
        "kv": {"reads": 1, "writes": writes, "deletes": 0, "lists": 0},
        "kv_errors": {"rate_limited": 0, "quota": 0, "other": 0},
        "do": {
            "deletes": 0,
            "errors": 0,
            "gets": hits + 1,
            "hits": hits,
            "lists": 0,
            "misses": 1,
            "sets": 2,
        },
        "write_sites": {site: writes} if writes else {},
        "bypasses": {"allowed": [], "rejected": [], "refused_by_kv": []},
        "over_budget": [],
    }


TESTS = {
    "tests/test_a.py::test_one": _test("application", 3, "app/dal.py:10:put", hits=4),
    "tests/test_a.py::test_two": _test("application", 0, ""),
    "contracts/test_registered.py::T::test_FB_2_x[legacy]": _test("contract", 5, "l.py:1:w"),
    "contracts/test_registered.py::T::test_FB_2_x[migrated]": _test("contract", 0, ""),
    "tests/test_b.py::test_three": _test("application", 7, "app/dal.py:10:put"),
}
OUTCOMES = {
    "contracts/test_registered.py::T::test_FB_2_x[legacy]": "xfailed",
}


def _session(nodeids: list[str], deselected: int = 2) -> SessionReport:
    """The report of a run of ``nodeids`` (what session.py builds)."""
    report = SessionReport(
        factories=["migrated", "legacy"],
        waivers=SessionReport.waivers_of([]),
        deselected=deselected,
    )
    report.waivers = [dict(WAIVER, xfailed=[], passed=[], failed=[])]
    for nodeid in nodeids:
        report.add(nodeid, copy.deepcopy(TESTS[nodeid]))
        if nodeid in OUTCOMES:
            report.waiver_outcome("legacy", "FB-2", nodeid, OUTCOMES[nodeid])
    return report


def _shards(*groups: list[str], **extra: Any) -> dict[str, dict[str, Any]]:
    return {
        f"shard-{index}.json": {
            **_session(nodeids).to_json(),
            "shard": f"{index}/{len(groups)}",
            **extra,
        }
        for index, nodeids in enumerate(groups, start=1)
    }


def _text(report: dict[str, Any]) -> str:
    """The file ``write_json_atomically`` writes."""
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def test_merged_shards_are_byte_identical_to_the_unsplit_run() -> None:
    nodeids = sorted(TESTS)
    unsplit = _text(_session(nodeids).to_json())
    shards = _shards(nodeids[:2], nodeids[2:3], nodeids[3:])
    assert _text(merge_shards(shards)) == unsplit
    reversed_order = dict(reversed(list(shards.items())))
    assert _text(merge_shards(reversed_order)) == unsplit


def test_totals_are_recomputed_not_summed() -> None:
    nodeids = sorted(TESTS)
    merged = merge_shards(_shards(nodeids[:3], nodeids[3:]))
    assert merged["totals"]["kv"]["writes"] == 15
    # 4 hits of 5 + 1 + 1 gets over the three application tests
    assert merged["groups"]["application"]["do_hit_rate"] == round(4 / 7, 6)
    assert merged["totals"]["top_write_sites"][0] == {"site": "app/dal.py:10:put", "writes": 10}
    assert merged["waivers"][0]["xfailed"] == [
        "contracts/test_registered.py::T::test_FB_2_x[legacy]"
    ]
    assert "shard" not in merged


def test_an_incomplete_shard_makes_an_incomplete_merge() -> None:
    nodeids = sorted(TESTS)
    shards = _shards(nodeids[:2], nodeids[2:])
    shards["shard-2.json"]["incomplete_reasons"] = ["stopped early"]
    shards["shard-2.json"]["crashed_workers"] = ["gw1: boom"]
    merged = merge_shards(shards)
    assert merged["complete"] is False
    assert merged["incomplete_reasons"] == ["stopped early"]
    assert merged["crashed_workers"] == ["gw1: boom"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("shard-2.json"), r"^shard 2 of 3 missing$"),
        (lambda s: s["shard-3.json"].update(shard="2/3"), r"shard-3\.json and shard-2\.json are"),
        (lambda s: s["shard-3.json"].update(shard="3/4"), r"one of 3 shards but .* one of 4"),
        (lambda s: s["shard-1.json"].pop("shard"), r"^shard-1\.json: not a shard report"),
        (lambda s: s["shard-1.json"].update(shard="0/3"), r'"shard" must be "I/N"'),
        (lambda s: s["shard-2.json"].update(version=1), r"^shards of different report version"),
        (
            lambda s: s["shard-2.json"].update(plugin_version="0.2.0"),
            r"^shards of different pytest-dualcache version",
        ),
        (
            lambda s: s["shard-2.json"]["factories"].update(names=["legacy"]),
            r"^shards of different factories",
        ),
        (
            lambda s: s["shard-2.json"]["waivers"][0].update(reason="other"),
            r"shard-2\.json declares other waivers",
        ),
        (lambda s: s["shard-2.json"].update(gate={}), r"cannot merge the section 'gate'"),
        (
            lambda s: s["shard-2.json"].update(deselected=9),
            r"deselected different numbers of tests .* do not list the tests each kept",
        ),
    ],
)
def test_what_cannot_be_merged_is_refused(change: Any, message: str) -> None:
    nodeids = sorted(TESTS)
    shards = _shards(nodeids[:2], nodeids[2:3], nodeids[3:])
    change(shards)
    with pytest.raises(ShardError, match=message):
        merge_shards(shards)


def _workload(name: str, scale: int, writes: int) -> dict[str, Any]:
    """A test's ``workload`` entry as the plugin writes it (one simulated day)."""
    return {"name": name, "scale": scale, "days": 1, "daily": {"kv_writes": writes}}


def test_the_bill_is_derived_from_the_tests_of_every_shard() -> None:
    nodeids = sorted(TESTS)
    tests = copy.deepcopy(TESTS)
    tests["tests/test_a.py::test_one"]["workload"] = _workload("api", 1000, 3)
    tests["tests/test_b.py::test_three"]["workload"] = _workload("batch", 100_000, 7)

    def session(chosen: list[str]) -> SessionReport:
        report = _session([])
        for nodeid in chosen:
            report.add(nodeid, copy.deepcopy(tests[nodeid]))
        return report

    unsplit = session(nodeids).to_json()
    shards = {
        f"shard-{index}.json": {**session(chosen).to_json(), "shard": f"{index}/2"}
        for index, chosen in enumerate(
            ([n for n in nodeids if "test_a" in n], [n for n in nodeids if "test_a" not in n]),
            start=1,
        )
    }
    assert "bill" in shards["shard-1.json"] and "bill" in shards["shard-2.json"]
    shards["shard-2.json"]["bill"] = {"stale": True}  # never read: recomputed from the tests
    merged = merge_shards(shards)
    assert _text(merged) == _text(unsplit)
    # api: 3 writes x 30 x 1,000 = 90,000 x $5.00/M = $0.45; batch: 7 x 30 x 100,000 =
    # 21,000,000 x $5.00/M = $105.00; net: (21,090,000 - 1,000,000) x $5.00/M = $100.45.
    assert merged["bill"]["workloads"]["api"]["gross_cents"] == 45
    assert merged["bill"]["workloads"]["batch"]["gross_cents"] == 10_500
    assert merged["bill"]["total"]["usage_cents"] == 10_045


def test_a_test_in_two_shards_is_refused() -> None:
    nodeids = sorted(TESTS)
    overlap = re.escape(f"{nodeids[0]} is in both shard-1.json and shard-2.json")
    with pytest.raises(ShardError, match=overlap):
        merge_shards(_shards(nodeids, nodeids[:1]))


def test_the_splits_own_deselections_are_taken_off() -> None:
    """pytest-split deselects the other shard's tests as ``-k`` would; each shard lists what it
    kept and deselected, so the unsplit run's deselections are exact: ``a`` and ``b``,
    deselected by ``-k`` in both shards, and none of ``c`` to ``g``, which a shard kept."""
    nodeids = sorted(TESTS)
    shards = _shards(nodeids[:3], nodeids[3:])
    kept = {"shard-1.json": ["c", "d", "e"], "shard-2.json": ["f", "g"]}
    for name, selected in kept.items():
        split = [nodeid for other in kept.values() if other is not selected for nodeid in other]
        shards[name].update(
            deselected=2 + len(split),
            shard_tests={"selected": selected, "deselected": ["a", "b", *split]},
        )
    assert merge_shards(shards)["deselected"] == 2


def test_shards_of_different_paths_deselect_what_each_deselected() -> None:
    """Shards that collected different paths (``pytest tests/unit``, ``pytest tests/api``)
    deselected on purpose only: the unsplit run deselects all of it."""
    nodeids = sorted(TESTS)
    shards = _shards(nodeids[:3], nodeids[3:])
    shards["shard-1.json"].update(
        deselected=1, shard_tests={"selected": ["c", "d", "e"], "deselected": ["a"]}
    )
    shards["shard-2.json"].update(
        deselected=2, shard_tests={"selected": ["f", "g"], "deselected": ["b", "h"]}
    )
    assert merge_shards(shards)["deselected"] == 3


def test_an_older_report_version_is_not_merged() -> None:
    shards = _shards(sorted(TESTS))
    shards["shard-1.json"]["version"] = 1
    with pytest.raises(ShardError, match="report version 1; this pytest-dualcache merges"):
        merge_shards(shards)
    with pytest.raises(ShardError, match="no shard reports"):
        merge_shards({})


def test_parse_shard() -> None:
    assert parse_shard("2/5", "x") == (2, 5)
    for bad in ("6/5", "a/b", 3, "1/0"):
        with pytest.raises(ShardError, match=r'^x: "shard" must be'):
            parse_shard(bad, "x")


# --- SLO verdicts and the latency section --------------------------------------------------------

DAL = """
import json

from pytest_dualcache import is_do_cache_enabled


def put(env, key, value):
    if is_do_cache_enabled(env):
        env.do.set(key, value, ttl=3600)
    else:
        env.kv.put(key, json.dumps(value), expiration_ttl=3600)
"""

ON_THE_DO = """
import pytest
import seed_dal


@pytest.mark.dualcache_slo(p95_ms=1)
def test_on_the_do(dualcache_env):
    for i in range(10):
        with dualcache_env.request("put"):
            seed_dal.put(dualcache_env, f"k{i}", i)
"""

ON_KV = """
import seed_dal


def test_on_kv(dualcache_env, dualcache_flag):
    dualcache_flag.disable()
    for i in range(10):
        with dualcache_env.request("put"):
            seed_dal.put(dualcache_env, f"k{i}", i)
"""


def test_a_sharded_run_with_session_gates_and_latency_merges_into_the_unsplit_report(
    pytester: pytest.Pytester,
) -> None:
    """Each shard judged the session's gates on its own tests; the merge judges them again
    over both, as the unsplit run did (a shard alone passed ``p95_ms<=1``: the merge fails
    it), and pools the request durations of both for the latency section."""
    # Not test_kv.py: this suite's own test_kv module may be imported in this process.
    pytester.makepyfile(seed_dal=DAL, test_route_do=ON_THE_DO, test_route_kv=ON_KV)
    pytester.makeini(
        "[pytest]\ndualcache_latency = seed\ndualcache_dal_modules = seed_dal\n"
        "dualcache_slo = p95_ms<=1, do_write_share>=0.6\n"
    )
    files = ("test_route_do.py", "test_route_kv.py")
    unsplit = pytester.runpytest("--dualcache", *files, "--dualcache-report=all.json")
    assert unsplit.ret == pytest.ExitCode.TESTS_FAILED  # the session's gates missed
    unsplit.stdout.fnmatch_lines(["*= 2 passed, 1 SLO gate failed in *"])
    for index, path in enumerate(files, start=1):
        shard = pytester.runpytest(
            "--dualcache", path, f"--dualcache-shard={index}/2", f"--dualcache-report={index}.json"
        )
        # A shard's session gates see a part of the session: the merge judges them (below).
        assert shard.ret == pytest.ExitCode.OK, shard.stdout.str()
        assert (SHARD_NOTE in shard.stdout.str()) is (index == 2)  # the KV shard missed
    shards = {name: json.loads((pytester.path / name).read_text()) for name in ("1.json", "2.json")}
    assert [(r["complete"], r["incomplete_reasons"]) for r in shards.values()] == [(True, [])] * 2
    session = [r for r in shards["1.json"]["slo"] if r["scope"] == "session"]
    assert [(r["metric"], r["measured"], r["passed"]) for r in session] == [
        ("do_write_share", 1.0, True),
        ("p95_ms", 0.958, True),
    ]
    merged = merge_shards(shards)
    unsplit = (pytester.path / "all.json").read_text()
    assert _text(merged) == unsplit
    paths = [str(pytester.path / name) for name in (*shards, "merged.json")]
    assert main(["merge", *paths[:2], "-o", paths[2]]) == OK  # python -m pytest_dualcache merge
    assert (pytester.path / "merged.json").read_text() == unsplit
    assert [
        (r["scope"].rpartition("::")[2] or r["scope"], r["metric"], r["measured"], r["passed"])
        for r in merged["slo"]
    ] == [
        ("session", "do_write_share", 0.5, False),
        ("session", "p95_ms", 50.0, False),
        ("test_on_the_do", "p95_ms", 0.958, True),
    ]
    assert merged["latency"]["requests"]["put"] == {
        "count": 20,
        "p50_ms": 0.958,
        "p95_ms": 50.0,
        "p99_ms": 50.0,
        "max_ms": 50.0,
    }


def _with_slo(report: dict[str, Any], gates: list[tuple[str, float]]) -> dict[str, Any]:
    """``report`` (a shard's JSON) as a run with these session gates writes it."""
    for data in report["tests"].values():
        if data["group"] == "application":
            data["slo_evidence"] = {
                "cache_gets": 0,
                "cache_misses": {},
                "do_writes": 2,
                "kv_writes": {},
                "kv_errors": {},
            }
    report["slo"] = [
        {"scope": "session", "metric": metric, "comparison": "<=", "limit": limit}
        | {"measured": 0, "passed": True}
        for metric, limit in gates
    ]
    return report


def test_shards_of_different_session_gates_or_without_evidence_are_refused() -> None:
    nodeids = sorted(TESTS)
    shards = _shards(nodeids[:2], nodeids[2:])
    _with_slo(shards["shard-1.json"], [("kv_errors", 0)])
    _with_slo(shards["shard-2.json"], [("kv_errors", 1)])
    with pytest.raises(
        ShardError,
        match=r"^shards of different session SLO gates \(ini dualcache_slo\): shard-1\.json "
        r"has kv_errors <= 0, shard-2\.json has kv_errors <= 1$",
    ):
        merge_shards(shards)
    _with_slo(shards["shard-2.json"], [("kv_errors", 0)])
    merged = merge_shards(shards)
    assert merged["slo"] == [
        {
            "scope": "session",
            "metric": "kv_errors",
            "comparison": "<=",
            "limit": 0,
            "measured": 0,
            "passed": True,
        }
    ]
    del shards["shard-2.json"]["tests"]["tests/test_b.py::test_three"]["slo_evidence"]
    with pytest.raises(
        ShardError,
        match=r"^cannot judge the session's SLO gates again: tests/test_b\.py::test_three "
        r"\(in shard-2\.json\) carries no slo_evidence",
    ):
        merge_shards(shards)


def test_shards_of_different_latency_models_are_refused() -> None:
    nodeids = sorted(TESTS)
    shards = _shards(nodeids[:2], nodeids[2:])
    model = {"source": "seed", "seed": 0, "table": {}}
    shards["shard-1.json"]["latency"] = {"model": model, "requests": {}}
    with pytest.raises(
        ShardError, match=r"^shards of different latency models \(ini dualcache_latency\): "
    ):
        merge_shards(shards)
    shards["shard-2.json"]["latency"] = {"model": model, "requests": {"stale": {}}}
    assert merge_shards(shards)["latency"] == {"model": model, "requests": {}}  # derived


SPLIT_TESTS = """
def save(kv, key):
    kv.put(key, "v")


def test_one(kv_namespace):
    save(kv_namespace, "one")


def test_two(kv_namespace):
    save(kv_namespace, "two")


def test_three(kv_namespace):
    save(kv_namespace, "three")


def test_skipped_by_k(kv_namespace):
    save(kv_namespace, "never")
"""


def test_pytest_split_shards_merge_into_the_unsplit_report(pytester: pytest.Pytester) -> None:
    """pytest-split's shards (each deselects the other's tests, beside ``-k``'s own) merge
    byte for byte into the report of the unsplit run of the same tests."""
    pytest.importorskip("pytest_split")
    pytester.makepyfile(test_split_project=SPLIT_TESTS)
    pytester.makeini("[pytest]\ndualcache_kv_allow = test_split_project.py::*\n")
    common = ("--dualcache", "test_split_project.py", "-k", "not skipped_by_k", "-p", "no:randomly")
    pytester.runpytest(*common, "--dualcache-report=all.json").assert_outcomes(
        passed=3, deselected=1
    )
    for group in (1, 2):
        pytester.runpytest(
            *common,
            "--splits=2",
            f"--group={group}",
            f"--dualcache-shard={group}/2",
            f"--dualcache-report={group}.json",
        )
    shards = {name: json.loads((pytester.path / name).read_text()) for name in ("1.json", "2.json")}
    assert sorted(len(s["tests"]) for s in shards.values()) == [1, 2]  # the split is uneven
    assert _text(merge_shards(shards)) == (pytester.path / "all.json").read_text()
