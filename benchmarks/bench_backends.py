"""Cost of the emulators' hot path against a bare dict with an expiry check.

Prints, from one run, the ratio of a ``DurableObjectCache`` get+set and a ``KVNamespace``
get+put (free plan: validation, per-key rate limit, daily quotas and the ledger with caller
attribution all on) to the same get+set on a plain dict that checks expiry.
Targets (issue #2): DO <= 5x, KV <= 10x, against a dict that reads the same virtual clock
(every store needs the current time; the emulators read it once per operation). The ratio
against a dict reading ``time.time()`` is printed too. Run:
``python benchmarks/bench_backends.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pytest_dualcache import DurableObjectCache, KVNamespace, VirtualClock

KEYS = [f"price:SYM{i:04d}" for i in range(1000)]
VALUE = '{"symbol":"AAPL","close":231.5,"volume":1200345}'
ROUNDS = 20  # each round: every key written then read once


class ExpiringDict:
    """The baseline: a dict of (value, expires_at) with an expiry check on read."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._entries: dict[str, tuple[str, float]] = {}
        self._now = now

    def set(self, key: str, value: str, ttl: float) -> None:
        self._entries[key] = (value, self._now() + ttl)

    def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None or self._now() >= entry[1]:
            return None
        return entry[0]


def run_dict_virtual() -> None:
    clock = VirtualClock()
    run_dict(ExpiringDict(clock.now), clock)


def run_dict_wall() -> None:
    run_dict(ExpiringDict(time.time), VirtualClock())


def run_dict(store: ExpiringDict, clock: VirtualClock) -> None:
    for _ in range(ROUNDS):
        for key in KEYS:
            store.set(key, VALUE, 3600)
            store.get(key)
        clock.advance(86_400)  # same loop shape as the emulators' runs


def run_do() -> None:
    clock = VirtualClock()
    cache = DurableObjectCache(clock)
    for _ in range(ROUNDS):
        for key in KEYS:
            cache.set(key, VALUE, ttl=3600)
            cache.get(key)
        clock.advance(86_400)


def run_kv() -> None:
    clock = VirtualClock()
    kv = KVNamespace(clock, plan="free")
    for _ in range(ROUNDS):
        for key in KEYS:
            kv.put(key, VALUE, expiration_ttl=3600)
            kv.get(key)
        clock.advance(86_400)  # a new UTC day: the free plan's 1,000 writes are back


def best_per_pair(run: Callable[[], None], repeats: int = 7) -> float:
    """Best of ``repeats`` runs, in microseconds per get+set pair."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings) / (ROUNDS * len(KEYS)) * 1e6


def main() -> None:
    baseline = best_per_pair(run_dict_virtual)
    wall = best_per_pair(run_dict_wall)
    do = best_per_pair(run_do)
    kv = best_per_pair(run_kv)
    print(f"best of 7 runs of {ROUNDS * len(KEYS)} get+set pairs, microseconds per pair")
    print(f"  dict + expiry, virtual clock: {baseline:.3f}   (the targets' baseline)")
    print(f"  dict + expiry, time.time():   {wall:.3f}")
    for name, cost, target in (("DurableObjectCache", do, 5), ("KVNamespace (free)", kv, 10)):
        verdict = "meets" if cost / baseline <= target else "MISSES"
        print(
            f"  {name:<20} {cost:.3f}   {cost / baseline:.2f}x ({verdict} <= {target}x); "
            f"{cost / wall:.2f}x against the time.time() dict"
        )


if __name__ == "__main__":
    main()
