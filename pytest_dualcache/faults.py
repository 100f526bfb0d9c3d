"""Fault injection shared by the KV namespace and the Durable Object cache.

A store asks ``faults.take(op)`` before doing an operation; while a failure is injected for
that operation it gets the exception to raise. ``fail(times=N)`` wears off by itself after N
failed operations; ``outage()`` fails everything inside a ``with`` block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager

#: Set on every exception ``take`` hands a store: the ledger records that failure as injected
#: (the test's doing, not the store's answer), which SLO gates on KV errors leave out.
INJECTED = "dualcache_injected"


class _Fault:
    __slots__ = ("error", "ops", "remaining")

    def __init__(self, error: BaseException | str, ops: frozenset[str], remaining: int | None):
        self.error = error
        self.ops = ops
        self.remaining = remaining


class FaultInjector:
    """Which operations of one store fail next, how many times, and with what error.

    ``error_factories`` maps an error name (``"overloaded"``) to a function of the operation
    name that builds the store's own exception; the first name is the default.
    """

    __slots__ = ("_error_factories", "_fault", "active", "operations")

    def __init__(
        self,
        operations: Iterable[str],
        error_factories: Mapping[str, Callable[[str], BaseException]],
    ) -> None:
        self.operations = frozenset(operations)
        self._error_factories = dict(error_factories)
        self._set(None)

    def _set(self, fault: _Fault | None) -> None:
        self._fault = fault
        #: True while some failure is injected: the stores' hot path reads only this.
        self.active = fault is not None

    def fail(
        self,
        times: int | None = None,
        *,
        error: BaseException | str | None = None,
        ops: Iterable[str] | str | None = None,
    ) -> None:
        """Fail the next ``times`` matching operations (every one until ``recover()`` if None)."""
        if times is not None and (
            not isinstance(times, int) or isinstance(times, bool) or times <= 0
        ):
            raise ValueError(f"fail() takes times as a positive int or None, got {times!r}")
        self._set(_Fault(self._checked_error(error), self._checked_ops(ops), times))

    def recover(self) -> None:
        """End any injected failure."""
        self._set(None)

    @contextmanager
    def outage(
        self, *, error: BaseException | str | None = None, ops: Iterable[str] | str | None = None
    ) -> Iterator[None]:
        """Every (matching) operation fails inside the block; an earlier failure resumes after."""
        before = self._fault
        self.fail(error=error, ops=ops)
        try:
            yield
        finally:
            self._set(before)

    def take(self, op: str) -> BaseException | None:
        """The exception ``op`` must raise now, or None; counts down a ``fail(times=N)``."""
        fault = self._fault
        if fault is None or op not in fault.ops:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining == 0:
                self._set(None)
        if isinstance(fault.error, BaseException):
            error = fault.error
        else:
            error = self._error_factories[fault.error](op)
        setattr(error, INJECTED, True)
        return error

    def _checked_error(self, error: BaseException | str | None) -> BaseException | str:
        if error is None:
            return next(iter(self._error_factories))
        if isinstance(error, BaseException) or error in self._error_factories:
            return error
        names = ", ".join(f'"{name}"' for name in self._error_factories)
        raise ValueError(f"error takes {names} or an exception instance, got {error!r}")

    def _checked_ops(self, ops: Iterable[str] | str | None) -> frozenset[str]:
        if ops is None:
            return self.operations
        chosen = frozenset((ops,) if isinstance(ops, str) else ops)
        unknown = chosen - self.operations
        if unknown or not chosen:
            raise ValueError(
                f"ops takes a non-empty subset of {sorted(self.operations)}, got {sorted(chosen)!r}"
            )
        return chosen


class InjectsFaults:
    """``fail()``, ``recover()`` and ``outage()`` on a store, delegating to ``self.faults``."""

    __slots__ = ()
    faults: FaultInjector

    def fail(
        self,
        times: int | None = None,
        *,
        error: BaseException | str | None = None,
        ops: Iterable[str] | str | None = None,
    ) -> None:
        """Fail the next ``times`` operations in ``ops`` (all, until ``recover()``, if None).

        ``error`` names one of the store's errors or is an exception instance to raise.
        """
        self.faults.fail(times, error=error, ops=ops)

    def recover(self) -> None:
        """End any injected failure."""
        self.faults.recover()

    def outage(
        self, *, error: BaseException | str | None = None, ops: Iterable[str] | str | None = None
    ) -> AbstractContextManager[None]:
        """Every (matching) operation fails inside the ``with`` block."""
        return self.faults.outage(error=error, ops=ops)
