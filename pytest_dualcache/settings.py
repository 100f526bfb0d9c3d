"""Every dualcache setting, resolved in one place with one precedence.

Command line beats ini, ini beats the default. A bad value is a ``pytest.UsageError`` that
names where it came from ("ini dualcache_kv_plan: ..."), so a typo never reaches a test.
This module imports no backend: a session that does not use the plugin pays for nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .limits import KVPlan

KV_PLAN_CHOICES = ("free", "paid", "unlimited")
REDIS_URL_VARIABLE = "DUALCACHE_REDIS_URL"
DO_ENGINE_CHOICES = ("memory", "redis")

#: ini key -> (default, help). The ini keys are public API: keep the names.
INI_KEYS: dict[str, tuple[str, str]] = {
    "dualcache_do_binding": ("CACHE_DO", "binding name of the Durable Object cache"),
    "dualcache_kv_binding": ("CACHE_KV", "binding name of the Workers KV namespace"),
    "dualcache_flag_var": (
        "FEATURE_FLAG_DO_CACHE",
        'string var that routes cache traffic to the DO when it equals "true"',
    ),
    "dualcache_kv_plan": ("free", "KV limits to enforce: free, paid or unlimited"),
    "dualcache_do_engine": ("memory", "storage engine behind the DO cache: memory or redis"),
}


@dataclass(frozen=True)
class BindingNames:
    """Where an env keeps the DO binding, the KV binding and the feature flag var.

    Three different Python identifiers, since bindings and vars are read as env attributes.
    """

    do: str = "CACHE_DO"
    kv: str = "CACHE_KV"
    flag: str = "FEATURE_FLAG_DO_CACHE"

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

    enabled: bool = False
    names: BindingNames = BindingNames()
    kv_plan: KVPlan = "free"
    do_engine: str = "memory"
    #: Hypothesis examples per property / state-machine test of the contract suite.
    examples: int = 25
    #: A real Redis server for the DO cache (the redis engine); None: fakeredis.
    redis_url: str | None = None


def _ini(config: pytest.Config, name: str) -> tuple[str, str]:
    """The ini value (stripped) and a phrase naming its source for error messages."""
    value = config.getini(name)
    default = INI_KEYS[name][0]
    text = str(value).strip() if value is not None else ""
    return (text or default), f"ini {name}"


def _choice(config: pytest.Config, name: str, choices: tuple[str, ...]) -> str:
    value, source = _ini(config, name)
    if value not in choices:
        raise pytest.UsageError(f"{source}: {value!r} is not one of {', '.join(choices)}")
    return value


def _binding_name(config: pytest.Config, name: str) -> str:
    value, source = _ini(config, name)
    problem = binding_name_problem(value)
    if problem:
        raise pytest.UsageError(f"{source}: {problem}")
    return value


def resolve_settings(config: pytest.Config) -> DualCacheSettings:
    """Read and validate every option and ini key; raise ``pytest.UsageError`` on a bad one."""
    keys = ("dualcache_do_binding", "dualcache_kv_binding", "dualcache_flag_var")
    do, kv, flag = (_binding_name(config, key) for key in keys)
    problem = same_names_problem((do, kv, flag), f"ini {keys[0]}, {keys[1]} and {keys[2]}")
    if problem:
        raise pytest.UsageError(problem)
    names = BindingNames(do=do, kv=kv, flag=flag)
    enabled = bool(config.getoption("dualcache", default=False))
    redis_url = _redis_url(config, check=enabled)
    return DualCacheSettings(
        enabled=enabled,
        names=names,
        kv_plan=_choice(config, "dualcache_kv_plan", KV_PLAN_CHOICES),  # type: ignore[arg-type]
        do_engine="redis"
        if redis_url
        else _choice(config, "dualcache_do_engine", DO_ENGINE_CHOICES),
        examples=config.getoption("dualcache_examples", default=None) or 25,
        redis_url=redis_url,
    )


def _redis_url(config: pytest.Config, *, check: bool) -> str | None:
    """``--dualcache-redis-url``, else ``$DUALCACHE_REDIS_URL``.

    Checked (scheme and a PING) under ``--dualcache`` or when given on the command line; a
    variable exported for other projects never stops a session that does not use dualcache
    (a fixture that uses it then fails on its first Redis call instead).
    """
    url = config.getoption("dualcache_redis_url", default=None)
    source = "--dualcache-redis-url"
    if not url:
        url, source = os.environ.get(REDIS_URL_VARIABLE, ""), f"${REDIS_URL_VARIABLE}"
    url = url.strip()
    if not url:
        return None
    if not check and source.startswith("$"):
        return url
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise pytest.UsageError(f"{source}: {url!r} is not a redis://, rediss:// or unix:// URL")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        raise pytest.UsageError(f"{source}: cannot reach Redis at {url}: {exc}") from None
    return url
