"""Operation records and caller attribution, shared by the KV and Durable Object emulators.

Recording sits on every KV/DO operation, so it is built to be cheap: a row is a plain tuple
appended to a list, the caller is found by a short frame walk that keeps the code location
(no string formatting), and the public ``OperationRecord`` objects are made only when read.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterator
from types import CodeType, FrameType
from typing import NamedTuple

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
#: Source files of this package: frames running them are never "the caller".
_INTERNAL_FILES = frozenset(
    os.path.join(_PACKAGE_DIR, name) for name in os.listdir(_PACKAGE_DIR) if name.endswith(".py")
)


class CallSite(NamedTuple):
    """Where an operation came from: the first stack frame outside pytest_dualcache."""

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


class Ledger:
    """Append-only log of one store's operations; ``enabled=False`` records nothing."""

    __slots__ = ("_rows", "enabled", "store")

    def __init__(self, store: str, *, enabled: bool = True) -> None:
        self.store = store
        self.enabled = enabled
        # (op, key, at, bytes, ok, error, caller code, caller instruction offset): the code
        # object and offset are kept instead of file/line strings, which cost far more to make.
        self._rows: list[tuple[str, str, float, int, bool, str | None, CodeType | None, int]] = []

    def record(
        self, op: str, key: str, at: float, nbytes: int, ok: bool, error: str | None = None
    ) -> None:
        """Append one operation, attributing it to the first caller outside this package.

        Called by a store's operation method, so the walk starts at that method's caller.
        """
        if not self.enabled:
            return
        frame: FrameType | None = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename in _INTERNAL_FILES:
            frame = frame.f_back
        if frame is None:
            self._rows.append((op, key, at, nbytes, ok, error, None, 0))
        else:
            self._rows.append((op, key, at, nbytes, ok, error, frame.f_code, frame.f_lasti))

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[OperationRecord]:
        return iter(self.since(0))

    @property
    def records(self) -> list[OperationRecord]:
        """Every operation so far, oldest first."""
        return self.since(0)

    def since(self, index: int) -> list[OperationRecord]:
        """Operations recorded after the first ``index`` ones (pair with ``len(ledger)``)."""
        store = self.store
        return [
            OperationRecord(store, op, key, at, nbytes, ok, error, _call_site(code, offset))
            for op, key, at, nbytes, ok, error, code, offset in self._rows[index:]
        ]

    def counts(self, *, ok: bool | None = None) -> Counter[str]:
        """Number of operations by kind, optionally only successful (``ok=True``) or failed."""
        return Counter(row[0] for row in self._rows if ok is None or row[4] is ok)

    def clear(self) -> None:
        """Forget every record (the store's contents are untouched)."""
        self._rows.clear()

    def __repr__(self) -> str:
        return f"<Ledger {self.store}: {len(self._rows)} operations>"
