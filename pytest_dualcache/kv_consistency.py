"""Eventual consistency: what a location other than the writer's sees of a KV namespace.

Cloudflare documents up to 60 s for a write to reach other locations. A namespace made with
``eventual_consistency_s`` > 0 feeds its writes to a ``PropagationLog``; a ``KVLocation``
(``kv.at("remote")``) reads through it and sees each key as it was that many seconds ago.
The namespace itself reads its own writes at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .limits import KV_MAX_LIST_LIMIT

if TYPE_CHECKING:
    from .kv import Entry, GetType, KVListResult, KVNamespace, KVValueWithMetadata


class PropagationLog:
    """Writes still travelling to other locations, by key, and what those locations see."""

    __slots__ = ("_pending", "lag_s")

    def __init__(self, lag_s: float) -> None:
        self.lag_s = lag_s
        # key -> (entry before the oldest write still travelling, [(write time, entry after)])
        self._pending: dict[str, tuple[Entry | None, list[tuple[float, Entry | None]]]] = {}

    def note_write(self, key: str, before: Entry | None, after: Entry | None, now: float) -> None:
        """Remember a write (``after`` None: a delete) that other locations do not see yet."""
        base, writes = self._pending.get(key, (before, []))
        writes.append((now, after))
        self._pending[key] = (base, writes)

    def entry_seen(self, key: str, current: Entry | None, now: float) -> Entry | None:
        """The entry a lagging location sees: the last write that reached it, if any."""
        known = self._pending.get(key)
        if known is None:
            return current
        cutoff = now - self.lag_s
        base, writes = known
        while writes and writes[0][0] <= cutoff:
            base = writes.pop(0)[1]
        if writes:
            self._pending[key] = (base, writes)
        else:
            del self._pending[key]
        return base

    def entries_seen(self, entries: dict[str, Entry], now: float) -> dict[str, Entry]:
        """``entries`` (the namespace's, unexpired) as a lagging location sees them."""
        if not self._pending:
            return entries
        seen_entries = dict(entries)
        for key in list(self._pending):
            seen = self.entry_seen(key, entries.get(key), now)
            if seen is None or (seen[1] is not None and now >= seen[1]):
                seen_entries.pop(key, None)
            else:
                seen_entries[key] = seen
        return seen_entries


class KVLocation:
    """A namespace seen from another location: reads lag by ``eventual_consistency_s``.

    Writes go to the namespace itself (KV has one central store); every operation is
    recorded and limited exactly as on the namespace.
    """

    def __init__(self, namespace: KVNamespace, location: str) -> None:
        self.namespace = namespace
        self.location = location

    def _entry(self, key: str, now: float) -> Entry | None:
        """The namespace's entry for ``key`` as this location sees it."""
        current = self.namespace._entries.get(key)
        log = self.namespace.propagation
        return current if log is None else log.entry_seen(key, current, now)

    def _entries(self, now: float) -> dict[str, Entry]:
        """The namespace's unexpired entries as this location sees them."""
        log = self.namespace.propagation
        entries = self.namespace._entries
        return entries if log is None else log.entries_seen(entries, now)

    def get(self, key: str, type: GetType = "text") -> Any:
        """The value as this location sees it (possibly the one before a recent write)."""
        return self.namespace._read(key, type, with_metadata=False, seen_from=self)

    def get_with_metadata(self, key: str, type: GetType = "text") -> KVValueWithMetadata:
        """Value and metadata as this location sees them."""
        return self.namespace._read(key, type, with_metadata=True, seen_from=self)

    def list(
        self,
        *,
        prefix: str | None = None,
        limit: int = KV_MAX_LIST_LIMIT,
        cursor: str | None = None,
    ) -> KVListResult:
        """A page of keys as this location sees them."""
        return self.namespace._list_operation(prefix, limit, cursor, seen_from=self)

    def put(self, key: str, value: str | bytes, **options: Any) -> None:
        """Write through to the namespace."""
        self.namespace.put(key, value, **options)

    def delete(self, key: str) -> None:
        """Delete through to the namespace."""
        self.namespace.delete(key)

    def __repr__(self) -> str:
        return f"<KVLocation {self.location} of {self.namespace.name}>"
