"""DurableObjectCache under threads: the cache's lock keeps stats, evictions and ledger exact."""

from __future__ import annotations

import os
import random
import sys
import threading
from collections import Counter

import pytest

from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.durable import DOEngine, DurableObjectCache, MemoryEngine, RedisEngine

THREADS = 8
OPS_PER_THREAD = 150
ROUNDS = 4
#: Few keys, shared by every thread, so that threads keep meeting on the same entries.
KEYS = [f"k{i}" for i in range(5)]
#: Entries that expired before the threads start: each must be evicted exactly once.
EXPIRED = [f"old{i}" for i in range(40)]
JOIN_TIMEOUT_S = 120.0  # a real-time bound on the whole run: only a hung thread reaches it
REDIS_URL = os.environ.get("DUALCACHE_REDIS_URL")
_counting = threading.Lock()  # guards the test's own tally, not the cache


def engine_of(kind: str) -> DOEngine:
    """A fresh engine: memory, or redis (the CI server if there is one, else fakeredis)."""
    if kind == "memory":
        return MemoryEngine()
    return RedisEngine.on_server(REDIS_URL) if REDIS_URL else RedisEngine()


def worker(
    cache: DurableObjectCache,
    seed: int,
    start: threading.Barrier,
    issued: Counter[str],
    errors: list[BaseException],
) -> None:
    """Make OPS_PER_THREAD mixed operations on the shared keys, counting what was issued."""
    rng = random.Random(seed)
    mine: Counter[str] = Counter()
    try:
        start.wait()
        for n in range(OPS_PER_THREAD):
            # Every thread first reads the expired entries in the same order, all at once.
            op = "get" if n < len(EXPIRED) else rng.choice(("set", "get", "get", "delete", "list"))
            key = EXPIRED[n] if n < len(EXPIRED) else rng.choice(KEYS + EXPIRED)
            mine[op] += 1
            if op == "set":
                cache.set(key, {"thread": seed, "n": n}, ttl=3600)
            elif op == "get":
                cache.get(key)
            elif op == "delete":
                cache.delete(key)
            else:
                cache.list(rng.choice((None, "k", "old")))
    except BaseException as exc:  # the assertion below reports it
        errors.append(exc)
    finally:
        with _counting:
            issued.update(mine)


def run_threads(cache: DurableObjectCache) -> tuple[Counter[str], list[BaseException]]:
    """Run THREADS workers on ``cache`` from one Barrier; what they issued and raised."""
    start = threading.Barrier(THREADS)
    issued: Counter[str] = Counter()
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=worker, args=(cache, seed, start, issued, errors), daemon=True)
        for seed in range(THREADS)
    ]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(JOIN_TIMEOUT_S)
    finally:
        sys.setswitchinterval(previous)
    hung = [thread.name for thread in threads if thread.is_alive()]
    assert not hung, f"threads still running after {JOIN_TIMEOUT_S} s: {hung}"
    return issued, errors


@pytest.mark.parametrize("engine", ["memory", "redis"])
def test_concurrent_operations_keep_stats_evictions_and_ledger_exact(engine: str) -> None:
    clock = VirtualClock()
    cache = DurableObjectCache(clock, engine=engine_of(engine))
    try:
        for _ in range(ROUNDS):  # races are luck: several rounds make missing one unlikely
            cache.clear()
            for key in EXPIRED:
                cache.set(key, "stale", ttl=1)
            clock.advance(2)
            cache.ledger.clear()
            issued, errors = run_threads(cache)
            assert errors == [], f"operations raised under threads: {errors!r}"
            assert sum(issued.values()) == THREADS * OPS_PER_THREAD
            assert len(cache.ledger) == THREADS * OPS_PER_THREAD, "one ledger row per operation"
            assert cache.ledger.counts(ok=True) == issued
            gets = [record for record in cache.ledger if record.op == "get"]
            stats = cache.stats()  # purges the expired entries no thread touched
            assert stats.hits + stats.misses == issued["get"]
            assert stats.hits == sum(record.bytes > 0 for record in gets), "hits as the ledger saw"
            assert stats.evictions == len(EXPIRED), "each expired entry is evicted exactly once"
            assert stats.size == len(cache.list())
    finally:
        cache.clear()
