"""VirtualClock timers (``call_at``): run in time order as the clock is moved, each at its time."""

from __future__ import annotations

import asyncio
import time
import warnings

import pytest

from pytest_dualcache.clock import DEFAULT_START, VirtualClock


def test_a_timer_runs_when_the_clock_passes_it_with_the_clock_at_its_time():
    clock = VirtualClock()
    seen: list[float] = []
    clock.call_at(DEFAULT_START + 5, lambda: seen.append(clock.now()))
    clock.advance(4)
    assert seen == []
    assert clock.advance(3) == DEFAULT_START + 7
    assert seen == [DEFAULT_START + 5]


def test_timers_run_in_time_order_then_creation_order():
    clock = VirtualClock()
    seen: list[str] = []
    clock.call_at(DEFAULT_START + 2, lambda: seen.append("b"))
    clock.call_at(DEFAULT_START + 1, lambda: seen.append("a"))
    clock.call_at(DEFAULT_START + 2, lambda: seen.append("c"))
    clock.advance(10)
    assert seen == ["a", "b", "c"]


def test_a_timer_a_callback_sets_within_the_window_runs_in_the_same_advance():
    clock = VirtualClock()
    seen: list[float] = []

    def first() -> None:
        seen.append(clock.now())
        clock.call_at(clock.now() + 2, lambda: seen.append(clock.now()))

    clock.call_at(DEFAULT_START + 1, first)
    clock.advance(5)
    assert seen == [DEFAULT_START + 1, DEFAULT_START + 3]
    assert clock.now() == DEFAULT_START + 5


def test_a_cancelled_timer_never_runs():
    clock = VirtualClock()
    seen: list[int] = []
    timer = clock.call_at(DEFAULT_START + 1, lambda: seen.append(1))
    timer.cancel()
    clock.advance(2)
    assert seen == [] and timer.cancelled


def test_a_past_timer_runs_on_the_next_move_even_by_zero():
    clock = VirtualClock()
    seen: list[float] = []
    clock.call_at(DEFAULT_START - 60, lambda: seen.append(clock.now()))
    clock.advance(0)
    assert seen == [DEFAULT_START]


def test_set_forward_runs_due_timers_and_backward_runs_none():
    clock = VirtualClock()
    seen: list[float] = []
    clock.call_at(DEFAULT_START + 10, lambda: seen.append(clock.now()))
    clock.set(DEFAULT_START - 100)
    assert seen == []
    clock.set(DEFAULT_START + 20)
    assert seen == [DEFAULT_START + 10] and clock.now() == DEFAULT_START + 20


def test_advance_keeps_whole_microseconds_with_timers_pending():
    clock = VirtualClock()
    clock.call_at(DEFAULT_START + 3600, lambda: None)
    for _ in range(10):
        clock.advance(0.1)
    assert clock.now() == DEFAULT_START + 1


def test_an_async_timer_in_sync_advance_runs_on_a_fresh_loop():
    clock = VirtualClock()
    seen: list[float] = []

    async def callback() -> None:
        await asyncio.sleep(0)
        seen.append(clock.now())

    clock.call_at(DEFAULT_START + 1, callback)
    clock.advance(2)
    assert seen == [DEFAULT_START + 1]


def test_an_async_timer_in_sync_advance_under_a_running_loop_says_use_advance_async():
    clock = VirtualClock()

    async def callback() -> None:
        pass

    clock.call_at(DEFAULT_START + 1, callback, name="alarm() of COUNTER 'a'")

    async def test() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the coroutine is closed, not left unawaited
            with pytest.raises(RuntimeError, match=r"alarm\(\) of COUNTER 'a'.*advance_async"):
                clock.advance(2)

    asyncio.run(test())


def test_advance_async_awaits_timers_on_the_running_loop():
    clock = VirtualClock()
    loops: list[asyncio.AbstractEventLoop] = []

    async def callback() -> None:
        loops.append(asyncio.get_running_loop())

    clock.call_at(DEFAULT_START + 1, callback)

    async def test() -> float:
        now = await clock.advance_async(5)
        assert loops == [asyncio.get_running_loop()]
        return now

    assert asyncio.run(test()) == DEFAULT_START + 5


def test_advance_async_without_timers_is_advance():
    clock = VirtualClock()
    assert asyncio.run(clock.advance_async(1.5)) == DEFAULT_START + 1.5
    with pytest.raises(ValueError, match="non-negative"):
        asyncio.run(clock.advance_async(-1))


def test_advance_async_checks_its_argument_with_timers_pending():
    clock = VirtualClock()
    clock.call_at(DEFAULT_START + 1, lambda: None)
    with pytest.raises(TypeError, match="number of seconds"):
        asyncio.run(clock.advance_async("1"))  # type: ignore[arg-type]


def test_async_sleep_runs_timers():
    clock = VirtualClock()
    seen: list[float] = []
    clock.call_at(DEFAULT_START + 1, lambda: seen.append(clock.now()))
    asyncio.run(clock.async_sleep(2))
    assert seen == [DEFAULT_START + 1]


def test_under_freeze_a_timer_sees_its_own_time_in_time_time():
    clock = VirtualClock()
    seen: list[float] = []
    clock.call_at(DEFAULT_START + 30, lambda: seen.append(time.time()))
    with clock.freeze():
        clock.advance(60)
        assert time.time() == DEFAULT_START + 60
    assert seen == [DEFAULT_START + 30]


def test_timer_repr_and_when():
    clock = VirtualClock()
    timer = clock.call_at(DEFAULT_START + 1.5, lambda: None, name="tick")
    assert timer.when == DEFAULT_START + 1.5
    assert "tick" in repr(timer)
