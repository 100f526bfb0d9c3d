"""The legacy DAL's factory, registered for the contract suite as a known failure.

It lives outside ``tft_trading.legacy`` on purpose: a factory's module becomes a "DAL
module", and KV writes whose stack passes through it count as going through the cache layer.
This module only builds the DAL, so the legacy code's direct KV writes stay bypasses in the
report, as they were in the seed's ``dal.ts``, ``data.ts`` and ``kv-utils.ts``.
"""

from __future__ import annotations

from typing import Any

from tft_trading.legacy import DataAccessLayer
from tft_trading.legacy import make_dal as make_legacy_dal


def make_dal(env: Any) -> DataAccessLayer:
    """The pre-migration DAL on ``env``."""
    return make_legacy_dal(env)


#: The contract suite runs it as xfail: it shows what the migration fixed.
make_dal.dualcache_expected_failure = (  # type: ignore[attr-defined]
    "the pre-migration DAL writes KV directly and has no route generations: it breaks the "
    "contract by design"
)
