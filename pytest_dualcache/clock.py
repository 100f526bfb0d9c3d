"""The virtual clock every backend of a test reads, and its freezegun bridge.

Time never passes on its own: tests move it with ``advance``/``sleep``/``set``. When a
``freezegun.freeze_time`` block is active, the clock reads freezegun's frozen time instead of
its own, and moving the clock moves freezegun's time too, so ``time.time()`` and
``datetime.now()`` in user code agree with TTLs and rate limits in the emulators.
"""

from __future__ import annotations

import datetime as _dt
import math
import sys

#: Where every clock starts: Monday 2026-01-05 00:00:00 UTC, a UTC midnight (so simulated
#: days line up with KV's quota reset) at the start of a trading week.
DEFAULT_START: float = 1_767_571_200.0

_UNIX_EPOCH = _dt.datetime(1970, 1, 1)
_US = 1_000_000


_MODULES = sys.modules
#: The datetime range (years 1 to 9999) bounds what freezegun and utcnow() can show.
_MIN_EPOCH = (_dt.datetime(1, 1, 1) - _UNIX_EPOCH).total_seconds()
_MAX_EPOCH = (_dt.datetime(9999, 12, 31, 23, 59, 59) - _UNIX_EPOCH).total_seconds()


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

    __slots__ = ("_now", "_now_us")

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._set_own(_checked_epoch(start, "start"))

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
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(f"advance() takes a number of seconds, got {seconds!r}")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(
                f"advance() takes a finite, non-negative number of seconds, got {seconds!r}; "
                "use set() to jump to an earlier instant"
            )
        _checked_epoch(self.now() + seconds, f"advance({seconds!r})")
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
        self.advance(seconds)
        return result

    def set(self, epoch: float) -> None:
        """Jump to ``epoch`` seconds, forwards or backwards."""
        epoch = _checked_epoch(epoch, "set()")
        factory = _active_freezegun_factory()
        if factory is None:
            self._set_own(epoch)
        else:
            factory.move_to(_to_naive_utc(epoch))

    def utcnow(self) -> _dt.datetime:
        """Current virtual time as an aware UTC datetime."""
        return _dt.datetime.fromtimestamp(self.now(), tz=_dt.UTC)

    def __repr__(self) -> str:
        return f"VirtualClock({self.utcnow().isoformat()})"


def _checked_epoch(value: float, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"{where} takes finite epoch seconds, got {value!r}")
    if not _MIN_EPOCH <= value <= _MAX_EPOCH:
        raise ValueError(
            f"{where}: {value!r} is outside the epoch seconds a datetime can show (years 1 to 9999)"
        )
    return float(value)
