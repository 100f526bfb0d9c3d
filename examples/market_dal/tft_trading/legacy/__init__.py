"""The trading system's data layer before the migration: the seed's "before".

It breaks the contract by design (its writes go to KV with the flag on): the example
registers it through ``legacy_factory.py`` as an expected failure. That module, not this
package, is the registered one, which keeps its direct KV writes bypasses in the
``pytest --dualcache`` report.
"""

from __future__ import annotations

from typing import Any

from .dal import DataAccessLayer


def make_dal(env: Any) -> DataAccessLayer:
    """The legacy DAL on ``env``, its retry backoff sleeping on the env's virtual clock."""
    return DataAccessLayer(env, sleep=env.clock.sleep)
