"""Finding the DAL factories the contract suite runs against.

A factory is named by a spec ``"pkg.module:callable"``, optionally prefixed with a name
(``"migrated=pkg.module:make_dal"``); the name is what test ids carry. Specs come from
``--dualcache-factory`` (repeatable; replaces the ini list when given) or the
``dualcache_factory`` ini key, and projects may add more with the
``pytest_dualcache_factories`` hook. With none, the reference ``CacheAbstraction`` runs.
``settings.resolve_settings`` picks the specs and calls the hook; this module loads them,
checks the DAL modules and waivers, and calls each factory once on a scratch env
(``check_factories``) so that a factory that cannot make a DAL stops the session with one
error instead of a failure per clause.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .settings import DualCacheSettings

Factory = Callable[[Any], Any]
REFERENCE = ("reference", "pytest_dualcache.abstraction:CacheAbstraction")
#: What every DAL must have, callable (plain or ``async def``).
DAL_METHODS = ("put", "get", "delete")
#: How to register a factory, for the messages of a session that has none.
REGISTER_HINT = (
    'register yours with dualcache_factory = ["mine=mypkg.testing:make_dal"] or '
    "--dualcache-factory=mypkg.testing:make_dal"
)


def load_factory(spec: str, source: str) -> tuple[str, Factory]:
    """``(name, factory)`` for one spec; a bad spec is a UsageError saying why."""
    named = "=" in spec
    name, _, target = spec.rpartition("=") if named else ("", "", spec)
    name, target = name.strip(), target.strip()
    if named and not name:
        raise pytest.UsageError(
            f"{source}: {spec!r} has an empty factory name; write 'name=package.module:make_dal' "
            "or leave out the '='"
        )
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


def check_dal_modules(modules: Iterable[str], source: str) -> list[str]:
    """The ``modules`` not importable yet; a path given for a module is a UsageError now.

    A module that is not importable at startup may become so when pytest imports the test
    files beside it (rootdir-relative imports): ``check_imported`` decides after collection.
    """
    missing = []
    for name in modules:
        if "/" in name or "\\" in name or name.endswith(".py") or name.startswith("."):
            raise pytest.UsageError(
                f"{source}: {name!r} is a path; give the module's import name "
                "(mypkg.dal, not src/mypkg/dal.py)"
            )
        if not _importable(name):
            missing.append(name)
    return missing


def check_imported(modules: Iterable[str], source: str) -> None:
    """Raise a UsageError for the first of ``modules`` that still does not import."""
    for name in modules:
        if not _importable(name):
            raise pytest.UsageError(
                f"{source}: cannot import {name!r}; is its folder on sys.path (the pythonpath "
                "ini key), and is the name spelled as in an import statement?"
            )


def _importable(name: str) -> bool:
    import sys

    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a missing parent package, or an invalid name
        return False


@dataclass(frozen=True)
class Waiver:
    """A contract clause a factory knowingly does not meet, and why."""

    factory: str
    clause: str
    reason: str
    source: str


def waivers_of(
    factories: Mapping[str, Factory], entries: list[str], source: str
) -> tuple[Waiver, ...]:
    """Every waiver: each factory's ``dualcache_waive`` dict, then ``NAME:CLAUSE=REASON``
    ``entries`` (named by ``source``; an entry replaces an attribute's waiver of one clause).
    """
    from .contracts.clauses import CLAUSES

    found: dict[tuple[str, str], Waiver] = {}
    for name, factory in factories.items():
        declared = getattr(factory, "dualcache_waive", None)
        if declared is None:
            continue
        where = f"factory {name!r} ({_qualified(factory)}.dualcache_waive)"
        if not isinstance(declared, Mapping):
            raise pytest.UsageError(
                f"{where}: expected a dict of clause ID to reason, got {type(declared).__name__}"
            )
        for clause, reason in declared.items():
            found[name, clause] = _waiver(name, clause, reason, where, CLAUSES)
    for entry in entries:
        name, colon, rest = entry.partition(":")
        clause, equals, reason = rest.partition("=")
        if not colon or not equals:
            raise pytest.UsageError(
                f"{source}: cannot read {entry!r}; write NAME:CLAUSE=REASON, e.g. "
                "mine:FLIP-4=single instance per isolate"
            )
        name, clause = name.strip(), clause.strip()
        if name not in factories:
            raise pytest.UsageError(
                f"{source}: {entry!r} names no registered factory {name!r} (registered: "
                f"{', '.join(factories)})"
            )
        found[name, clause] = _waiver(name, clause, reason, f"{source} ({entry!r})", CLAUSES)
    order = {clause: index for index, clause in enumerate(CLAUSES)}
    return tuple(sorted(found.values(), key=lambda w: (w.factory, order[w.clause])))


def _waiver(
    name: str, clause: object, reason: object, where: str, clauses: Mapping[str, str]
) -> Waiver:
    if clause not in clauses:
        raise pytest.UsageError(
            f"{where}: unknown contract clause {clause!r}; known: {', '.join(clauses)}"
        )
    if not isinstance(reason, str) or not reason.strip():
        raise pytest.UsageError(f"{where}: waiving {clause} needs a reason (a non-empty string)")
    return Waiver(name, str(clause), reason.strip(), where)


def _qualified(factory: Factory) -> str:
    """``module.name`` of a factory, for messages."""
    module = getattr(factory, "__module__", None) or "?"
    return f"{module}.{getattr(factory, '__qualname__', type(factory).__name__)}"


def check_factories(factories: Mapping[str, Factory], settings: DualCacheSettings) -> None:
    """Call each factory once on a scratch env; a UsageError says what is wrong with one.

    The scratch envs record into a recorder of their own, so no test, report or baseline
    sees their operations; each env is closed afterwards.
    """
    for name, factory in factories.items():
        problem = _factory_problem(factory, settings)
        if problem:
            raise pytest.UsageError(
                f"dualcache factory {name!r} ({_qualified(factory)}): {problem}; the contract "
                "suite needs make_dal(env) to return an object with callable put, get and "
                "delete (plain or async def)"
            )


def _factory_problem(factory: Factory, settings: DualCacheSettings) -> str | None:
    """Why ``factory`` does not make a DAL on a scratch env, or None if it does."""
    import asyncio

    from .clock import VirtualClock
    from .env import DualCacheEnv
    from .recorder import Recorder

    scratch = Recorder()
    previous = scratch.activate()
    loop: asyncio.AbstractEventLoop | None = None
    env = None
    try:
        env = DualCacheEnv.from_settings(settings, VirtualClock())
        try:
            dal = factory(env)
            if inspect.isawaitable(dal):
                loop = asyncio.new_event_loop()
                dal = loop.run_until_complete(dal)  # type: ignore[arg-type]
        except Exception as exc:
            return f"raised {type(exc).__name__}: {exc} when called on a fresh env"
        if dal is None:
            return "returned None"
        missing = [method for method in DAL_METHODS if not hasattr(dal, method)]
        if missing:
            names = ", ".join(missing)
            return f"returned an instance of {type(dal).__name__} without {names}"
        uncallable = [method for method in DAL_METHODS if not callable(getattr(dal, method))]
        if uncallable:
            verb = "is" if len(uncallable) == 1 else "are"
            names = ", ".join(uncallable)
            return f"returned an instance of {type(dal).__name__} whose {names} {verb} not callable"
        return None
    finally:
        if env is not None:
            env.close()
        if loop is not None:
            loop.close()
        Recorder.restore(previous)
