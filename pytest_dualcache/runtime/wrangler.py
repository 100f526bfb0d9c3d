"""The wrangler config a Python Worker deploys with, read for the bindings a test needs.

``read_config`` reads ``main``, ``kv_namespaces``, ``durable_objects.bindings``,
``migrations`` and ``vars``, of one ``[env.NAME]`` section if asked. TOML goes through the
standard library's ``tomllib``; JSONC (comments, trailing commas) through ``json5``, a
maintained parser of a superset of JSONC, imported only for such a file.
``WranglerConfig.load()`` imports the Worker's ``main`` module and finds its classes. A
config that cannot be read, or names a class or module that is not there, raises
``WranglerConfigError`` naming the file and the key.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from pytest_dualcache.limits import DO_DEFAULT_STORAGE_BACKEND, DO_STORAGE_LIMITS

#: The class a Python Worker's ``main`` exports as its default entrypoint.
ENTRYPOINT_CLASS = "Default"


class WranglerConfigError(ValueError):
    """A wrangler config that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class WorkerModule:
    """What ``main`` provides: the module, its entrypoint and its Durable Object classes."""

    #: The imported ``main``; None for a config without one (bindings only, no Worker).
    module: ModuleType | None
    #: ``class Default(WorkerEntrypoint)``, or None for a module of ``on_fetch`` handlers.
    entrypoint: type | None
    #: ``{binding: (class, storage backend)}``, for ``build_namespaces``.
    durable_objects: dict[str, tuple[type, str]]


@dataclass(frozen=True)
class WranglerConfig:
    """One wrangler config, for one environment (None: the top level)."""

    path: Path
    environment: str | None
    #: The Worker's module, resolved against the config's folder (None if not given).
    main: Path | None
    #: ``{binding: namespace id}`` (the id None when the config gives none).
    kv_namespaces: dict[str, str | None]
    #: ``{binding: class name}``.
    durable_objects: dict[str, str]
    #: ``{class name: migration key}``: ``new_classes`` or ``new_sqlite_classes``.
    storage_backends: dict[str, str]
    vars: dict[str, Any]
    _loaded: list[WorkerModule] = field(default_factory=list, compare=False, repr=False)

    def where(self, key: str) -> str:
        """How a message names ``key``: the file and the key (inside ``env.NAME``)."""
        prefix = f"env.{self.environment}." if self.environment else ""
        return f"{self.path}: {prefix}{key}"

    def kv_namespace_ids(self) -> dict[str, str]:
        """``{binding: id}`` of the KV namespaces that have an id."""
        return {name: ns_id for name, ns_id in self.kv_namespaces.items() if ns_id}

    def load(self) -> WorkerModule:
        """Import ``main`` (its folder first on ``sys.path``, as Python Workers import it) and
        find each Durable Object class in it; done once."""
        if self._loaded:
            return self._loaded[0]
        if self.main is None:
            if self.durable_objects:
                raise WranglerConfigError(
                    f"{self.where('main')}: missing; the Durable Object classes of "
                    f"durable_objects.bindings live in the Worker's main module"
                )
            loaded = WorkerModule(None, None, {})
        else:
            loaded = self._import_main(self.main)
        self._loaded.append(loaded)
        return loaded

    def _import_main(self, main: Path) -> WorkerModule:
        if main.suffix != ".py" or not main.is_file():
            raise WranglerConfigError(
                f"{self.where('main')}: {main} is not a Python module (a Python Worker's main "
                "is a .py file, e.g. src/entry.py)"
            )
        folder = str(main.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        try:
            module = importlib.import_module(main.stem)
        except Exception as exc:
            raise WranglerConfigError(
                f"{self.where('main')}: importing {main} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if Path(getattr(module, "__file__", "") or "").resolve() != main.resolve():
            raise WranglerConfigError(
                f"{self.where('main')}: `import {main.stem}` found {module.__file__}, not "
                f"{main}: rename one of them"
            )
        classes: dict[str, tuple[type, str]] = {}
        for index, (binding, class_name) in enumerate(self.durable_objects.items()):
            cls = getattr(module, class_name, None)
            if not isinstance(cls, type):
                raise WranglerConfigError(
                    f"{self.where(f'durable_objects.bindings[{index}].class_name')}: "
                    f"{class_name!r} is not a class of {main}"
                )
            backend = self.storage_backends.get(class_name, DO_DEFAULT_STORAGE_BACKEND)
            classes[binding] = (cls, backend)
        entrypoint = getattr(module, ENTRYPOINT_CLASS, None)
        return WorkerModule(module, entrypoint if isinstance(entrypoint, type) else None, classes)


def read_config(path: Path, environment: str | None = None) -> WranglerConfig:
    """``path`` read for ``environment`` (its ``[env.NAME]`` section; None: the top level)."""
    try:
        raw = _parse(path)
    except (OSError, ValueError) as exc:
        raise WranglerConfigError(f"{path}: cannot read it: {exc}") from None
    if not isinstance(raw, dict):
        raise WranglerConfigError(f"{path}: the config must be an object (a table)")
    section = raw
    if environment:
        section = _table(raw.get("env"), path, "env").get(environment)
        if not isinstance(section, dict):
            raise WranglerConfigError(f"{path}: env.{environment}: no such environment")
    reader = _Reader(path, environment)
    # An [env.NAME] section inherits main, not bindings or vars (wrangler's "non-inheritable
    # keys": developers.cloudflare.com/workers/wrangler/environments/); migrations are global.
    main = section.get("main", raw.get("main"))
    return WranglerConfig(
        path=path,
        environment=environment,
        main=None if main is None else path.parent / reader.string(main, "main"),
        kv_namespaces=reader.kv_namespaces(section.get("kv_namespaces", [])),
        durable_objects=reader.durable_objects(section.get("durable_objects", {})),
        storage_backends=_Reader(path, None).migrations(raw.get("migrations", [])),
        vars=dict(_table(section.get("vars", {}), path, reader.key("vars"))),
    )


def _parse(path: Path) -> Any:
    if path.suffix == ".toml":
        import tomllib

        with path.open("rb") as file:
            return tomllib.load(file)
    import json5

    return json5.loads(path.read_text(encoding="utf-8"))


def _table(value: object, path: Path, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise WranglerConfigError(f"{path}: {key}: expected a table, got {value!r}")
    return value


class _Reader:
    """Checks each entry of one section, naming the file and key of what is wrong."""

    def __init__(self, path: Path, environment: str | None) -> None:
        self.path = path
        self.prefix = f"env.{environment}." if environment else ""

    def key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, problem: str) -> WranglerConfigError:
        return WranglerConfigError(f"{self.path}: {self.key(key)}: {problem}")

    def string(self, value: object, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a non-empty string, got {value!r}")
        return value

    def entries(self, value: object, key: str) -> list[Mapping[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise self.fail(key, f"expected a list of tables, got {value!r}")
        return value

    def binding(self, entry: Mapping[str, Any], key: str, seen: set[str]) -> str:
        name = self.string(entry.get(key.rpartition(".")[2]), key)
        if not name.isidentifier():
            raise self.fail(key, f"{name!r} is not a valid binding name (a Python identifier)")
        if name in seen:
            raise self.fail(key, f"binding {name} is declared twice")
        seen.add(name)
        return name

    def kv_namespaces(self, value: object) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for index, entry in enumerate(self.entries(value, "kv_namespaces")):
            key = f"kv_namespaces[{index}]"
            binding = self.binding(entry, f"{key}.binding", set(found))
            namespace_id = entry.get("id")
            if namespace_id is not None:
                namespace_id = self.string(namespace_id, key + ".id")
            found[binding] = namespace_id
        return found

    def durable_objects(self, value: object) -> dict[str, str]:
        table = _table(value, self.path, self.key("durable_objects"))
        found: dict[str, str] = {}
        entries = self.entries(table.get("bindings", []), "durable_objects.bindings")
        for index, entry in enumerate(entries):
            key = f"durable_objects.bindings[{index}]"
            if entry.get("script_name"):
                raise self.fail(
                    key + ".script_name",
                    "a Durable Object of another Worker is not supported: only classes of this "
                    "Worker's main module run in-process",
                )
            binding = self.binding(entry, f"{key}.name", set(found))
            found[binding] = self.string(entry.get("class_name"), key + ".class_name")
        return found

    def migrations(self, value: object) -> dict[str, str]:
        backends: dict[str, str] = {}
        for index, entry in enumerate(self.entries(value, "migrations")):
            for backend in DO_STORAGE_LIMITS:
                names = entry.get(backend, [])
                key = f"migrations[{index}].{backend}"
                if not isinstance(names, list):
                    raise self.fail(key, f"expected a list of class names, got {names!r}")
                for name in names:
                    backends[self.string(name, key)] = backend
        return backends
