"""The route marker: the one KV entry through which instances of the reference cache agree.

It holds the current route ("do" or "kv"), a generation number bumped at every flag
transition, and whether the DO route is degraded (fallback copies wait in KV). It is
written once per transition or change of the degraded state, never per operation, and
read by every put and delete. ``RouteView`` is one instance's belief about it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass

from .cache_input import RESERVED_PREFIX
from .kv import KVError
from .kv_entries import KVEntries

log = logging.getLogger("pytest_dualcache.abstraction")  # the reference cache logs as one

ROUTE_MARKER_KEY = RESERVED_PREFIX + "route"


class RouteMarkerUnavailable(Exception):
    """The route marker cannot be read and this instance has no view of it yet."""


@dataclass(frozen=True, slots=True)
class RouteView:
    """What an instance believes about the route: which, which generation, degraded or not.

    ``checked_at`` is when it was last read from (or written to) the marker.
    """

    route: str
    generation: int
    degraded: bool
    checked_at: float


class RouteMarker:
    """The marker as one cache instance reads and writes it, through its ``KVEntries``.

    ``counts["coordination_writes"]`` counts the marker writes that landed.
    """

    def __init__(self, entries: KVEntries, counts: Counter[str]) -> None:
        self.entries = entries
        self.counts = counts

    def read(self, last: RouteView | None, now: float) -> RouteView | None:
        """The marker in KV (None if there is none yet).

        Unreadable, it is ``last`` (the instance's last view) when there is one; a fresh
        instance cannot know the generation then, so it raises ``RouteMarkerUnavailable``
        rather than guess (a guess could resurrect old entries or write into a dead
        generation).
        """
        try:
            text = self.entries.kv.get(ROUTE_MARKER_KEY)
        except KVError as exc:
            if last is None:
                raise RouteMarkerUnavailable(f"route marker unreadable: {exc}") from None
            log.warning("route marker unreadable (%s); keeping this instance's view", exc)
            return last
        if text is None:
            return None
        data = json.loads(text)
        return RouteView(data["route"], data["generation"], data["degraded"], now)

    def write(self, view: RouteView) -> None:
        """Record ``view`` as the marker (with 429 retries); a failure is logged, not raised."""
        text = json.dumps(
            {"route": view.route, "generation": view.generation, "degraded": view.degraded}
        )
        try:
            self.entries.retrying(lambda: self.entries.kv.put(ROUTE_MARKER_KEY, text))
        except KVError as exc:
            log.warning("route marker not written (%s); other instances may lag", exc)
            return
        self.counts["coordination_writes"] += 1
