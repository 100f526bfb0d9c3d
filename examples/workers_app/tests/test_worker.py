"""The Worker driven as a client would, through ``dualcache_worker.fetch``: the cache lives
in the ``DualCacheDO``, expires on the virtual clock, survives a restart and falls back to KV
when the flag is off or the object fails."""

from __future__ import annotations

import pytest


def test_a_put_is_read_back_from_the_durable_object_and_kv_is_untouched(
    dualcache_worker, kv_namespace
):
    stored = dualcache_worker.fetch("/cache/AAPL", method="PUT", body='{"action": "buy"}')
    assert stored.status == 200 and stored.json() == {"success": True, "route": "do"}
    assert dualcache_worker.fetch("/cache/AAPL").json() == {"action": "buy"}
    assert "entry:AAPL" in dualcache_worker.storage("CACHE_DO", "cache")
    assert kv_namespace.ledger.counts().get("put", 0) <= 1  # the route marker, at most


def test_an_entry_expires_at_its_ttl_and_the_alarm_sweeps_it(dualcache_worker, dualcache_clock):
    dualcache_worker.fetch("/cache/price", method="PUT", body="101.5", headers=None)
    dualcache_worker.fetch("/cache/price?ttl=60", method="PUT", body="102.0")
    storage = dualcache_worker.storage("CACHE_DO", "cache")
    assert storage.alarm is not None
    dualcache_clock.advance(59.999)
    assert dualcache_worker.fetch("/cache/price").json() == 102.0
    dualcache_clock.advance(0.001)
    assert dualcache_worker.fetch("/cache/price").status == 404
    assert "entry:price" not in storage  # the alarm ran at the expiry and swept it
    assert storage.alarm is None


def test_the_cache_object_keeps_its_entries_across_a_restart(dualcache_worker):
    dualcache_worker.fetch("/cache/report", method="PUT", body='{"day": "2026-01-05"}')
    before = dualcache_worker.durable_object("CACHE_DO", "cache")
    dualcache_worker.restart("CACHE_DO", "cache")
    assert dualcache_worker.fetch("/cache/report").json() == {"day": "2026-01-05"}
    assert dualcache_worker.durable_object("CACHE_DO", "cache") is not before


def test_stats_count_the_objects_hits_and_misses(dualcache_worker):
    dualcache_worker.fetch("/cache/a", method="PUT", body="1")
    dualcache_worker.fetch("/cache/a")
    dualcache_worker.fetch("/cache/b")
    stats = dualcache_worker.fetch("/stats").json()
    assert (stats["size"], stats["hits"]) == (1, 1) and stats["misses"] >= 1


def test_flag_off_writes_go_to_kv_and_never_reach_the_object(
    dualcache_worker, dualcache_flag, kv_namespace
):
    dualcache_flag.disable()
    stored = dualcache_worker.fetch("/cache/signal", method="PUT", body='"sell"')
    assert stored.json()["route"] == "kv"
    assert dualcache_worker.fetch("/cache/signal").json() == "sell"
    assert kv_namespace.get("signal", "json") == "sell"  # plain JSON, legacy readers read it
    assert len(dualcache_worker.storage("CACHE_DO", "cache")) == 0


def test_a_durable_object_outage_falls_back_to_kv(dualcache_worker, dualcache_env):
    cache_do = dualcache_env.durable_objects["CACHE_DO"]
    with cache_do.outage():
        stored = dualcache_worker.fetch("/cache/k", method="PUT", body='{"v": 1}')
        assert stored.json()["success"] is True
        assert dualcache_worker.fetch("/cache/k").json() == {"v": 1}
    assert dualcache_worker.fetch("/cache/k").json() == {"v": 1}


def test_deletes_are_seen_at_once(dualcache_worker):
    dualcache_worker.fetch("/cache/gone", method="PUT", body="true")
    assert dualcache_worker.fetch("/cache/gone", method="DELETE").status == 204
    assert dualcache_worker.fetch("/cache/gone").status == 404


@pytest.mark.kv_budget(writes=1)
def test_a_busy_hour_on_the_durable_object_costs_at_most_one_kv_write(
    dualcache_worker, dualcache_clock
):
    for minute in range(60):
        dualcache_worker.fetch(f"/cache/bar:{minute % 5}", method="PUT", body=str(minute))
        assert dualcache_worker.fetch(f"/cache/bar:{minute % 5}").json() == minute
        dualcache_clock.advance(60)
