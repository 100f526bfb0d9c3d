"""Optional eventual consistency: ``kv.at("remote")`` lags by ``eventual_consistency_s``."""

import pytest

from pytest_dualcache import KVNamespace, VirtualClock


@pytest.fixture
def kv():
    return KVNamespace(VirtualClock(), plan="unlimited", eventual_consistency_s=60)


def test_a_remote_location_sees_the_previous_value_until_the_window_passes(kv):
    kv.put("k", "v1")
    kv.clock.advance(100)
    kv.put("k", "v2")
    remote = kv.at("remote")
    assert kv.get("k") == "v2"  # the writer's location reads its own write at once
    assert remote.get("k") == "v1"
    kv.clock.advance(59.999)
    assert remote.get("k") == "v1"
    kv.clock.advance(0.001)
    assert remote.get("k") == "v2"


def test_a_new_key_and_a_delete_reach_a_remote_location_late(kv):
    remote = kv.at("remote")
    kv.put("new", "x")
    kv.put("old", "y")
    kv.clock.advance(60)
    kv.delete("old")
    assert remote.get("old") == "y"
    assert remote.get("new") == "x"
    assert [key.name for key in remote.list().keys] == ["new", "old"]
    kv.clock.advance(60)
    assert remote.get("old") is None
    assert [key.name for key in remote.list().keys] == ["new"]


def test_a_remote_location_sees_the_state_as_of_the_window_ago(kv):
    remote = kv.at("remote")
    for value in ("a", "b", "c"):
        kv.put("k", value)
        kv.clock.advance(30)
    # writes at t=0, 30, 60; now t=90: the remote sees the state as of t=30
    assert remote.get("k") == "b"
    assert remote.get_with_metadata("k").value == "b"


def test_remote_writes_go_to_the_one_store_and_are_recorded(kv):
    remote = kv.at("remote")
    remote.put("k", "from-remote", metadata={"via": "remote"})
    assert kv.get_with_metadata("k").metadata == {"via": "remote"}
    remote.delete("k")
    assert kv.get("k") is None
    assert [record.op for record in kv.ledger] == ["put", "get", "delete", "get"]
    assert kv.ledger.records[0].call_site.filename == __file__


def test_without_a_window_every_location_is_consistent():
    kv = KVNamespace(VirtualClock())
    kv.put("k", "v")
    assert kv.at("remote").get("k") == "v"
    assert kv.at("local") is kv


@pytest.mark.parametrize("window", [-1, "60", None])
def test_a_bad_window_is_refused(window):
    with pytest.raises(ValueError, match="eventual_consistency_s"):
        KVNamespace(VirtualClock(), eventual_consistency_s=window)


def test_a_clock_set_backwards_does_not_rate_limit_writes():
    kv = KVNamespace(VirtualClock())
    kv.put("k", "later")
    kv.clock.set(kv.clock.now() - 3600)
    kv.put("k", "earlier")  # no 429: the last write is in this instant's future
    assert kv.get("k") == "earlier"
