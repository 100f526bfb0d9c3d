"""The ``Recorder``: one pytest session's view of the ledgers (live, scoped, classified).

A recorder holds what attributing and counting operations needs from the session: the live
ledgers, the open scopes (a test's, a ``kv_budget`` block's), the registered data-access
(DAL) modules and the running test function. Ledgers register with the *current* recorder
when they are made. A pytest session activates its own recorder and restores the previous
one at its end, so a session nested in another (pytester) neither sees nor feeds the outer
one's scopes and classification. Standard library only: the plugin imports it in every
session.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterable
from types import CodeType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .ledger import Ledger, OperationRecord

Mark = dict["Ledger", int]

#: Creation order of ledgers across recorders: ties in time are broken by it, run after run.
ledger_serials = itertools.count()


class Recorder:
    """Live ledgers, open scopes, DAL modules and the running test of one pytest session."""

    def __init__(self, dal_modules: tuple[str, ...] | None = None) -> None:
        self.ledgers: weakref.WeakSet[Ledger] = weakref.WeakSet()
        self.scopes: list[Scope] = []
        #: The running test function's code: a stack walk stops at its frame.
        self.test_code: CodeType | None = None
        self.dal_modules: tuple[str, ...] | None = None
        self._is_dal_module: dict[str, bool] = {}
        self.classify_writes(dal_modules)

    # --- classification ---------------------------------------------------------------------

    def classify_writes(self, modules: tuple[str, ...] | None) -> tuple[str, ...] | None:
        """Mark KV writes by the DAL module they went through (None: stop marking).

        A module matches itself and its submodules. Returns the previous setting.
        """
        previous, self.dal_modules = self.dal_modules, modules
        self._is_dal_module = {}
        if modules is not None:
            from .handoff import carry_callers_into_thread_pools

            carry_callers_into_thread_pools()
        return previous

    @property
    def classifying(self) -> bool:
        """Whether KV writes are marked with their DAL module (or as bypasses)."""
        return self.dal_modules is not None

    def dal_module(self, module_name: str) -> str | None:
        """``module_name`` if it is a registered DAL module or inside one, else None."""
        known = self._is_dal_module.get(module_name)
        if known is None:
            known = self._is_dal_module[module_name] = any(
                module_name == module or module_name.startswith(module + ".")
                for module in self.dal_modules or ()
            )
        return module_name if known else None

    def running_test(self, code: CodeType | None) -> None:
        """Note the running test function's code (None between tests); walks stop at it."""
        self.test_code = code

    # --- ledgers, marks and scopes ------------------------------------------------------------

    def adopt(self, ledger: Ledger) -> None:
        """Follow a new ledger: it is live, and every open scope counts it from its start."""
        self.ledgers.add(ledger)
        for scope in self.scopes:
            scope.created.append(ledger)

    def mark(self) -> Mark:
        """Where every live ledger stands now (pass to ``records_since``)."""
        return {ledger: ledger.position for ledger in list(self.ledgers)}

    def records_since(
        self,
        start: Mark,
        *,
        kind: str | None = None,
        also: Iterable[Ledger] = (),
        only_known: bool = False,
        where: Callable[[Ledger], bool] | None = None,
    ) -> list[OperationRecord]:
        """Every operation recorded after ``start`` by live ledgers (new ones from their start).

        Ordered by time, then by ledger creation, then by position: the same run gives the
        same order. ``kind`` ("kv" or "do") keeps one kind of store, ``where`` the ledgers it
        accepts; ``only_known`` keeps the ledgers of ``start`` (and ``also``) only.
        """
        rows: list[tuple[float, int, int, OperationRecord]] = []
        for ledger in set(start) if only_known else {*self.ledgers, *also}:
            if (kind is not None and ledger.kind != kind) or (where and not where(ledger)):
                continue
            first = start.get(ledger, 0)
            for index, record in enumerate(ledger.since(first), first):
                rows.append((record.at, ledger.serial, index, record))
        rows.sort(key=lambda row: row[:3])
        return [row[3] for row in rows]

    def scope(self) -> Scope:
        """Open a scope: everything every ledger records from now on (``close()`` it)."""
        return Scope(self)

    # --- which recorder is current --------------------------------------------------------------

    def activate(self) -> Recorder:
        """Make this the recorder new ledgers join; returns the previous one for ``restore``."""
        global _current
        previous, _current = _current, self
        return previous

    @staticmethod
    def restore(previous: Recorder) -> None:
        """Make ``previous`` (what ``activate`` returned) current again."""
        global _current
        _current = previous

    def __repr__(self) -> str:
        return (
            f"<Recorder {len(self.ledgers)} ledgers, {len(self.scopes)} scopes, "
            f"DAL modules {self.dal_modules}>"
        )


class Scope:
    """Everything every ledger records from now on; ledgers made meanwhile are kept alive.

    A test's scope sees the operations of namespaces that a helper made and dropped before
    the test ended. ``close()`` releases them.
    """

    def __init__(self, recorder: Recorder | None = None) -> None:
        self.recorder = current_recorder() if recorder is None else recorder
        self.start = self.recorder.mark()
        self.created: list[Ledger] = []
        self._released: list[weakref.ref[Ledger]] = []
        self.recorder.scopes.append(self)

    def records(
        self, *, kind: str | None = None, where: Callable[[Ledger], bool] | None = None
    ) -> list[OperationRecord]:
        """Operations since the scope began on the ledgers it knows (alive at its start or
        made while it was open) that ``kind`` and ``where`` accept, as ``records_since``
        orders them."""
        made = [*self.created, *filter(None, (ref() for ref in self._released))]
        start = dict(self.start)
        for ledger in made:
            start.setdefault(ledger, 0)
        return self.recorder.records_since(
            start, kind=kind, also=made, only_known=True, where=where
        )

    def close(self) -> None:
        """Stop following new ledgers and release the ones this scope kept alive."""
        if self in self.recorder.scopes:
            self.recorder.scopes.remove(self)
        self._released += [weakref.ref(ledger) for ledger in self.created]
        self.created = []


_current = Recorder()


def current_recorder() -> Recorder:
    """The recorder of the running session (a default one outside pytest)."""
    return _current
