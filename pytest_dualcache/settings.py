"""Every dualcache option and ini key, resolved once with one precedence.

``SETTINGS`` (in ``vocabulary.py``) is the vocabulary: each setting's command-line option,
environment variable, ini key, default and help, written once. ``resolve_settings`` reads
each from the first source that gives it (command line > environment variable > ini >
default) and validates it; a bad value is a ``pytest.UsageError`` naming its source ("ini
dualcache_kv_plan: ...", "--dualcache-max-growth: ..."), so a typo never reaches a test.
Values whose checking imports user code or reads files (factories, the KV budget, the
baseline) are resolved only under ``--dualcache``. This module imports no backend: a
session that does not use the plugin pays for nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .vocabulary import DEFAULTS, DO_ENGINE_CHOICES, KV_PLAN_CHOICES, SETTINGS, SHIM_CHOICES

if TYPE_CHECKING:
    from .baseline import Growth
    from .bill import CostLimit
    from .budget import KVBudget
    from .factories import Waiver
    from .latency import LatencyModel
    from .limits import KVPlan
    from .runtime.wrangler import WranglerConfig
    from .slo import Objectives

#: The wrangler config files looked for in the rootdir, the first found wins (wrangler reads
#: "wrangler.json", "wrangler.jsonc" or "wrangler.toml":
#: developers.cloudflare.com/workers/wrangler/configuration/; the TOML first, as Cloudflare's
#: Python Workers examples ship it).
WRANGLER_CONFIG_NAMES = ("wrangler.toml", "wrangler.jsonc", "wrangler.json")
BINDING_KEYS = ("do_binding", "kv_binding", "flag_var")
GATE_OPTIONS = (
    "suite",
    "report_path",
    "html_path",
    "md_path",
    "shard",
    "save_baseline",
    "baseline",
    "max_growth",
    "max_cost_growth",
)


@dataclass(frozen=True)
class BindingNames:
    """Where an env keeps the DO binding, the KV binding and the feature flag var.

    Three different Python identifiers, since bindings and vars are read as env attributes.
    """

    do: str = DEFAULTS["do_binding"]
    kv: str = DEFAULTS["kv_binding"]
    flag: str = DEFAULTS["flag_var"]

    def __post_init__(self) -> None:
        for name in (self.do, self.kv, self.flag):
            problem = binding_name_problem(name)
            if problem:
                raise ValueError(problem)
        problem = same_names_problem(
            (self.do, self.kv, self.flag), "the DO binding, KV binding and flag var"
        )
        if problem:
            raise ValueError(problem)


def same_names_problem(names: tuple[str, str, str], what: str) -> str | None:
    """Why the DO binding, KV binding and flag var ``names`` clash, or None if they don't."""
    if len(set(names)) == 3:
        return None
    return f"{what} must be three different names, got {', '.join(names)}"


def binding_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a binding or var, or None if it can."""
    if isinstance(name, str) and name.isidentifier():
        return None
    return (
        f"{name!r} is not a valid binding name (it must be a Python identifier, since bindings "
        "are read as attributes of env)"
    )


@dataclass(frozen=True)
class DualCacheSettings:
    """The resolved configuration every dualcache fixture and hook reads."""

    enabled: bool = DEFAULTS["enabled"]
    names: BindingNames = BindingNames()
    kv_plan: KVPlan = DEFAULTS["kv_plan"]
    do_engine: str = DEFAULTS["do_engine"]
    #: Hypothesis examples per property / state-machine test of the contract suite.
    examples: int = DEFAULTS["examples"]
    #: A real Redis server for the DO cache (the redis engine); None: fakeredis.
    redis_url: str | None = DEFAULTS["redis_url"]
    #: ``dualcache_kv_budget`` as written (blank: none); parsed into ``kv_budget``.
    kv_budget_spec: str = DEFAULTS["kv_budget"]
    #: Modules whose KV writes are via the cache layer (with the factories' own modules).
    dal_modules: tuple[str, ...] = DEFAULTS["dal_modules"]
    kv_allow: tuple[str, ...] = DEFAULTS["kv_allow"]
    # Resolved under --dualcache only: loading them imports user code or reads files.
    factories: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    #: False when no factory was registered and the bundled reference stands in.
    factories_registered: bool = False
    #: ``--dualcache-suite``: add the suite whatever the command line names.
    suite: bool = DEFAULTS["suite"]
    #: ``dal_modules`` not importable at startup: checked again after collection.
    unimported_dal_modules: tuple[str, ...] = ()
    #: Clauses each factory waives (its ``dualcache_waive`` and ini ``dualcache_waive``).
    waivers: tuple[Waiver, ...] = ()
    kv_budget: KVBudget | None = None
    slo: Objectives | None = None
    report_path: Path | None = None
    html_path: Path | None = None
    md_path: Path | None = None
    #: ``--dualcache-shard``: ``(I, N)``, written into the JSON report as ``"shard": "I/N"``.
    shard: tuple[int, int] | None = None
    save_baseline: Path | None = None
    #: The loaded baseline of ``--dualcache-baseline``.
    baseline: dict[str, Any] | None = None
    max_growth: Growth | None = None
    #: ``--dualcache-max-cost-growth``: the cost gate's limit; None: no cost gate.
    max_cost_growth: CostLimit | None = None
    #: The wrangler config read (``dualcache_wrangler_config``), or None without one.
    wrangler: WranglerConfig | None = None
    #: Whether the ``workers``/``pyodide``/``js`` import hook is installed for the session.
    workers_shim: bool = False
    #: ``dualcache_latency``: the simulated latency model; None when off (the default).
    latency: LatencyModel | None = None


def given(config: pytest.Config, name: str) -> tuple[Any, str] | None:
    """Setting ``name`` from the first source that gives it, and that source's name.

    Command line, then environment variable, then ini; None when none gives it. A blank
    value counts as not given.
    """
    setting = SETTINGS[name]
    candidates: list[tuple[Callable[[], Any], str]] = []
    if setting.option is not None:
        candidates.append((lambda: config.getoption(setting.dest, default=None), setting.option))
    if setting.env is not None:
        candidates.append((lambda: os.environ.get(setting.env or ""), f"${setting.env}"))
    if setting.ini is not None:
        candidates.append((lambda: config.getini(setting.ini or ""), f"ini {setting.ini}"))
    for read, source in candidates:
        value = read()
        if isinstance(value, str):
            value = value.strip()
        if value:
            return value, source
    return None


def _value(config: pytest.Config, name: str) -> tuple[Any, str]:
    """Setting ``name`` as given, else its default (the source then says "the default")."""
    return given(config, name) or (SETTINGS[name].default, "the default")


def _choice(config: pytest.Config, name: str, choices: tuple[str, ...]) -> str:
    value, source = _value(config, name)
    if value not in choices:
        raise pytest.UsageError(f"{source}: {value!r} is not one of {', '.join(choices)}")
    return value


def _binding_names(config: pytest.Config) -> BindingNames:
    values = []
    for key in BINDING_KEYS:
        value, source = _value(config, key)
        problem = binding_name_problem(value)
        if problem:
            raise pytest.UsageError(f"{source}: {problem}")
        values.append(value)
    do, kv, flag = values
    inis = [SETTINGS[key].ini for key in BINDING_KEYS]
    problem = same_names_problem((do, kv, flag), f"ini {inis[0]}, {inis[1]} and {inis[2]}")
    if problem:
        raise pytest.UsageError(problem)
    return BindingNames(do=do, kv=kv, flag=flag)


def resolve_settings(
    config: pytest.Config,
    *,
    before_user_code: Callable[[DualCacheSettings], None] | None = None,
) -> DualCacheSettings:
    """Read and validate every option and ini key; raise ``pytest.UsageError`` on a bad one.

    ``before_user_code`` gets the settings known before the factories' modules are imported
    (a Worker's DAL module may import ``js`` at its top: the runtime shim must be in first).
    """
    enabled = bool(_value(config, "enabled")[0])
    redis_url = _redis_url(config, check=enabled)
    wrangler = _wrangler_config(config)
    shim = given(config, "workers_shim")
    if shim is not None and shim[0] not in SHIM_CHOICES:
        raise pytest.UsageError(f"{shim[1]}: {shim[0]!r} is not one of {', '.join(SHIM_CHOICES)}")
    settings = DualCacheSettings(
        enabled=enabled,
        names=_binding_names(config),
        kv_plan=_choice(config, "kv_plan", KV_PLAN_CHOICES),  # type: ignore[arg-type]
        do_engine="redis" if redis_url else _choice(config, "do_engine", DO_ENGINE_CHOICES),
        examples=_value(config, "examples")[0],
        redis_url=redis_url,
        kv_budget_spec=_value(config, "kv_budget")[0],
        dal_modules=tuple(_value(config, "dal_modules")[0]),
        kv_allow=tuple(_value(config, "kv_allow")[0]),
        wrangler=wrangler,
        workers_shim=wrangler is not None if shim is None else shim[0] == "on",
        latency=_latency(config),
    )
    if before_user_code is not None:
        before_user_code(settings)
    if not enabled:
        named = [SETTINGS[name].option for name in GATE_OPTIONS if given(config, name)]
        if named:
            message = f"{', '.join(map(str, named))} only work together with --dualcache"
            raise pytest.UsageError(message)
        return settings
    return _resolve_session_settings(config, settings)


def _resolve_session_settings(
    config: pytest.Config, settings: DualCacheSettings
) -> DualCacheSettings:
    """``settings`` with what only ``--dualcache`` needs: factories, budget, report, gate."""
    from .baseline import BaselineError, Growth, load_baseline
    from .budget import BudgetError, KVBudget
    from .factories import check_dal_modules, registered_factories, waivers_of
    from .output_files import output_problem
    from .slo import Objectives, SLOError

    specs, source = _value(config, "factories")
    hooked = config.hook.pytest_dualcache_factories(config=config)
    factories = registered_factories(list(specs), source, hooked)
    unimported = check_dal_modules(settings.dal_modules, f"ini {SETTINGS['dal_modules'].ini}")
    waive, waive_source = _value(config, "waive")
    waivers = waivers_of(factories, list(waive), waive_source)
    modules = {getattr(factory, "__module__", None) for factory in factories.values()}
    modules.update(settings.dal_modules)
    try:
        budget = KVBudget.parse(settings.kv_budget_spec, f"ini {SETTINGS['kv_budget'].ini}")
        slo = Objectives.parse(_value(config, "slo")[0] or "", f"ini {SETTINGS['slo'].ini}")
        if slo is not None:
            slo.check_measurable(latency_on=settings.latency is not None)
    except (BudgetError, SLOError) as exc:
        raise pytest.UsageError(str(exc)) from None
    growth, source = _value(config, "max_growth")
    try:
        max_growth = Growth.parse(growth)
    except ValueError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from None
    baseline = None
    if (found := given(config, "baseline")) is not None:
        try:
            baseline = load_baseline(Path(found[0]))
        except BaselineError as exc:
            raise pytest.UsageError(f"{found[1]}: {exc}") from None
    max_cost_growth = _cost_limit(config, baseline_given=baseline is not None)
    outputs: dict[str, Path | None] = {}
    for name in ("report_path", "html_path", "md_path", "save_baseline"):
        found = given(config, name)
        outputs[name] = Path(found[0]) if found else None
        problem = output_problem(outputs[name]) if found else None
        # xdist workers write nothing: the controller checked already.
        if problem and not hasattr(config, "workerinput"):
            raise pytest.UsageError(f"{found[1]}: {problem}")  # type: ignore[index]
    return replace(
        settings,
        shard=_shard(config),
        factories=factories,
        factories_registered=bool(specs) or any(map(dict, hooked)),
        suite=bool(_value(config, "suite")[0]),
        unimported_dal_modules=tuple(unimported),
        waivers=waivers,
        dal_modules=tuple(sorted(name for name in modules if name)),
        kv_budget=budget,
        slo=slo,
        baseline=baseline,
        max_growth=max_growth,
        max_cost_growth=max_cost_growth,
        **outputs,
    )


def _cost_limit(config: pytest.Config, *, baseline_given: bool) -> CostLimit | None:
    """``--dualcache-max-cost-growth`` as a ``CostLimit`` (None when not given); it compares
    with the baseline's bill, so it needs ``--dualcache-baseline``."""
    from .bill import CostLimit

    found = given(config, "max_cost_growth")
    if found is None:
        return None
    if not baseline_given:
        option = SETTINGS["baseline"].option
        raise pytest.UsageError(f"{found[1]}: needs {option} (the bill to compare with)")
    try:
        return CostLimit.parse(str(found[0]), found[1])
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def _latency(config: pytest.Config) -> LatencyModel | None:
    """``dualcache_latency`` as a model (None for ``off``); resolved in every session, since
    the fixtures spend it with or without ``--dualcache``. ``off`` imports nothing."""
    value, source = _value(config, "latency")
    if value == "off":
        return None
    from .latency import resolve

    try:
        return resolve(str(value), source, config.rootpath)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def _shard(config: pytest.Config) -> tuple[int, int] | None:
    """``--dualcache-shard`` as ``(I, N)``, or None when not given."""
    from .shards import ShardError, parse_shard

    found = given(config, "shard")
    if found is None:
        return None
    try:
        return parse_shard(found[0], found[1])
    except ShardError as exc:
        raise pytest.UsageError(str(exc)) from None


def _wrangler_config(config: pytest.Config) -> WranglerConfig | None:
    """The wrangler config ``dualcache_wrangler_config`` names, else the one in the rootdir,
    read for ``dualcache_wrangler_env``; None when there is none. A file that cannot be used
    is a ``pytest.UsageError`` naming the file and key (its classes load on first use)."""
    found = given(config, "wrangler_config")
    environment = given(config, "wrangler_env")
    if found is None:
        candidates = (config.rootpath / name for name in WRANGLER_CONFIG_NAMES)
        path = next((candidate for candidate in candidates if candidate.is_file()), None)
        if path is None:
            if environment is not None:
                raise pytest.UsageError(f"{environment[1]}: no wrangler config was found")
            return None
    else:
        path = config.rootpath / found[0]
        if not path.is_file():
            raise pytest.UsageError(f"{found[1]}: {path} is not a file")
    from .runtime.wrangler import WranglerConfigError, read_config

    try:
        return read_config(path, environment[0] if environment else None)
    except WranglerConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def _redis_url(config: pytest.Config, *, check: bool) -> str | None:
    """``--dualcache-redis-url``, else ``$DUALCACHE_REDIS_URL``.

    Checked (scheme and a PING) under ``--dualcache`` or when given on the command line; a
    variable exported for other projects never stops a session that does not use dualcache
    (a fixture that uses it then fails on its first Redis call instead).
    """
    found = given(config, "redis_url")
    if found is None:
        return None
    url, source = found
    if not check and source == f"${SETTINGS['redis_url'].env}":
        return url
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise pytest.UsageError(f"{source}: {url!r} is not a redis://, rediss:// or unix:// URL")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        raise pytest.UsageError(f"{source}: cannot reach Redis at {url}: {exc}") from None
    return url
