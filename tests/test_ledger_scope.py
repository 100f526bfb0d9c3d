"""Recorder scopes, mark and records_since (what a budget sees), and classify_writes (bypasses)."""

from __future__ import annotations

import gc
import types
import weakref
from collections.abc import Iterator

import pytest

from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.durable import DurableObjectCache
from pytest_dualcache.kv import KVNamespace
from pytest_dualcache.ledger import Ledger, OperationRecord
from pytest_dualcache.recorder import Recorder, Scope


def _record(store: Ledger, op: str, key: str, at: float = 0.0, ok: bool = True) -> None:
    # Stands in for a store's operation method: record() attributes to *its* caller.
    store.record(op, key, at, len(key), ok)


@pytest.fixture(autouse=True)
def recorder() -> Iterator[Recorder]:
    """Each test gets a recorder of its own: no ledgers, scopes or classification of an
    outer --dualcache session running these tests, and those given back afterwards."""
    own = Recorder()
    previous = own.activate()
    yield own
    Recorder.restore(previous)


@pytest.fixture
def scope(recorder: Recorder) -> Iterator[Scope]:
    opened = recorder.scope()
    yield opened
    opened.close()


def _module(name: str, source: str) -> types.ModuleType:
    """A module called ``name`` (its frames carry that __name__) without a file on disk."""
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


# --- mark and records_since -------------------------------------------------------------------


def test_mark_notes_the_length_of_every_live_ledger(recorder):
    first, second = Ledger("A"), Ledger("B")
    _record(first, "put", "a")
    _record(first, "put", "b")
    start = recorder.mark()
    assert start[first] == 2 and start[second] == 0


def test_records_since_returns_only_what_came_after_the_mark(recorder):
    store = Ledger("A")
    _record(store, "put", "before")
    start = recorder.mark()
    _record(store, "put", "after")
    assert [r.key for r in recorder.records_since(start) if r.store == "A"] == ["after"]


def test_records_since_orders_by_time_then_ledger_creation_then_position(recorder):
    older, newer = Ledger("OLD"), Ledger("NEW")
    start = recorder.mark()
    _record(newer, "put", "n5", at=5.0)
    _record(older, "put", "o5", at=5.0)
    _record(newer, "put", "n3a", at=3.0)
    _record(older, "put", "o3", at=3.0)
    _record(newer, "put", "n3b", at=3.0)
    keys = [r.key for r in recorder.records_since(start) if r.store in ("OLD", "NEW")]
    assert keys == ["o3", "n3a", "n3b", "o5", "n5"]


def test_a_ledger_made_after_the_mark_counts_from_its_first_record(recorder):
    start = recorder.mark()
    store = Ledger("LATE")
    _record(store, "put", "x")
    _record(store, "get", "x")
    assert [r.op for r in recorder.records_since(start) if r.store == "LATE"] == ["put", "get"]


def test_records_since_keeps_one_kind_of_store(recorder):
    start = recorder.mark()
    kv, do = Ledger("KV", kind="kv"), Ledger("DO", kind="do")
    _record(kv, "put", "k")
    _record(do, "set", "d")
    assert [r.store for r in recorder.records_since(start, kind="kv")] == ["KV"]
    assert [r.store for r in recorder.records_since(start, kind="do")] == ["DO"]
    assert {r.store_kind for r in recorder.records_since(start)} >= {"kv", "do"}


def test_records_since_is_the_same_list_each_time_it_is_asked(recorder):
    start = recorder.mark()
    stores = [Ledger(f"S{i}") for i in range(3)]
    for at in (2.0, 1.0, 2.0, 0.0):
        for store in reversed(stores):
            _record(store, "put", f"{store.store}@{at}", at=at)
    assert recorder.records_since(start) == recorder.records_since(start)
    assert [r.at for r in recorder.records_since(start)] == sorted(
        r.at for r in recorder.records_since(start)
    )


# --- Scope --------------------------------------------------------------------------------------


def test_scope_sees_every_ledger_from_its_start(recorder):
    before = Ledger("BEFORE")
    _record(before, "put", "old")
    scope = recorder.scope()
    _record(before, "put", "new")
    during = Ledger("DURING")
    _record(during, "delete", "gone")
    scope.close()
    assert [(r.store, r.key) for r in scope.records()] == [("BEFORE", "new"), ("DURING", "gone")]


def test_a_ledger_made_and_dropped_inside_the_scope_is_still_counted(scope):
    def helper() -> weakref.ref[Ledger]:
        namespace = KVNamespace(VirtualClock(), name="HELPER_KV")
        namespace.put("made-by-helper", "v")
        return weakref.ref(namespace.ledger)

    dropped = helper()
    gc.collect()
    assert dropped() is not None  # kept alive by the scope
    assert [(r.store, r.key) for r in scope.records(kind="kv")] == [("HELPER_KV", "made-by-helper")]


def test_a_ledger_alive_at_the_start_and_dropped_later_is_still_counted(recorder):
    namespace = KVNamespace(VirtualClock(), name="EARLY_KV")
    scope = recorder.scope()
    namespace.put("k", "v")
    del namespace
    gc.collect()
    scope.close()
    assert [r.store for r in scope.records()] == ["EARLY_KV"]


def test_scope_kind_filter_keeps_kv_or_do(scope):
    clock = VirtualClock()
    namespace = KVNamespace(clock, name="FILTER_KV")
    cache = DurableObjectCache(clock, name="FILTER_DO")
    namespace.put("k", "v")
    cache.set("k", "v", ttl=60)
    assert [r.store for r in scope.records(kind="kv")] == ["FILTER_KV"]
    assert [r.store for r in scope.records(kind="do")] == ["FILTER_DO"]
    assert [r.store for r in scope.records()] == ["FILTER_KV", "FILTER_DO"]


def test_nested_scopes_each_see_their_own_span(recorder):
    outer = recorder.scope()
    store = Ledger("NEST")
    _record(store, "put", "outer-only")
    inner = recorder.scope()
    _record(store, "put", "both")
    inner_records = inner.records()
    inner.close()
    _record(store, "put", "outer-again")
    outer.close()
    assert [r.key for r in inner_records] == ["both"]
    assert [r.key for r in outer.records()] == ["outer-only", "both", "outer-again"]


def test_close_stops_keeping_new_ledgers_for_the_scope(recorder):
    closed = recorder.scope()
    closed.close()
    store = Ledger("AFTER_CLOSE")
    assert store not in closed.created
    closed.close()  # twice is fine


def test_close_releases_the_ledgers_made_inside_the_scope(recorder):
    opened = recorder.scope()
    made = weakref.ref(Ledger("RELEASED"))
    opened.close()
    gc.collect()
    assert made() is None


def test_operations_after_a_clear_inside_the_scope_are_counted(recorder):
    namespace = KVNamespace(VirtualClock(), name="CLEARED_KV")
    for index in range(3):
        namespace.put(f"before{index}", "v")
    scope = recorder.scope()
    namespace.ledger.clear()
    namespace.put("after", "v")
    scope.close()
    assert [r.key for r in scope.records()] == ["after"]


# --- classify_writes ----------------------------------------------------------------------------

DAL_SOURCE = """
def save(kv, key):
    kv.put(key, "v")

def remove(kv, key):
    kv.delete(key)

def read(kv, key):
    kv.get(key)
    kv.list()

def through(callback, kv, key):
    callback(kv, key)
"""


def _kv_writes(scope: Scope) -> list[OperationRecord]:
    return scope.records(kind="kv")


def test_classification_off_leaves_via_none(scope, recorder):
    recorder.classify_writes(None)
    namespace = KVNamespace(VirtualClock())
    _module("off_dal", DAL_SOURCE).save(namespace, "k")
    namespace.put("direct", "v")
    (via_dal, direct) = _kv_writes(scope)
    assert via_dal.via is None and direct.via is None
    assert not via_dal.bypassed and not direct.bypassed


def test_a_write_through_a_registered_module_names_it(scope, recorder):
    dal = _module("shop_dal", DAL_SOURCE)
    recorder.classify_writes(("shop_dal",))
    namespace = KVNamespace(VirtualClock())
    dal.save(namespace, "k")
    dal.remove(namespace, "k")
    assert [(r.op, r.via, r.bypassed) for r in _kv_writes(scope)] == [
        ("put", "shop_dal", False),
        ("delete", "shop_dal", False),
    ]


def test_a_direct_write_is_a_bypass(scope, recorder):
    recorder.classify_writes(("shop_dal",))
    namespace = KVNamespace(VirtualClock())
    namespace.put("k", "v")
    namespace.delete("k")
    assert [(r.op, r.via, r.bypassed) for r in _kv_writes(scope)] == [
        ("put", "", True),
        ("delete", "", True),
    ]


def test_a_registered_module_matches_its_submodules_only(scope, recorder):
    sub = _module("shop.store.kv", DAL_SOURCE)
    lookalike = _module("shopping", DAL_SOURCE)
    recorder.classify_writes(("shop",))
    namespace = KVNamespace(VirtualClock())
    sub.save(namespace, "a")
    lookalike.save(namespace, "b")
    assert [(r.key, r.via) for r in _kv_writes(scope)] == [("a", "shop.store.kv"), ("b", "")]


def test_the_stack_only_has_to_pass_through_the_module(scope, recorder):
    dal = _module("outer_dal", DAL_SOURCE)
    helper = _module("plain_helper", DAL_SOURCE)
    recorder.classify_writes(("outer_dal",))
    namespace = KVNamespace(VirtualClock())
    dal.through(helper.save, namespace, "k")  # outer_dal -> plain_helper -> kv.put
    (record,) = _kv_writes(scope)
    assert record.via == "outer_dal"
    assert record.call_site.filename == "<plain_helper>"  # the caller is still the helper


def test_reads_and_lists_are_never_classified(scope, recorder):
    dal = _module("read_dal", DAL_SOURCE)
    recorder.classify_writes(("read_dal",))
    namespace = KVNamespace(VirtualClock())
    dal.read(namespace, "k")
    namespace.get("k")
    namespace.list()
    assert [(r.op, r.via) for r in _kv_writes(scope)] == [
        ("get", None),
        ("list", None),
        ("get", None),
        ("list", None),
    ]


def test_durable_object_writes_are_never_classified(scope, recorder):
    recorder.classify_writes(("nothing_registered",))
    cache = DurableObjectCache(VirtualClock())
    cache.set("k", "v", ttl=60)
    cache.delete("k")
    assert [(r.op, r.via) for r in scope.records(kind="do")] == [("set", None), ("delete", None)]


def test_no_registered_module_makes_every_write_a_bypass(scope, recorder):
    recorder.classify_writes(())
    namespace = KVNamespace(VirtualClock())
    _module("any_dal", DAL_SOURCE).save(namespace, "k")
    assert [r.via for r in _kv_writes(scope)] == [""]


def test_registering_again_forgets_the_previous_answers(scope, recorder):
    dal = _module("late_dal", DAL_SOURCE)
    namespace = KVNamespace(VirtualClock())
    recorder.classify_writes(("other",))
    dal.save(namespace, "a")
    recorder.classify_writes(("late_dal",))
    namespace.clock.advance(2)
    dal.save(namespace, "a")
    assert [r.via for r in _kv_writes(scope)] == ["", "late_dal"]


def test_refused_writes_are_classified_too(scope, recorder):
    dal = _module("refused_dal", DAL_SOURCE)
    recorder.classify_writes(("refused_dal",))
    namespace = KVNamespace(VirtualClock())
    dal.save(namespace, "k")
    with pytest.raises(Exception, match="429"):
        dal.save(namespace, "k")  # same key within a second
    assert [(r.ok, r.via) for r in _kv_writes(scope)] == [
        (True, "refused_dal"),
        (False, "refused_dal"),
    ]


# --- repeated puts and helpers called by turns keep their answers ---------------------------------

LOOP_SOURCE = """
def save_many(kv, keys):
    for key in keys:
        kv.put(key, "v")

def save_two_lines(kv):
    kv.put("first", "v")
    kv.put("second", "v")
"""


def test_repeated_puts_from_a_registered_module_keep_its_name_and_lines(scope, recorder):
    dal = _module("loop_dal", LOOP_SOURCE)
    recorder.classify_writes(("loop_dal",))
    namespace = KVNamespace(VirtualClock())
    dal.save_many(namespace, ["a", "b", "c"])
    dal.save_two_lines(namespace)
    records = _kv_writes(scope)
    assert [(r.key, r.via) for r in records] == [(key, "loop_dal") for key in "abc"] + [
        ("first", "loop_dal"),
        ("second", "loop_dal"),
    ]
    assert [r.call_site.lineno for r in records] == [4, 4, 4, 7, 8]
    assert {r.call_site.function for r in records[3:]} == {"save_two_lines"}


def test_a_helper_called_by_turns_from_a_dal_and_directly_is_classified_each_time(scope, recorder):
    dal = _module("turns_dal", DAL_SOURCE)
    helper = _module("turns_helper", DAL_SOURCE)
    recorder.classify_writes(("turns_dal",))
    namespace = KVNamespace(VirtualClock())
    for key in ("a", "b"):
        dal.save(namespace, f"dal-{key}")  # the DAL's own module writes: the hint is set
        dal.through(helper.save, namespace, f"via-{key}")  # helper, under the DAL
        helper.save(namespace, f"bypass-{key}")  # the same helper, from the test
        namespace.put(f"direct-{key}", "v")
    assert [(r.key, r.via) for r in _kv_writes(scope)] == [
        (f"{kind}-{key}", via)
        for key in ("a", "b")
        for kind, via in (
            ("dal", "turns_dal"),
            ("via", "turns_dal"),
            ("bypass", ""),
            ("direct", ""),
        )
    ]


def test_turning_classification_on_forgets_a_hint_made_while_it_was_off(scope, recorder):
    writer = _module("hinted_while_off", LOOP_SOURCE)
    namespace = KVNamespace(VirtualClock())
    recorder.classify_writes(None)
    writer.save_many(namespace, ["a", "b"])
    recorder.classify_writes(("some_other_dal",))
    writer.save_many(namespace, ["c", "d"])
    assert [(r.key, r.via) for r in _kv_writes(scope)] == [
        ("a", None),
        ("b", None),
        ("c", ""),
        ("d", ""),
    ]


def test_each_store_refuses_the_other_kinds_ledger():
    with pytest.raises(ValueError, match="KVNamespace records into a ledger of kind 'kv'"):
        KVNamespace(VirtualClock(), ledger=Ledger("DO", kind="do"))
    with pytest.raises(ValueError, match="DurableObjectCache records into a ledger of kind 'do'"):
        DurableObjectCache(VirtualClock(), ledger=Ledger("CACHE_KV"))
    with pytest.raises(AttributeError):
        Ledger("CACHE_KV").kind = "do"  # type: ignore[misc]
