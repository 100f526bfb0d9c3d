"""Stress tests: one ``KVNamespace`` used by 8 threads at once, as a Worker serving concurrent
requests or a data-access layer with a thread pool uses it.

Threads start together on a Barrier and the interpreter switches threads every microsecond,
so check-then-act races in the store show up. Each test is bounded (a few thousand
operations, joins with a timeout). Time only moves through the ``VirtualClock``.
"""

from __future__ import annotations

import math
import random
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from itertools import pairwise

import pytest

from pytest_dualcache.clock import DEFAULT_START, VirtualClock
from pytest_dualcache.kv import KVNamespace, KVQuotaError, KVRateLimitError
from pytest_dualcache.ledger import OperationRecord
from pytest_dualcache.limits import (
    KV_DAILY_QUOTAS,
    KV_SAME_KEY_WRITE_INTERVAL_S,
    SECONDS_PER_DAY,
)

THREADS = 8
JOIN_TIMEOUT_S = 60.0
FREE_QUOTAS = KV_DAILY_QUOTAS["free"]
assert FREE_QUOTAS is not None
#: KV operation (as the ledger names it) -> its quota (as ``used_today`` names it).
QUOTA_KIND_OF_OP = {"get": "read", "put": "write", "delete": "delete", "list": "list"}
QUOTA_OF_OP = {op: FREE_QUOTAS[kind] for op, kind in QUOTA_KIND_OF_OP.items()}
DOCUMENTED = (KVRateLimitError, KVQuotaError)


@contextmanager
def rapid_thread_switching() -> Iterator[None]:
    """Switch threads every microsecond (not every 5 ms), so races show up reliably."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def run_together(workers: list[Callable[[], None]]) -> list[BaseException]:
    """Run each worker in its own thread, all released at once; what they raised."""
    barrier = threading.Barrier(len(workers))
    raised: list[BaseException] = []

    def start(work: Callable[[], None]) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT_S)
            work()
        except BaseException as exc:  # reported by the test, not lost in the thread
            raised.append(exc)

    threads = [threading.Thread(target=start, args=(work,), daemon=True) for work in workers]
    with rapid_thread_switching():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=JOIN_TIMEOUT_S)
    hung = [thread.name for thread in threads if thread.is_alive()]
    assert not hung, f"threads still running after {JOIN_TIMEOUT_S} s: {hung}"
    return raised


def ok_per_day(records: list[OperationRecord]) -> Counter[tuple[int, str]]:
    """Successful operations by (UTC day number, operation)."""
    return Counter((math.floor(r.at / SECONDS_PER_DAY), r.op) for r in records if r.ok)


def test_1200_deletes_from_8_threads_on_a_1000_quota_accept_exactly_1000() -> None:
    kv = KVNamespace(VirtualClock(), plan="free")
    outcomes: list[str] = []  # list.append is atomic; a Counter's += is not

    def deleter(thread: int) -> Callable[[], None]:
        def work() -> None:
            for index in range(150):
                try:
                    kv.delete(f"k{(thread * 150 + index) % 40}")
                    outcomes.append("ok")
                except KVQuotaError:
                    outcomes.append("quota")

        return work

    assert run_together([deleter(thread) for thread in range(THREADS)]) == []
    assert Counter(outcomes) == {"ok": FREE_QUOTAS["delete"], "quota": 1200 - FREE_QUOTAS["delete"]}
    assert kv.used_today()["delete"] == FREE_QUOTAS["delete"]
    assert kv.ledger.counts(ok=True) == {"delete": FREE_QUOTAS["delete"]}
    assert len(kv.ledger) == 1200


ROUNDS = 10
#: Days in the quota boundary test: the check-then-count race has one narrow window a day.
BOUNDARY_DAYS = 30


def test_deletes_from_8_threads_at_the_quota_boundary_accept_exactly_the_quota_each_day() -> None:
    """Each round is a new UTC day with 40 deletes left; 8 threads then ask for 10 each."""
    clock = VirtualClock()
    kv = KVNamespace(clock, plan="free")
    left, attempts = 40, 10

    def next_day() -> None:  # run by one thread while the others wait at the barrier
        clock.advance(SECONDS_PER_DAY)
        for _ in range(FREE_QUOTAS["delete"] - left):
            kv.delete("spent")

    rounds = threading.Barrier(THREADS, action=next_day, timeout=JOIN_TIMEOUT_S)

    def deleter(thread: int) -> None:
        for _ in range(BOUNDARY_DAYS):
            rounds.wait()
            for attempt in range(attempts):
                with suppress(KVQuotaError):
                    kv.delete(f"k{thread}-{attempt}")

    assert run_together([lambda t=t: deleter(t) for t in range(THREADS)]) == []
    per_day = ok_per_day(kv.ledger.records)
    assert len(per_day) == BOUNDARY_DAYS
    assert set(per_day.values()) == {FREE_QUOTAS["delete"]}, per_day


def test_puts_from_8_threads_to_the_same_keys_at_one_instant_accept_one_per_key() -> None:
    """Each round moves the clock a second on; 8 threads then write the same 25 keys at once."""
    clock = VirtualClock()
    kv = KVNamespace(clock, plan="free")
    keys = [f"key{index:02d}" for index in range(25)]
    accepted: list[tuple[int, str]] = []  # (round, key); list.append is atomic
    rounds = threading.Barrier(
        THREADS, action=lambda: clock.advance(KV_SAME_KEY_WRITE_INTERVAL_S), timeout=JOIN_TIMEOUT_S
    )

    def writer(thread: int) -> None:
        for round_number in range(ROUNDS):
            rounds.wait()
            for key in keys:
                with suppress(KVRateLimitError):
                    kv.put(key, f"{thread}:{round_number}")
                    accepted.append((round_number, key))

    assert run_together([lambda t=t: writer(t) for t in range(THREADS)]) == []
    assert Counter(accepted) == {(r, key): 1 for r in range(ROUNDS) for key in keys}
    assert kv.used_today()["write"] == ROUNDS * len(keys)


def test_deletes_racing_a_midnight_never_exceed_the_quota_of_either_day() -> None:
    clock = VirtualClock(DEFAULT_START + SECONDS_PER_DAY - 1)  # 1 s before a UTC midnight
    kv = KVNamespace(clock, plan="free")
    for _ in range(FREE_QUOTAS["delete"] - 10):
        kv.delete("spent")  # day 1 has 10 deletes left
    day_one = math.floor(clock.now() / SECONDS_PER_DAY)

    def deleter() -> None:
        for index in range(200):
            with suppress(KVQuotaError):
                kv.delete(f"k{index % 7}")

    def midnight_crosser() -> None:
        for _ in range(400):
            clock.advance(0.005)  # crosses midnight about half way

    raised = run_together([deleter] * (THREADS - 1) + [midnight_crosser])
    assert raised == []
    records = kv.ledger.records
    per_day = ok_per_day(records)
    assert all(count <= QUOTA_OF_OP[op] for (_, op), count in per_day.items()), per_day
    tried_on_day_one = sum(1 for r in records if math.floor(r.at / SECONDS_PER_DAY) == day_one)
    assert per_day[day_one, "delete"] == min(FREE_QUOTAS["delete"], tried_on_day_one)
    times = [record.at for record in kv.ledger.records]
    assert times == sorted(times), "operations were recorded out of clock order"


def test_list_from_8_threads_while_keys_come_and_go_never_raises() -> None:
    clock = VirtualClock()
    kv = KVNamespace(clock, plan="paid")
    for index in range(300):
        kv.put(f"base{index:03d}", "v", expiration_ttl=60 + index % 3)
    clock.advance(59.5)  # some keys expire while the lists run

    def lister() -> None:
        for _ in range(25):
            cursor = None
            while True:
                page = kv.list(limit=100, cursor=cursor)
                if page.list_complete:
                    break
                cursor = page.cursor

    def churner(thread: int) -> Callable[[], None]:
        def work() -> None:
            for index in range(150):
                kv.put(f"new{thread}-{index:03d}", "v")
                kv.delete(f"base{(thread * 150 + index) % 300:03d}")
                if thread == 0 and index % 50 == 0:
                    clock.advance(0.5)

        return work

    raised = run_together([lister] * 4 + [churner(thread) for thread in range(4)])
    assert raised == []
    assert not [r for r in kv.ledger.records if not r.ok]


def test_mixed_operations_from_8_threads_across_midnight_keep_quota_rate_limit_and_ledger() -> None:
    """Puts, gets, deletes and lists on 12 shared keys, a clock crossing midnight, quotas."""
    clock = VirtualClock(DEFAULT_START + SECONDS_PER_DAY - 20)  # 20 s before a UTC midnight
    kv = KVNamespace(clock, plan="free")
    for _ in range(FREE_QUOTAS["delete"] - 50):
        kv.delete("spent")  # day 1 has 50 deletes left: the threads run into the quota
    day_one = math.floor(clock.now() / SECONDS_PER_DAY)
    issued = len(kv.ledger)
    keys = [f"key{index}" for index in range(12)]
    issued_by_thread = [0] * THREADS
    unexpected: list[BaseException] = []
    list_failures: list[BaseException] = []
    serials = iter(range(1, 10**6))  # put values: "v" * serial, told apart by their length
    serial_lock = threading.Lock()

    def worker(thread: int) -> Callable[[], None]:
        rng = random.Random(thread)

        def work() -> None:
            for _ in range(400):
                if thread == 0:
                    clock.advance(0.1)  # 40 s in all: midnight half way
                key = rng.choice(keys)
                kind = rng.choices(["put", "get", "delete", "list"], [4, 3, 2, 1])[0]
                issued_by_thread[thread] += 1
                try:
                    if kind == "put":
                        with serial_lock:
                            serial = next(serials)
                        kv.put(key, "v" * serial)
                    elif kind == "get":
                        kv.get(key)
                    elif kind == "delete":
                        kv.delete(key)
                    else:
                        try:
                            kv.list(prefix="key", limit=rng.randint(1, 5))
                        except BaseException as exc:
                            list_failures.append(exc)
                            raise
                except DOCUMENTED:
                    pass
                except BaseException as exc:
                    unexpected.append(exc)

        return work

    assert run_together([worker(thread) for thread in range(THREADS)]) == []
    assert unexpected == []
    assert list_failures == []
    records = kv.ledger.records
    assert len(records) == issued + sum(issued_by_thread)
    times = [record.at for record in records]
    assert times == sorted(times), "operations were recorded out of clock order"

    per_day = ok_per_day(records)
    assert all(count <= QUOTA_OF_OP[op] for (_, op), count in per_day.items()), per_day
    tried_on_day_one = sum(
        1 for r in records if r.op == "delete" and math.floor(r.at / SECONDS_PER_DAY) == day_one
    )
    # Every delete tried on day 1 was accepted until its quota ran out, and none after.
    assert per_day[day_one, "delete"] == min(FREE_QUOTAS["delete"], tried_on_day_one)
    today = math.floor(clock.now() / SECONDS_PER_DAY)
    assert kv.used_today() == {kind: per_day[today, op] for op, kind in QUOTA_KIND_OF_OP.items()}

    # The rate limit held: a key's accepted writes are at least a second apart.
    accepted: defaultdict[str, list[float]] = defaultdict(list)
    for record in records:
        if record.op == "put" and record.ok:
            accepted[record.key].append(record.at)
    for key, written_at in accepted.items():
        gaps = [later - earlier for earlier, later in pairwise(written_at)]
        assert all(gap >= KV_SAME_KEY_WRITE_INTERVAL_S for gap in gaps), (key, gaps)

    # Entries and ledger changed together: each key holds what its last recorded write left.
    last_write: dict[str, OperationRecord] = {}
    for record in records:
        if record.ok and record.op in ("put", "delete") and record.key in keys:
            last_write[record.key] = record
    kv.ledger.enabled = False
    for key in keys:
        write = last_write.get(key)
        expected = "v" * write.bytes if write is not None and write.op == "put" else None
        assert kv.get(key) == expected, key


@pytest.mark.parametrize("plan", ["free", "unlimited"])
def test_inspection_helpers_under_concurrent_writes_never_raise(plan: str) -> None:
    clock = VirtualClock()
    kv = KVNamespace(clock, plan=plan)  # type: ignore[arg-type]

    def writer(thread: int) -> Callable[[], None]:
        def work() -> None:
            for index in range(100):
                kv.put(f"w{thread}-{index}", "v")

        return work

    def inspector() -> None:
        for _ in range(100):
            names = kv.keys()
            assert names == sorted(names)
            assert all(kv.expiration_of(name) is None and name in kv for name in names[:5])
            assert sum(kv.used_today().values()) >= len(names)

    raised = run_together([writer(thread) for thread in range(4)] + [inspector] * 4)
    assert raised == []
    assert len(kv.keys()) == 400
