"""Operation records and caller attribution, shared by the KV and Durable Object emulators.

Recording sits on every KV/DO operation, so it is built to be cheap: a row is nine fields
appended to one flat list (no object per row for the garbage collector to scan), the caller
is found by a short frame walk that keeps the code location (no string formatting), and the
public ``OperationRecord`` objects are made only when read. ``KVNamespace.put``, the
operation KV budgets are about, skips even the walk when its caller is a module whose
writes need none (``write_hint``).

For the KV budget, ``mark()`` notes where every live ledger stands and ``records_since``
returns what all of them recorded after it, in a deterministic order; and
``classify_writes(modules)`` (off by default) marks each KV write with the registered
data-access module its stack went through, or as a bypass when it went through none.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from types import CodeType, FrameType
from typing import Any, NamedTuple

_getframe = sys._getframe
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_ASYNCIO_DIR = next(iter(importlib.util.find_spec("asyncio").submodule_search_locations or ["."]))
#: Frames running these files are never "the caller": this package's own, and asyncio's
#: event loop, which stands between ``asyncio.run(env.KV.put(...))`` and the code calling it.
_INTERNAL_FILES = frozenset(
    os.path.join(folder, name)
    for folder in (_PACKAGE_DIR, _ASYNCIO_DIR)
    for name in os.listdir(folder)
    if name.endswith(".py")
)


class CallSite(NamedTuple):
    """Where an operation came from: the first frame outside pytest_dualcache and asyncio."""

    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno}:{self.function}"


class OperationRecord(NamedTuple):
    """One KV or Durable Object operation, successful or not."""

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


def _line_of(code: CodeType, offset: int) -> int:
    """The source line of the instruction at byte ``offset`` (what ``f_lineno`` would say)."""
    for start, end, line in code.co_lines():
        if start <= offset < end and line is not None:
            return line
    return code.co_firstlineno


def _call_site(code: CodeType | None, offset: int) -> CallSite:
    if code is None:
        return CallSite("<unknown>", 0, "<unknown>")
    return CallSite(code.co_filename, _line_of(code, offset), code.co_name)


def find_call_site() -> CallSite:
    """The first frame outside this package that leads here."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename in _INTERNAL_FILES:
        frame = frame.f_back
    if frame is None:
        return _call_site(None, 0)
    return _call_site(frame.f_code, frame.f_lasti)


_KV_WRITES = frozenset({"put", "delete"})
#: Fields per row: op, key, at, bytes, ok, error, caller code, caller instruction offset, via.
ROW_WIDTH = 9


class WriteHint:
    """A module whose direct KV writes need no stack walk, and the ``via`` they get.

    ``pair`` is ``(module globals, via)``, one tuple read at once. A put whose immediate
    caller runs in those globals gets that ``via``: true when the caller is outside this
    package and either writes are not classified (``via`` None) or the caller is itself a
    data-access module (``via`` its name, whatever is above it). Other writers never set
    it; ``classify_writes`` and a scope's end clear it (nor does it keep a module alive).
    """

    __slots__ = ("pair",)

    def __init__(self) -> None:
        self.pair: tuple[dict[str, Any] | None, str | None] = _NO_HINT

    def clear(self) -> None:
        self.pair = _NO_HINT


_NO_HINT: tuple[None, None] = (None, None)
write_hint = WriteHint()


def require_kind(ledger: Ledger, kind: str, owner: str) -> Ledger:
    """``ledger`` if it records ``kind`` operations; a store must not log into the other kind's."""
    if ledger.kind != kind:
        raise ValueError(f"{owner} records into a ledger of kind {kind!r}, got {ledger!r}")
    return ledger


_live: weakref.WeakSet[Ledger] = weakref.WeakSet()
_scopes: list[Scope] = []
_serials = itertools.count()
_dal_modules: tuple[str, ...] | None = None
_is_dal_module: dict[str, bool] = {}


Mark = dict["Ledger", int]


def mark() -> Mark:
    """Where every live ledger stands now (pass to ``records_since``)."""
    return {ledger: ledger.position for ledger in list(_live)}


def records_since(
    start: Mark,
    *,
    kind: str | None = None,
    also: Iterable[Ledger] = (),
    only_known: bool = False,
) -> list[OperationRecord]:
    """Every operation recorded after ``start`` by live ledgers (new ones from their start).

    Ordered by time, then by ledger creation, then by position: the same run gives the same
    order. ``kind`` ("kv" or "do") keeps one kind of store.
    """
    rows: list[tuple[float, int, int, OperationRecord]] = []
    for ledger in set(start) if only_known else {*_live, *also}:
        if kind is not None and ledger.kind != kind:
            continue
        first = start.get(ledger, 0)
        for index, record in enumerate(ledger.since(first), first):
            rows.append((record.at, ledger.serial, index, record))
    rows.sort(key=lambda row: row[:3])
    return [row[3] for row in rows]


class Scope:
    """Everything every ledger records from now on; ledgers made meanwhile are kept alive.

    A test's scope sees the operations of namespaces that a helper made and dropped before
    the test ended. ``close()`` releases them.
    """

    def __init__(self, registry: list[Scope] | None = None) -> None:
        self.start = mark()
        self.created: list[Ledger] = []
        self._released: list[weakref.ref[Ledger]] = []
        # The session this scope belongs to (``current_scopes()``): a nested session or an
        # isolated test swaps in its own list, and the ledgers made there stay out of this one.
        self._registry = _scopes if registry is None else registry
        self._registry.append(self)

    def records(self, *, kind: str | None = None) -> list[OperationRecord]:
        """Operations since the scope began on the ledgers it knows (alive at its start or
        made while it was open), as ``records_since`` orders them."""
        made = [*self.created, *filter(None, (ref() for ref in self._released))]
        start = dict(self.start)
        for ledger in made:
            start.setdefault(ledger, 0)
        return records_since(start, kind=kind, also=made, only_known=True)

    def close(self) -> None:
        """Stop following new ledgers and release the ones this scope kept alive."""
        if self in self._registry:
            self._registry.remove(self)
        write_hint.clear()
        self._released += [weakref.ref(ledger) for ledger in self.created]
        self.created = []


_outer_sessions: list[tuple[tuple[str, ...] | None, list[Scope]]] = []


def current_scopes() -> list[Scope]:
    """The open scopes of the current session (pass to ``Scope(registry=...)``)."""
    return _scopes


def enter_session(modules: tuple[str, ...] | None) -> None:
    """Start a pytest session's own accounting: its classification, no scopes yet.

    A session nested in another (pytester runs a whole session inside a test) must neither
    see nor feed the outer one's scopes and classification; ``leave_session`` restores them.
    """
    global _scopes
    _outer_sessions.append((_dal_modules, _scopes))
    _scopes = []
    classify_writes(modules)


def leave_session() -> None:
    """Give the outer session back its scopes and classification."""
    global _scopes
    if _outer_sessions:
        modules, _scopes = _outer_sessions.pop()
        classify_writes(modules)


def classify_writes(modules: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Mark KV writes by the data-access module they went through (None: stop marking).

    A module matches itself and its submodules. Returns the previous setting, for a nested
    session (pytester) to restore.
    """
    global _dal_modules
    previous, _dal_modules = _dal_modules, modules
    _is_dal_module.clear()
    write_hint.clear()
    return previous


def _dal_module_of(frame: FrameType) -> str | None:
    """The frame's module name if it is a registered data-access module, else None."""
    name = frame.f_globals.get("__name__", "")
    known = _is_dal_module.get(name)
    if known is None:
        modules = _dal_modules or ()
        known = _is_dal_module[name] = any(
            name == module or name.startswith(module + ".") for module in modules
        )
    return name if known else None


def _remember_direct_writer(frame: FrameType) -> None:
    """Make ``frame``'s module the write hint if its writes' ``via`` needs no stack walk."""
    if _dal_modules is None:
        write_hint.pair = (frame.f_globals, None)
    else:
        module = _dal_module_of(frame)
        if module is not None:
            write_hint.pair = (frame.f_globals, module)


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
        "append_row",
        "serial",
        "store",
    )

    def __init__(self, store: str, *, kind: str = "kv", enabled: bool = True) -> None:
        self.store = store
        self._kind = kind
        # ROW_WIDTH fields per operation, flat: (op, key, at, bytes, ok, error, caller code,
        # caller instruction offset, via). The code object and offset are kept instead of
        # file/line strings, which cost far more.
        self._rows: list[Any] = []
        #: ``extend`` of the row list while recording, else None: the hot path's one check.
        #: For this package's stores only: a row is exactly ROW_WIDTH fields, as above.
        self.append_row: Callable[[tuple[Any, ...]], None] | None = None
        self._numbers: list[int] | None = None  # see number_operations
        self._numbered_from = 0
        self.enabled = enabled
        self._dropped = 0  # rows forgotten by clear(): positions stay valid across it
        self.serial = next(_serials)
        _live.add(self)
        for scope in _scopes:
            scope.created.append(self)

    @property
    def kind(self) -> str:
        """Which kind of store records here, "kv" or "do" (fixed at creation)."""
        return self._kind

    @property
    def enabled(self) -> bool:
        """Whether operations are recorded."""
        return self.append_row is not None

    @enabled.setter
    def enabled(self, on: bool) -> None:
        if not on:
            self.append_row = None
        else:
            self.append_row = self._rows.extend if self._numbers is None else self._append_numbered

    def number_operations(self, numbers: Iterator[int]) -> None:
        """From now on, also give each operation the next of ``numbers`` (see ``number_of``).

        Ledgers that share one counter can then tell which of their operations came first
        when the virtual clock did not move between them, as a failure transcript must.
        """
        self._numbers = []
        self._numbered_from = self.position
        self._next_number = numbers.__next__
        self.enabled = self.enabled

    def number_of(self, position: int) -> int | None:
        """The number given to the operation at ``position``; None if it got none."""
        index = position - self._numbered_from
        if self._numbers is None or not 0 <= index < len(self._numbers):
            return None
        return self._numbers[index]

    def _append_numbered(self, row: tuple[Any, ...]) -> None:
        self._rows.extend(row)
        self._numbers.append(self._next_number())  # type: ignore[union-attr]

    def record(
        self, op: str, key: str, at: float, nbytes: int, ok: bool, error: str | None = None
    ) -> None:
        """Append one operation, attributing it to the first caller outside this package.

        Called by a store's operation method, so the walk starts at that method's caller.
        """
        append_row = self.append_row
        if append_row is None:
            return
        frame: FrameType | None = _getframe(2)
        caller: FrameType | None = None
        if op in _KV_WRITES and self._kind == "kv":
            if frame is not None and frame.f_code.co_filename not in _INTERNAL_FILES:
                _remember_direct_writer(frame)
            if _dal_modules is None:
                via = None
            else:
                # One walk finds both the caller and the first data-access module above it.
                via = ""
                while frame is not None:
                    if caller is None and frame.f_code.co_filename not in _INTERNAL_FILES:
                        caller = frame
                    module = _dal_module_of(frame)
                    if module is not None:
                        via = module
                        break
                    frame = frame.f_back
                frame = caller or frame
        else:
            via = None
        while frame is not None and frame.f_code.co_filename in _INTERNAL_FILES:
            frame = frame.f_back
        if frame is None:
            append_row((op, key, at, nbytes, ok, error, None, 0, via))
        else:
            append_row((op, key, at, nbytes, ok, error, frame.f_code, frame.f_lasti, via))

    def __len__(self) -> int:
        return len(self._rows) // ROW_WIDTH

    @property
    def position(self) -> int:
        """How many operations were ever recorded: a mark that survives ``clear()``."""
        return self._dropped + len(self)

    def __iter__(self) -> Iterator[OperationRecord]:
        return iter(self.since(0))

    @property
    def records(self) -> list[OperationRecord]:
        """Every operation so far, oldest first."""
        return self.since(0)

    def since(self, index: int) -> list[OperationRecord]:
        """Operations recorded after the first ``index`` ones (pair with ``position``)."""
        store, kind = self.store, self._kind
        fields = iter(self._rows[max(0, index - self._dropped) * ROW_WIDTH :])
        return [
            OperationRecord(
                store, op, key, at, nbytes, ok, error, _call_site(code, offset), via, kind
            )
            for op, key, at, nbytes, ok, error, code, offset, via in zip(
                *[fields] * ROW_WIDTH, strict=True
            )
        ]

    def counts(self, *, ok: bool | None = None) -> Counter[str]:  # since the last clear()
        """Number of operations by kind, optionally only successful (``ok=True``) or failed."""
        rows = self._rows
        ops, outcomes = rows[0::ROW_WIDTH], rows[4::ROW_WIDTH]
        return Counter(
            op for op, done in zip(ops, outcomes, strict=True) if ok is None or done is ok
        )

    def clear(self) -> None:
        """Forget every record (the store's contents are untouched); positions keep counting."""
        self._dropped += len(self)
        self._rows.clear()

    def __repr__(self) -> str:
        return f"<Ledger {self.store}: {len(self)} operations>"
