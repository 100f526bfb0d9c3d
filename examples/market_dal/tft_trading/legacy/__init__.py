"""The trading system's data layer before the migration: the seed's "before".

Not a contract-suite factory: it fails the contract by design (its writes go to KV with
the flag on). It is not a registered DAL module either, which is what makes its direct
KV writes show up as bypasses in the ``pytest --dualcache`` report.
"""

from __future__ import annotations

from typing import Any

from .dal import DataAccessLayer


def make_dal(env: Any) -> DataAccessLayer:
    """The legacy DAL on ``env``, its retry backoff sleeping on the env's virtual clock."""
    return DataAccessLayer(env, sleep=env.clock.sleep)
