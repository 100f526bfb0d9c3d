"""latency.py: the seed's table, TOML models, seeded draws, requests and their percentiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dualcache.latency import (
    SEED_TABLE,
    LatencyModel,
    RequestRecorder,
    nearest_rank,
    resolve,
)

SOURCE = "ini dualcache_latency"


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
