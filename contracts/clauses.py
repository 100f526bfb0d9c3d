"""The dual-cache contract: every clause's stable ID and its one-line statement.

"Both routes" means with ``FEATURE_FLAG_DO_CACHE`` on (Durable Object) and off (Workers KV).
A test carries its clause with ``@clause("TTL-1")``; a failure report names the clause,
states it, and lists the operations that broke it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from pytest_dualcache.limits import KV_MAX_EXPIRATION_TTL_S

CLAUSES: dict[str, str] = {
    "TTL-1": "A value is readable while elapsed < ttl and gone at elapsed >= ttl, on both routes.",
    "TTL-2": "An omitted ttl means the DAL's declared default (dal.default_ttl, 3600 if absent).",
    "TTL-3": "A ttl below 60 s works on the KV route and expires at ttl, not at 60.",
    "TTL-4": "An overwrite restarts the TTL.",
    "TTL-5": "An invalid ttl (not a positive int, or above KV's largest, "
    f"{KV_MAX_EXPIRATION_TTL_S:,} s) is a clear error, the same on both routes: nothing "
    "written, the previous value intact.",
    "TTL-6": "The local cache never serves a value past its TTL.",
    "TTL-7": "On the KV route the KV entry itself carries an expiration no later than the "
    "write plus max(60, ceil(ttl) + 1) seconds (kv.list() shows it), so storage does not grow "
    "without bound and, for ttl >= 60, a legacy reader sees a value at most 1 s past its TTL "
    "(KV's 60 s floor makes shorter TTLs the DAL's job, as TTL-3 says).",
    "SER-1": "Every strict-JSON value round-trips exactly on both routes.",
    "SER-2": "A non-JSON value (NaN and infinities included) is a clear error: nothing "
    "written, the previous value intact.",
    "SER-3": "Mutating a value after put, or one returned by get, changes nothing stored.",
    "SER-4": 'Any key KV accepts (non-empty, not "." or "..", up to 512 UTF-8 bytes) works on '
    "both routes; any other key is a clear error and writes nothing.",
    "SER-5": "KV holds plain JSON: legacy readers and legacy writers interoperate both ways.",
    "FB-1": "Flag off: every write goes to KV and no Durable Object operation happens.",
    "FB-2": "Flag on, DO healthy: zero KV writes and deletes per operation; at most two KV "
    "writes per flag transition for coordination (an env's first use counts as one); after "
    "a DO outage, zero again once the DO has been back 5 minutes and each instance has made "
    "one call.",
    "FB-3": "DO failing on write: the put still succeeds via KV and is readable while the DO "
    "is down.",
    "FB-4": "DO failing on read: get falls back to KV and never raises.",
    "FB-5": "Two puts to one key within a second on the KV route both succeed; the later wins.",
    "FB-6": "Both stores failing: put and delete report failure; get never returns a wrong value.",
    "FB-7": "No silent loss: a put that reported success is readable until its TTL or a "
    "later write.",
    "FB-8": "DO failing on write: a delete still succeeds via KV, and the key reads None "
    "while the DO is down and after it recovers.",
    "FB-9": "An outage of any size heals: once the DO is back, every put made while it was "
    "down reads back, beyond one KV list page (1,000 keys) too.",
    "FB-10": "KV failing, DO healthy: an instance that has served calls keeps the DO route "
    "working (puts, gets and deletes succeed on the DO).",
    "LOC-1": "After a cached get, a put is visible at once on the same instance.",
    "LOC-2": "After a cached get, a delete is visible at once on the same instance.",
    "LOC-3": "Two instances on one env: B sees A's write no later than B's declared "
    "local_cache_ttl (0 if it declares none).",
    "FLIP-1": "The next call after a flip follows the flag, on the same DAL instance.",
    "FLIP-2": "No stale reads across flips: get returns the latest value or None, never an "
    "older one, in both directions.",
    "FLIP-3": "Rolling back (on to off) mid-traffic raises nothing and loses no later write.",
    "FLIP-4": "Fresh instances after each flip (a redeploy) never return a value older than "
    "the latest write an earlier instance made.",
    "STATE": "Any interleaving of put/get/delete, flips, clock moves, DO outages and a second "
    "instance agrees with the model: the latest live value, or None only where a clause "
    "allows a miss.",
}

F = TypeVar("F", bound=Callable[..., object])


def clause(clause_id: str) -> Callable[[F], F]:
    """Mark a contract test as the proof of ``clause_id`` (its failure report names it)."""
    if clause_id not in CLAUSES:
        raise ValueError(f"unknown contract clause {clause_id!r}; known: {', '.join(CLAUSES)}")
    return pytest.mark.dualcache_clause(clause_id)


def clause_header(clause_id: str) -> str:
    """The first lines of a failure report: which clause broke and what it promises."""
    return f"dualcache contract clause {clause_id} broken: {CLAUSES[clause_id]}"


def clause_guide(clause_id: str) -> str:
    """The last line of a failure report: where the clause is explained, and how to meet it."""
    return (
        f"Why {clause_id} exists and the smallest behaviour that meets it: "
        f"docs/contract.md#{clause_id.lower()} (in the pytest-dualcache repository)"
    )
