"""pytest-dualcache: emulators, fixtures and a contract suite for two-tier cache layers.

The public names load on first use, so ``import pytest_dualcache`` (which pytest does for
every session through the plugin entry point) imports no backend.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clock import VirtualClock
    from .durable import (
        DOStats,
        DurableObjectCache,
        DurableObjectError,
        DurableObjectLimitError,
        MemoryEngine,
        RedisEngine,
    )
    from .env import DualCacheEnv, FeatureFlag, is_do_cache_enabled
    from .kv import (
        KVError,
        KVKey,
        KVListResult,
        KVNamespace,
        KVQuotaError,
        KVRateLimitError,
        KVValidationError,
        KVValueWithMetadata,
    )
    from .ledger import CallSite, Ledger, OperationRecord
    from .settings import BindingNames
    from .workers import WorkersDurableObjectCache, WorkersEnv, WorkersKV

__all__ = [
    "BindingNames",
    "CallSite",
    "DOStats",
    "DualCacheEnv",
    "DurableObjectCache",
    "DurableObjectError",
    "DurableObjectLimitError",
    "FeatureFlag",
    "KVError",
    "KVKey",
    "KVListResult",
    "KVNamespace",
    "KVQuotaError",
    "KVRateLimitError",
    "KVValidationError",
    "KVValueWithMetadata",
    "Ledger",
    "MemoryEngine",
    "OperationRecord",
    "RedisEngine",
    "VirtualClock",
    "WorkersDurableObjectCache",
    "WorkersEnv",
    "WorkersKV",
    "is_do_cache_enabled",
]

#: Which module defines each public name (imported on first access).
_MODULES = ("clock", "settings", "durable", "env", "kv", "ledger", "workers")


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'pytest_dualcache' has no attribute {name!r}")
    for module_name in _MODULES:
        module = importlib.import_module(f".{module_name}", __name__)
        if name in vars(module):
            globals()[name] = value = vars(module)[name]
            return value
    raise AttributeError(name)  # pragma: no cover - __all__ names are all defined


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
