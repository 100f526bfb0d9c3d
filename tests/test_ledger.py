"""Ledger records: every field, caller attribution, and the cheap disabled mode."""

import itertools
import sys

from pytest_dualcache.kv import KVRateLimitError
from pytest_dualcache.ledger import CallSite, Ledger, OperationRecord, capture_caller


def _store_operation(ledger: Ledger, **fields) -> None:
    # Stands in for a store's operation method: record() attributes to *its* caller.
    ledger.record(**fields)


def test_record_keeps_every_field_and_the_callers_location():
    ledger = Ledger("CACHE_KV")
    line = sys._getframe().f_lineno + 1
    _store_operation(ledger, op="put", key="k", at=12.5, nbytes=3, ok=True)
    (record,) = ledger.records
    assert isinstance(record, OperationRecord)
    assert record[:7] == ("CACHE_KV", "put", "k", 12.5, 3, True, None)
    assert record.call_site == CallSite(
        __file__, line, "test_record_keeps_every_field_and_the_callers_location"
    )
    assert (
        record.caller == f"{__file__}:{line}:test_record_keeps_every_field_and_the_callers_location"
    )


def test_failed_operations_keep_their_error_and_describe_themselves():
    ledger = Ledger("CACHE_KV")
    _store_operation(
        ledger,
        op="put",
        key="k",
        at=0.0,
        nbytes=0,
        ok=False,
        error="KV PUT failed: 429 Too Many Requests",
    )
    (record,) = ledger.records
    assert not record.ok
    assert record.describe().startswith("CACHE_KV put 'k' 0 B at ")
    assert record.describe().endswith("(error: KV PUT failed: 429 Too Many Requests)")


def test_since_and_counts_slice_by_position_and_outcome():
    ledger = Ledger("DO")
    for op, ok in [("get", True), ("set", True), ("set", False), ("get", True)]:
        _store_operation(ledger, op=op, key="k", at=0.0, nbytes=0, ok=ok)
    mark = 2
    assert [r.op for r in ledger.since(mark)] == ["set", "get"]
    assert ledger.counts() == {"get": 2, "set": 2}
    assert ledger.counts(ok=True) == {"get": 2, "set": 1}
    assert ledger.counts(ok=False) == {"set": 1}
    assert len(ledger) == 4 and [r.op for r in ledger] == ["get", "set", "set", "get"]
    ledger.clear()
    assert len(ledger) == 0


def test_disabled_ledger_records_nothing():
    ledger = Ledger("CACHE_KV", enabled=False)
    _store_operation(ledger, op="put", key="k", at=0.0, nbytes=1, ok=True)
    assert ledger.records == []


def test_capture_caller_names_the_calling_function():
    site = capture_caller().call_site
    assert site.filename == __file__
    assert site.function == "test_capture_caller_names_the_calling_function"


def test_an_exception_as_the_error_keeps_its_text_class_and_status():
    ledger = Ledger("CACHE_KV")
    error = KVRateLimitError(429, "KV PUT failed: 429 Too Many Requests")
    _store_operation(ledger, op="put", key="k", at=0.0, nbytes=0, ok=False, error=error)
    (record,) = ledger.records
    assert (record.error, record.error_type, record.status) == (
        "KV PUT failed: 429 Too Many Requests",
        "KVRateLimitError",
        429,
    )


def test_an_error_given_as_text_or_without_an_int_status_has_no_status():
    ledger = Ledger("DO", kind="do")
    _store_operation(ledger, op="set", key="a", at=0.0, nbytes=0, ok=False, error="refused")
    _store_operation(ledger, op="set", key="b", at=0.0, nbytes=0, ok=False, error=ValueError("x"))
    text, plain = ledger.records
    assert (text.error, text.error_type, text.status) == ("refused", None, None)
    assert (plain.error, plain.error_type, plain.status) == ("x", "ValueError", None)


def test_ledgers_sharing_a_counter_number_their_operations_in_the_order_made():
    kv, do = Ledger("CACHE_KV"), Ledger("DO", kind="do")
    _store_operation(kv, op="get", key="before", at=0.0, nbytes=0, ok=True)
    numbers = itertools.count()
    kv.number_operations(numbers)
    do.number_operations(numbers)
    for ledger, op, key in ((do, "set", "first"), (kv, "put", "second"), (do, "set", "third")):
        _store_operation(ledger, op=op, key=key, at=5.0, nbytes=1, ok=True)
    assert [kv.number_of(position) for position in range(3)] == [None, 1, None]
    assert [do.number_of(position) for position in range(3)] == [0, 2, None]


def test_numbering_survives_turning_recording_off_and_on_and_a_clear():
    ledger = Ledger("CACHE_KV")
    ledger.number_operations(itertools.count(10))
    _store_operation(ledger, op="put", key="a", at=0.0, nbytes=1, ok=True)
    ledger.enabled = False
    _store_operation(ledger, op="put", key="not recorded", at=0.0, nbytes=1, ok=True)
    ledger.enabled = True
    ledger.clear()
    _store_operation(ledger, op="put", key="b", at=0.0, nbytes=1, ok=True)
    assert [record.key for record in ledger.since(1)] == ["b"]
    assert (ledger.number_of(0), ledger.number_of(1)) == (10, 11)


def test_each_call_line_keeps_its_own_line_however_often_it_runs():
    # Call sites are made once per source location: a repeat reuses it, another line gets its own.
    ledger = Ledger("CACHE_KV")
    first = sys._getframe().f_lineno + 2
    for _ in range(3):
        _store_operation(ledger, op="put", key="a", at=0.0, nbytes=1, ok=True)
    _store_operation(ledger, op="put", key="b", at=0.0, nbytes=1, ok=True)
    lines = [record.call_site.lineno for record in ledger.records]
    assert lines == [first, first, first, first + 1]
    assert all(isinstance(record, OperationRecord) for record in ledger)
    assert ledger.since(3) == ledger.records[3:]
