"""Work a data-access layer schedules keeps its caller: Workers-face coroutines, thread pools.

An operation made by a task or a pool thread has no DAL frame on its stack; without help
it would read as a bypass. Both ways of scheduling carry the caller captured when the work
was scheduled into ``ledger.run_as``:

- the async Workers face captures the caller when a binding method is *called* (a plain
  ``def`` returning the coroutine from ``scheduled``), so ``asyncio.create_task(
  env.CACHE_KV.put(...))`` made by a DAL is attributed to the DAL;
- ``concurrent.futures.ThreadPoolExecutor.submit`` (and so ``loop.run_in_executor`` and
  ``asyncio.to_thread``) is wrapped, once a recorder classifies writes, to carry the
  submitter while the current recorder classifies; otherwise it submits unchanged.
  A bare ``threading.Thread`` carries nothing: its writes are attributed by its own stack.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from .ledger import Caller, capture_caller, run_as
from .recorder import current_recorder

_T = TypeVar("_T")
_original_submit = ThreadPoolExecutor.submit


async def scheduled(caller: Caller, work: Callable[..., _T], *args: Any) -> _T:
    """A coroutine that runs ``work(*args)`` attributed to ``caller`` (see ``run_as``)."""
    return run_as(caller, work, *args)


def _submit_carrying_caller(
    self: ThreadPoolExecutor, fn: Callable[..., _T], /, *args: Any, **kwargs: Any
) -> Future[_T]:
    """``ThreadPoolExecutor.submit``, carrying the submitter while writes are classified."""
    if not current_recorder().classifying:
        return _original_submit(self, fn, *args, **kwargs)
    caller = capture_caller(classify=True, stacklevel=2)
    return _original_submit(self, run_as, caller, fn, *args, **kwargs)


def carry_callers_into_thread_pools() -> None:
    """Wrap ``ThreadPoolExecutor.submit`` (once; it stays a no-op unless classifying)."""
    ThreadPoolExecutor.submit = _submit_carrying_caller  # type: ignore[method-assign]
