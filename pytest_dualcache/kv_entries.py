"""The reference cache's entries in Workers KV, and the repair that empties them into the DO.

KV holds three kinds of entry, each the value's plain JSON text (so legacy
``json.loads(kv.get(key))`` readers keep working) with metadata saying what it is:

- ``"e"``: the logical expiry (epoch seconds), checked on read, so TTLs below KV's 60 s
  floor expire on time; KV's own expiry is set a little later, as a backstop;
- ``"g"``: the route generation it was written in (an entry of another one is ignored);
- ``"r"``: the route it serves: "kv" for a value written with the flag off, "do" for a
  *fallback copy* of a put the DO refused, or a *tombstone* (``"t": 1``) of such a delete;
- ``"s"``: a stamp ``[write time, sequence]`` that orders a copy against the DO's record.

Entries without this metadata are legacy writes. ``FallbackRepair`` moves the copies of
the current generation into the DO once it answers again, backing off while it does not.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from .cache_input import MAX_TTL_S, RESERVED_PREFIX
from .durable import DurableObjectError
from .kv import KVError, KVRateLimitError
from .limits import KV_MIN_EXPIRATION_TTL_S

log = logging.getLogger("pytest_dualcache.abstraction")  # the reference cache logs as one

#: The longest wait between two repair attempts while the DO keeps failing.
REPAIR_BACKOFF_MAX_S = 300.0
#: How long a KV tombstone (a delete made while the DO was down) outlives the DO copy it hides.
TOMBSTONE_TTL_S = 7 * 86_400

T = TypeVar("T")
#: What a KV entry read for one route answers: (JSON text or None, expiry, stamp or None).
Found = tuple[str | None, float, list[float] | None]


class KVEntries:
    """The env's KV namespace as the reference cache uses it: entries with metadata, 429s retried.

    ``counts["retries"]`` counts the retries made.
    """

    def __init__(
        self, env: Any, counts: Counter[str], *, max_attempts: int, retry_delay: float
    ) -> None:
        self.env = env
        self.counts = counts
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay

    @property
    def kv(self) -> Any:
        """The env's KV namespace."""
        return self.env.kv

    def retrying(self, operation: Callable[[], T]) -> T:
        """``operation()``, retried on 429 with exponential backoff on the env's clock."""
        for attempt in range(self.max_attempts):
            try:
                return operation()
            except KVRateLimitError:
                if attempt == self.max_attempts - 1:
                    raise
                self.counts["retries"] += 1
                self.env.clock.sleep(self.retry_delay * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def write(
        self,
        key: str,
        text: str,
        *,
        expires_at: float,
        generation: int,
        stamp: list[float],
        ttl: int,
        route: str = "kv",
        tombstone: bool = False,
    ) -> None:
        """Put one entry (not retried: callers wrap the whole write in ``retrying``)."""
        metadata: dict[str, Any] = {"e": expires_at, "g": generation, "r": route, "s": stamp}
        if tombstone:
            metadata["t"] = 1
        # KV's expiry (whole s from the whole second now) passes the logical one where int32 allows.
        backstop = min(max(KV_MIN_EXPIRATION_TTL_S, math.ceil(ttl) + 1), MAX_TTL_S)
        reason = "flag off" if route == "kv" else "DO failed"  # pragma: no mutate (log text)
        log.debug("%s %r -> kv (%s)", "delete" if tombstone else "put", key, reason)
        self.kv.put(key, text, expiration_ttl=backstop, metadata=metadata)

    def write_copy(
        self, key: str, text: str, *, expires_at: float, generation: int, stamp: list[float]
    ) -> None:
        """Put a fallback copy: ``text`` of a put the DO refused, readable until ``expires_at``.

        KV keeps the copy at least as long as a tombstone, past its logical expiry: repair
        must still find it after a long outage, or the DO's older value of the key would be
        read again once its short-lived successor had gone from KV.
        """
        ttl = max(TOMBSTONE_TTL_S, math.ceil(expires_at - self.env.clock.now()))
        self.write(
            key,
            text,
            expires_at=expires_at,
            generation=generation,
            stamp=stamp,
            ttl=ttl,
            route="do",
        )

    def write_tombstone(self, key: str, *, generation: int, stamp: list[float]) -> None:
        """Put a tombstone: a delete the DO refused, hiding the DO's older record."""
        self.write(
            key,
            "null",
            expires_at=self.env.clock.now() + TOMBSTONE_TTL_S,
            generation=generation,
            stamp=stamp,
            ttl=TOMBSTONE_TTL_S,
            route="do",
            tombstone=True,
        )

    def read(self, key: str, generation: int, route: str) -> Found:
        """The entry for ``key`` valid for ``route`` in ``generation``: (text, expiry, stamp).

        An expired entry or a tombstone answers no text but its stamp (it still hides an
        older DO record); an unreadable KV answers nothing at all.
        """
        try:
            found = self.kv.get_with_metadata(key)
        except KVError as exc:
            log.warning("get %r: KV unreadable too (%s); answering None", key, exc)
            return None, 0.0, None
        text, meta = found.value, found.metadata
        if text is None:
            return None, 0.0, None
        now = self.env.clock.now()
        if not is_entry_metadata(meta):
            # A legacy write: plain JSON with no metadata or the legacy writer's own. It
            # carries no generation, so it is current only in generation 0 (before any flip;
            # afterwards it could be older than what the DAL wrote since), and no expiry we
            # can read, so it is never kept in the local cache (expiry "now").
            if route == "kv" and generation == 0:
                return text, now, [-math.inf, 0]
            return None, 0.0, None
        if meta["r"] != route or meta["g"] != generation:
            return None, 0.0, None
        if now >= meta["e"]:
            return None, 0.0, meta["s"]
        if meta.get("t"):
            return None, 0.0, meta["s"]
        return text, meta["e"], meta["s"]

    def pages(self, prefix: str | None) -> list[Any]:
        """Every ``KVKey`` under ``prefix`` (all keys if None), following the cursor."""
        keys, cursor = [], None
        while True:
            page = self.kv.list(prefix=prefix, cursor=cursor)
            keys.extend(page.keys)
            if page.list_complete:
                return keys
            cursor = page.cursor


#: The metadata keys ``KVEntries.write`` sets on every entry (a tombstone adds "t").
ENTRY_METADATA_KEYS = frozenset({"e", "g", "r", "s"})


def is_entry_metadata(meta: object) -> bool:
    """Whether ``meta`` is what ``KVEntries.write`` attaches, not a legacy writer's own."""
    return isinstance(meta, dict) and meta.keys() >= ENTRY_METADATA_KEYS


def is_copy(key: Any, generation: int) -> bool:
    """A KV list entry that is a DO-route fallback copy (or tombstone) of ``generation``."""
    meta = key.metadata
    return is_entry_metadata(meta) and meta["r"] == "do" and meta["g"] == generation


class FallbackRepair:
    """Moves fallback copies into the DO once it answers, backing off while it does not.

    Attempts back off exponentially (1 s, 2 s, ... up to 5 minutes) while the DO keeps
    failing, so a long outage does not spend the free plan's 1,000 daily KV lists; the DO
    is probed with one cheap call before the namespace is listed.
    """

    def __init__(self, entries: KVEntries) -> None:
        self.entries = entries
        self.due_at = -math.inf
        self.backoff = 0.5  # doubled before each wait: the first wait is 1 s

    def attempt(self, generation: int, now: float) -> bool:
        """Try to repair now; True once every copy of ``generation`` is in the DO.

        False when no attempt is due yet or the DO (or KV) failed on the way.
        """
        if now < self.due_at:
            return False
        env = self.entries.env
        try:
            env.do.list(RESERVED_PREFIX)  # is the DO answering at all?
            for key in self.entries.pages(None):
                if is_copy(key, generation):
                    self._move(key.name, key.metadata, generation)
        except (DurableObjectError, KVError) as exc:
            self.backoff = min(2 * self.backoff, REPAIR_BACKOFF_MAX_S)
            self.due_at = now + self.backoff
            log.debug("repair postponed %g s: %s", self.backoff, exc)
            return False
        self.backoff = 0.5
        log.debug("repair done: route no longer degraded")
        return True

    def _move(self, key: str, meta: dict[str, Any], generation: int) -> None:
        """Put the copy of ``key`` into the DO if it is newer than the DO's, then drop it."""
        env = self.entries.env
        record = env.do.get(key)
        do_stamp = record["s"] if record and record.get("g") == generation else None
        if do_stamp is None or meta["s"] > do_stamp:
            remaining = meta["e"] - env.clock.now()
            if meta.get("t") or remaining <= 0:
                env.do.delete(key)
            else:
                text = env.kv.get(key)
                value = json.loads(text) if text is not None else None
                record = {"v": value, "g": generation, "s": meta["s"], "e": meta["e"]}
                env.do.set(key, record, ttl=remaining)
        env.kv.delete(key)
