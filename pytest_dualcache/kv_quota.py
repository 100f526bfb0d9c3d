"""The daily operation quotas of a KV plan, and what today used of them.

Cloudflare counts the free plan's daily operations per account, not per namespace ("1,000
writes per day" across all namespaces: developers.cloudflare.com/kv/platform/limits/), so
every KV namespace of one env shares one ``DailyQuota``. The quota carries the lock its
namespaces hold around every operation (``lock``, see ``kv.py``): namespaces that share the
counter share the lock, so a check and its count are never split by another namespace.
"""

from __future__ import annotations

import threading

from .kv_errors import KVQuotaError
from .limits import (
    KV_DAILY_QUOTAS,
    KV_OPERATIONS,
    KV_QUOTA_MESSAGE,
    KV_QUOTA_STATUS,
    SECONDS_PER_DAY,
    KVPlan,
)

#: The quota kind ("read", "write", ...) each operation counts against.
_QUOTA_OF = {method: kind.quota for method, kind in KV_OPERATIONS.items()}


class DailyQuota:
    """Operations a plan allows per UTC day of the virtual clock, and today's use by kind."""

    __slots__ = ("_day_end", "_day_start", "_used", "limits", "lock", "plan")

    def __init__(self, plan: KVPlan) -> None:
        self.plan = plan
        #: Operations a day by quota kind ("read", "write", ...); None: no quota.
        self.limits = KV_DAILY_QUOTAS[plan]
        #: Held by every namespace counting here, around each whole operation.
        self.lock = threading.RLock()
        self._day_start = 0.0
        self._day_end = 0.0
        self._used = dict.fromkeys(_QUOTA_OF.values(), 0)

    def check(self, method: str, now: float) -> None:
        """Raise ``KVQuotaError`` if today's quota of ``method`` (get, put...) is used up."""
        if not self._day_start <= now < self._day_end:
            self._start_day(now)
        if self.limits is not None:
            quota = _QUOTA_OF[method]
            if self._used[quota] >= self.limits[quota]:
                raise KVQuotaError(KV_QUOTA_STATUS, KV_QUOTA_MESSAGE.format(method=method))

    def count(self, method: str) -> None:
        """Count one successful ``method`` against today (after ``check`` passed)."""
        self._used[_QUOTA_OF[method]] += 1

    def used_today(self, now: float) -> dict[str, int]:
        """Successful operations of the UTC day of ``now``, by quota kind."""
        if not self._day_start <= now < self._day_end:
            self._start_day(now)
        return dict(self._used)

    def _start_day(self, now: float) -> None:
        """Start the UTC day of ``now``, all counts 0 (``now`` left the current day)."""
        self._day_start = now - now % SECONDS_PER_DAY
        self._day_end = self._day_start + SECONDS_PER_DAY
        self._used = dict.fromkeys(self._used, 0)
