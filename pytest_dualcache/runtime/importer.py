"""The import hook that gives a Python Worker its runtime modules: ``workers``, ``pyodide``,
``pyodide.ffi`` and ``js``.

``install()`` appends a finder at the *end* of ``sys.meta_path``, so it answers only for a
name no other finder has: a user's own ``workers`` module (or a real ``pyodide``) on the
path always wins, and a ``pyodide`` found elsewhere keeps its own submodules. Nothing is
imported or put in ``sys.modules`` until user code imports one of the names (libraries
detect Pyodide by importing it, so a fake one sitting in ``sys.modules`` would change what
they do). Each module is a fresh module object holding the runtime's own classes.
This module imports nothing from the runtime itself: installing the hook is cheap.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType

_RUNTIME = "pytest_dualcache.runtime"

#: Each module the hook provides: its public name -> ``"module:attribute"`` of the runtime.
SHIM_MODULES: dict[str, dict[str, str]] = {
    "workers": {
        "WorkerEntrypoint": f"{_RUNTIME}.entrypoints:WorkerEntrypoint",
        "DurableObject": f"{_RUNTIME}.entrypoints:DurableObject",
        "handler": f"{_RUNTIME}.entrypoints:handler",
        "Request": f"{_RUNTIME}.http:Request",
        "Response": f"{_RUNTIME}.http:Response",
        "FetchResponse": f"{_RUNTIME}.http:FetchResponse",
        "fetch": f"{_RUNTIME}.http:fetch",
    },
    "pyodide": {"__version__": f"{_RUNTIME}.ffi:PYODIDE_VERSION"},
    "pyodide.ffi": {
        "to_js": f"{_RUNTIME}.ffi:to_js",
        "JsProxy": f"{_RUNTIME}.ffi:JsProxy",
        "JsException": f"{_RUNTIME}.ffi:JsException",
        "JsArray": f"{_RUNTIME}.ffi:JsArray",
        "JsMap": f"{_RUNTIME}.ffi:JsDict",
        "JsBuffer": f"{_RUNTIME}.ffi:JsBuffer",
    },
    "js": {
        "Object": f"{_RUNTIME}.ffi:Object",
        "JSON": f"{_RUNTIME}.ffi:JSON",
        "Date": f"{_RUNTIME}.ffi:Date",
    },
}
_PACKAGES = frozenset({"pyodide"})
#: Set on every module the hook made, so ``uninstall`` removes only those.
MARKER = "__dualcache_shim__"


class _ShimLoader(importlib.abc.Loader):
    """Fills a new module with the runtime's objects named in ``SHIM_MODULES``."""

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return None  # the default: a fresh module object

    def exec_module(self, module: ModuleType) -> None:
        contents = SHIM_MODULES[module.__name__]
        for public, target in contents.items():
            module_name, _, attribute = target.partition(":")
            setattr(module, public, getattr(importlib.import_module(module_name), attribute))
        module.__all__ = [name for name in contents if not name.startswith("__")]  # type: ignore[attr-defined]
        setattr(module, MARKER, True)


class WorkersShimFinder(importlib.abc.MetaPathFinder):
    """Finds the runtime's modules, and only those no finder before it could find."""

    _loader = _ShimLoader()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in SHIM_MODULES:
            return None
        parent = fullname.rpartition(".")[0]
        if parent and not getattr(sys.modules.get(parent), MARKER, False):
            return None  # a submodule of someone else's package is theirs to provide
        return importlib.util.spec_from_loader(
            fullname, self._loader, is_package=fullname in _PACKAGES
        )


_FINDER = WorkersShimFinder()


def is_installed() -> bool:
    """Whether the hook is on ``sys.meta_path``."""
    return _FINDER in sys.meta_path


def install() -> None:
    """Put the hook at the end of ``sys.meta_path`` (a no-op if it is there)."""
    if not is_installed():
        sys.meta_path.append(_FINDER)


def uninstall() -> None:
    """Take the hook off ``sys.meta_path`` and forget the modules it made (a no-op if none)."""
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    for name in SHIM_MODULES:
        if getattr(sys.modules.get(name), MARKER, False):
            del sys.modules[name]


@contextmanager
def workers_shim() -> Iterator[None]:
    """The hook installed inside the block; afterwards as it was before."""
    was_installed = is_installed()
    install()
    try:
        yield
    finally:
        if not was_installed:
            uninstall()
