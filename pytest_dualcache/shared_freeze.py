"""One freezegun freeze for consecutive tests whose code must read the virtual clock, and
sleeps that move that clock.

Contract tests and ``dualcache_worker`` tests freeze time at their env's clock, so the code
under test (a DAL, a Worker, its Durable Objects) reads it through ``time.time()`` and
``datetime.now()``. Starting a freeze walks every loaded module (about 10 ms in a large
session), so such tests share one: a test that ends hands it to the next test when that one
freezes too, parked where the next test's clock starts; otherwise it stops, and the next test
runs on real time.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from .clock import ClockFreeze, VirtualClock

#: The fixtures whose tests run frozen at their env's clock.
FREEZING_FIXTURES = frozenset({"contract", "dualcache_worker"})

_FREEZE_KEY = pytest.StashKey[ClockFreeze]()
_NEXT_ITEM_KEY = pytest.StashKey["pytest.Item | None"]()


def freezes(item: pytest.Item | None) -> bool:
    """Whether ``item`` runs frozen at its env's clock (it uses a freezing fixture)."""
    return item is not None and not FREEZING_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


def note_next_item(item: pytest.Item, next_item: pytest.Item | None) -> None:
    """Before ``item``'s fixtures end: remember which test comes next (see ``release``)."""
    if freezes(item):
        item.stash[_NEXT_ITEM_KEY] = next_item


def follow(config: pytest.Config, clock: VirtualClock) -> ClockFreeze:
    """The session's freeze, now at ``clock``'s time (started if none is active)."""
    freeze = config.stash.get(_FREEZE_KEY, None)
    if freeze is not None and freeze.active:
        freeze.follow(clock)
        return freeze
    freeze = config.stash[_FREEZE_KEY] = clock.freeze().start()
    config.add_cleanup(freeze.stop)  # an interrupted session still ends the freeze
    return freeze


def stop(config: pytest.Config) -> None:
    """End the session's freeze, if one is active: the next code runs on real time."""
    freeze = config.stash.get(_FREEZE_KEY, None)
    if freeze is not None:
        freeze.stop()


def release(item: pytest.Item) -> None:
    """At the end of ``item``, which followed the freeze: keep it for a next test that
    freezes too, parked at a new clock's start (where that test's clock starts), else stop."""
    if freezes(item.stash.get(_NEXT_ITEM_KEY, None)):
        follow(item.config, VirtualClock())
    else:
        stop(item.config)


def sleep_on(monkeypatch: pytest.MonkeyPatch, clock: VirtualClock) -> None:
    """Make ``time.sleep`` and ``asyncio.sleep`` advance ``clock`` instead of blocking, for
    the test: code that backs off (a retried KV write after a 429) stays fast and on time."""
    monkeypatch.setattr(time, "sleep", clock.sleep)
    monkeypatch.setattr(asyncio, "sleep", clock.async_sleep)
