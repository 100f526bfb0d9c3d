"""VirtualClock: time that moves only when told to, and agrees with freezegun when it is active."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import math
import re
import sys
import time
from pathlib import Path

import freezegun
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_dualcache.clock import DEFAULT_START, VirtualClock
from pytest_dualcache.kv import KVNamespace

REPO = Path(__file__).resolve().parent.parent
FROZEN_AT = "2026-03-01 12:00:00"
FROZEN_EPOCH = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC).timestamp()


# --- the clock on its own -------------------------------------------------------------------


def test_default_start_is_monday_2026_01_05_utc_midnight():
    assert dt.datetime.fromtimestamp(DEFAULT_START, tz=dt.UTC).isoformat() == (
        "2026-01-05T00:00:00+00:00"
    )
    assert DEFAULT_START == 1_767_571_200.0


def test_new_clock_starts_at_default_start():
    assert VirtualClock().now() == DEFAULT_START


def test_clock_accepts_a_custom_start():
    assert VirtualClock(1_000.0).now() == 1_000.0


@pytest.mark.parametrize("start", [math.nan, math.inf, True, "0", None])
def test_clock_rejects_a_bad_start(start):
    with pytest.raises(TypeError, match="start takes finite epoch seconds"):
        VirtualClock(start)


def test_advance_moves_time_forward_and_returns_the_new_time():
    clock = VirtualClock()
    assert clock.advance(30) == DEFAULT_START + 30
    assert clock.now() == DEFAULT_START + 30


def test_advance_by_zero_keeps_the_time():
    clock = VirtualClock()
    clock.advance(0)
    assert clock.now() == DEFAULT_START


def test_advance_accepts_fractional_seconds():
    clock = VirtualClock()
    clock.advance(0.25)
    assert clock.now() == DEFAULT_START + 0.25


def test_advance_and_sleep_never_block():
    clock = VirtualClock()
    wall_start = time.perf_counter()
    clock.advance(86_400 * 365)
    clock.sleep(3_600)
    assert time.perf_counter() - wall_start < 1.0
    assert clock.now() == DEFAULT_START + 86_400 * 365 + 3_600


def test_sleep_advances_the_clock_and_returns_none():
    clock = VirtualClock()
    assert clock.sleep(5) is None
    assert clock.now() == DEFAULT_START + 5


@settings(max_examples=100)
@given(st.lists(st.integers(min_value=0, max_value=10**12), max_size=20))
def test_successive_advances_add_up_to_the_microsecond(steps_us):
    clock = VirtualClock()
    for step_us in steps_us:
        clock.advance(step_us / 1_000_000)
    assert clock.now() == (round(DEFAULT_START * 1_000_000) + sum(steps_us)) / 1_000_000


def test_ten_advances_of_a_tenth_make_exactly_one_second():
    clock = VirtualClock()
    for _ in range(10):
        clock.advance(0.1)
    assert clock.now() == DEFAULT_START + 1


@pytest.mark.parametrize("seconds", [-1, -0.001, math.nan, math.inf, -math.inf])
def test_advance_rejects_negative_or_non_finite_seconds(seconds):
    clock = VirtualClock()
    with pytest.raises(ValueError, match=r"finite, non-negative number of seconds.*use set"):
        clock.advance(seconds)
    assert clock.now() == DEFAULT_START


@pytest.mark.parametrize("seconds", [True, False, "10", None, dt.timedelta(seconds=1)])
def test_advance_rejects_non_numbers(seconds):
    clock = VirtualClock()
    with pytest.raises(TypeError, match=re.escape(f"got {seconds!r}")):
        clock.advance(seconds)
    assert clock.now() == DEFAULT_START


def test_advance_by_an_unrepresentable_amount_raises_value_error_naming_it():
    clock = VirtualClock()
    with pytest.raises(ValueError, match=re.escape(repr(sys.float_info.max))):
        clock.advance(sys.float_info.max)


def test_sleep_rejects_negative_seconds_like_advance():
    with pytest.raises(ValueError, match="non-negative"):
        VirtualClock().sleep(-1)


def test_set_jumps_forwards():
    clock = VirtualClock()
    clock.set(DEFAULT_START + 86_400)
    assert clock.now() == DEFAULT_START + 86_400


def test_set_jumps_backwards():
    clock = VirtualClock()
    clock.set(0)
    assert clock.now() == 0.0


@pytest.mark.parametrize("epoch", [math.nan, math.inf, False, "2026-01-05"])
def test_set_rejects_non_finite_or_non_numbers(epoch):
    clock = VirtualClock()
    with pytest.raises(TypeError, match=r"set\(\) takes finite epoch seconds"):
        clock.set(epoch)
    assert clock.now() == DEFAULT_START


def test_async_sleep_advances_under_asyncio_run():
    clock = VirtualClock()
    result = asyncio.run(clock.async_sleep(90, result="done"))
    assert result == "done"
    assert clock.now() == DEFAULT_START + 90


def test_async_sleep_returns_none_by_default():
    assert asyncio.run(VirtualClock().async_sleep(1)) is None


def test_utcnow_is_an_aware_utc_datetime():
    now = VirtualClock().utcnow()
    assert now.tzinfo is dt.UTC
    assert now.utcoffset() == dt.timedelta(0)
    assert now == dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


def test_utcnow_follows_advance():
    clock = VirtualClock()
    clock.advance(90)
    assert clock.utcnow() == dt.datetime(2026, 1, 5, 0, 1, 30, tzinfo=dt.UTC)


def test_repr_shows_the_iso_time():
    assert repr(VirtualClock()) == "VirtualClock(2026-01-05T00:00:00+00:00)"


# --- freezegun bridge -----------------------------------------------------------------------


def test_clock_reads_the_frozen_time_inside_freeze_time():
    clock = VirtualClock()
    with freezegun.freeze_time(FROZEN_AT):
        assert clock.now() == FROZEN_EPOCH
        assert clock.now() == time.time()


def test_advance_inside_freeze_time_moves_time_time_and_datetime_now():
    clock = VirtualClock()
    with freezegun.freeze_time(FROZEN_AT):
        time_before = time.time()
        datetime_before = dt.datetime.now()
        assert clock.advance(30) == FROZEN_EPOCH + 30
        assert time.time() == time_before + 30
        assert dt.datetime.now() - datetime_before == dt.timedelta(seconds=30)
        assert clock.now() == FROZEN_EPOCH + 30


def test_sleep_inside_freeze_time_moves_freezegun():
    clock = VirtualClock()
    with freezegun.freeze_time(FROZEN_AT):
        clock.sleep(5)
        assert time.time() == FROZEN_EPOCH + 5


def test_set_inside_freeze_time_moves_freezegun():
    clock = VirtualClock()
    target = dt.datetime(2026, 6, 1, 8, 30, tzinfo=dt.UTC)
    with freezegun.freeze_time(FROZEN_AT):
        clock.set(target.timestamp())
        assert time.time() == target.timestamp()
        assert dt.datetime.now() == target.replace(tzinfo=None)
        assert clock.now() == target.timestamp()


def test_set_backwards_inside_freeze_time_moves_freezegun():
    clock = VirtualClock()
    with freezegun.freeze_time(FROZEN_AT):
        clock.set(DEFAULT_START)
        assert time.time() == DEFAULT_START


def test_freezegun_tick_is_seen_by_the_clock():
    clock = VirtualClock()
    with freezegun.freeze_time(FROZEN_AT) as frozen:
        frozen.tick(10)
        assert clock.now() == FROZEN_EPOCH + 10


def test_freezegun_move_to_is_seen_by_the_clock():
    clock = VirtualClock()
    with freezegun.freeze_time(FROZEN_AT) as frozen:
        frozen.move_to("2026-03-02 00:00:00")
        assert clock.utcnow() == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def test_utcnow_inside_freeze_time_is_the_aware_frozen_time():
    clock = VirtualClock()
    with freezegun.freeze_time(FROZEN_AT):
        assert clock.utcnow() == dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_clock_resumes_its_own_time_after_freeze_time_exits():
    clock = VirtualClock()
    clock.advance(7)
    with freezegun.freeze_time(FROZEN_AT) as frozen:
        clock.advance(30)
        frozen.tick(10)
    assert clock.now() == DEFAULT_START + 7


def test_clock_advances_its_own_time_again_after_freeze_time_exits():
    clock = VirtualClock()
    with freezegun.freeze_time(FROZEN_AT):
        pass
    clock.advance(3)
    assert clock.now() == DEFAULT_START + 3


def test_nested_freeze_time_uses_the_innermost_block():
    clock = VirtualClock()
    with freezegun.freeze_time(FROZEN_AT):
        with freezegun.freeze_time("2026-04-01 00:00:00"):
            assert clock.utcnow() == dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
        assert clock.now() == FROZEN_EPOCH


def test_clock_follows_freezegun_after_it_is_reimported(monkeypatch):
    clock = VirtualClock()
    with freezegun.freeze_time(FROZEN_AT):
        assert clock.now() == FROZEN_EPOCH
    for name in [m for m in sys.modules if m == "freezegun" or m.startswith("freezegun.")]:
        monkeypatch.delitem(sys.modules, name)
    fresh = importlib.import_module("freezegun")
    with fresh.freeze_time(FROZEN_AT):
        assert clock.now() == FROZEN_EPOCH


def test_advance_inside_freeze_time_still_rejects_negative_seconds():
    clock = VirtualClock()
    with freezegun.freeze_time(FROZEN_AT):
        with pytest.raises(ValueError, match="non-negative"):
            clock.advance(-1)
        assert time.time() == FROZEN_EPOCH


def test_kv_entry_put_inside_freeze_time_expires_when_the_clock_advances_60_s():
    clock = VirtualClock()
    kv = KVNamespace(clock)
    with freezegun.freeze_time(FROZEN_AT):
        kv.put("quote:AAPL", "189.5", expiration_ttl=60)
        assert kv.expiration_of("quote:AAPL") == int(FROZEN_EPOCH) + 60
        clock.advance(59)
        assert kv.get("quote:AAPL") == "189.5"
        clock.advance(1)
        assert kv.get("quote:AAPL") is None


def test_kv_entry_put_inside_freeze_time_expires_when_freezegun_ticks_60_s():
    clock = VirtualClock()
    kv = KVNamespace(clock)
    with freezegun.freeze_time(FROZEN_AT) as frozen:
        kv.put("quote:AAPL", "189.5", expiration_ttl=60)
        frozen.tick(59)
        assert kv.get("quote:AAPL") == "189.5"
        frozen.tick(1)
        assert kv.get("quote:AAPL") is None


# --- VirtualClock.freeze(): freezegun at the clock's own time ---------------------------------


def test_freeze_makes_every_time_source_read_the_clock():
    clock = VirtualClock()
    clock.advance(90.25)
    with clock.freeze():
        now = DEFAULT_START + 90.25
        assert time.time() == time.monotonic() == time.perf_counter() == now
        assert abs(time.time_ns() - round(now * 1e9)) < 1_000
        naive_utc = dt.datetime(2026, 1, 5, 0, 1, 30, 250000)
        assert dt.datetime.now() == dt.datetime.utcnow() == naive_utc
        assert dt.datetime.now(dt.UTC) == clock.utcnow()
        assert dt.date.today() == dt.date(2026, 1, 5)


def test_moving_the_clock_moves_the_frozen_time():
    clock = VirtualClock()
    with clock.freeze():
        clock.advance(119.999)
        assert time.time() == clock.now() == DEFAULT_START + 119.999
        clock.sleep(0.001)
        assert time.time() == DEFAULT_START + 120
        clock.set(FROZEN_EPOCH)
        assert dt.datetime.now(dt.UTC) == dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def test_the_clock_keeps_the_time_it_reached_when_the_freeze_ends():
    clock = VirtualClock()
    with clock.freeze():
        clock.advance(45)
    assert clock.now() == DEFAULT_START + 45
    assert time.time() != DEFAULT_START + 45
    clock.advance(1)
    assert clock.now() == DEFAULT_START + 46


def test_freeze_starts_at_a_custom_clock_start():
    clock = VirtualClock(FROZEN_EPOCH)
    with clock.freeze():
        assert time.time() == FROZEN_EPOCH


def test_freeze_start_and_stop_without_a_with_block():
    clock = VirtualClock()
    freeze = clock.freeze()
    assert not freeze.active
    assert freeze.start() is freeze and freeze.active
    with pytest.raises(RuntimeError, match="already active"):
        freeze.start()
    clock.advance(5)
    freeze.stop()
    freeze.stop()  # a second stop does nothing
    assert not freeze.active and clock.now() == DEFAULT_START + 5
    assert repr(freeze) == "<ClockFreeze of VirtualClock(2026-01-05T00:00:05+00:00), stopped>"


def test_a_freeze_follows_another_clock_and_leaves_the_first_at_the_time_it_reached():
    first, second = VirtualClock(), VirtualClock(FROZEN_EPOCH)
    freeze = first.freeze().start()
    first.advance(30)
    freeze.follow(second)
    assert freeze.active and time.time() == FROZEN_EPOCH
    second.advance(7)
    freeze.stop()
    assert first.now() == DEFAULT_START + 30
    assert second.now() == FROZEN_EPOCH + 7
    with pytest.raises(RuntimeError, match="not active"):
        freeze.follow(first)


def test_freeze_inside_freeze_time_starts_there_and_hands_its_time_back():
    clock = VirtualClock()
    with freezegun.freeze_time(FROZEN_AT):
        with clock.freeze():
            assert time.time() == FROZEN_EPOCH
            clock.advance(10)
        assert time.time() == clock.now() == FROZEN_EPOCH + 10
    assert clock.now() == FROZEN_EPOCH + 10


def test_the_event_loop_keeps_real_time_under_freeze():
    clock = VirtualClock()

    async def loop_time() -> float:
        await asyncio.sleep(0)
        return asyncio.get_running_loop().time()

    with clock.freeze():
        before = freezegun.api.real_monotonic()
        loop_now = asyncio.run(loop_time())
        assert before <= loop_now <= freezegun.api.real_monotonic()
        assert time.monotonic() == DEFAULT_START


def test_pytest_durations_keep_real_time_under_freeze():
    from _pytest import timing

    with VirtualClock().freeze():
        assert timing.time() != time.time()
        assert timing.perf_counter() != time.perf_counter()


def test_freeze_from_the_fixture(dualcache_clock):
    with dualcache_clock.freeze():
        dualcache_clock.advance(60)
        assert time.time() == DEFAULT_START + 60


# --- the repository's rule: time only moves via the VirtualClock ------------------------------

_SLEEP_CALL = re.compile(r"\btime\.sleep\(")


def _sleep_calls(repo: Path) -> list[str]:
    """``path:line: code`` of every time.sleep call under tests/ and contracts/, except
    monkeypatching lines and the pattern above."""
    found = []
    for folder in ("tests", "contracts"):
        root = repo / folder
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.py")):
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if "_SLEEP_CALL" in line or "monkeypatch" in line:
                    continue
                if _SLEEP_CALL.search(line):
                    found.append(f"{path.relative_to(repo)}:{lineno}: {line.strip()}")
    return found


def test_no_test_or_contract_calls_time_sleep():
    offenders = _sleep_calls(REPO)
    assert not offenders, "time only moves via the VirtualClock; found:\n" + "\n".join(offenders)


def test_sleep_scan_finds_calls_and_allows_monkeypatching(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "contracts").mkdir()
    call = "time." + "sleep(1)"
    (tmp_path / "tests" / "test_a.py").write_text(f"import time\n{call}\n")
    (tmp_path / "contracts" / "test_b.py").write_text(
        f"monkeypatch.setattr(time, 'sleep', lambda s: None); {call}\n"
    )
    assert _sleep_calls(tmp_path) == [f"tests/test_a.py:2: {call}"]
