"""The driver every contract clause uses: it runs a DAL, sync or async, and keeps the story.

A ``ContractHarness`` owns one env (KV namespace, DO cache, flag, clock) and the DAL
instances made from the user's factory on it. Every DAL call, flag flip and clock move goes
into an event log together with the positions of the stores' ledgers, so a failure report
can show each DAL call with the KV and DO operations it made.

The clock is the DAL's too: unless the factory sets ``dualcache_real_time = True``, the
contract fixture freezes freezegun at it for the test. A DAL may move it itself (a backoff
sleep): the transcript shows how far each call moved it, and a step that finds the clock
already past its instant runs late instead of failing.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hypothesis import HealthCheck
from hypothesis import settings as HypothesisSettings

from pytest_dualcache.clock import DEFAULT_START, VirtualClock
from pytest_dualcache.env import DualCacheEnv, is_do_cache_enabled
from pytest_dualcache.ledger import OperationRecord
from pytest_dualcache.settings import DualCacheSettings

#: ``put(key, value)`` without a ttl argument (distinct from an explicit ``ttl=None``).
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<no ttl>"})()

#: Keys under this prefix are a DAL's own coordination records (a route marker), not data.
COORDINATION_PREFIX = "\x00dualcache:"

#: The smallest clock step the clauses take: one millisecond before a deadline.
EPSILON = 0.001

Factory = Callable[[DualCacheEnv], Any]
ROUTES = ("do", "kv")
TRANSCRIPT_EVENTS = 80  # a failure report shows at most this many of the latest events


class PutOutcome(NamedTuple):
    """What a DAL's put amounted to: success, or the failure it reported or raised."""

    succeeded: bool
    result: object = None
    error: BaseException | None = None


def reported_success(result: object) -> bool:
    """A put succeeded unless its result says ``success`` is false (attribute or dict key)."""
    if isinstance(result, Mapping):
        return bool(result.get("success", True))
    return bool(getattr(result, "success", True))


def delete_succeeded(dal: DALHandle, key: str) -> bool:
    """Delete ``key``; False if the delete raised or reported ``success`` false."""
    try:
        result = dal.delete(key)
    except Exception:
        return False
    return reported_success(result)


def strict_equal(left: object, right: object) -> bool:
    """Equality that also matches types all the way down: 1 != 1.0 != True here."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        assert isinstance(right, dict)
        return left.keys() == right.keys() and all(strict_equal(left[k], right[k]) for k in left)
    if isinstance(left, list):
        assert isinstance(right, list)
        return len(left) == len(right) and all(map(strict_equal, left, right))
    if isinstance(left, float) and math.isnan(left):
        return math.isnan(right)  # type: ignore[arg-type]
    return left == right


def short(value: object, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class _Event:
    """One line of the story: a DAL call, a flip or a clock move, and the ledger positions."""

    at: float
    text: str
    start: tuple[int, ...]
    end: tuple[int, ...] = ()
    outcome: str = ""


@dataclass
class ContractHarness:
    """One env and the DAL instances on it, with the event log failure reports print."""

    factory: Factory
    settings: DualCacheSettings = field(default_factory=DualCacheSettings)
    env: DualCacheEnv = field(init=False)
    events: list[_Event] = field(init=False, default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = field(init=False, default=None)
    _started_at: float = field(init=False, default=0.0)
    _earlier_envs_seconds: float = field(init=False, default=0.0)
    _closed_at: float | None = field(init=False, default=None)  # simulated seconds at close

    def __post_init__(self) -> None:
        self.reset()

    def __repr__(self) -> str:
        return f"<ContractHarness for {getattr(self.factory, '__name__', self.factory)!s}>"

    # --- the world --------------------------------------------------------------------------

    def reset(self) -> None:
        """Start over on a fresh env, the clock back at its start (hypothesis tests call this
        per example); the clock object stays, so a freeze on it keeps following it."""
        clock = VirtualClock()
        if getattr(self, "env", None) is not None:
            self._earlier_envs_seconds += self.clock.now() - self._started_at
            self.env.close()
            clock = self.clock
            clock.set(DEFAULT_START)
        self.env = DualCacheEnv.from_settings(self.settings, clock)
        numbers = itertools.count()  # one sequence over every store, for the transcript
        for ledger in self.env.ledgers():
            ledger.number_operations(numbers)
        self.events = []
        self._started_at = self.clock.now()

    @property
    def simulated_seconds(self) -> float:
        """Virtual time this harness has lived through, over every env it reset to."""
        if self._closed_at is not None:
            return self._closed_at
        return self._earlier_envs_seconds + self.clock.now() - self._started_at

    @property
    def clock(self) -> VirtualClock:
        return self.env.clock

    @property
    def real_time(self) -> bool:
        """Whether the factory opted out of virtual time (``dualcache_real_time = True``)."""
        return bool(getattr(self.factory, "dualcache_real_time", False))

    @property
    def kv(self) -> Any:
        return self.env.kv

    @property
    def do(self) -> Any:
        """The DO the DAL reaches: the user's namespace when the wrangler config binds one
        under the DO binding name (its faults act on the stubs' calls), else the DO cache."""
        return self.env.do_binding

    def start(self, route: str = "do", name: str = "A") -> DALHandle:
        """Set the route, then make the first DAL instance (as a deploy would, in that order)."""
        self.use_route(route)
        return self.instance(name)

    def instance(self, name: str = "B") -> DALHandle:
        """Another DAL instance on the same env: a second isolate of the same Worker."""
        self.log(f"new DAL instance {name} = make_dal(env)")
        dal = self.run(self.factory(self.env))
        return DALHandle(self, name, dal)

    def use_route(self, route: str) -> None:
        """Flip ``FEATURE_FLAG_DO_CACHE`` so the DO route (``"do"``) or KV route is taken."""
        if route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
        if self.env.flag.enabled != (route == "do"):
            self.env.redeploy()  # a flip is a deploy: the user's Durable Objects restart
        self.env.flag.set(route == "do")
        self.log(f'flag {self.env.flag.name} = "{self.env.vars[self.env.flag.name]}"')

    def advance(self, seconds: float) -> None:
        """Move the virtual clock (and log it)."""
        self.clock.advance(seconds)
        self.log(f"clock +{seconds:g} s")

    def advance_to(self, at: float) -> float:
        """Move the virtual clock forward to the epoch ``at``; return how late that left it.

        0.0 when the clock got to ``at``. When the DAL had already moved it past ``at`` (a
        backoff on the virtual clock), the seconds it was past, which the transcript notes:
        what the caller does next happens at ``at`` plus that, and is judged there.
        """
        now = self.clock.now()
        if round(at * 1_000_000) >= round(now * 1_000_000):  # the clock's whole microseconds
            self.advance(max(0.0, at - now))
            return 0.0
        self.log(
            f"clock already {now - at:g} s past t={at - self._started_at:.3f}, where this "
            "step was due (the DAL moved it)"
        )
        return now - at

    def hypothesis_settings(self, *, runs: int = 1, **overrides: Any) -> HypothesisSettings:
        """Settings for a property clause: ``runs`` times ``settings.examples`` examples, the
        same ones every run (derandomized, no example database)."""
        return HypothesisSettings(
            max_examples=runs * self.settings.examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.filter_too_much,
                HealthCheck.function_scoped_fixture,
            ],
            **overrides,
        )

    @property
    def route(self) -> str:
        """The route the flag selects right now."""
        return "do" if is_do_cache_enabled(self.env) else "kv"

    # --- what the stores saw ------------------------------------------------------------------

    def mark(self) -> tuple[int, ...]:
        """Ledger positions now; pass to ``ops_since`` to see what happened after."""
        return tuple(ledger.position for ledger in self.env.ledgers())

    def ops_since(
        self,
        mark: tuple[int, ...],
        *,
        store: str | None = None,
        ops: tuple[str, ...] | None = None,
        ok: bool | None = True,
    ) -> list[OperationRecord]:
        """Store operations after ``mark`` (``store``: "kv" or "do"; ``ok=None``: failures too)."""
        wanted = None
        if store == "kv":
            wanted = {namespace.ledger.store for namespace in self.env.kv_namespaces}
        elif store == "do":  # the DO cache's and the user's Durable Objects' ledgers
            wanted = {ledger.store for ledger in self.env.ledgers() if ledger.kind == "do"}
        found: list[OperationRecord] = []
        for ledger, start in zip(self.env.ledgers(), mark, strict=False):
            if wanted is not None and ledger.store not in wanted:
                continue
            found.extend(
                record
                for record in ledger.since(start)
                if (ops is None or record.op in ops) and (ok is None or record.ok is ok)
            )
        return sorted(found, key=lambda record: record.at)

    def writes_since(self, mark: tuple[int, ...], store: str) -> list[OperationRecord]:
        """Successful writes (KV put/delete, DO set/delete) after ``mark``."""
        return self.ops_since(mark, store=store, ops=("put", "set", "delete"))

    def data_writes_since(self, mark: tuple[int, ...]) -> list[OperationRecord]:
        """Successful writes to either store after ``mark``, coordination keys left out."""
        found = self.writes_since(mark, "kv") + self.writes_since(mark, "do")
        data = [record for record in found if not record.key.startswith(COORDINATION_PREFIX)]
        return sorted(data, key=lambda record: record.at)

    # --- running the DAL ----------------------------------------------------------------------

    def run(self, value: Any) -> Any:
        """``value``, awaited on this test's event loop if it is awaitable."""
        if not inspect.isawaitable(value):
            return value
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        try:
            return self._loop.run_until_complete(value)  # type: ignore[arg-type]
        except TypeError as exc:
            if "can't be used in 'await' expression" not in str(exc):
                raise
            raise TypeError(
                f"{exc}: an async DAL awaited a binding of the sync env make_dal(env) was given; "
                "build it on env.workers(), whose bindings are awaitable"
            ) from exc

    def close(self) -> None:
        """Release the env and the event loop; ``simulated_seconds`` stays what it was."""
        self._closed_at = self.simulated_seconds
        self.env.close()
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    # --- the story ------------------------------------------------------------------------------

    def log(self, text: str) -> _Event:
        """Add a line to the story (the DAL handles log their calls through this)."""
        event = _Event(self.clock.now(), text, self.mark())
        self.events.append(event)
        return event

    def transcript(self) -> str:
        """Every event (at most the latest ``TRANSCRIPT_EVENTS``) with its store operations."""
        ledgers = self.env.ledgers()
        lines = [
            "Operations, oldest first (t = seconds since the test began); store operations are "
            "indented under the DAL call that made them:"
        ]
        events = self.events[-TRANSCRIPT_EVENTS:]
        if len(events) < len(self.events):
            lines.append(f"  ... {len(self.events) - len(events)} earlier events left out")
        shown = list(events[0].start) if events else [0] * len(ledgers)
        for event in events:
            lines.extend(_store_lines(ledgers, shown, event.start, "  (not by the DAL) "))
            stamp = f"t={event.at - self._started_at:<9.3f}"
            lines.append(f"  {stamp} {event.text}{'  ' + event.outcome if event.outcome else ''}")
            if event.end:
                lines.extend(_store_lines(ledgers, shown, event.end, "      "))
        lines.extend(_store_lines(ledgers, shown, self.mark(), "  (not by the DAL) "))
        return "\n".join(lines)


def _store_lines(
    ledgers: list[Any], shown: list[int], upto: tuple[int, ...], indent: str
) -> Iterator[str]:
    # The harness numbers every operation of its env's stores from one counter: that number
    # is the order they were made in, even within one virtual instant. A ledger it did not
    # number (added later) falls back to virtual time.
    rows: list[tuple[float, float, OperationRecord]] = []
    for index, ledger in enumerate(ledgers):
        end = upto[index] if index < len(upto) else ledger.position
        if index >= len(shown):
            shown.append(0)
        start = max(shown[index], ledger.position - len(ledger))  # clear() drops records
        for position, record in enumerate(ledger.since(start)[: max(0, end - start)], start):
            number = ledger.number_of(position)
            rows.append((math.inf if number is None else number, record.at, record))
        shown[index] = max(shown[index], end)
    if any(number == math.inf for number, _, _ in rows):
        rows.sort(key=lambda row: (row[1], row[0]))  # by time, then number
    else:
        rows.sort(key=lambda row: row[0])
    for _, _, record in rows:
        outcome = "ok" if record.ok else f"FAILED {record.error}"
        yield f"{indent}{record.store} {record.op} {record.key!r} {record.bytes} B: {outcome}"


def _clock_moved(harness: ContractHarness, event: _Event) -> str:
    """How far a DAL call moved the clock itself (a backoff sleep), for its transcript line."""
    now = harness.clock.now()
    if round(now * 1_000_000) <= round(event.at * 1_000_000):
        return ""
    return f"  (moved the clock +{now - event.at:.6g} s, to t={now - harness._started_at:.3f})"


class DALHandle:
    """One DAL instance as the clauses drive it: put/get/delete, logged and awaited."""

    def __init__(self, harness: ContractHarness, name: str, dal: Any) -> None:
        self.harness = harness
        self.name = name
        self.dal = dal

    @property
    def default_ttl(self) -> float:
        """The DAL's declared default TTL (``dal.default_ttl``), 3600 if it declares none."""
        return getattr(self.dal, "default_ttl", None) or 3600

    @property
    def local_cache_ttl(self) -> float:
        """How stale this instance may be about other instances' writes (0 if undeclared)."""
        return getattr(self.dal, "local_cache_ttl", None) or 0

    def put(self, key: str, value: object, ttl: Any = MISSING) -> PutOutcome:
        """Call ``dal.put``; a raise or a false ``success`` is a failed put, not an error."""
        args: tuple[Any, ...] = (key, value)
        kwargs = {} if ttl is MISSING else {"ttl": ttl}
        described = f"put({short(key, 40)}, {short(value, 40)}" + (
            f", ttl={ttl!r})" if ttl is not MISSING else ")"
        )
        try:
            result = self._call("put", described, *args, **kwargs)
        except Exception as exc:
            return PutOutcome(False, None, exc)
        return PutOutcome(reported_success(result), result, None)

    def get(self, key: str) -> Any:
        """Call ``dal.get``; exceptions propagate (a get that raises usually breaks a clause)."""
        return self._call("get", f"get({short(key, 40)})", key)

    def delete(self, key: str) -> Any:
        """Call ``dal.delete``."""
        return self._call("delete", f"delete({short(key, 40)})", key)

    def _call(self, method: str, described: str, *args: Any, **kwargs: Any) -> Any:
        harness = self.harness
        route = harness.route.upper()
        event = harness.log(f"{self.name}.{described}  [flag routes to {route}]")
        try:
            result = harness.run(getattr(self.dal, method)(*args, **kwargs))
        except BaseException as exc:
            event.end = harness.mark()
            event.outcome = f"raised {type(exc).__name__}: {exc}{_clock_moved(harness, event)}"
            raise
        event.end = harness.mark()
        event.outcome = f"-> {short(result)}{_clock_moved(harness, event)}"
        return result

    def __repr__(self) -> str:
        return f"<DAL instance {self.name}: {type(self.dal).__name__}>"
