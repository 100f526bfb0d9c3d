"""Fallback clauses: routing by the flag, KV writes kept off the DO route, degraded stores."""

from __future__ import annotations

from .clauses import clause
from .harness import ContractHarness


class FallbackClauses:
    """FB-1 to FB-7."""

    @clause("FB-1")
    def test_FB_1_flag_off_writes_go_to_kv_and_never_touch_the_do(
        self, contract: ContractHarness
    ) -> None:
        dal = contract.start("kv")
        mark = contract.mark()
        assert dal.put("fb1:a", [1, 2, 3]).succeeded
        contract.advance(1)
        assert dal.get("fb1:a") == [1, 2, 3]
        dal.delete("fb1:a")
        assert dal.get("fb1:a") is None
        assert contract.ops_since(mark, store="do", ok=None) == [], "no DO operation with flag off"
        kv_puts = contract.ops_since(mark, store="kv", ops=("put",))
        assert [r.key for r in kv_puts if r.key == "fb1:a"], "the put must reach KV"
