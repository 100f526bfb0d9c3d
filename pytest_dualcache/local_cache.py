"""``LocalCache``: the reference cache's in-process copies of what it read, bounded and brief.

A bounded LRU of JSON texts (``size`` entries). Each copy is served only in the route
generation it was read in, never past its TTL, and at most ``ttl`` seconds from the
moment its instance last checked the route marker: that is how stale a local hit may be
about other instances' writes. ``CacheAbstraction`` evicts a key on its own puts and
deletes and empties the cache when the route, the generation or the degraded state changes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .route_marker import RouteView


class LocalEntry(NamedTuple):
    """One local copy: its JSON text, its expiry, when it was current and its generation."""

    text: str
    expires_at: float
    cached_at: float
    generation: int


class LocalCache:
    """Up to ``size`` JSON texts, each kept for at most ``ttl`` seconds; nothing if either is 0.

    Extension point: ``CacheAbstraction.local_cache_class`` is the class a cache builds its
    local cache from. A subclass may override ``get`` and ``put`` (how a key is looked up
    and stored) and ``serves`` (which copies may still be served); ``discard`` and
    ``clear`` are how the cache invalidates, and stay as they are.
    """

    def __init__(self, size: int, ttl: float) -> None:
        self.size = size
        self.ttl = ttl
        self._entries: OrderedDict[str, LocalEntry] = OrderedDict()

    def get(self, key: str, view: RouteView, now: float) -> str | None:
        """The text kept for ``key`` if ``serves`` allows it at ``now``, else None.

        Extension point: overriding it changes how a get finds its local copy.
        """
        entry = self._entries.get(key)
        if entry is None:
            return None
        if not self.serves(entry, view, now):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.text

    def serves(self, entry: LocalEntry, view: RouteView, now: float) -> bool:
        """Whether ``entry`` may still be served: same generation, unexpired, young enough.

        Extension point: overriding it changes when a local copy goes stale.
        """
        return (
            entry.generation == view.generation
            and now < entry.expires_at
            and now - entry.cached_at < self.ttl
        )

    def put(self, key: str, text: str, expires_at: float, view: RouteView) -> None:
        """Keep ``text`` (read under ``view``) for ``key``, evicting the least recently used.

        Extension point: overriding it changes how a read value is kept. What was read is
        only as fresh as the view of the route (another instance may have degraded it since),
        so the copy ages from when the view was checked.
        """
        if not (self.ttl > 0 and self.size > 0):
            return
        self._entries[key] = LocalEntry(text, expires_at, view.checked_at, view.generation)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def discard(self, key: str) -> None:
        """Forget ``key`` (a put or delete of this instance changed it)."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything (the route, generation or degraded state changed)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
