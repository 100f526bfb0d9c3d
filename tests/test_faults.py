"""Fault injection, shared by KVNamespace and DurableObjectCache."""

import pytest

from pytest_dualcache import DurableObjectCache, DurableObjectError, KVError, KVNamespace
from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.faults import FaultInjector


@pytest.fixture
def kv():
    return KVNamespace(VirtualClock())


def test_kv_outage_fails_every_operation_with_a_503_and_changes_nothing(kv):
    kv.put("k", "old")
    kv.clock.advance(1)
    with kv.outage():
        for call, text in [
            (lambda: kv.put("k", "new"), "KV PUT failed: 503 Service Unavailable"),
            (lambda: kv.get("k"), "KV GET failed: 503 Service Unavailable"),
            (lambda: kv.delete("k"), "KV DELETE failed: 503 Service Unavailable"),
            (lambda: kv.list(), "KV GET failed: 503 Service Unavailable"),
        ]:
            with pytest.raises(KVError) as raised:
                call()
            assert (raised.value.status, str(raised.value)) == (503, text)
    assert kv.get("k") == "old"
    failed = [r for r in kv.ledger if not r.ok]
    assert [r.op for r in failed] == ["put", "get", "delete", "list"]
    assert kv.used_today()["write"] == 1  # the refused put used no quota


def test_kv_fail_times_wears_off_and_ops_limits_which_fail(kv):
    kv.fail(times=2, ops="put")
    assert kv.get("k") is None  # reads are not in ops
    for _ in range(2):
        with pytest.raises(KVError):
            kv.put("k", "v")
    kv.put("k", "v")
    assert kv.get("k") == "v"


def test_validation_errors_win_over_injected_faults(kv):
    with kv.outage(), pytest.raises(KVError) as raised:
        kv.put("", "v")
    assert raised.value.status == 400


def test_a_given_exception_instance_is_raised_as_is(kv):
    boom = KVError(500, "KV GET failed: 500 Internal Server Error")
    kv.fail(error=boom)
    with pytest.raises(KVError) as raised:
        kv.get("k")
    assert raised.value is boom
    kv.recover()
    assert kv.get("k") is None


def test_an_outage_restores_the_failure_that_was_set_before_it():
    do = DurableObjectCache(VirtualClock())
    do.fail(ops={"set"})
    with do.outage(error="timeout"), pytest.raises(DurableObjectError, match="timeout"):
        do.get("k")
    assert do.get("k") is None
    with pytest.raises(DurableObjectError, match="overloaded"):
        do.set("k", 1, ttl=60)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"times": 0}, "positive int"),
        ({"times": True}, "positive int"),
        ({"error": "bogus"}, '"unavailable" or an exception instance'),
        ({"ops": {"scan"}}, "non-empty subset"),
        ({"ops": set()}, "non-empty subset"),
    ],
)
def test_bad_fault_arguments_are_rejected_clearly(kwargs, message):
    injector = FaultInjector(("get", "put"), {"unavailable": lambda op: RuntimeError(op)})
    with pytest.raises(ValueError, match=message):
        injector.fail(**kwargs)
    assert not injector.active
