"""The Recorder: one session's ledgers, scopes and classification, and work a DAL schedules."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from pytest_dualcache import DualCacheEnv
from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.kv import KVNamespace
from pytest_dualcache.ledger import Ledger, OperationRecord
from pytest_dualcache.recorder import Recorder, current_recorder


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A recorder of this test's own, current while it runs."""
    own = Recorder()
    previous = own.activate()
    yield own
    Recorder.restore(previous)


def _module(name: str, source: str) -> types.ModuleType:
    """A module called ``name`` (its frames carry that __name__) without a file on disk."""
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def _writes(recorder: Recorder, start: dict) -> list[OperationRecord]:
    return [r for r in recorder.records_since(start, kind="kv") if r.op in ("put", "delete")]


def test_activate_makes_new_ledgers_join_it_and_restore_gives_the_previous_back():
    outer, inner = Recorder(), Recorder()
    first = outer.activate()
    try:
        outer_ledger = Ledger("OUTER")
        scope = outer.scope()
        previous = inner.activate()
        assert previous is outer and current_recorder() is inner
        inner_ledger = Ledger("INNER")
        Recorder.restore(previous)
        assert current_recorder() is outer
        scope.close()
        assert set(outer.ledgers) == {outer_ledger} and set(inner.ledgers) == {inner_ledger}
        assert inner_ledger not in scope.created
    finally:
        Recorder.restore(first)


SOURCE = """
def call(function, *args):
    return function(*args)

def save(kv, key):
    kv.put(key, "v")
"""


def test_the_walk_stops_at_the_running_test_frame(recorder):
    outer = _module("above_the_test", SOURCE)
    recorder.classify_writes(("above_the_test",))
    namespace = KVNamespace(VirtualClock())

    def the_test(key: str) -> None:
        namespace.put(key, "v")

    start = recorder.mark()
    outer.call(the_test, "unbounded")  # no running test known: the whole stack is walked
    recorder.running_test(the_test.__code__)
    outer.call(the_test, "bounded")  # nothing above the test function can be a DAL
    recorder.running_test(None)
    assert [(r.key, r.via) for r in _writes(recorder, start)] == [
        ("unbounded", "above_the_test"),
        ("bounded", ""),
    ]


POOL_SOURCE = """
from concurrent.futures import ThreadPoolExecutor

def save_in_pool(kv, keys):
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(kv.put, key, "v") for key in keys]:
            future.result()
"""


def test_writes_a_dal_submits_to_a_thread_pool_are_via_the_dal(recorder):
    dal = _module("pool_dal", POOL_SOURCE)
    recorder.classify_writes(("pool_dal",))
    recorder.running_test(sys._getframe().f_code)
    namespace = KVNamespace(VirtualClock())
    start = recorder.mark()
    dal.save_in_pool(namespace, ["a", "b"])
    records = _writes(recorder, start)
    assert sorted((r.key, r.via) for r in records) == [("a", "pool_dal"), ("b", "pool_dal")]
    assert {r.call_site.filename for r in records} == {"<pool_dal>"}  # the submitting line


def test_writes_submitted_to_a_thread_pool_by_no_dal_are_bypasses(recorder):
    recorder.classify_writes(("pool_dal",))
    namespace = KVNamespace(VirtualClock())
    start = recorder.mark()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(namespace.put, "direct", "v").result()
    assert [(r.key, r.via) for r in _writes(recorder, start)] == [("direct", "")]


def test_a_thread_pool_carries_nothing_while_writes_are_not_classified(recorder):
    namespace = KVNamespace(VirtualClock())
    start = recorder.mark()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(namespace.put, "k", "v").result()
    (record,) = _writes(recorder, start)
    assert record.via is None
    assert record.call_site.filename.endswith("thread.py")  # the pool's frame, as ever


TASK_SOURCE = """
import asyncio

async def save_later(env, key):
    task = asyncio.create_task(env.CACHE_KV.put(key, "v"))
    await asyncio.sleep(0)
    await task
"""


def test_a_task_a_dal_creates_from_a_binding_call_is_via_the_dal(recorder):
    dal = _module("task_dal", TASK_SOURCE)
    recorder.classify_writes(("task_dal",))
    recorder.running_test(sys._getframe().f_code)  # on the task's stack, through asyncio.run
    env = DualCacheEnv(VirtualClock())
    start = recorder.mark()
    asyncio.run(dal.save_later(env.workers(), "k"))

    async def bypassing() -> None:
        await asyncio.create_task(env.workers().CACHE_KV.put("direct", "v"))

    asyncio.run(bypassing())
    records = _writes(recorder, start)
    assert [(r.key, r.via) for r in records] == [("k", "task_dal"), ("direct", "")]
    assert records[0].call_site.function == "save_later"
    assert records[1].call_site.function == "bypassing"
