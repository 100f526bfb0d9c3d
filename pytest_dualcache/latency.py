"""The opt-in latency model: virtual time each store operation costs, and per-request figures.

``dualcache_latency = off | seed | PATH.toml``. ``seed`` is the seed's own table (the
migration plan in /work/shared/seeds, "Performance Impact"): "Cache write (DAL) 50ms KV,
<1ms DO" and "Cache read (DAL) 10-50ms" on KV, "<1ms DO". A TOML file gives its own:

    seed = 7                          # optional, default 0
    [kv]
    get = { min_ms = 10, max_ms = 50 }  # seeded-random, uniform in whole microseconds
    put = 50                            # fixed
    [do]
    default = 0.5                       # any operation the store does not name

Latencies are whole microseconds, so sums and percentiles are exact and the same on every
machine. Each (store, operation) has its own random stream, seeded from the seed and its
name: one operation's draws do not change when another store is used more or less.

Wiring: a ``DualCacheEnv`` given a model (the ``dualcache_env`` fixture of an application
test, never a contract test's env) hangs a ``LatencyMeter`` on the ledgers of its KV
namespaces and built-in DO cache; every operation they record moves the env's clock on by
its latency and charges it to the open requests. Each test's request durations travel in
its JSON entry (``requests``), and the report's ``latency`` section is derived from them
(``latency_section``), so a merged sharded report computes the same figures.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clock import VirtualClock

MODES = ("off", "seed")
STORES = ("kv", "do")
#: The name a store's table gives the latency of every operation it does not name.
DEFAULT_OP = "default"
PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class Latency:
    """A fixed latency (``low == high``) or a uniform one between them, in microseconds."""

    low_us: int
    high_us: int

    def draw(self, rng: random.Random) -> int:
        return (
            self.low_us if self.low_us == self.high_us else rng.randint(self.low_us, self.high_us)
        )

    def to_json(self) -> dict[str, float]:
        return {"min_ms": self.low_us / 1000, "max_ms": self.high_us / 1000}


def _ms(low: float, high: float | None = None) -> Latency:
    """A latency from milliseconds (``high`` omitted: fixed)."""
    return Latency(round(low * 1000), round((low if high is None else high) * 1000))


#: The seed's table. KV deletes cost what a write does and lists what a read does (the seed
#: times neither: our assumption, both being the same central-store round trip). "<1ms" on
#: the DO is taken as uniform from 0.1 to 0.999 ms (under 1 ms) for every operation.
SEED_TABLE: Mapping[str, Mapping[str, Latency]] = {
    "kv": {
        "get": _ms(10, 50),
        "put": _ms(50),
        "delete": _ms(50),
        "list": _ms(10, 50),
    },
    "do": {DEFAULT_OP: _ms(0.1, 0.999)},
}


@dataclass
class LatencyModel:
    """What each (store, operation) costs; ``latency_us`` draws the next one."""

    table: Mapping[str, Mapping[str, Latency]]
    seed: int = 0
    #: Where the table came from: ``seed`` or the TOML file's path, for the report.
    source: str = "seed"
    _streams: dict[tuple[str, str], random.Random] = field(
        default_factory=dict, init=False, repr=False
    )

    def latency_us(self, store: str, op: str) -> int:
        """Microseconds to spend on the virtual clock for one ``op`` on ``store``."""
        ops = self.table.get(store, {})
        latency = ops.get(op, ops.get(DEFAULT_OP))
        if latency is None:
            return 0
        stream = self._streams.get((store, op))
        if stream is None:
            stream = self._streams[store, op] = random.Random(f"{self.seed}:{store}:{op}")
        return latency.draw(stream)

    def fresh(self) -> LatencyModel:
        """The same table and seed with its streams at their start: each env draws its own,
        so a test's latencies depend neither on the tests before it nor on its xdist worker."""
        return LatencyModel(self.table, self.seed, self.source)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "seed": self.seed,
            "table": {
                store: {op: ops[op].to_json() for op in sorted(ops)}
                for store, ops in sorted(self.table.items())
            },
        }


def resolve(value: str, source: str, rootdir: Path) -> LatencyModel | None:
    """The model ``value`` (``off``, ``seed`` or a TOML path) names; None for ``off``.

    ``source`` names where the value came from ("ini dualcache_latency"); a bad value or
    file is a ValueError naming it, and the file and key.
    """
    text = value.strip()
    if text == "off":
        return None
    if text == "seed":
        return LatencyModel(SEED_TABLE)
    if not text.endswith(".toml"):
        raise ValueError(f"{source}: expected off, seed or a PATH.toml, got {value!r}")
    path = Path(text) if Path(text).is_absolute() else rootdir / text
    return load_toml(path, source)


def load_toml(path: Path, source: str) -> LatencyModel:
    """A model from a TOML file (the format in the module docstring)."""
    import tomllib  # only a session that names a file pays for the parser

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{source}: cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{source}: {path} is not valid TOML: {exc}") from None
    where = f"{source}: {path}"
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"{where}: seed: expected an integer, got {seed!r}")
    unknown = sorted(set(data) - {"seed", *STORES})
    if unknown:
        raise ValueError(f"{where}: {unknown[0]}: unknown key; expected seed, [kv] or [do] tables")
    table: dict[str, dict[str, Latency]] = {}
    for store in STORES:
        ops = data.get(store, {})
        if not isinstance(ops, dict):
            raise ValueError(f"{where}: {store}: expected a table of operations, got {ops!r}")
        table[store] = {op: _latency(spec, f"{where}: [{store}].{op}") for op, spec in ops.items()}
    return LatencyModel(table, seed, str(path))


def _latency(spec: object, where: str) -> Latency:
    """A TOML value: milliseconds (fixed) or ``{min_ms, max_ms}`` (uniform)."""
    if isinstance(spec, dict):
        if set(spec) != {"min_ms", "max_ms"}:
            raise ValueError(f"{where}: expected keys min_ms and max_ms, got {sorted(spec)}")
        low, high = (
            _milliseconds(spec["min_ms"], f"{where}.min_ms"),
            _milliseconds(spec["max_ms"], f"{where}.max_ms"),
        )
        if high < low:
            raise ValueError(f"{where}: max_ms {high} is below min_ms {low}")
        return _ms(low, high)
    return _ms(_milliseconds(spec, where))


def _milliseconds(value: object, where: str) -> float:
    """A finite number of milliseconds >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: expected milliseconds (a number >= 0), got {value!r}")
    if value < 0:
        raise ValueError(f"{where}: expected milliseconds >= 0, got {value!r}")
    return float(value)


def nearest_rank(values: list[int], percent: int) -> int:
    """The nearest-rank percentile: the smallest value with ``percent`` % at or below it,
    i.e. ``sorted(values)[ceil(percent / 100 * n) - 1]`` (the first value for 0 %)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(percent * len(ordered) / 100))
    return ordered[rank - 1]


@dataclass
class RequestRecorder:
    """Per request name, the sum of the latencies spent inside each ``request`` block.

    Blocks nest: an operation counts for every request open around it, as a request's time
    includes the requests it makes.
    """

    durations: dict[str, list[int]] = field(default_factory=dict)
    _open: list[list[int]] = field(default_factory=list, init=False, repr=False)

    @contextmanager
    def request(self, name: str) -> Iterator[None]:
        """Time one request named ``name`` (its duration is kept even if the block raises)."""
        spent = [0]
        self._open.append(spent)
        try:
            yield
        finally:
            # by identity: two open requests may have spent the same so far
            self._open[:] = [other for other in self._open if other is not spent]
            self.durations.setdefault(name, []).append(spent[0])

    def record(self, latency_us: int) -> None:
        """Charge ``latency_us`` to every open request (none open: nothing to charge)."""
        for spent in self._open:
            spent[0] += latency_us

    def summary(self) -> dict[str, dict[str, int | float]]:
        """``count``, ``p50_ms``, ``p95_ms``, ``p99_ms`` and ``max_ms`` per name, sorted."""
        return summarize(self.durations)


def summarize(durations: Mapping[str, list[int]]) -> dict[str, dict[str, int | float]]:
    """``count``, ``p50_ms``, ``p95_ms``, ``p99_ms`` and ``max_ms`` of each request name's
    durations (microseconds), by name; a name without durations is left out."""
    return {
        name: {
            "count": len(values),
            **{f"p{p}_ms": nearest_rank(values, p) / 1000 for p in PERCENTILES},
            "max_ms": max(values) / 1000,
        }
        for name, values in sorted(durations.items())
        if values
    }


def pooled(per_test: Iterable[Mapping[str, list[int]]]) -> dict[str, list[int]]:
    """Several tests' durations by request name, pooled (percentiles do not add up: the
    samples do)."""
    total: dict[str, list[int]] = {}
    for durations in per_test:
        for name, values in durations.items():
            total.setdefault(name, []).extend(values)
    return total


def latency_section(
    model: Mapping[str, Any], tests: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The JSON report's ``latency`` section: the model, and the percentiles of every test's
    ``requests`` pooled by name (tests in node-id order)."""
    per_test = (tests[nodeid].get("requests", {}) for nodeid in sorted(tests))
    return {"model": dict(model), "requests": summarize(pooled(per_test))}


def render(section: Mapping[str, Any] | None) -> list[str]:
    """The KV report's lines for a ``latency`` section (none without one)."""
    if not section:
        return []
    model = section["model"]
    lines = [f"simulated response times (latency model {model['source']}, seed {model['seed']}):"]
    if not section["requests"]:
        lines.append("  no requests timed (with dualcache_env.request(name): ...)")
    for name, data in section["requests"].items():
        lines.append(
            f"  {name}: {data['count']} requests, p50 {data['p50_ms']:g} ms, p95 "
            f"{data['p95_ms']:g} ms, p99 {data['p99_ms']:g} ms, max {data['max_ms']:g} ms"
        )
    return lines


@dataclass
class LatencyMeter:
    """Spends a model's latencies on one env's clock and charges them to its open requests.

    ``spend`` is what a ledger calls for each operation it records (``Ledger.latency``): the
    ledger row keeps the time the operation started, and the clock stands at that time plus
    the latency when the store's method returns, as a caller awaiting the answer sees it.
    """

    model: LatencyModel
    clock: VirtualClock
    requests: RequestRecorder

    def spend(self, store: str, op: str) -> None:
        """Move the clock on by one ``op`` on ``store`` ("kv" or "do") and charge it."""
        latency_us = self.model.latency_us(store, op)
        if latency_us:
            self.clock.advance(latency_us / 1_000_000)
            self.requests.record(latency_us)
