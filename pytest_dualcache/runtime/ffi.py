"""What Pyodide gives a Python Worker for JavaScript values: ``pyodide.ffi`` and ``js``.

In a Python Worker, a binding's JavaScript result arrives as a ``JsProxy`` that user code
turns into Python with ``to_py()``; Python values go the other way through ``to_js``. Here
there is no JavaScript: ``to_js`` returns its argument, and a binding's result is a Python
container that also carries ``to_py()`` (``JsDict``, ``JsArray``, ``JsSet``, ``JsBuffer``),
so code written for Pyodide and code written for plain Python both run. ``js`` holds the
few globals Cloudflare's Python examples reach for: ``Object.fromEntries``, ``JSON`` and
``Date.now()`` (on the virtual clock of the Durable Object or Worker being run).
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pytest_dualcache.jsvalues import js_json_stringify

if TYPE_CHECKING:
    from pytest_dualcache.clock import VirtualClock

#: ``pyodide.__version__`` as Cloudflare's current Python Workers report it (workerd
#: ``build/python_metadata.bzl``, the newest Pyodide release it bundles).
PYODIDE_VERSION = "0.28.2"

#: The clock the runtime code being run reads through ``js.Date.now()``; the runtime sets
#: it while it runs a Durable Object's (or Worker's) code. Unset: ``time.time()``.
RUNTIME_CLOCK: contextvars.ContextVar[VirtualClock | None] = contextvars.ContextVar(
    "dualcache_runtime_clock", default=None
)


class JsException(Exception):
    """A JavaScript error as Pyodide raises it: ``str()`` is ``"<name>: <message>"``.

    Subclasses set ``name`` (``RangeError``, ``DataCloneError``...), as the JS error's.
    """

    name = "Error"

    @property
    def message(self) -> str:
        """The JavaScript error's message, without its name."""
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


class JsTypeError(JsException, TypeError):
    """A JavaScript ``TypeError``: both ``except TypeError`` and ``except JsException`` see it."""

    name = "TypeError"


class JsRangeError(JsException, ValueError):
    """A JavaScript ``RangeError`` (a ``ValueError``, as the Workers SDK maps it)."""

    name = "RangeError"


class DataCloneError(JsException):
    """A value that structured clone (RPC arguments and results, storage values) refuses."""

    name = "DataCloneError"


class JsProxy:
    """Marks a value standing for a JavaScript object; each kind below has ``to_py()``."""

    __slots__ = ()


class JsDict(dict, JsProxy):  # type: ignore[type-arg]
    """A JavaScript object or ``Map`` (a storage ``get``/``list`` result): a dict with
    ``to_py()``, ``size``, ``has()`` and keys readable as attributes (``obj.count``)."""

    def to_py(self, *, depth: int = -1, default_converter: Any = None) -> dict[Any, Any]:
        """A plain dict of the same items."""
        return dict(self)

    def as_object_map(self) -> JsDict:
        """Pyodide's mapping view of a JS object: this dict already is one."""
        return self

    @property
    def size(self) -> int:
        """``Map.size``."""
        return len(self)

    def has(self, key: object) -> bool:
        """``Map.has(key)``."""
        return key in self

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class JsArray(list, JsProxy):  # type: ignore[type-arg]
    """A JavaScript ``Array``: a list with ``to_py()`` and ``length``."""

    def to_py(self, *, depth: int = -1, default_converter: Any = None) -> list[Any]:
        """A plain list of the same items."""
        return list(self)

    @property
    def length(self) -> int:
        """``Array.length``."""
        return len(self)


class JsSet(set, JsProxy):  # type: ignore[type-arg]
    """A JavaScript ``Set``: a set with ``to_py()`` and ``size``."""

    def to_py(self, *, depth: int = -1, default_converter: Any = None) -> set[Any]:
        """A plain set of the same items."""
        return set(self)

    @property
    def size(self) -> int:
        """``Set.size``."""
        return len(self)


class JsBuffer(bytes, JsProxy):
    """A JavaScript ``Uint8Array``: bytes whose ``to_py()`` is a memoryview, as Pyodide's."""

    def to_py(self, *, depth: int = -1, default_converter: Any = None) -> memoryview:
        """A memoryview of the bytes (what Pyodide's ``Uint8Array.to_py()`` gives)."""
        return memoryview(bytes(self))

    def to_bytes(self) -> bytes:
        """The bytes themselves."""
        return bytes(self)


def as_js(value: Any) -> Any:
    """``value`` as a binding hands it to Python code: containers as proxies with ``to_py``."""
    if isinstance(value, JsProxy):
        return value
    if isinstance(value, dict):
        return JsDict(value)
    if isinstance(value, list):
        return JsArray(value)
    if isinstance(value, set):
        return JsSet(value)
    if isinstance(value, bytes):
        return JsBuffer(value)
    return value


def to_js(
    obj: Any,
    /,
    *,
    depth: int = -1,
    pyproxies: Any = None,
    create_pyproxies: bool = True,
    dict_converter: Any = None,
    default_converter: Any = None,
    eager_converter: Any = None,
) -> Any:
    """``obj`` itself: the bindings take Python values, so there is nothing to convert.

    Pyodide's options (``dict_converter=Object.fromEntries`` above all) are accepted, so code
    written for Cloudflare runs unchanged, and ignored: a dict stays a dict.
    """
    return obj


class _Object:
    """``js.Object``: only what Python Workers use it for."""

    @staticmethod
    def fromEntries(entries: Iterable[Any]) -> JsDict:
        """A JS object from ``(key, value)`` pairs: ``to_js``'s usual ``dict_converter``."""
        return JsDict(entries)


class _JSON:
    """``js.JSON``: ``stringify`` as JavaScript writes JSON, ``parse`` into proxies."""

    @staticmethod
    def stringify(value: Any) -> str:
        """Compact JSON text, numbers as JavaScript writes them."""
        return js_json_stringify(value.to_py() if isinstance(value, JsProxy) else value)

    @staticmethod
    def parse(text: str) -> Any:
        """The JSON value, its top-level container as a proxy with ``to_py()``."""
        return as_js(json.loads(text))


class _Date:
    """``js.Date``: ``now()`` in epoch milliseconds, on the runtime's virtual clock."""

    @staticmethod
    def now() -> int:
        """Milliseconds since the epoch: the running Durable Object's or Worker's clock."""
        clock = RUNTIME_CLOCK.get()
        seconds = time.time() if clock is None else clock.now()
        return int(seconds * 1000)


Object = _Object()
JSON = _JSON()
Date = _Date()
