"""STATE: a model-based test interleaving every clause's moves, checked against a model.

A hypothesis ``RuleBasedStateMachine`` puts, gets and deletes on two keys from one or two
DAL instances, flips the flag, moves the clock and takes the DO down and up. Every get is
checked against a model of what the contract allows:

* the latest write to the key (alive or expired by its TTL; a write that slept inside the
  DAL, e.g. on a 429 backoff, may have landed anywhere in its call, so its expiry is a
  window);
* None as well, for a value written before a later flip (FLIP-2 allows a miss there);
* an older state of the key when the newer writes came from another instance less than
  the reader's ``local_cache_ttl`` ago (LOC-3's staleness bound); a reader always sees its
  own writes (LOC-1, LOC-2).

While the DO is down a get may miss what only the DO holds (FB-4), but puts and deletes
must succeed through KV and stay in force, during the outage and after it (FB-3, FB-7,
FB-8). A flip may be seen at once by one instance while the other idles through it (its
next put must still land where both read it, FB-7). A failure prints hypothesis's shrunk
sequence of steps, and the report shows the DAL calls with their store operations.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from .clauses import clause
from .harness import MISSING, ROUTES, ContractHarness, DALHandle, reported_success, short

KEYS = ("k1", "k2")
TTLS = (None, 1, 5, 60, 120)  # None: the DAL's default
STEPS = (0.0, 0.25, 1.0, 1.5, 5.0, 30.0, 61.0, 300.0)


@dataclass(frozen=True)
class _Write:
    """One successful put (``value``) or delete (``value is None``) as the model saw it."""

    value: object
    started: float
    ended: float
    ttl: float
    writer: str
    flips_before: int
    outage: int  # the DO outage it was made in (0: the DO was up)


class DualCacheMachine(RuleBasedStateMachine):
    """Random interleavings of DAL calls, flips, clock moves, outages and a second instance."""

    def __init__(self, contract: ContractHarness) -> None:
        super().__init__()
        self.contract = contract
        contract.reset()
        self.instances: dict[str, DALHandle] = {}
        self.history: dict[str, list[_Write]] = {key: [] for key in KEYS}
        self.flips = 0
        self.values = itertools.count(1)
        self.outage = 0  # the current DO outage's number, 0 while the DO is up
        self.outages = itertools.count(1)

    @initialize(route=st.sampled_from(ROUTES))
    def deploy(self, route: str) -> None:
        self.instances["A"] = self.contract.start(route, "A")

    # --- moves --------------------------------------------------------------------------------

    def _instance(self, name: str) -> DALHandle:
        return self.instances.get(name) or self.instances["A"]

    @rule(key=st.sampled_from(KEYS), name=st.sampled_from("AB"), ttl=st.sampled_from(TTLS))
    def put(self, key: str, name: str, ttl: int | None) -> None:
        dal = self._instance(name)
        value = f"v{next(self.values)}"
        started = self.contract.clock.now()
        outcome = dal.put(key, value, MISSING if ttl is None else ttl)
        ended = self.contract.clock.now()
        assert outcome.succeeded, (
            f"put({key!r}, {value!r}) failed with only the DO down at most: {outcome}"
        )
        lifetime = dal.default_ttl if ttl is None else ttl
        self.history[key].append(
            _Write(value, started, ended, lifetime, dal.name, self.flips, self.outage)
        )

    @rule(key=st.sampled_from(KEYS), name=st.sampled_from("AB"))
    def delete(self, key: str, name: str) -> None:
        dal = self._instance(name)
        started = self.contract.clock.now()
        result = dal.delete(key)  # raising breaks FB-8: only the DO is ever down here
        ended = self.contract.clock.now()
        assert reported_success(result), (
            f"delete({key!r}) failed with only the DO down at most: {result!r}"
        )
        self.history[key].append(
            _Write(None, started, ended, 0.0, dal.name, self.flips, self.outage)
        )

    @rule(key=st.sampled_from(KEYS), name=st.sampled_from("AB"))
    def get(self, key: str, name: str) -> None:
        dal = self._instance(name)
        started = self.contract.clock.now()
        got = dal.get(key)
        ended = self.contract.clock.now()
        values, miss_allowed = self._allowed(key, dal, started, ended)
        if got is None:
            assert miss_allowed, (
                f"get({key!r}) on instance {dal.name} returned None, but the model expects "
                f"{' or '.join(map(short, values))}: no flip, expiry or staleness allows a miss"
            )
        else:
            assert got in values, (
                f"get({key!r}) on instance {dal.name} returned {short(got)}, but the model "
                f"allows only {[*map(short, values)] + (['None'] if miss_allowed else [])}"
            )

    @rule(seen_by=st.sampled_from(["", "A", "B"]), key=st.sampled_from(KEYS))
    def flip(self, seen_by: str, key: str) -> None:
        self.flips += 1
        self.contract.use_route("kv" if self.contract.route == "do" else "do")
        if seen_by:  # one instance acts on the flip at once while the other idles
            self.get(key, seen_by)

    @rule(seconds=st.sampled_from(STEPS))
    def advance(self, seconds: float) -> None:
        self.contract.advance(seconds)

    @rule()
    def toggle_do_outage(self) -> None:
        if self.outage:
            self.outage = 0
            self.contract.do.recover()
        else:
            self.outage = next(self.outages)
            self.contract.do.fail()
        self.contract.log(f"DO {'down' if self.outage else 'back up'}")

    @precondition(lambda self: "B" not in self.instances)
    @rule()
    def second_instance(self) -> None:
        self.instances["B"] = self.contract.instance("B")

    def teardown(self) -> None:
        self.contract.do.recover()

    # --- the model ----------------------------------------------------------------------------

    def _allowed(
        self, key: str, reader: DALHandle, started: float, ended: float
    ) -> tuple[list[object], bool]:
        """Values a get may return now, and whether None is allowed."""
        values: list[object] = []
        miss_allowed = False
        for write in reversed(self.history[key]):
            if write.value is None:
                miss_allowed = True
            else:
                if started < write.ended + write.ttl:  # not surely expired when the read began
                    values.append(write.value)
                if ended >= write.started + write.ttl:  # may have expired by the read's end
                    miss_allowed = True
                if self.flips > write.flips_before:
                    miss_allowed = True  # FLIP-2: a miss after a flip is allowed
                if self.outage and write.outage != self.outage:
                    miss_allowed = True  # FB-4: with the DO down, only its KV copies are read
            unseen = write.writer != reader.name and write.ended > started - reader.local_cache_ttl
            if not unseen:
                return values, miss_allowed
        return values, True  # the key's first state: absent


class StateMachineClauses:
    """STATE."""

    @clause("STATE")
    def test_STATE_model_based_interleavings(self, contract: ContractHarness) -> None:
        run_state_machine_as_test(
            lambda: DualCacheMachine(contract),
            # Interleavings are where rare bugs hide: four times the property clauses' runs.
            settings=contract.hypothesis_settings(runs=4, stateful_step_count=40),
        )
