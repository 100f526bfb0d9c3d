"""Durable Object alarms on the virtual clock: when they fire, what they see, and Cloudflare's
retries of an alarm that raises (from 2 s, doubling, at most 6)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from pytest_dualcache.clock import DEFAULT_START, VirtualClock
from pytest_dualcache.limits import DO_ALARM_MAX_RETRIES
from pytest_dualcache.runtime.durable_objects import DurableObjectNamespace
from pytest_dualcache.runtime.entrypoints import DurableObject

START_MS = int(DEFAULT_START * 1000)


class Reminder(DurableObject):
    """Sets an alarm on request; its handler notes what it saw and may fail on purpose."""

    runs: ClassVar[list[dict[str, Any]]] = []
    failures_left = 0

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.clock: VirtualClock = env

    async def remind_at(self, millis: int) -> None:
        await self.ctx.storage.put("note", "due")
        await self.ctx.storage.setAlarm(millis)

    async def alarm_time(self) -> Any:
        return await self.ctx.storage.getAlarm()

    async def alarm(self, alarm_info: Any) -> None:
        type(self).runs.append(
            {
                "at": self.clock.now(),
                "retryCount": alarm_info.retryCount,
                "isRetry": alarm_info.isRetry,
                "alarm_now": await self.ctx.storage.getAlarm(),
                "note": await self.ctx.storage.get("note"),
            }
        )
        if type(self).failures_left:
            type(self).failures_left -= 1
            raise RuntimeError("downstream unavailable")


class SyncReminder(DurableObject):
    """A sync ``alarm`` that takes no argument (workerd calls it relaxed) and re-arms itself."""

    seen: ClassVar[list[float]] = []

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.clock: VirtualClock = env

    def alarm(self) -> None:
        type(self).seen.append(self.clock.now())
        if len(type(self).seen) < 3:
            self.ctx.storage.setAlarm((self.clock.now() + 60) * 1000)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def reminders(clock) -> DurableObjectNamespace:
    Reminder.runs, Reminder.failures_left = [], 0
    return DurableObjectNamespace(Reminder, clock, clock, binding="REMINDERS")


def remind(namespace: DurableObjectNamespace, name: str, millis: int) -> None:
    asyncio.run(namespace.getByName(name).remind_at(millis))


def test_an_alarm_fires_at_its_time_on_a_sync_advance(reminders, clock):
    remind(reminders, "a", START_MS + 10_000)
    clock.advance(9.999)
    assert Reminder.runs == []
    clock.advance(5)
    assert Reminder.runs == [
        {
            "at": DEFAULT_START + 10,
            "retryCount": 0,
            "isRetry": False,
            "alarm_now": None,
            "note": "due",
        }
    ]
    assert clock.now() == DEFAULT_START + 14.999


def test_setting_again_replaces_and_deleting_cancels(reminders, clock):
    remind(reminders, "a", START_MS + 10_000)
    remind(reminders, "a", START_MS + 20_000)
    clock.advance(15)
    assert Reminder.runs == []
    clock.advance(10)
    assert [run["at"] for run in Reminder.runs] == [DEFAULT_START + 20]
    remind(reminders, "a", START_MS + 40_000)
    reminders.instance("a").ctx.storage.deleteAlarm()  # takes effect when called
    clock.advance(60)
    assert len(Reminder.runs) == 1


def test_an_alarm_wakes_an_evicted_object_and_its_storage_is_there(reminders, clock):
    remind(reminders, "a", START_MS + 1000)
    first = reminders.instance("a")
    reminders.restart("a")
    clock.advance(1)
    assert Reminder.runs[0]["note"] == "due"
    assert reminders.instance("a") is not first


def test_a_failing_alarm_is_retried_from_2_seconds_doubling_6_times(reminders, clock):
    Reminder.failures_left = 100
    remind(reminders, "a", START_MS + 1000)
    clock.advance(3600)
    runs = Reminder.runs
    assert [run["at"] - DEFAULT_START for run in runs] == [1, 3, 7, 15, 31, 63, 127]
    assert [run["retryCount"] for run in runs] == list(range(DO_ALARM_MAX_RETRIES + 1))
    assert [run["isRetry"] for run in runs] == [False] + [True] * 6
    alarm_rows = [r for r in reminders.ledger.records if r.op == "alarm"]
    assert [(r.at - DEFAULT_START, r.ok) for r in alarm_rows] == [
        (t, False) for t in [1, 3, 7, 15, 31, 63, 127]
    ]
    assert alarm_rows[0].error == "downstream unavailable"
    assert asyncio.run(reminders.getByName("a").alarm_time()) is None  # given up


def test_while_a_retry_waits_get_alarm_gives_its_time(reminders, clock):
    Reminder.failures_left = 1
    remind(reminders, "a", START_MS + 1000)
    clock.advance(2)
    assert asyncio.run(reminders.getByName("a").alarm_time()) == START_MS + 3000
    clock.advance(5)
    assert [run["retryCount"] for run in Reminder.runs] == [0, 1]
    assert asyncio.run(reminders.getByName("a").alarm_time()) is None


def test_an_async_alarm_over_storage_runs_in_a_sync_advance_inside_an_event_loop(reminders, clock):
    # Storage calls never wait, so such an alarm finishes without the loop's help.
    remind(reminders, "a", START_MS + 1000)

    async def test() -> None:
        clock.advance(2)

    asyncio.run(test())
    assert [run["at"] for run in Reminder.runs] == [DEFAULT_START + 1]


class WaitingReminder(DurableObject):
    """An async alarm that waits on the event loop."""

    async def alarm(self) -> None:
        await asyncio.sleep(0)


def test_an_async_alarm_that_waits_in_a_sync_advance_inside_an_event_loop_says_what_to_do(
    clock,
):
    namespace = DurableObjectNamespace(WaitingReminder, clock, clock, binding="REMINDERS")
    namespace.instance("a").ctx.storage.setAlarm(START_MS + 1000)

    async def test() -> None:
        with pytest.raises(RuntimeError, match=r"alarm\(\) of REMINDERS 'a'.*advance_async"):
            clock.advance(2)

    asyncio.run(test())


def test_advance_async_runs_async_alarms_on_the_running_loop(reminders, clock):
    async def test() -> None:
        await reminders.getByName("a").remind_at(START_MS + 1000)
        await clock.advance_async(2)

    asyncio.run(test())
    assert [run["at"] for run in Reminder.runs] == [DEFAULT_START + 1]


def test_a_sync_alarm_runs_even_in_a_sync_advance_inside_an_event_loop(clock):
    SyncReminder.seen = []
    namespace = DurableObjectNamespace(SyncReminder, clock, clock)
    namespace.instance("a").ctx.storage.setAlarm(START_MS + 1000)

    async def test() -> None:
        clock.advance(200)

    asyncio.run(test())
    assert SyncReminder.seen == [DEFAULT_START + 1, DEFAULT_START + 61, DEFAULT_START + 121]
    alarm_rows = [r for r in namespace.ledger.records if r.op == "alarm"]
    assert len(alarm_rows) == 3 and all(r.ok for r in alarm_rows)
    assert alarm_rows[0].call_site.function == "test"  # the code that moved the clock


def test_delete_all_removes_the_alarm(reminders, clock):
    remind(reminders, "a", START_MS + 1000)
    reminders.instance("a").ctx.storage.deleteAll()
    clock.advance(10)
    assert Reminder.runs == []
