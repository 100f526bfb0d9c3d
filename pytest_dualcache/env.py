"""``DualCacheEnv``: the bindings and vars one Worker sees, on one virtual clock.

Bindings are reachable as ``env.kv``/``env.do`` and under their configured names
(``env.CACHE_DO``), string vars under theirs (``env.FEATURE_FLAG_DO_CACHE``), so code written
against a Workers ``env`` reads this one unchanged.

With a wrangler config (``runtime.wrangler``) its bindings win: each of its Durable Object
bindings is a ``DurableObjectNamespace`` of the user's class (the built-in DO cache stays
reachable as ``env.do``), its KV namespaces join ``env.kv`` and its vars are set. Every KV
namespace of an env counts against one daily quota, as Cloudflare counts per account.

With a latency model (``latency.py``; the ``dualcache_env`` fixture passes ini
``dualcache_latency``'s to an application test's env, never to a contract test's) every
operation of the env's KV namespaces and built-in DO cache spends its latency on the env's
clock, and ``request(name)`` times a block. A user's Durable Object storage costs nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .clock import VirtualClock
from .durable import DurableObjectCache, MemoryEngine, RedisEngine
from .kv import KVNamespace
from .ledger import Ledger
from .settings import BindingNames, DualCacheSettings, binding_name_problem

if TYPE_CHECKING:
    from .durable import DOEngine
    from .kv_quota import DailyQuota
    from .latency import LatencyMeter, LatencyModel, RequestRecorder
    from .limits import KVPlan
    from .runtime.durable_objects import DurableObjectNamespace
    from .runtime.wrangler import WranglerConfig
    from .workers import WorkersEnv


DEFAULT_NAMES = BindingNames()


class FeatureFlag:
    """The DO-cache feature flag, stored as the string var ``"true"``/``"false"`` like wrangler."""

    __slots__ = ("_vars", "name")

    def __init__(self, vars: dict[str, str], name: str) -> None:
        self._vars = vars
        self.name = name

    @property
    def enabled(self) -> bool:
        """True when the var is exactly ``"true"`` (the seed's rule; "True" and "1" are off)."""
        return self._vars.get(self.name) == "true"

    def enable(self) -> None:
        """Set the var to ``"true"``."""
        self._vars[self.name] = "true"

    def disable(self) -> None:
        """Set the var to ``"false"`` (the seed's rollback)."""
        self._vars[self.name] = "false"

    def set(self, enabled: bool) -> None:
        """Enable or disable from a bool."""
        self.enable() if enabled else self.disable()

    def __bool__(self) -> bool:
        return self.enabled

    def __repr__(self) -> str:
        return f"<FeatureFlag {self.name}={self._vars.get(self.name)!r}>"


class DualCacheEnv:
    """A Worker's environment for tests: a KV namespace, a DO cache, vars and a clock.

    ``bind_do=False`` leaves the DO binding out, as a Worker deployed without it.
    ``do_engine`` is ``"memory"``, ``"redis"`` (fakeredis) or a ready ``DOEngine``.
    ``wrangler``: a wrangler config whose bindings and vars this env takes (see the module).
    ``latency``: the simulated latency model (None: off); this env draws from its own fresh
    streams of it. ``requests``: where ``request`` blocks are kept (the fixture passes the
    test's, which its report reads; a new one when not given).
    """

    def __init__(
        self,
        clock: VirtualClock | None = None,
        *,
        names: BindingNames = DEFAULT_NAMES,
        kv_plan: KVPlan = "free",
        do_engine: str | DOEngine = "memory",
        bind_do: bool = True,
        flag_enabled: bool = True,
        vars: dict[str, str] | None = None,
        wrangler: WranglerConfig | None = None,
        latency: LatencyModel | None = None,
        requests: RequestRecorder | None = None,
    ) -> None:
        self.clock = clock if clock is not None else VirtualClock()
        #: Spends the latency model's figures on the clock; None while the model is off.
        self.latency_meter: LatencyMeter | None = None
        if latency is not None:
            from .latency import LatencyMeter, RequestRecorder

            recorder = RequestRecorder() if requests is None else requests
            self.latency_meter = LatencyMeter(latency.fresh(), self.clock, recorder)
        self.binding_names = names
        self.vars: dict[str, str] = {**(wrangler.vars if wrangler else {}), **(vars or {})}
        self.vars.setdefault(names.flag, "true" if flag_enabled else "false")
        self.flag = FeatureFlag(self.vars, names.flag)
        self.kv = KVNamespace(self.clock, name=names.kv, plan=kv_plan)
        self._meter(self.kv.ledger)
        #: Today's KV operations of every namespace of this env (one account's quota).
        self.kv_quota: DailyQuota = self.kv.quota
        self.kv_namespaces: list[KVNamespace] = [self.kv]
        self.bindings: dict[str, Any] = {names.kv: self.kv}
        self.do: DurableObjectCache | None = None
        if bind_do:
            self.do = DurableObjectCache(self.clock, name=names.do, engine=_engine(do_engine))
            self._meter(self.do.ledger)
            self.bindings[names.do] = self.do
        #: The user's Durable Object namespaces by binding (from the wrangler config).
        self.durable_objects: dict[str, DurableObjectNamespace] = {}
        self._workers: WorkersEnv | None = None
        if wrangler is not None:
            self._bind_worker(wrangler)

    def _bind_worker(self, wrangler: WranglerConfig) -> None:
        """Bind the config's KV namespaces and its Durable Object classes (see the module)."""
        from .runtime.durable_objects import build_namespaces
        from .runtime.worker import load_worker

        for binding in wrangler.kv_namespaces:
            if binding != self.binding_names.kv:
                self.add_kv_namespace(binding)
        classes = load_worker(wrangler).durable_objects
        for binding in classes:
            problem = binding_name_problem(binding)
            if binding in self.vars or hasattr(type(self), binding) or problem:
                raise ValueError(
                    f"{wrangler.where('durable_objects.bindings')}: {binding!r} cannot be bound: "
                    f"{problem or 'a var or an attribute of env has that name'}"
                )
        self.durable_objects = build_namespaces(classes, env=self.workers(), clock=self.clock)
        self.bindings.update(self.durable_objects)

    def _meter(self, ledger: Ledger) -> None:
        """Let the latency model (when on) spend time on every operation ``ledger`` records."""
        if self.latency_meter is not None:
            ledger.latency = self.latency_meter.spend

    @property
    def latency(self) -> LatencyModel | None:
        """The simulated latency model this env spends (None: off)."""
        return None if self.latency_meter is None else self.latency_meter.model

    @contextmanager
    def request(self, name: str) -> Iterator[None]:
        """Time the block as one request called ``name`` (``with env.request("GET /quote"):``).

        Its duration is the latency its KV and DO operations spent (not the clock's move: a
        test advancing the clock to expire a TTL is not a response time), kept even if the
        block raises. Nested blocks each count what runs inside them: an outer request's
        time includes its inner ones'. Operations made concurrently (threads, tasks) while
        blocks are open are charged to every open block. Without a model the block runs
        untimed and nothing is kept, so the same test runs with the model on or off; a
        ``p95_ms`` gate, which needs the figures, is refused when the model is off.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"request() takes a non-empty request name, got {name!r}")
        if self.latency_meter is None:
            yield
            return
        with self.latency_meter.requests.request(name):
            yield

    @classmethod
    def from_settings(
        cls,
        settings: DualCacheSettings,
        clock: VirtualClock | None = None,
        *,
        latency: LatencyModel | None = None,
        requests: RequestRecorder | None = None,
    ) -> DualCacheEnv:
        """The env the ``dualcache_env`` fixture builds from the resolved ini settings.

        The latency model is not read from ``settings``: the caller passes it (the fixture
        does for application tests; the contract suite's harness never does).
        """
        engine: str | DOEngine = settings.do_engine
        if settings.redis_url:
            engine = RedisEngine.on_server(settings.redis_url)
        return cls(
            clock,
            names=settings.names,
            kv_plan=settings.kv_plan,
            do_engine=engine,
            wrangler=settings.wrangler,
            latency=latency,
            requests=requests,
        )

    def add_kv_namespace(self, name: str, *, plan: KVPlan | None = None) -> KVNamespace:
        """Bind another KV namespace under ``name`` (sharing this env's clock)."""
        problem = binding_name_problem(name)
        if problem:
            raise ValueError(problem)
        if name in self.bindings or name in self.vars:
            raise ValueError(f"env already has a binding or var named {name!r}")
        if hasattr(self, name):
            raise ValueError(f"{name!r} is an attribute of env: a binding there is unreachable")
        plan = plan or self.kv.plan
        quota = self.kv_quota if plan == self.kv_quota.plan else None
        namespace = KVNamespace(self.clock, name=name, plan=plan, quota=quota)
        self._meter(namespace.ledger)
        self.kv_namespaces.append(namespace)
        self.bindings[name] = namespace
        return namespace

    def ledgers(self) -> list[Ledger]:
        """The ledger of every store of this env: KV namespaces first, then the DO cache,
        then the user's Durable Object namespaces (RPC calls and storage operations)."""
        ledgers = [namespace.ledger for namespace in self.kv_namespaces]
        if self.do is not None:
            ledgers.append(self.do.ledger)
        ledgers.extend(namespace.ledger for namespace in self.durable_objects.values())
        return ledgers

    @property
    def do_binding(self) -> Any:
        """What is bound under the DO binding name: the user's ``DurableObjectNamespace`` when
        the wrangler config binds one there, else the built-in DO cache (None if unbound)."""
        return self.bindings.get(self.binding_names.do)

    def redeploy(self) -> None:
        """Restart every live instance of the user's Durable Objects, as a deploy does; their
        storage and alarms stay."""
        for namespace in self.durable_objects.values():
            namespace.restart()

    def workers(self) -> WorkersEnv:
        """This env as a Python Worker sees it: async bindings with JS method names (one view
        per env, the one its Durable Objects get as their ``env``)."""
        if self._workers is None:
            from .workers import WorkersEnv

            self._workers = WorkersEnv(self)
        return self._workers

    def close(self) -> None:
        """Release what the stores hold outside this process (a redis engine's keys).

        A Redis server gone by then is warned about, not raised: teardown must not fail a
        test over keys that expire by themselves (each carries a day-long cleanup TTL).
        The user's Durable Objects are evicted and their alarms cancelled.
        """
        for namespace in self.durable_objects.values():
            namespace.close()
        if self.do is None:
            return
        try:
            self.do.clear()
        except Exception as exc:  # redis.RedisError, without importing redis here
            warnings.warn(f"DO cache keys not cleared: {exc}", RuntimeWarning, stacklevel=2)

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not real attributes: bindings, then vars.
        if name.startswith("__"):
            raise AttributeError(name)
        bindings = self.__dict__.get("bindings", {})
        if name in bindings:
            return bindings[name]
        variables = self.__dict__.get("vars", {})
        if name in variables:
            return variables[name]
        raise AttributeError(f"env has no binding or var named {name!r}")

    def __repr__(self) -> str:
        return f"<DualCacheEnv bindings={sorted(self.bindings)} vars={self.vars}>"


def _engine(spec: str | DOEngine) -> DOEngine:
    if spec == "memory":
        return MemoryEngine()
    if spec == "redis":
        return RedisEngine()
    if isinstance(spec, str):
        raise ValueError(f"do_engine must be 'memory', 'redis' or a DOEngine, got {spec!r}")
    return spec


def is_do_cache_enabled(env: object) -> bool:
    """The seed's rule: the flag var equals ``"true"`` and the DO binding exists.

    Works on a ``DualCacheEnv``, its Workers face, or any object with the bindings and vars
    as attributes (default names ``FEATURE_FLAG_DO_CACHE`` and ``CACHE_DO``).
    """
    names = getattr(env, "binding_names", DEFAULT_NAMES)
    return getattr(env, names.flag, None) == "true" and getattr(env, names.do, None) is not None
