"""The DO cache's two engines, driven alike, agree: same results, same errors, same stats.

A hypothesis state machine runs one ``DurableObjectCache`` on ``MemoryEngine`` and one on
``RedisEngine`` (fakeredis) on one virtual clock, makes every operation on both (good and bad
keys from all of unicode, lone surrogates included, JSON-ish values and non-JSON ones, valid
and invalid TTLs, prefixes that are glob characters to redis), moves the clock past TTLs, and
requires identical answers, identical exceptions (type and message), identical ledgers and
identical stats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.durable import DurableObjectCache, MemoryEngine, RedisEngine
from pytest_dualcache.limits import DO_MAX_KEY_BYTES, DO_MAX_VALUE_BYTES

#: Every code point, lone surrogates included: a DO key is a JS string, which may hold them.
ANY_CHAR = st.characters(exclude_categories=())
#: A few characters, so that keys collide and share prefixes: glob characters (SCAN's pattern
#: treats them specially, the redis engine must escape them), lone surrogates, astral, NUL.
FEW_CHARS = st.sampled_from(
    ["a", "b", "*", "?", "[", "]", "\\", "é", "\ud800", "\udfff", "\U0001f600", "\x00"]
)
#: The largest keys the DO takes, in bytes: ASCII, 2-byte and lone surrogates (3 bytes each).
LONG_KEYS = ["k" * DO_MAX_KEY_BYTES, "é" * (DO_MAX_KEY_BYTES // 2), "\ud800" * 682]
KEYS = st.one_of(
    st.text(FEW_CHARS, min_size=1, max_size=2),
    st.text(ANY_CHAR, min_size=1, max_size=4),
    st.sampled_from(LONG_KEYS),
)
#: Keys (and list prefixes) the DO refuses: empty, one byte too long, not a str.
BAD_KEYS = st.sampled_from(
    ["", "k" * (DO_MAX_KEY_BYTES + 1), "é" * (DO_MAX_KEY_BYTES // 2) + "k", 7, None, b"k"]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(ANY_CHAR, max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
#: Values the DO refuses, or just fits: non-JSON kinds, non-finite floats, the size limit.
EDGE_VALUES = st.sampled_from(
    [
        math.nan,
        math.inf,
        [1, -math.inf],
        (1, 2),
        {1, 2},
        b"raw",
        {1: "int key"},
        "x" * (DO_MAX_VALUE_BYTES - 2),  # exactly the limit with its quotes
        "x" * (DO_MAX_VALUE_BYTES - 1),
        ["x" * (DO_MAX_VALUE_BYTES - 4)],
    ]
) | st.builds(pow, st.just(10), st.just(5000))  # too many digits for JSON (built: no repr)
TTLS = st.sampled_from([0.001, 0.5, 1, 2.5, 60, 3600]) | st.floats(min_value=1e-3, max_value=1e5)
BAD_TTLS = st.sampled_from([0, -1, 0.0, -0.5, math.nan, math.inf, True, "60", None, 10**400])
STEPS = st.sampled_from([0.001, 0.5, 1, 2, 60]) | st.floats(min_value=0, max_value=100)


def outcome(call: Callable[[DurableObjectCache], Any], cache: DurableObjectCache) -> object:
    """What ``call(cache)`` gave, type-exact (1, 1.0 and True differ), or what it raised."""
    try:
        result = call(cache)
    except Exception as exc:
        return ("raised", type(exc), str(exc))
    return ("returned", repr(result))


class MemoryAndRedisEnginesAgree(RuleBasedStateMachine):
    """MemoryEngine and RedisEngine behind two caches on one clock, given the same calls."""

    keys = Bundle("keys")  # keys used before, so that operations meet on the same entries

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.caches = (
            DurableObjectCache(self.clock, engine=MemoryEngine()),
            DurableObjectCache(self.clock, engine=RedisEngine()),
        )

    def same(self, call: Callable[[DurableObjectCache], Any]) -> None:
        """Make ``call`` on both caches; they must answer, or raise, alike."""
        memory, redis = (outcome(call, cache) for cache in self.caches)
        assert memory == redis, f"memory engine: {memory!r}\nredis engine: {redis!r}"

    @rule(target=keys, key=KEYS, value=VALUES, ttl=TTLS)
    def set_new(self, key: str, value: object, ttl: float) -> str:
        self.same(lambda cache: cache.set(key, value, ttl=ttl))
        return key

    @rule(key=keys, value=VALUES, ttl=TTLS)
    def set(self, key: str, value: object, ttl: float) -> None:
        self.same(lambda cache: cache.set(key, value, ttl=ttl))

    @rule(key=keys, value=VALUES | EDGE_VALUES, ttl=TTLS | BAD_TTLS)
    def set_edge(self, key: str, value: object, ttl: Any) -> None:
        self.same(lambda cache: cache.set(key, value, ttl=ttl))

    @rule(key=keys)
    def get(self, key: str) -> None:
        self.same(lambda cache: cache.get(key))

    @rule(key=keys)
    def delete(self, key: str) -> None:
        self.same(lambda cache: cache.delete(key))

    @rule(key=keys, cut=st.integers(min_value=0, max_value=2))
    def list_under_a_key(self, key: str, cut: int) -> None:
        self.same(lambda cache: cache.list(key[:cut]))

    @rule(prefix=st.none() | st.text(FEW_CHARS, max_size=2) | st.text(ANY_CHAR, max_size=1))
    def list(self, prefix: str | None) -> None:
        self.same(lambda cache: cache.list(prefix))

    @rule(op=st.sampled_from(["set", "get", "delete", "list"]), key=BAD_KEYS)
    def refused_key(self, op: str, key: Any) -> None:
        if op == "set":
            self.same(lambda cache: cache.set(key, "v", ttl=60))
        else:
            self.same(lambda cache: getattr(cache, op)(key))

    @rule(seconds=STEPS)
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def stats(self) -> None:  # a rule, not an invariant: it purges what expired
        self.same(lambda cache: cache.stats())

    @invariant()
    def same_ledgers(self) -> None:
        memory, redis = (
            [(r.op, r.key, r.at, r.bytes, r.ok, r.error) for r in cache.ledger]
            for cache in self.caches
        )
        assert memory == redis


TestMemoryAndRedisEnginesAgree = MemoryAndRedisEnginesAgree.TestCase
# max_examples from the loaded profile (tests/conftest.py): quick by default, deep in CI.
TestMemoryAndRedisEnginesAgree.settings = settings(stateful_step_count=30, deadline=None)
