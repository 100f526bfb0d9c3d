"""A differential test of ``KVNamespace`` (plan "free") against a plain model of Workers KV.

The model is a dict of key -> (value, absolute expiration, metadata), the time of each key's
last accepted write, and the day's operation counts. Hypothesis drives both with the same
puts, gets, deletes, list pages (continued through cursors), TTLs valid and not, clock moves
across UTC midnights and bursts that use a daily quota up; every outcome (value, error class,
page) must be the model's. Keys come from the whole of Unicode, lone surrogates included.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.kv import (
    KVBindingError,
    KVKey,
    KVNamespace,
    KVQuotaError,
    KVRateLimitError,
    KVValidationError,
    KVValueWithMetadata,
    utf8_length,
)
from pytest_dualcache.limits import (
    KV_DAILY_QUOTAS,
    KV_MAX_KEY_BYTES,
    KV_MAX_LIST_LIMIT,
    KV_MIN_EXPIRATION_TTL_S,
    KV_SAME_KEY_WRITE_INTERVAL_S,
    SECONDS_PER_DAY,
)

QUOTAS = KV_DAILY_QUOTAS["free"]
assert QUOTAS is not None
INT32_MAX = 2**31 - 1

#: Every code point, with lone surrogates (which plain ``characters`` almost never draws)
#: and the code points around them made common.
CHARS = (
    st.characters(codec=None, exclude_categories=())
    | st.characters(categories=["Cs"])
    | st.sampled_from("a\x00\ud7ff\ue000\uffff\U00010000")
)


def valid_key(key: str) -> bool:
    """A key KV accepts: non-empty, not "." or "..", at most 512 UTF-8 bytes."""
    return key not in {"", ".", ".."} and utf8_length(key) <= KV_MAX_KEY_BYTES


#: A few keys drawn often, so that writes, deletes and lists meet the same keys.
SHARED_KEYS = ["a", "ab", "é", "\ud800", "\ud800x", "\udfff", "\ue000", "😀"]
KEYS = st.sampled_from(SHARED_KEYS) | st.text(CHARS, min_size=1, max_size=3).filter(valid_key)
VALUES = (
    st.text(CHARS, max_size=4)
    | st.binary(max_size=4)
    | st.sampled_from(['{"a":1}', "[1,2]", "7", '"\ud800"', "NaN", "{"])
)
#: Metadata names without surrogates: JSON text cannot tell two lone surrogates that make a
#: pair ("\ud83d\ude00" as two code points) from the character they pair to, so such a name
#: comes back as that one character (a known limit of the metadata round trip).
METADATA = st.none() | st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)
#: expiration_ttl values: valid ones, and the ones KV refuses (as the binding converts them).
TTLS = (
    st.none()
    | st.integers(KV_MIN_EXPIRATION_TTL_S, 10**6)
    | st.integers(-3, KV_MIN_EXPIRATION_TTL_S - 1)
    | st.sampled_from([INT32_MAX, 2**31, 10**400, -(10**400), "abc", "", "120", 60.5, True])
)
#: What Number() and truncation make of the non-int TTLs above.
TTL_AS_INT = {"abc": 0, "": 0, "120": 120, 60.5: 60, True: 1}
LIMITS = st.integers(1, 6) | st.sampled_from([0, -1, None, KV_MAX_LIST_LIMIT, 1001, 10**400])
PREFIXES = st.none() | st.sampled_from(["", "a", "\ud800"]) | st.text(CHARS, max_size=1)
#: Keys used only to spend the daily write quota: they sort after every other key.
FILLER = "\U0010ffff"


def model_ttl(raw: object) -> int | type[Exception]:
    """The whole seconds KV makes of an expiration_ttl, or the error class it raises."""
    ttl = TTL_AS_INT[raw] if raw in TTL_AS_INT and type(raw) is not int else raw
    assert isinstance(ttl, int)
    if not -(2**31) <= ttl <= INT32_MAX:
        return KVBindingError
    if ttl < KV_MIN_EXPIRATION_TTL_S:
        return KVValidationError
    return ttl


def model_limit(raw: object) -> int | type[Exception]:
    """The page size KV makes of a list limit, or the error class it raises."""
    if raw is None or raw == 10**400 or raw < 1:  # type: ignore[operator]
        return KV_MAX_LIST_LIMIT
    if raw > KV_MAX_LIST_LIMIT:  # type: ignore[operator]
        return KVValidationError
    return raw  # type: ignore[return-value]


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def as_text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value


def outcome(call: Any) -> tuple[str, Any]:
    """("ok", result) or ("error", the exception's class), for comparing with the model."""
    try:
        return ("ok", call())
    except Exception as exc:
        return ("error", type(exc))


class KVDifferential(RuleBasedStateMachine):
    """KVNamespace (free plan) and the model take the same steps and must agree on each."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.kv = KVNamespace(self.clock, plan="free")
        self.entries: dict[str, tuple[str | bytes, int | None, Any]] = {}
        self.last_write: dict[str, float] = {}
        self.day = -1
        self.used = dict.fromkeys(QUOTAS, 0)
        self.operations = 0
        self.fillers = 0
        # The last incomplete list page: (prefix, cursor, its last key).
        self.cursor: tuple[str | None, str, str] | None = None

    # --- the model ------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def counts(self) -> dict[str, int]:
        """Today's counts, reset when the clock has crossed a UTC midnight."""
        day = math.floor(self.now() / SECONDS_PER_DAY)
        if day != self.day:
            self.day, self.used = day, dict.fromkeys(QUOTAS, 0)
        return self.used

    def quota_left(self, kind: str) -> bool:
        return self.counts()[kind] < QUOTAS[kind]

    def live(self) -> dict[str, tuple[str | bytes, int | None, Any]]:
        now = self.now()
        return {k: e for k, e in self.entries.items() if e[1] is None or now < e[1]}

    def expected_put(
        self, key: str, value: str | bytes, ttl: object, metadata: Any
    ) -> tuple[str, Any]:
        expires_at = None
        if ttl is not None:
            seconds = model_ttl(ttl)
            if not isinstance(seconds, int):
                return ("error", seconds)
            expires_at = math.floor(self.now()) + seconds
        if not self.quota_left("write"):
            return ("error", KVQuotaError)
        last = self.last_write.get(key)
        if last is not None and self.now() - last < KV_SAME_KEY_WRITE_INTERVAL_S:
            return ("error", KVRateLimitError)
        self.last_write[key] = self.now()
        self.entries[key] = (value, expires_at, metadata)
        self.counts()["write"] += 1
        return ("ok", None)

    def expected_get(self, key: str, type: str, with_metadata: bool) -> tuple[str, Any]:
        self.counts()["read"] += 1
        entry = self.live().get(key)
        if entry is None:
            value, metadata = None, None
        else:
            stored, _, metadata = entry
            if type == "bytes":
                value = as_bytes(stored)
            elif type == "text":
                value = as_text(stored)
            else:
                try:
                    value = json.loads(as_text(stored), parse_constant=reject_constant)
                except ValueError:
                    return ("error", json.JSONDecodeError)
        return ("ok", KVValueWithMetadata(value, metadata) if with_metadata else value)

    def expected_page(
        self, prefix: str | None, limit: object, start_after: str
    ) -> tuple[str, Any] | tuple[str, Any, list[str]]:
        size = model_limit(limit)
        if not isinstance(size, int):
            return ("error", size)
        if not self.quota_left("list"):
            return ("error", KVQuotaError)
        self.counts()["list"] += 1
        live = self.live()
        names = sorted(k for k in live if k.startswith(prefix or "") and k > start_after)
        page = [KVKey(k, live[k][1], live[k][2]) for k in names[:size]]
        return ("ok", (page, len(names) <= size))

    # --- steps ------------------------------------------------------------------------------

    def put(self, key: str, value: str | bytes, ttl: object, metadata: Any = None) -> None:
        self.operations += 1
        got = outcome(lambda: self.kv.put(key, value, expiration_ttl=ttl, metadata=metadata))
        assert got == self.expected_put(key, value, ttl, metadata), (key, value, ttl)

    @rule(puts=st.lists(st.tuples(KEYS, VALUES, TTLS, METADATA), min_size=1, max_size=4))
    def put_values(self, puts: list[tuple[str, str | bytes, object, Any]]) -> None:
        """A few puts at one instant (later ones to the same key hit the rate limit)."""
        for key, value, ttl, metadata in puts:
            self.put(key, value, ttl, metadata)

    @rule(key=KEYS, type=st.sampled_from(["text", "bytes", "json"]), with_metadata=st.booleans())
    def get(self, key: str, type: str, with_metadata: bool) -> None:
        self.operations += 1
        read = self.kv.get_with_metadata if with_metadata else self.kv.get
        got = outcome(lambda: read(key, type))  # type: ignore[operator]
        assert got == self.expected_get(key, type, with_metadata), (key, type)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        self.operations += 1
        got = outcome(lambda: self.kv.delete(key))
        if self.quota_left("delete"):
            self.entries.pop(key, None)
            self.counts()["delete"] += 1
            assert got == ("ok", None), key
        else:
            assert got == ("error", KVQuotaError), key

    def list(self, prefix: str | None, limit: object, cursor: str | None, start_after: str) -> None:
        """One page from both; the cursor of an incomplete one is kept for ``list_page``."""
        self.operations += 1
        got = outcome(lambda: self.kv.list(prefix=prefix, limit=limit, cursor=cursor))
        expected = self.expected_page(prefix, limit, start_after)
        if expected[0] == "error" or got[0] == "error":
            assert got == expected, (prefix, limit, start_after)
            return
        page, complete = expected[1]
        result = got[1]
        assert (result.keys, result.list_complete) == (page, complete), (prefix, start_after)
        assert (result.cursor is None) == complete
        self.cursor = None if complete else (prefix, result.cursor, page[-1].name)

    @rule(prefix=PREFIXES, limit=LIMITS, resume=st.booleans())
    def list_page(self, prefix: str | None, limit: object, resume: bool) -> None:
        """A first page, or (``resume``) the page after the last incomplete one."""
        if resume and self.cursor is not None:
            saved_prefix, cursor, start_after = self.cursor
            self.list(saved_prefix, limit, cursor, start_after)
        else:
            self.list(prefix, limit, None, "")

    @rule(prefix=PREFIXES, limit=st.integers(1, 3))
    def list_pages(self, prefix: str | None, limit: int) -> None:
        """Page through a listing with the cursors handed out (at most 20 pages)."""
        self.list(prefix, limit, None, "")
        for _ in range(19):
            if self.cursor is None:
                return
            saved_prefix, cursor, start_after = self.cursor
            self.list(saved_prefix, limit, cursor, start_after)

    @rule(
        seconds=st.sampled_from([0.25, 0.5, 0.999, 1.0, 1.5]) | st.integers(0, 3_600),
        near_midnight=st.none() | st.sampled_from([-1.0, -0.5, 0.0, 0.5]),
    )
    def advance(self, seconds: float, near_midnight: float | None) -> None:
        """Move the clock on, or to ``near_midnight`` seconds from the coming UTC midnight."""
        if near_midnight is not None:
            now = self.now()
            midnight = (math.floor(now / SECONDS_PER_DAY) + 1) * SECONDS_PER_DAY
            seconds = max(0.0, midnight + near_midnight - now)
        self.clock.advance(seconds)

    @rule(kind=st.sampled_from(["write", "delete", "list"]), leave=st.integers(0, 2))
    def spend_quota(self, kind: str, leave: int) -> None:
        """Use the day's ``kind`` quota up but for ``leave`` operations."""
        to_spend = QUOTAS[kind] - self.counts()[kind] - leave
        if kind == "write":  # on filler keys that expire in a minute
            for _ in range(to_spend):
                self.fillers += 1
                self.put(f"{FILLER}{self.fillers:05d}", "f", KV_MIN_EXPIRATION_TTL_S)
        elif kind == "delete":
            for _ in range(to_spend):
                self.delete(FILLER)
        elif len(self.live()) <= 50:
            # Each list scans every key: with a day's filler keys still live a thousand lists
            # take seconds, so lists are spent only while few keys are live.
            resumable = self.cursor
            for _ in range(to_spend):
                self.list("\U0010fffe", 1, None, "")
            self.cursor = resumable

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def same_live_keys(self) -> None:
        assert self.kv.keys() == sorted(self.live())

    @invariant()
    def same_expirations(self) -> None:
        for key, (_, expires_at, _) in self.live().items():
            assert self.kv.expiration_of(key) == expires_at

    @invariant()
    def same_quota_use(self) -> None:
        assert self.kv.used_today() == self.counts()

    @invariant()
    def one_ledger_row_per_operation(self) -> None:
        assert len(self.kv.ledger) == self.operations


# max_examples from the loaded profile (tests/conftest.py): quick by default, deep in CI.
KVDifferential.TestCase.settings = settings(stateful_step_count=30, deadline=None, database=None)
TestKVDifferential = KVDifferential.TestCase
