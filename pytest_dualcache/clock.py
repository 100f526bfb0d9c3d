"""The virtual clock every backend of a test reads, and its freezegun bridge.

Time never passes on its own: tests move it with ``advance``/``sleep``/``set``. When a
``freezegun.freeze_time`` block is active, the clock reads freezegun's frozen time instead of
its own, and moving the clock moves freezegun's time too, so ``time.time()`` and
``datetime.now()`` in user code agree with TTLs and rate limits in the emulators.
``VirtualClock.freeze()`` starts such a block at the clock's own time.

Timers (``call_at``) run when the clock is moved past their time, in time order, each with
the clock at its own time: how Durable Object alarms fire on virtual time.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import math
import sys
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any

#: Where every clock starts: Monday 2026-01-05 00:00:00 UTC, a UTC midnight (so simulated
#: days line up with KV's quota reset) at the start of a trading week.
DEFAULT_START: float = 1_767_571_200.0

_UNIX_EPOCH = _dt.datetime(1970, 1, 1)
_US = 1_000_000


_MODULES = sys.modules
#: The datetime range (years 1 to 9999) bounds what freezegun and utcnow() can show.
_MIN_EPOCH = (_dt.datetime(1, 1, 1) - _UNIX_EPOCH).total_seconds()
_MAX_EPOCH = (_dt.datetime(9999, 12, 31, 23, 59, 59) - _UNIX_EPOCH).total_seconds()

#: Module prefixes that keep real time under ``freeze()``, on top of freezegun's own list:
#: pytest's test durations, and hypothesis's shrinking deadline (virtual hours would cut
#: shrinking short). No user code runs within freezegun's five-frame look-up of either.
REAL_TIME_MODULES: tuple[str, ...] = ("_pytest.timing", "hypothesis.internal.conjecture.engine")


def _active_freezegun_factory():  # type: ignore[no-untyped-def]
    """The innermost active freezegun time factory, or None (one dict lookup when unused)."""
    api = _MODULES.get("freezegun.api")
    if api is None or not api.freeze_factories:
        return None
    return api.freeze_factories[-1]


def _to_naive_utc(epoch: float) -> _dt.datetime:
    return _UNIX_EPOCH + _dt.timedelta(seconds=epoch)


class VirtualClock:
    """Epoch seconds that move only when told to; ``sleep`` advances instead of blocking.

    Time is kept in whole microseconds (freezegun's resolution too), so ten ``advance(0.1)``
    calls make exactly one second and a 1-second rate window or a TTL ends exactly on time.
    """

    __slots__ = ("_now", "_now_us", "_timer_count", "_timers")

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._set_own(_checked_epoch(start, "start"))
        #: Pending timers, a heap by (due time, creation order); see ``call_at``.
        self._timers: list[TimerHandle] = []
        self._timer_count = 0

    def _set_own(self, epoch: float) -> None:
        self._now_us = round(epoch * _US)
        self._now = self._now_us / _US

    def now(self) -> float:
        """Current virtual time in epoch seconds (freezegun's frozen time when one is active)."""
        factory = _active_freezegun_factory()
        if factory is None:
            return self._now
        return (factory() - _UNIX_EPOCH).total_seconds()

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0) and return the new time."""
        self._check_advance(seconds)
        if self._timers:
            for timer in self._due_timers(self._now_in_us() + round(seconds * _US)):
                _run_to_completion(timer, timer.callback())
            return self.now()
        factory = _active_freezegun_factory()
        if factory is None:
            self._now_us += round(seconds * _US)
            self._now = self._now_us / _US
            return self._now
        factory.tick(_dt.timedelta(seconds=seconds))
        return self.now()

    def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` without blocking: a drop-in for ``time.sleep``."""
        self.advance(seconds)

    async def async_sleep(self, seconds: float, result: object = None) -> object:
        """Advance by ``seconds`` without blocking: a drop-in for ``asyncio.sleep``."""
        await self.advance_async(seconds)
        return result

    async def advance_async(self, seconds: float) -> float:
        """``advance`` for async code: timers' coroutines are awaited on the running loop."""
        if not self._timers:
            return self.advance(seconds)
        self._check_advance(seconds)
        for timer in self._due_timers(self._now_in_us() + round(seconds * _US)):
            result = timer.callback()
            if isinstance(result, Awaitable):
                await result
        return self.now()

    def _check_advance(self, seconds: float) -> None:
        """Refuse what ``advance`` cannot take: a non-number, negative, or past year 9999."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(f"advance() takes a number of seconds, got {seconds!r}")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(
                f"advance() takes a finite, non-negative number of seconds, got {seconds!r}; "
                "use set() to jump to an earlier instant"
            )
        _checked_epoch(self.now() + seconds, f"advance({seconds!r})")

    def call_at(self, epoch: float, callback: Callable[[], object], name: str = "") -> TimerHandle:
        """Call ``callback()`` once the clock is moved to ``epoch`` (at once if already past).

        ``advance``/``sleep``/``set`` run due timers in time order, the clock set to each
        one's time first. A callback may return an awaitable: ``advance_async`` awaits it,
        ``advance`` runs it on a fresh event loop (an error while one is running). ``name``
        says what the timer is in that error.
        """
        due_us = round(_checked_epoch(epoch, "call_at()") * _US)
        self._timer_count += 1
        timer = TimerHandle(due_us, self._timer_count, callback, name)
        heapq.heappush(self._timers, timer)
        return timer

    def _now_in_us(self) -> int:
        """The current time in whole microseconds (freezegun's, when one is active)."""
        if _active_freezegun_factory() is None:
            return self._now_us
        return round(self.now() * _US)

    def _due_timers(self, target_us: int) -> Iterator[TimerHandle]:
        """Timers due by ``target_us``, in order, the clock moved to each; then to the target."""
        timers = self._timers
        while timers and timers[0].due_us <= target_us:
            timer = heapq.heappop(timers)
            if not timer.cancelled:
                if timer.due_us > self._now_in_us():
                    self._move_to_us(timer.due_us)
                yield timer
        if target_us > self._now_in_us():
            self._move_to_us(target_us)

    def _move_to_us(self, epoch_us: int) -> None:
        """Jump to ``epoch_us`` (exact microseconds), freezegun's time too when one is active."""
        factory = _active_freezegun_factory()
        if factory is None:
            self._now_us = epoch_us
            self._now = epoch_us / _US
        else:
            factory.move_to(_UNIX_EPOCH + _dt.timedelta(microseconds=epoch_us))

    def set(self, epoch: float) -> None:
        """Jump to ``epoch`` seconds, forwards or backwards (forwards runs due timers)."""
        epoch = _checked_epoch(epoch, "set()")
        if self._timers and epoch > self.now():
            for timer in self._due_timers(round(epoch * _US)):
                _run_to_completion(timer, timer.callback())
            return
        factory = _active_freezegun_factory()
        if factory is None:
            self._set_own(epoch)
        else:
            factory.move_to(_to_naive_utc(epoch))

    def utcnow(self) -> _dt.datetime:
        """Current virtual time as an aware UTC datetime."""
        return _dt.datetime.fromtimestamp(self.now(), tz=_dt.UTC)

    def freeze(self) -> ClockFreeze:
        """A freezegun freeze at this clock's time, so the code under test reads the clock.

        While it is active, ``time.time()``, ``time.time_ns()``, ``time.monotonic()``,
        ``time.perf_counter()``, ``datetime.now()``/``utcnow()`` and ``date.today()`` give this
        clock's time (naive ``datetime.now()`` in UTC), and ``advance``/``sleep``/``set`` move
        them. asyncio event loops keep real time (freezegun's ``real_asyncio``). When it ends,
        the clock keeps the time it reached. Use ``with clock.freeze(): ...`` or
        ``start()``/``stop()``; starting walks every loaded module (about 10 ms in a pytest
        session with a thousand modules), so freeze once per test, not per call.
        """
        return ClockFreeze(self)

    def __repr__(self) -> str:
        return f"VirtualClock({self.utcnow().isoformat()})"


class ClockFreeze:
    """freezegun frozen at a ``VirtualClock``'s time while active: user code reads the clock."""

    __slots__ = ("_clock", "_factory", "_freezer")

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._freezer: Any = None
        self._factory: Any = None

    @property
    def active(self) -> bool:
        """Whether this freeze has started and not yet stopped."""
        return self._freezer is not None

    def start(self) -> ClockFreeze:
        """Freeze freezegun at the clock's current time; the clock then moves it."""
        if self._freezer is not None:
            raise RuntimeError("this freeze is already active; stop() it before starting again")
        import freezegun

        at = _UNIX_EPOCH + _dt.timedelta(microseconds=round(self._clock.now() * _US))
        freezer = freezegun.freeze_time(at, ignore=list(REAL_TIME_MODULES), real_asyncio=True)
        self._factory = freezer.start()
        self._freezer = freezer
        return self

    def stop(self) -> None:
        """End the freeze; the clock (and any freeze around this one) keeps the time reached."""
        if self._freezer is None:
            return
        reached: _dt.datetime = self._factory()
        freezer, self._freezer, self._factory = self._freezer, None, None
        freezer.stop()
        self._clock._set_own((reached - _UNIX_EPOCH).total_seconds())
        outer = _active_freezegun_factory()
        if outer is not None:
            outer.move_to(reached)

    def follow(self, clock: VirtualClock) -> None:
        """Stay frozen, now at ``clock``'s time, leaving the clock followed so far at the time it
        reached: consecutive tests share one freeze, since starting one walks every module."""
        if self._freezer is None:
            raise RuntimeError("this freeze is not active; start() it first")
        reached: _dt.datetime = self._factory()
        self._clock._set_own((reached - _UNIX_EPOCH).total_seconds())
        self._clock = clock
        self._factory.move_to(_UNIX_EPOCH + _dt.timedelta(microseconds=clock._now_us))

    def __enter__(self) -> ClockFreeze:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ClockFreeze of {self._clock!r}, {'active' if self.active else 'stopped'}>"


class TimerHandle:
    """A callback a ``VirtualClock`` runs at ``due_us`` (epoch microseconds); ``cancel()`` it."""

    __slots__ = ("callback", "cancelled", "due_us", "name", "order")

    def __init__(self, due_us: int, order: int, callback: Callable[[], object], name: str) -> None:
        self.due_us = due_us
        self.order = order
        self.callback = callback
        self.name = name
        self.cancelled = False

    @property
    def when(self) -> float:
        """When it is due, in epoch seconds."""
        return self.due_us / _US

    def cancel(self) -> None:
        """Never run it (a no-op once it has run)."""
        self.cancelled = True

    def __lt__(self, other: TimerHandle) -> bool:
        return (self.due_us, self.order) < (other.due_us, other.order)

    def __repr__(self) -> str:
        state = " cancelled" if self.cancelled else ""
        return f"<TimerHandle {self.name or self.callback!r} at {self.when}{state}>"


def _run_to_completion(timer: TimerHandle, result: object) -> None:
    """Finish what a timer returned from a sync ``advance``/``set``: an awaitable runs on a
    fresh event loop, which needs no loop to be running in this thread."""
    if not isinstance(result, Awaitable):
        return
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_awaited(result))
        return
    close = getattr(result, "close", None)
    if close is not None:
        close()  # never awaited: say so here rather than in a "never awaited" warning
    raise RuntimeError(
        f"{timer.name or 'a timer'} is async and this thread's event loop is running, so a "
        "sync advance()/sleep()/set() cannot wait for it: in async code use "
        "`await clock.advance_async(seconds)`"
    )


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _checked_epoch(value: float, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"{where} takes finite epoch seconds, got {value!r}")
    if not _MIN_EPOCH <= value <= _MAX_EPOCH:
        raise ValueError(
            f"{where}: {value!r} is outside the epoch seconds a datetime can show (years 1 to 9999)"
        )
    return float(value)
