"""``DualCacheDO``: the seed's Durable Object cache, written as a Python Workers class.

Each entry is kept in the object's storage as ``{"value": ..., "expires": epoch microseconds}``
under ``ENTRY_PREFIX + key``; an entry whose expiry has come reads as a miss (exactly at its
TTL, not at the next sweep). One alarm sweeps the expired entries away: it is set for the
earliest expiry, and each sweep sets it for the next one. Hit and miss counters live in the
instance, as the seed's did: a restart starts them again, the entries stay.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from workers import DurableObject

ENTRY_PREFIX = "entry:"
#: Keys a storage delete takes at once (the storage API's batch limit).
SWEEP_BATCH = 128
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def now_us() -> int:
    """The current time in whole epoch microseconds (exact, so a TTL ends on time)."""
    return (dt.datetime.now(dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1)


def live(entry: Any, now: int) -> bool:
    """Whether a stored entry (or None) still holds its value at ``now``."""
    return entry is not None and now < entry["expires"]


class DualCacheDO(DurableObject):
    """get/set/delete/list/stats over this object's storage, TTLs on the Worker's clock."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.storage = ctx.storage
        self.hits = 0
        self.misses = 0

    async def set(self, key: str, value: Any, ttl: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds."""
        expires = now_us() + round(ttl * 1_000_000)
        await self.storage.put(ENTRY_PREFIX + key, {"value": value, "expires": expires})
        due_ms = -(-expires // 1000)  # the sweep may come late, never early
        alarm = await self.storage.getAlarm()
        if alarm is None or due_ms < alarm:
            await self.storage.setAlarm(due_ms)

    async def get(self, key: str) -> Any:
        """The value under ``key``, or None when absent or expired."""
        entry = await self.storage.get(ENTRY_PREFIX + key)
        if not live(entry, now_us()):
            self.misses += 1
            return None
        self.hits += 1
        return entry.to_py()["value"]

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it held a live value."""
        entry = await self.storage.get(ENTRY_PREFIX + key)
        if entry is None:
            return False
        await self.storage.delete(ENTRY_PREFIX + key)
        return live(entry, now_us())

    async def list(self, prefix: str | None = None) -> list[str]:
        """The live keys under ``prefix``, sorted."""
        entries = await self.storage.list(prefix=ENTRY_PREFIX + (prefix or ""))
        now = now_us()
        return [name[len(ENTRY_PREFIX) :] for name, entry in entries.items() if live(entry, now)]

    async def stats(self) -> dict[str, Any]:
        """Hits, misses, hit rate and live entries, as the seed's ``/stats`` reported them."""
        gets = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hits / gets if gets else 0.0,
            "size": len(await self.list()),
        }

    async def alarm(self, alarm_info: Any = None) -> None:
        """Sweep the expired entries; set the alarm for the next expiry, if any."""
        entries = await self.storage.list(prefix=ENTRY_PREFIX)
        now = now_us()
        expired = [name for name, entry in entries.items() if not live(entry, now)]
        for start in range(0, len(expired), SWEEP_BATCH):
            await self.storage.delete(expired[start : start + SWEEP_BATCH])
        remaining = [entry["expires"] for entry in entries.values() if live(entry, now)]
        if remaining:
            await self.storage.setAlarm(-(-min(remaining) // 1000))
