"""Finding the DAL factories the contract suite runs against.

A factory is named by a spec ``"pkg.module:callable"``, optionally prefixed with a name
(``"migrated=pkg.module:make_dal"``); the name is what test ids carry. Specs come from
``--dualcache-factory`` (repeatable; replaces the ini list when given) or the
``dualcache_factory`` ini key, and projects may add more with the
``pytest_dualcache_factories`` hook. With none, the reference ``CacheAbstraction`` runs.
``settings.resolve_settings`` picks the specs and calls the hook; this module loads them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

Factory = Callable[[Any], Any]
REFERENCE = ("reference", "pytest_dualcache.abstraction:CacheAbstraction")


def load_factory(spec: str, source: str) -> tuple[str, Factory]:
    """``(name, factory)`` for one spec; a bad spec is a UsageError saying why."""
    name, _, target = spec.rpartition("=") if "=" in spec else ("", "", spec)
    name, target = name.strip(), target.strip()
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise pytest.UsageError(
            f"{source}: {spec!r} is not a factory spec; write 'package.module:make_dal' "
            "(optionally 'name=package.module:make_dal')"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise pytest.UsageError(
            f"{source}: cannot import {module_name!r} for {spec!r} ({type(exc).__name__}: "
            f"{exc}); is its folder on sys.path (the pythonpath ini key)?"
        ) from None
    factory: Any = module
    for part in attribute.split("."):
        try:
            factory = getattr(factory, part)
        except AttributeError:
            raise pytest.UsageError(
                f"{source}: module {module_name!r} has no attribute {attribute!r} ({spec!r})"
            ) from None
    if not callable(factory):
        raise pytest.UsageError(
            f"{source}: {spec!r} names a {type(factory).__name__}, not a callable factory"
        )
    return name or target, factory


def registered_factories(
    specs: list[str], source: str, hooked: Iterable[Mapping[str, Any]]
) -> dict[str, Factory]:
    """Every registered factory by name: ``specs`` (named by ``source``), then hook results."""
    factories: dict[str, Factory] = {}
    for spec in specs:
        name, factory = load_factory(spec, source)
        if name in factories:
            raise pytest.UsageError(f"{source}: two factories are named {name!r}")
        factories[name] = factory
    for extra in hooked:
        for name, factory in dict(extra).items():
            if not callable(factory):
                raise pytest.UsageError(
                    f"pytest_dualcache_factories: {name!r} is a {type(factory).__name__}, "
                    "not a callable factory"
                )
            if name in factories:
                raise pytest.UsageError(f"pytest_dualcache_factories: {name!r} is registered twice")
            factories[name] = factory
    if not factories:
        name, factory = load_factory(f"{REFERENCE[0]}={REFERENCE[1]}", "the reference")
        factories[name] = factory
    return factories
