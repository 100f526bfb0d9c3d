"""Durable Object storage conformance: ``ctx.storage`` of the runtime against Miniflare's.

One corpus of storage operations runs in a Durable Object inside Miniflare (workerd;
``do_harness.mjs``, ``do_worker.mjs``) and on ``pytest_dualcache.runtime``'s storage, each
case on a fresh object of the class its backend names (``new_classes``: key-value backed,
``new_sqlite_classes``: SQLite backed, ``no_alarm``: a class without ``alarm()``). Results
and refusals (error name and message) are compared exactly; every difference must be listed
in ``KNOWN_DIFFERENCES``, and every listed one must still occur.
``python conformance/do_storage.py`` prints the report, ``--table`` the README's table
(``driver.py`` runs the harness, compares and reports for both checks).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from driver import BUG as BUG
from driver import INTENTIONAL, Difference, Report, main, run_harness, tally
from driver import MINIFLARE_MISSING as MINIFLARE_MISSING
from driver import miniflare_installed as miniflare_installed

from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.limits import (
    DO_MAX_KEY_BYTES,
    DO_MAX_VALUE_BYTES,
    DO_SQLITE_MAX_KEY_VALUE_BYTES,
    DO_STORAGE_MAX_BATCH_KEYS,
    DO_STORAGE_VALUE_SLACK_BYTES,
)
from pytest_dualcache.runtime.clone import v8_serialized_size
from pytest_dualcache.runtime.durable_objects import DurableObjectNamespace
from pytest_dualcache.runtime.entrypoints import DurableObject
from pytest_dualcache.runtime.ffi import JsException

Op = dict[str, Any]
Outcome = dict[str, Any]
BACKENDS = ("new_classes", "new_sqlite_classes")
#: An alarm time far ahead, the same on both sides (2100-01-01T00:00:00Z in epoch ms).
FAR_AHEAD_MS = 4_102_444_800_000


@dataclass(frozen=True)
class Case:
    """Operations run in order on a fresh object of ``backend``'s class."""

    id: str
    backend: str
    ops: tuple[Op, ...]


def repeat(text: str, times: int) -> dict[str, Any]:
    """``text * times``, spelled so the corpus stays small."""
    return {"$repeat": text, "times": times}


def _longest_value_accepted() -> int:
    """Characters of the longest ASCII string value ours accepts on a key-value backed object."""
    limit = DO_MAX_VALUE_BYTES + DO_STORAGE_VALUE_SLACK_BYTES
    return next(n for n in range(limit, 0, -1) if v8_serialized_size("a" * n) <= limit)


def key_cases(backend: str) -> Iterable[Case]:
    for name, key in (
        ("2048-bytes", repeat("k", DO_MAX_KEY_BYTES)),
        ("2049-bytes", repeat("k", DO_MAX_KEY_BYTES + 1)),
        ("1025-two-byte-chars", repeat("é", 1025)),
        ("empty", ""),
    ):
        ops = ({"op": "put", "key": key, "value": 1}, {"op": "get", "key": key})
        yield Case(f"{backend}/key/{name}", backend, ops)


def value_cases(backend: str) -> Iterable[Case]:
    longest = _longest_value_accepted()
    for name, value in (
        ("longest-accepted", repeat("a", longest)),
        ("one-char-over", repeat("a", longest + 1)),
        ("over-sqlite-row", repeat("a", DO_SQLITE_MAX_KEY_VALUE_BYTES + 1)),
        ("json-like", {"nested": [1, 2.5, True, None, "x"], "n": -0.0}),
    ):
        ops = ({"op": "put", "key": "v", "value": value}, {"op": "get", "key": "v"})
        yield Case(f"{backend}/value/{name}", backend, ops)
    yield Case(f"{backend}/value/undefined", backend, ({"op": "putUndefined", "key": "u"},))


def batch_cases(backend: str) -> Iterable[Case]:
    for count in (DO_STORAGE_MAX_BATCH_KEYS, DO_STORAGE_MAX_BATCH_KEYS + 1):
        keys = [f"b{n:04d}" for n in range(count)]
        ops = (
            {"op": "putMany", "entries": [[key, n] for n, key in enumerate(keys)]},
            {"op": "getMany", "keys": keys},
            {"op": "deleteMany", "keys": keys},
        )
        yield Case(f"{backend}/batch/{count}-keys", backend, ops)


def list_cases(backend: str) -> Iterable[Case]:
    fill = {"op": "putMany", "entries": [[key, key] for key in ("a", "ab", "b", "ba", "c")]}
    for name, options in (
        ("all", {}),
        ("prefix", {"prefix": "b"}),
        ("start-end", {"start": "ab", "end": "ba"}),
        ("start-after", {"startAfter": "ab"}),
        ("reverse-limit", {"reverse": True, "limit": 2}),
        ("limit-zero", {"limit": 0}),
        ("limit-negative", {"limit": -1}),
        ("start-and-start-after", {"start": "a", "startAfter": "a"}),
    ):
        ops = (fill, {"op": "list", "options": options})
        yield Case(f"{backend}/list/{name}", backend, ops)


def other_cases(backend: str) -> Iterable[Case]:
    yield Case(
        f"{backend}/delete/existing-and-missing",
        backend,
        (
            {"op": "put", "key": "k", "value": "v"},
            {"op": "delete", "key": "k"},
            {"op": "delete", "key": "k"},
            {"op": "deleteMany", "keys": ["k", "x"]},
        ),
    )
    yield Case(
        f"{backend}/alarm/set-get-delete-all",
        backend,
        (
            {"op": "setAlarm", "at": FAR_AHEAD_MS},
            {"op": "getAlarm"},
            {"op": "put", "key": "k", "value": 1},
            {"op": "deleteAll"},
            {"op": "getAlarm"},
            {"op": "get", "key": "k"},
        ),
    )
    yield Case(f"{backend}/alarm/time-zero", backend, ({"op": "setAlarm", "at": 0},))


def corpus() -> list[Case]:
    cases: list[Case] = []
    for backend in BACKENDS:
        for family in (key_cases, value_cases, batch_cases, list_cases, other_cases):
            cases.extend(family(backend))
    alarm = {"op": "setAlarm", "at": FAR_AHEAD_MS}
    cases.append(Case("no_alarm/alarm/without-handler", "no_alarm", (alarm,)))
    return cases


KNOWN_DIFFERENCES: dict[str, Difference] = {
    "key-value-backed-sizes": Difference(
        INTENTIONAL,
        "A key-value backed object (`new_classes`): ours refuses keys over 2,048 bytes and "
        "values over 131,072 bytes (V8's serialization, with workerd's 34 bytes of slack) "
        "with workerd's RangeErrors, Cloudflare's documented production limits; Miniflare "
        "(workerd run locally) accepts both.",
        (
            "new_classes/key/2049-bytes",
            "new_classes/key/1025-two-byte-chars",
            "new_classes/value/one-char-over",
            "new_classes/value/over-sqlite-row",
        ),
    ),
    "batch-of-129-keys": Difference(
        INTENTIONAL,
        "put/get/delete of more than 128 keys at once: ours refuses them (Cloudflare's "
        "documented 128 keys a call, workerd's message); Miniflare accepts them.",
        ("new_classes/batch/129-keys", "new_sqlite_classes/batch/129-keys"),
    ),
    "sqlite-row-size": Difference(
        INTENTIONAL,
        "A SQLite-backed object's key and value past 2,000,000 bytes: ours refuses them "
        "(SQLITE_TOOBIG at Cloudflare's documented 2 MB); Miniflare accepts them (workerd "
        "enforces only SQLite's own, larger string limit).",
        ("new_sqlite_classes/value/over-sqlite-row",),
    ),
}


# --- running it ------------------------------------------------------------------------------


class _KeyValueBacked(DurableObject):
    async def alarm(self) -> None:
        """Present, so setAlarm() is allowed."""


class _WithoutAlarm(DurableObject):
    pass


def run_ours(case: Case) -> list[Outcome]:
    """``case`` on a fresh object of its backend's class, in our runtime."""
    cls = _WithoutAlarm if case.backend == "no_alarm" else _KeyValueBacked
    backend = "new_sqlite_classes" if case.backend == "no_alarm" else case.backend
    namespace = DurableObjectNamespace(cls, None, VirtualClock(), storage_backend=backend)
    storage = namespace.instance(case.id).ctx.storage
    return asyncio.run(_run_ops(storage, case.ops))


async def _run_ops(storage: Any, ops: Iterable[Op]) -> list[Outcome]:
    outcomes = []
    for op in ops:
        try:
            result = await _call(storage, op)
            outcomes.append({"ok": _shown(result, entries=op["op"] in _MAP_RESULTS)})
        except JsException as exc:
            outcomes.append({"error": {"name": exc.name, "message": exc.message}})
    return outcomes


def _call(storage: Any, op: Op) -> Any:
    kind = op["op"]
    if kind == "put":
        return storage.put(_value(op["key"]), _value(op["value"]))
    if kind == "putUndefined":
        return storage.put(_value(op["key"]), None)
    if kind == "putMany":
        return storage.put({_value(k): _value(v) for k, v in op["entries"]})
    if kind in ("get", "delete"):
        return getattr(storage, kind)(_value(op["key"]))
    if kind in ("getMany", "deleteMany"):
        return getattr(storage, kind.removesuffix("Many"))([_value(k) for k in op["keys"]])
    if kind == "deleteAll":
        return storage.deleteAll()
    if kind == "list":
        return storage.list(op.get("options", {}))
    if kind == "setAlarm":
        return storage.setAlarm(op["at"])
    if kind == "getAlarm":
        return storage.getAlarm()
    raise ValueError(f"unknown op {kind}")


def _value(spec: Any) -> Any:
    if isinstance(spec, dict) and "$repeat" in spec:
        return spec["$repeat"] * spec["times"]
    return spec


#: The ops whose JavaScript result is a ``Map`` (shown as its entries).
_MAP_RESULTS = ("getMany", "list")


def _shown(result: Any, *, entries: bool = False) -> Any:
    """As do_worker.mjs shows results: a Map (``entries``) as its entries, long strings by
    their length, whole floats as ints (JSON has one number type)."""
    if entries:
        return [[_shown(key), _shown(value)] for key, value in result.items()]
    if isinstance(result, dict):
        return {key: _shown(value) for key, value in result.items()}
    if isinstance(result, list):
        return [_shown(item) for item in result]
    if isinstance(result, str) and len(result) > 64:
        return {"$length": len(result)}
    if isinstance(result, float) and result.is_integer() and abs(result) < 2**53:
        return int(result)
    return result


def run() -> Report:
    cases = corpus()
    output = run_harness(
        "do_harness.mjs", [{"id": c.id, "backend": c.backend, "ops": c.ops} for c in cases]
    )
    report = Report(
        output["miniflare"], output["workerd"], "DO storage conformance", KNOWN_DIFFERENCES
    )
    return tally(
        report,
        cases,
        output["results"],
        ours=lambda case, raw: run_ours(case),
        theirs=lambda raw: raw,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], run, KNOWN_DIFFERENCES))
