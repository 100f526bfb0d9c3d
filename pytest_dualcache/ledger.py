"""Operation records and caller attribution, shared by the KV and Durable Object emulators.

A ``Ledger`` is one store's log. ``Ledger.record`` makes each row, a plain tuple in
``OperationRecord``'s field order, and ``Ledger.since`` turns rows into ``OperationRecord``s
when they are read: the one place each happens. ``capture_caller`` (the one place a caller
is found; ``Ledger.record`` runs the same walk) says which code asked for an operation and,
for a KV write while writes are classified, which registered data-access (DAL) module its
stack went through, or that it went through none (a bypass).

Work a DAL schedules to run later (a coroutine of the async Workers face run as a task, a
job on a thread pool) runs through ``run_as``, which carries the caller captured when the
work was scheduled: a stack walk that reaches ``run_as`` has left the work's own frames for
the scheduler's, so it takes what it has not found yet from that logical caller.
"""

from __future__ import annotations

import contextvars
import importlib.util
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from types import CodeType, FrameType
from typing import NamedTuple, TypeVar

from .faults import INJECTED
from .limits import KV_OPERATIONS
from .recorder import current_recorder, ledger_serials

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_ASYNCIO_DIR = next(iter(importlib.util.find_spec("asyncio").submodule_search_locations or ["."]))
#: Frames running these files are never "the caller": this package's own (its subpackages
#: too: the REST app, the Workers runtime), and asyncio's event loop, which stands between
#: ``asyncio.run(env.KV.put(...))`` and the code calling it. Not the contract suite: it lives
#: in its own folder, and its tests are callers.
_INTERNAL_FILES = frozenset(
    os.path.join(folder, name)
    for top in (_PACKAGE_DIR, _ASYNCIO_DIR)
    for folder, _, names in os.walk(top)
    for name in names
    if name.endswith(".py")
)
#: The ledger ops of KV writes, the operations bypass detection classifies.
KV_WRITES = frozenset(
    method for method, kind in KV_OPERATIONS.items() if kind.quota in ("write", "delete")
)


class CallSite(NamedTuple):
    """Where an operation came from: the first frame outside pytest_dualcache and asyncio."""

    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno}:{self.function}"


UNKNOWN_CALL_SITE = CallSite("<unknown>", 0, "<unknown>")


class Caller(NamedTuple):
    """Who asked for an operation: its call site, and for a classified KV write its DAL."""

    call_site: CallSite
    #: The DAL module the stack went through, "" for none (a bypass), None if unclassified.
    via: str | None = None


class OperationRecord(NamedTuple):
    """One KV or Durable Object operation, successful or not (``Ledger.since`` makes them)."""

    store: str
    op: str
    key: str
    at: float
    bytes: int
    ok: bool
    error: str | None
    call_site: CallSite
    #: For a KV write while writes are classified: the data-access module its stack went
    #: through, or "" for a bypass; None when not classified.
    via: str | None = None
    #: "kv" or "do": which kind of store recorded it.
    store_kind: str = "kv"
    #: The class name of the exception that failed the operation (None: none, or only text).
    error_type: str | None = None
    #: That exception's ``status`` (429, 413, ...) when it has an int one.
    status: int | None = None
    #: True when that exception was injected (``fail()``, ``outage()``): not the store's answer.
    injected: bool = False

    @property
    def bypassed(self) -> bool:
        """True for a KV write whose stack went through no registered data-access module."""
        return self.via == ""

    @property
    def caller(self) -> str:
        """``file:line:function`` of the code that asked for the operation."""
        return str(self.call_site)

    def describe(self) -> str:
        """One line for failure messages: kind, key, bytes, caller, outcome."""
        outcome = "ok" if self.ok else f"error: {self.error}"
        return f"{self.store} {self.op} {self.key!r} {self.bytes} B at {self.caller} ({outcome})"


#: The caller captured when the running work was scheduled (see ``run_as``).
LOGICAL_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "dualcache_logical_caller", default=None
)
_T = TypeVar("_T")


def run_as(caller: Caller, work: Callable[..., _T], /, *args: object, **kwargs: object) -> _T:
    """Run ``work`` as if ``caller`` had called it: its operations are attributed to it."""
    token = LOGICAL_CALLER.set(caller)
    try:
        return work(*args, **kwargs)
    finally:
        LOGICAL_CALLER.reset(token)


_RUN_AS_CODE = run_as.__code__

#: One CallSite per source location, made once: ``(id(code), f_lasti)`` -> ``(code, site)``.
#: A code object's instruction offset fixes its line; the entry holds the code object, so
#: its id cannot be reused by another while the entry exists.
_CALL_SITES: dict[tuple[int, int], tuple[CodeType, CallSite]] = {}


def capture_caller(*, classify: bool = False, stacklevel: int = 1) -> Caller:
    """The caller of an operation, found by walking the stack from ``stacklevel``.

    ``stacklevel`` counts as for ``warnings.warn``: 1 is the function calling this one. The
    call site is the first frame outside this package and asyncio. With ``classify`` (a KV
    write) while the current recorder classifies, ``via`` is the first registered DAL
    module on the stack, or "" when there is none: the walk stops at the running test's
    frame, since nothing above it can be a DAL. A walk that reaches ``run_as`` takes what
    it has not found from the logical caller of the scheduled work.
    """
    return Caller(*_find_caller(classify, stacklevel + 1))


def _find_caller(classify: bool, stacklevel: int) -> tuple[CallSite, str | None]:
    """``capture_caller``'s walk (same ``stacklevel``), as a plain ``(call_site, via)`` pair."""
    frame = sys._getframe(stacklevel)
    if not classify and frame.f_code.co_filename not in _INTERNAL_FILES:
        return _call_site(frame), None  # the usual case: user code called the store
    recorder = current_recorder()
    searching_dal = classify and recorder.classifying
    call_site: CallSite | None = None
    via: str | None = "" if searching_dal else None
    walking: FrameType | None = frame
    while walking is not None:
        code = walking.f_code
        if code is _RUN_AS_CODE:
            logical = LOGICAL_CALLER.get()
            if logical is not None:
                call_site = call_site or logical.call_site
                via = (logical.via or "") if searching_dal else via
            break
        if call_site is None and code.co_filename not in _INTERNAL_FILES:
            call_site = _call_site(walking)
        if searching_dal:
            module = recorder.dal_module(walking.f_globals.get("__name__", ""))
            if module is not None:
                via, searching_dal = module, False
            elif code is recorder.test_code:
                searching_dal = False  # nothing above the test function is a DAL
        if call_site is not None and not searching_dal:
            break
        walking = walking.f_back
    return call_site or UNKNOWN_CALL_SITE, via


def _call_site(frame: FrameType) -> CallSite:
    """The call site a frame is at, made once per source location (see ``_CALL_SITES``)."""
    code = frame.f_code
    known = _CALL_SITES.get((id(code), frame.f_lasti))
    if known is None:
        line = frame.f_lineno or code.co_firstlineno
        known = _CALL_SITES[id(code), frame.f_lasti] = (
            code,
            CallSite(code.co_filename, line, code.co_name),
        )
    return known[1]


def require_kind(ledger: Ledger, kind: str, owner: str) -> Ledger:
    """``ledger`` if it records ``kind`` operations; a store must not log into the other kind's."""
    if ledger.kind != kind:
        raise ValueError(f"{owner} records into a ledger of kind {kind!r}, got {ledger!r}")
    return ledger


class Ledger:
    """Append-only log of one store's operations; ``enabled=False`` records nothing.

    ``kind`` is "kv" or "do": only KV writes are classified for bypass detection.
    """

    __slots__ = (
        "__weakref__",
        "_dropped",
        "_kind",
        "_next_number",
        "_numbered_from",
        "_numbers",
        "_rows",
        "do_cache",
        "enabled",
        "latency",
        "serial",
        "store",
    )

    def __init__(self, store: str, *, kind: str = "kv", enabled: bool = True) -> None:
        self.store = store
        self._kind = kind
        #: True for a built-in ``DurableObjectCache``'s ledger (it sets it), not a user's
        #: Durable Object's: the ``do_hit_rate`` gate measures its gets only.
        self.do_cache = False
        #: Each operation's fields in ``OperationRecord``'s order (see ``record``).
        self._rows: list[tuple[object, ...]] = []
        self._numbers: list[int] | None = None  # see number_operations
        self._numbered_from = 0
        #: Whether operations are recorded.
        self.enabled = enabled
        self._dropped = 0  # records forgotten by clear(): positions stay valid across it
        #: ``spend(kind, op)``, called for every operation recorded (recording on or off):
        #: the simulated latency model's seam (``latency.LatencyMeter.spend``); None: off.
        self.latency: Callable[[str, str], None] | None = None
        self.serial = next(ledger_serials)
        current_recorder().adopt(self)

    @property
    def kind(self) -> str:
        """Which kind of store records here, "kv" or "do" (fixed at creation)."""
        return self._kind

    def number_operations(self, numbers: Iterator[int]) -> None:
        """From now on, also give each operation the next of ``numbers`` (see ``number_of``).

        Ledgers that share one counter can then tell which of their operations came first
        when the virtual clock did not move between them, as a failure transcript must.
        """
        self._numbers = []
        self._numbered_from = self.position
        self._next_number = numbers.__next__

    def number_of(self, position: int) -> int | None:
        """The number given to the operation at ``position``; None if it got none."""
        index = position - self._numbered_from
        if self._numbers is None or not 0 <= index < len(self._numbers):
            return None
        return self._numbers[index]

    def record(
        self,
        op: str,
        key: str,
        at: float,
        nbytes: int,
        ok: bool,
        error: BaseException | str | None = None,
    ) -> None:
        """Append one operation, attributed to the code that called the store's method.

        ``error`` is the exception that failed it (or its text). Called by a store's
        operation method: attribution starts at that method's caller.

        ``at`` is when the operation started. With a latency model (``self.latency``) the
        clock then moves on by the operation's latency, after the row is appended: the store
        answers that much later, and work the clock runs meanwhile (timers) comes after it.
        A failed operation costs its latency too: KV's 429 is a round trip like its 200.
        """
        if not self.enabled:
            if self.latency is not None:
                self.latency(self._kind, op)
            return
        kind = self._kind
        call_site, via = _find_caller(kind == "kv" and op in KV_WRITES, 3)
        # A plain tuple in OperationRecord's field order, made into one when read (``since``):
        # this runs on every KV and DO operation, and a tuple costs a fraction of a NamedTuple.
        store = self.store
        if error is None:
            row = (store, op, key, at, nbytes, ok, None, call_site, via, kind, None, None, False)
        else:
            failure = error if isinstance(error, BaseException) else None
            status = getattr(failure, "status", None)
            row = (
                store,
                op,
                key,
                at,
                nbytes,
                ok,
                str(error),
                call_site,
                via,
                kind,
                None if failure is None else type(failure).__name__,
                status if type(status) is int else None,
                getattr(failure, INJECTED, False) is True,
            )
        self._rows.append(row)
        if self._numbers is not None:
            self._numbers.append(self._next_number())
        if self.latency is not None:
            self.latency(kind, op)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def position(self) -> int:
        """How many operations were ever recorded: a mark that survives ``clear()``."""
        return self._dropped + len(self._rows)

    def __iter__(self) -> Iterator[OperationRecord]:
        return iter(self.since(0))

    @property
    def records(self) -> list[OperationRecord]:
        """Every operation so far, oldest first."""
        return self.since(0)

    def since(self, index: int) -> list[OperationRecord]:
        """Operations recorded after the first ``index`` ones (pair with ``position``)."""
        return list(map(OperationRecord._make, self._rows[max(0, index - self._dropped) :]))

    def counts(self, *, ok: bool | None = None) -> Counter[str]:  # since the last clear()
        """Number of operations by kind, optionally only successful (``ok=True``) or failed."""
        return Counter(r.op for r in self.records if ok is None or r.ok is ok)

    def clear(self) -> None:
        """Forget every record (the store's contents are untouched); positions keep counting."""
        self._dropped += len(self._rows)
        self._rows.clear()

    def __repr__(self) -> str:
        return f"<Ledger {self.store}: {len(self)} operations>"
