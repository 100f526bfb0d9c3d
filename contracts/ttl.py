"""TTL clauses: expiry exact on both routes, defaults, sub-minute TTLs, overwrites, bad TTLs."""

from __future__ import annotations

import pytest

from .clauses import clause
from .harness import ROUTES, ContractHarness


class TTLClauses:
    """TTL-1 to TTL-6."""

    @clause("TTL-1")
    @pytest.mark.parametrize("route", ROUTES)
    @pytest.mark.parametrize("start_offset", [0.0, 0.5], ids=["on-the-second", "mid-second"])
    def test_TTL_1_readable_until_ttl_gone_at_ttl(
        self, contract: ContractHarness, route: str, start_offset: float
    ) -> None:
        dal = contract.start(route)
        contract.advance(start_offset)
        assert dal.put("ttl:1", {"v": 1}, ttl=120).succeeded
        contract.advance(119.999)
        assert dal.get("ttl:1") == {"v": 1}, "the value must be readable while elapsed < ttl"
        contract.advance(0.001)
        assert dal.get("ttl:1") is None, "the value must be gone once elapsed >= ttl"
