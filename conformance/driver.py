"""KV conformance: one operation corpus, run against Miniflare and against ``KVNamespace``.

Miniflare runs the real workerd runtime, so where the two disagree our emulator is wrong,
unless the difference is listed in ``KNOWN_DIFFERENCES`` with its reason. The corpus is
JSON (``corpus()``); ``harness.mjs`` runs it in Miniflare (``worker.mjs`` is the Worker),
``run_ours()`` replays it on ``KVNamespace`` and ``compare()`` sets the outcomes side by side.

What must match exactly: values, metadata, list pages (names, ``expiration``, metadata,
``list_complete``, cursors) and errors (status, operation word and message text, or the
``TypeError`` text the binding throws). Only JSON parse errors are compared by kind, as
Python's and V8's parsers word them differently.

    python conformance/driver.py            # the report: counts, every difference
    python conformance/driver.py --table    # the differences table, as README.md shows it
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pytest_dualcache.clock import VirtualClock
from pytest_dualcache.kv import (
    KVBindingError,
    KVError,
    KVListResult,
    KVNamespace,
    KVValueWithMetadata,
)

HERE = Path(__file__).resolve().parent
MINIFLARE_MISSING = "Miniflare not installed: run `npm ci` in conformance/"
MIB_25 = 25 * 1024 * 1024
MAX_LIST_PAGES = 100  # as worker.mjs: listAll stops after this many pages

Op = dict[str, Any]
Outcome = dict[str, Any]


@dataclass(frozen=True)
class Case:
    """Operations run in order on an empty namespace; ``plan`` is our KV plan for it."""

    id: str
    ops: tuple[Op, ...]
    plan: str = "unlimited"


# --- the corpus ----------------------------------------------------------------------------
# Options use the binding's JavaScript names; values JSON can't carry are spelled
# {"$number": "NaN"} and {"$fromNow": seconds} (whole seconds of the put's clock, plus these).


def put(key: str, value: Any = "v", **options: Any) -> Op:
    return {"op": "put", "key": key, "value": value, **({"options": options} if options else {})}


def get(key: str, type: str = "text", *, digest: bool = False) -> Op:
    return {"op": "get", "key": key, "type": type, **({"digest": True} if digest else {})}


def get_with_metadata(key: str, type: str = "text") -> Op:
    return {"op": "getWithMetadata", "key": key, "type": type}


def delete(key: str) -> Op:
    return {"op": "delete", "key": key}


def list_page(**options: Any) -> Op:
    return {"op": "list", **({"options": options} if options else {})}


def list_all(**options: Any) -> Op:
    """Every page from the first, following cursors (one outcome per page)."""
    return {"op": "listAll", **({"options": options} if options else {})}


def fill(prefix: str, count: int) -> Op:
    """Put ``count`` keys ``prefix00000``, ``prefix00001``, ...: the number stored, first error."""
    return {"op": "fill", "prefix": prefix, "count": count}


def number(text: str) -> dict[str, str]:
    return {"$number": text}


def from_now(seconds: float) -> dict[str, float]:
    return {"$fromNow": seconds}


def repeat(text: str, times: int) -> dict[str, Any]:
    return {"repeat": text, "times": times}


def cursor_of(key: str) -> str:
    """A cursor naming ``key`` as the last one seen (both sides encode cursors this way)."""
    return base64.b64encode(key.encode()).decode()


def key_cases() -> Iterable[Case]:
    for name, key in [("empty", ""), ("dot", "."), ("dotdot", "..")]:
        yield Case(f"key/{name}/put", (put(key),))
        yield Case(f"key/{name}/get", (get(key), get_with_metadata(key)))
        yield Case(f"key/{name}/delete", (delete(key),))
    yield Case("key/three-dots-and-spaces", (put("..."), put(" ."), put(". "), list_all()))
    # 512 UTF-8 bytes is the limit: ASCII, then a 2-, 3- and 4-byte character at the end.
    for name, tail in [("ascii", "a"), ("2-byte", "é"), ("3-byte", "€"), ("4-byte", "😀")]:
        fits = "k" * (512 - len(tail.encode())) + tail
        over = "k" + fits
        yield Case(f"key/512-bytes-{name}", (put(fits), get(fits), list_all()))
        yield Case(f"key/513-bytes-{name}/put", (put(over), list_all()))
    yield Case("key/256-two-byte-chars", (put("é" * 256), get("é" * 256)))
    yield Case("key/257-two-byte-chars", (put("é" * 257),))
    yield Case("key/513-bytes/get", (get("k" * 513), get_with_metadata("k" * 513)))
    yield Case("key/513-bytes/delete", (delete("k" * 513),))
    yield Case("key/lone-surrogate", (put("a\ud800"), get("a\ud800")))
    yield Case(
        "key/overwrite-drops-metadata-and-expiry",
        (
            put("k", "1", metadata={"m": 1}, expirationTtl=3600),
            put("k", "2"),
            get_with_metadata("k"),
            list_all(),
        ),
    )
    yield Case("key/delete", (put("k"), delete("k"), get("k"), delete("k"), list_all()))


def value_cases() -> Iterable[Case]:
    yield Case("value/25-MiB", (put("big", repeat("x", MIB_25)), get("big", digest=True)))
    yield Case("value/25-MiB-plus-1", (put("big", repeat("x", MIB_25 + 1)), get("big")))
    two_byte = repeat("é", MIB_25 // 2)  # exactly 25 MiB of UTF-8 in 12.5 Mi characters
    yield Case("value/25-MiB-two-byte-chars", (put("big", two_byte), get("big", digest=True)))
    yield Case("value/25-MiB-plus-1-two-byte-chars", (put("big", repeat("é", MIB_25 // 2 + 1)),))
    yield Case(
        "value/empty",
        (
            put("e", ""),
            get("e"),
            get_with_metadata("e"),
            get("e", "arrayBuffer"),
        ),
    )
    yield Case("value/unicode-text", (put("u", "héllo €😀"), get("u"), get("u", "arrayBuffer")))
    yield Case(
        "value/bytes",
        (
            put("b", {"hex": "00fffe41"}),
            get("b", "arrayBuffer"),
            get("b"),
        ),
    )
    for name, hex_bytes in [
        ("encoded-surrogate", "eda080"),
        ("truncated-4-byte", "f09f98"),
        ("overlong", "c0af"),
        ("above-max", "f4908080"),
        ("lone-continuation", "41806142"),
    ]:
        yield Case(f"value/invalid-utf8/{name}", (put("b", {"hex": hex_bytes}), get("b")))
    yield Case(
        "value/missing",
        (
            get("none"),
            get("none", "json"),
            get("none", "arrayBuffer"),
            get_with_metadata("none"),
        ),
    )
    for name, text in [
        ("object", '{"a": [1, 2.5, "x", true], "b": null, "c": {"d": -0.0}}'),
        ("whitespace", ' \n{"a":1}\t'),
        ("float-as-int", "1.0"),
        ("unicode-escapes", '"\\u00e9\\ud83d\\ude00"'),
        ("duplicate-names", '{"a": 1, "a": 2}'),
        ("integer-beyond-2-53", "12345678901234567890"),
        ("not-json", "not json"),
        ("nan", "NaN"),
        ("infinity", "-Infinity"),
        ("trailing-comma", "[1,]"),
    ]:
        yield Case(f"value/json/{name}", (put("j", text), get("j", "json")))


def metadata_cases() -> Iterable[Case]:
    def stored(metadata: Any) -> tuple[Op, ...]:
        return (put("m", metadata=metadata), get_with_metadata("m"), list_all())

    # The limit is on JSON.stringify's text: a 1,022-character string is 1,024 bytes quoted.
    yield Case("metadata/1024-bytes", stored("a" * 1022))
    yield Case("metadata/1025-bytes", stored("a" * 1023))
    yield Case("metadata/1024-bytes-two-byte-chars", stored({"k": "é" * 508}))
    yield Case("metadata/1026-bytes-two-byte-chars", stored({"k": "é" * 509}))
    # Control characters are escaped as \u0001 (6 bytes each) by both writers.
    yield Case("metadata/1022-bytes-escaped", stored("\u0001" * 170))
    yield Case("metadata/1028-bytes-escaped", stored("\u0001" * 171))
    # Numbers count as JavaScript writes them (1e+21, 1e-7, 100, 0): padded to 1,024 and 1,025.
    numbers = [1e21, 1e-7, 100.0, -0.0, 0.1, 5e-324, 1.7976931348623157e308]
    numbers_text = "[1e+21,1e-7,100,0,0.1,5e-324,1.7976931348623157e+308]"
    pad = 1024 - len('{"n":,"pad":""}') - len(numbers_text)
    yield Case("metadata/1024-bytes-numbers", stored({"n": numbers, "pad": "p" * pad}))
    yield Case("metadata/1025-bytes-numbers", stored({"n": numbers, "pad": "p" * (pad + 1)}))
    for name, metadata in [("zero", 0), ("false", False), ("empty-string", ""), ("empty-list", [])]:
        yield Case(f"metadata/falsy/{name}", stored(metadata))
    yield Case("metadata/nested", stored({"a": [1, {"b": "é"}], "c": None, "d": True}))
    yield Case("metadata/nan", stored({"a": number("NaN")}))


def expiration_cases() -> Iterable[Case]:
    def ttl(raw: Any) -> tuple[Op, ...]:
        return (put("t", expirationTtl=raw), list_all())

    for name, raw in [
        ("59", 59),
        ("60", 60),
        ("60.5", 60.5),
        ("59.9", 59.9),
        ("0", 0),
        ("-1", -1),
        ("string-120", "120"),
        ("string-space-61", " 61"),
        ("string-abc", "abc"),
        ("string-empty", ""),
        ("string-60abc", "60abc"),
        ("string-1e3", "1e3"),
        ("string-hex", "0x40"),
        ("nan", number("NaN")),
        ("infinity", number("Infinity")),
        ("2-31-minus-1", 2**31 - 1),
        ("2-31", 2**31),
    ]:
        yield Case(f"expirationTtl/{name}", ttl(raw))

    def at(raw: Any) -> tuple[Op, ...]:
        return (put("e", expiration=raw), list_all())

    for name, raw in [
        ("past", from_now(-10)),
        ("now", from_now(0)),
        ("in-30s", from_now(30)),
        ("in-59s", from_now(59)),
        ("in-60s", from_now(60)),
        ("in-60.5s", from_now(60.5)),
        ("in-120s", from_now(120)),
        ("zero", 0),
        ("negative", -5),
        ("string-abc", "abc"),
        ("2-31-minus-1", 2**31 - 1),
        ("2-31", 2**31),
    ]:
        yield Case(f"expiration/{name}", at(raw))
    # With both, expirationTtl wins: a past expiration is ignored, a bad ttl still refused.
    yield Case(
        "expiration/both-past-and-ttl-120",
        (
            put("b", expiration=from_now(-10), expirationTtl=120),
            list_all(),
        ),
    )
    yield Case(
        "expiration/both-future-and-ttl-59",
        (
            put("b", expiration=from_now(300), expirationTtl=59),
            list_all(),
        ),
    )
    yield Case(
        "expiration/both-future-and-ttl-120",
        (
            put("b", expiration=from_now(300), expirationTtl=120),
            list_all(),
        ),
    )


def precedence_cases() -> Iterable[Case]:
    long_key = "k" * 513
    yield Case("precedence/key-before-ttl", (put(long_key, expirationTtl=0),))
    yield Case("precedence/ttl-before-metadata", (put("k", metadata="a" * 2000, expirationTtl=1),))
    yield Case(
        "precedence/metadata-before-value",
        (put("k", repeat("x", MIB_25 + 1), metadata="a" * 2000),),
    )
    yield Case("precedence/key-before-value", (put(long_key, repeat("x", MIB_25 + 1)),))


def list_cases() -> Iterable[Case]:
    five = tuple(put(k, metadata={"k": k}) for k in ["a", "a/b", "a/c", "ab", "b"])
    for name, limit in [
        ("1", 1),
        ("2.5", 2.5),
        ("5", 5),
        ("1000", 1000),
        ("1001", 1001),
        ("0", 0),
        ("negative", -1),
        ("string-3", "3"),
        ("string-abc", "abc"),
    ]:
        yield Case(f"list/limit-{name}", (*five, list_page(limit=limit)))
    yield Case("list/limit-equals-count", (*five, list_page(limit=5), list_all(limit=5)))
    for name, prefix in [("a", "a"), ("a-slash", "a/"), ("empty", ""), ("none", "zzz")]:
        yield Case(f"list/prefix-{name}", (*five, list_all(prefix=prefix, limit=2)))
    yield Case(
        "list/prefix-with-nul",
        (
            *(put(k) for k in ["a", "a\x00", "a\x00b", "a\x01"]),
            list_page(prefix="a"),
            list_page(prefix="a\x00"),
        ),
    )
    yield Case("list/prefix-512-bytes", (*five, list_page(prefix="k" * 512)))
    yield Case("list/prefix-513-bytes", (*five, list_page(prefix="k" * 513)))
    yield Case("list/cursor-empty", (*five, list_page(cursor="", limit=2)))
    yield Case("list/cursor-of-key", (*five, list_page(cursor=cursor_of("a/b"))))
    yield Case("list/cursor-outside-prefix", (*five, list_page(prefix="a", cursor=cursor_of("b"))))
    yield Case("list/cursor-not-base64", (*five, list_page(cursor="!!!")))
    yield Case("list/cursor-unpadded", (*five, list_page(cursor="zz")))
    yield Case(
        "list/metadata-and-expiration",
        (
            put("m/1", metadata={"n": 1}, expirationTtl=600),
            put("m/2", expiration=from_now(900)),
            put("m/3", metadata="plain"),
            list_all(prefix="m/", limit=2),
        ),
    )
    # UTF-8 byte order, which is not UTF-16 order: U+E000 and U+FFFF sort before U+1F600.
    names = ["a", "A", " ", "~", "\x7f", "\x80", "é", "€", "\ue000", "\uffff", "😀", "𝄞", "a😀"]
    yield Case("list/utf8-byte-order", (*(put(n) for n in names), list_all(limit=3)))
    yield Case(
        "list/paging-2500-keys",
        (
            fill("page/", 2500),
            put("other/1"),
            put("pagf"),
            list_all(),
            list_all(prefix="page/", limit=700),
            list_all(prefix="page/0249", limit=3),
        ),
    )


def plan_cases() -> Iterable[Case]:
    """Our free plan's per-key rate and daily quota, which Miniflare does not enforce."""
    yield Case("rate/two-writes-one-second", (put("k", "1"), put("k", "2"), get("k")), "free")
    yield Case("quota/free-1001-writes", (fill("q/", 1001),), "free")


# Generated cases: hypothesis draws, derandomized, so the corpus is the same on every run.
# They leave out what KNOWN_DIFFERENCES cover with explicit cases: the keys "", "." and "..",
# lone surrogates, and U+0000 in a list prefix (keys are also used as prefixes).
KEY_CHARACTERS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
KEY_TEXT = st.one_of(
    st.text(KEY_CHARACTERS, min_size=1, max_size=40),
    st.text(KEY_CHARACTERS, min_size=120, max_size=260),  # around 512 bytes
).filter(lambda key: key not in (".", ".."))
PREFIX_CHARACTERS = ["a", "b", "/", "-", " ", "é", "€", "\ue000", "😀"]
LIST_NAMES = st.lists(
    st.text(st.sampled_from([*PREFIX_CHARACTERS, "\x00"]), min_size=1, max_size=5),
    min_size=3,
    max_size=25,
)
LIST_PREFIX = st.text(st.sampled_from(PREFIX_CHARACTERS), max_size=2)


def draw(strategy: st.SearchStrategy[Any], examples: int) -> list[Any]:
    drawn: list[Any] = []

    @settings(
        derandomize=True,
        database=None,
        max_examples=examples,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: Any) -> None:
        if example not in drawn:
            drawn.append(example)

    collect()
    return drawn


def generated_cases(examples: int = 60) -> Iterable[Case]:
    for n, key in enumerate(draw(KEY_TEXT, examples)):
        # A prefix over 512 bytes meets "list-error-op-word"; list/prefix-513-bytes covers it.
        listed = [list_all(prefix=key, limit=10)] if len(key.encode()) <= 512 else []
        yield Case(
            f"generated/key-{n:03d}",
            (
                put(key, key, metadata={"key": key}),
                get(key),
                get_with_metadata(key, "arrayBuffer"),
                *listed,
                delete(key),
                get(key),
            ),
        )
    lists = st.tuples(LIST_NAMES, LIST_PREFIX, st.integers(1, 6))
    for n, (names, prefix, limit) in enumerate(draw(lists, examples)):
        yield Case(
            f"generated/list-{n:03d}",
            (
                *(put(name, metadata=name) for name in dict.fromkeys(names)),
                list_all(prefix=prefix, limit=limit),
                list_page(prefix=prefix),
            ),
        )


def corpus() -> list[Case]:
    sources = [key_cases, value_cases, metadata_cases, expiration_cases, precedence_cases]
    cases = [c for source in [*sources, list_cases, plan_cases, generated_cases] for c in source()]
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return cases


# --- differences we know of ----------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """A known disagreement: ``intentional``, or ``BUG (pending fix)`` in ``KVNamespace``."""

    kind: str
    what: str
    cases: tuple[str, ...]


INTENTIONAL = "intentional"
BUG = "BUG (pending fix)"

KNOWN_DIFFERENCES: dict[str, Difference] = {
    "write-rate-and-quota": Difference(
        INTENTIONAL,
        "Ours enforces 1 write a second per key (429) and the plan's daily quotas (free: 1,000 "
        "writes); Miniflare enforces neither. Every other case runs ours on plan `unlimited`.",
        ("rate/two-writes-one-second", "quota/free-1001-writes"),
    ),
    "metadata-nan": Difference(
        INTENTIONAL,
        "Ours refuses NaN in metadata (TypeError); JSON.stringify stores it as null.",
        ("metadata/nan",),
    ),
    "key-lone-surrogate": Difference(
        INTENTIONAL,
        "A key with a lone surrogate: ours stores it; Miniflare answers 400 `Could not "
        "URL-decode key name` (its own key transport, not a KV rule).",
        ("key/lone-surrogate",),
    ),
    "list-prefix-with-nul": Difference(
        INTENTIONAL,
        "A list prefix containing U+0000 matches no key in Miniflare (its SQLite query "
        "compares `substr(key, 1, length(prefix))`, and SQLite's length() stops at U+0000); "
        "ours matches by prefix. Keys containing U+0000 list and sort alike.",
        ("list/prefix-with-nul",),
    ),
    "json-big-integers": Difference(
        INTENTIONAL,
        'get(type="json") of an integer beyond 2^53: JavaScript rounds it to a double; ours '
        "returns Python's exact int.",
        ("value/json/integer-beyond-2-53",),
    ),
}


def listed_cases(known: dict[str, Difference] | None = None) -> dict[str, str]:
    """Case id -> the name of the known difference that lists it (KV's, unless ``known``)."""
    known = KNOWN_DIFFERENCES if known is None else known
    return {case: name for name, diff in known.items() for case in diff.cases}


def differences_table(known: dict[str, Difference] | None = None) -> str:
    """The table README.md shows; the test checks that README.md contains it verbatim."""
    rows = ["| difference | kind | what | cases |", "|---|---|---|---|"]
    for name, diff in (KNOWN_DIFFERENCES if known is None else known).items():
        cases = ", ".join(f"`{c}`" for c in diff.cases)
        rows.append(f"| {name} | {diff.kind} | {diff.what} | {cases} |")
    return "\n".join(rows) + "\n"


# --- running the corpus --------------------------------------------------------------------


def miniflare_installed() -> bool:
    return shutil.which("node") is not None and (HERE / "node_modules" / "miniflare").is_dir()


def run_miniflare(cases: list[Case]) -> dict[str, Any]:
    """One harness subprocess for the whole corpus: {"miniflare", "workerd", "results"}."""
    return run_harness("harness.mjs", [{"id": c.id, "ops": c.ops} for c in cases])


def run_harness(script: str, cases: list[dict[str, Any]]) -> dict[str, Any]:
    """``node script`` with ``{"cases": cases}`` on stdin; its JSON output."""
    payload = json.dumps({"cases": cases})
    done = subprocess.run(
        ["node", str(HERE / script)],
        input=payload,
        capture_output=True,
        text=True,
        cwd=HERE,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout)


def run_ours(case: Case, miniflare_results: list[Outcome]) -> list[Outcome]:
    """Replay ``case`` on a fresh ``KVNamespace``; timed puts run at Miniflare's instant."""
    kv = KVNamespace(VirtualClock(), plan=case.plan)  # type: ignore[arg-type]
    outcomes = []
    for op, theirs in zip(case.ops, miniflare_results, strict=True):
        if "at" in theirs:
            kv.clock.set(theirs["at"])
        outcomes.append(ours_outcome(lambda op=op: _call(kv, op)))
    return outcomes


def ours_outcome(thunk: Callable[[], Any]) -> Outcome:
    try:
        return {"ok": plain(thunk())}
    except json.JSONDecodeError:
        return {"error": {"json": "not valid JSON"}}
    except KVBindingError as exc:  # the binding's own TypeError, before any request
        return {"error": {"type": "TypeError", "message": str(exc)}}
    except KVError as exc:
        return {"error": error_fields(exc.message)}
    except (TypeError, ValueError) as exc:
        return {"error": {"type": type(exc).__name__, "message": str(exc)}}


_PY_GET_TYPES = {"text": "text", "json": "json", "arrayBuffer": "bytes"}


def _call(kv: KVNamespace, op: Op) -> Any:
    name = op["op"]
    if name == "put":
        return kv.put(op["key"], _value(op["value"]), **_put_options(op, kv.clock.now()))
    if name in ("get", "getWithMetadata"):
        read = kv.get if name == "get" else kv.get_with_metadata
        result = read(op["key"], _PY_GET_TYPES[op["type"]])  # type: ignore[arg-type]
        if op.get("digest") and result is not None:
            data = result.encode() if isinstance(result, str) else result
            return {"sha256": hashlib.sha256(data).hexdigest(), "length": len(data)}
        return result
    if name == "delete":
        return kv.delete(op["key"])
    if name == "list":
        return kv.list(**_list_options(op.get("options", {})))
    if name == "listAll":
        return _list_all(kv, _list_options(op.get("options", {})))
    if name == "fill":
        outcomes = [
            ours_outcome(lambda i=i: kv.put(f"{op['prefix']}{i:05d}", "v"))
            for i in range(op["count"])
        ]
        errors = [o["error"] for o in outcomes if "error" in o]
        return {"ok": len(outcomes) - len(errors), "errors": errors[:1]}
    raise ValueError(f"unknown op {name!r}")


def _list_all(kv: KVNamespace, options: dict[str, Any]) -> list[Outcome]:
    pages: list[Outcome] = []
    cursor = None
    for _ in range(MAX_LIST_PAGES):
        page = ours_outcome(lambda cursor=cursor: kv.list(**options, cursor=cursor))
        pages.append(page)
        if "error" in page or page["ok"]["list_complete"]:
            break
        cursor = page["ok"]["cursor"]
    return pages


def _value(spec: Any) -> str | bytes:
    if isinstance(spec, str):
        return spec
    if "repeat" in spec:
        return spec["repeat"] * spec["times"]
    return bytes.fromhex(spec["hex"])


def _special(raw: Any, now: float) -> Any:
    """Decode {"$number": text} and {"$fromNow": s}, as worker.mjs does, recursively."""
    if isinstance(raw, dict):
        if "$number" in raw:
            return float(raw["$number"])
        if "$fromNow" in raw:
            return math.floor(now) + raw["$fromNow"]
        return {k: _special(v, now) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_special(v, now) for v in raw]
    return raw


def _put_options(op: Op, now: float) -> dict[str, Any]:
    options = _special(op.get("options", {}), now)
    names = {"expirationTtl": "expiration_ttl", "expiration": "expiration", "metadata": "metadata"}
    return {names[k]: v for k, v in options.items()}


def _list_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k in ("prefix", "limit", "cursor")}


def plain(result: Any) -> Any:
    """Our results in the harness's JSON shapes (absent list fields left out)."""
    if isinstance(result, bytes):
        return {"hex": result.hex()}
    if isinstance(result, KVValueWithMetadata):
        return {"value": plain(result.value), "metadata": result.metadata}
    if isinstance(result, KVListResult):
        keys = []
        for key in result.keys:
            entry: dict[str, Any] = {"name": key.name}
            if key.expiration is not None:
                entry["expiration"] = key.expiration
            if key.metadata is not None:
                entry["metadata"] = key.metadata
            keys.append(entry)
        page = {"keys": keys, "list_complete": result.list_complete}
        return page if result.list_complete else {**page, "cursor": result.cursor}
    return result


_KV_FAILED = re.compile(r"KV (?P<op>\w+) failed: (?P<status>\d{3}) (?P<text>.*)", re.DOTALL)


def error_fields(message: str) -> dict[str, Any]:
    """Split "KV PUT failed: 414 UTF-8 ..." into its operation word, status and text."""
    match = _KV_FAILED.fullmatch(message)
    if match is None:
        return {"type": "KVError", "message": message}
    return {"op": match["op"], "status": int(match["status"]), "message": match["text"]}


def miniflare_outcome(result: Outcome) -> Outcome:
    """The harness's result in the compared shape (the `at` instant dropped)."""
    if "error" in result:
        name, message = result["error"]["name"], result["error"]["message"]
        if name == "SyntaxError":
            return {"error": {"json": "not valid JSON"}}
        if _KV_FAILED.fullmatch(message):
            return {"error": error_fields(message)}
        return {"error": {"type": name, "message": message}}
    ok = result["ok"]
    if isinstance(ok, list):  # listAll: one outcome per page
        return {"ok": [miniflare_outcome(page) for page in ok]}
    if isinstance(ok, dict) and "errors" in ok:  # fill
        errors = [miniflare_outcome({"error": e})["error"] for e in ok["errors"]]
        return {"ok": {"ok": ok["ok"], "errors": errors}}
    return {"ok": ok}


# --- comparing -----------------------------------------------------------------------------


@dataclass
class Report:
    miniflare: str
    workerd: str
    #: What is compared, and the differences known for it (KV's by default).
    title: str = "KV conformance"
    known: dict[str, Difference] = field(default_factory=lambda: KNOWN_DIFFERENCES)
    compared: int = 0
    operations: int = 0
    agreements: int = 0
    #: case id -> (index of the first differing op, the op, ours, Miniflare's)
    differences: dict[str, tuple[int, Op, Outcome, Outcome]] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.title} against Miniflare {self.miniflare} (workerd {self.workerd}): "
            f"{self.compared} cases ({self.operations} operations) compared, "
            f"{self.agreements} agree, {len(self.differences)} differ"
        )

    def problems(self) -> list[str]:
        """Unlisted differences, and listed ones that no longer occur."""
        listed = listed_cases(self.known)
        found = [
            f"unlisted difference in {case}: " + describe(*self.differences[case])
            for case in self.differences
            if case not in listed
        ]
        stale = [
            f"listed difference {listed[case]!r} no longer occurs in {case}: "
            "remove it from its KNOWN_DIFFERENCES (and README.md)"
            for case in listed
            if case not in self.differences
        ]
        return found + stale


def describe(index: int, op: Op, ours: Outcome, theirs: Outcome) -> str:
    shown = {k: (v if len(repr(v)) < 80 else repr(v)[:77] + "...") for k, v in op.items()}
    return (
        f"op {index} {_readable(shown)}\n"
        f"    ours:      {_readable(ours)[:600]}\n"
        f"    Miniflare: {_readable(theirs)[:600]}"
    )


def _readable(data: Any) -> str:
    """JSON with the characters themselves; lone surrogates escaped so that it prints."""
    return json.dumps(data, ensure_ascii=False).encode("utf-8", "backslashreplace").decode()


def compare(cases: list[Case], harness_output: dict[str, Any]) -> Report:
    report = Report(harness_output["miniflare"], harness_output["workerd"])
    return tally(
        report,
        cases,
        harness_output["results"],
        ours=run_ours,
        theirs=lambda raw: [miniflare_outcome(r) for r in raw],
    )


def tally(
    report: Report,
    cases: Iterable[Any],
    results: dict[str, list[Outcome]],
    *,
    ours: Callable[[Any, list[Outcome]], list[Outcome]],
    theirs: Callable[[list[Outcome]], list[Outcome]],
) -> Report:
    """Add each case to ``report``: ``ours(case, raw)`` against ``theirs(raw)``, op by op (a
    case has ``id`` and ``ops``; ``results`` holds Miniflare's raw outcomes by case id)."""
    for case in cases:
        raw = results[case.id]
        ours_outcomes, theirs_outcomes = ours(case, raw), theirs(raw)
        report.compared += 1
        report.operations += len(case.ops)
        pairs = enumerate(zip(ours_outcomes, theirs_outcomes, strict=True))
        first = next((i for i, (a, b) in pairs if a != b), None)
        if first is None:
            report.agreements += 1
        else:
            report.differences[case.id] = (
                first,
                case.ops[first],
                ours_outcomes[first],
                theirs_outcomes[first],
            )
    return report


def run() -> Report:
    cases = corpus()
    return compare(cases, run_miniflare(cases))


def main(
    argv: list[str],
    run: Callable[[], Report] = run,
    known: dict[str, Difference] | None = None,
) -> int:
    """Print the report of ``run`` (``--table``: the differences table of ``known``)."""
    if "--table" in argv:
        print(differences_table(known), end="")
        return 0
    if not miniflare_installed():
        print(MINIFLARE_MISSING, file=sys.stderr)
        return 2
    report = run()
    print(report.summary())
    listed = listed_cases(known)
    for case, found in report.differences.items():
        print(f"\n{case} [{listed.get(case, 'UNLISTED')}]\n  {describe(*found)}")
    problems = report.problems()
    for problem in problems:
        print(f"\nPROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
