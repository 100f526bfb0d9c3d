"""Wall time of a simulated trading week per DAL version, and the week's KV figures.

Run it from anywhere: ``python examples/market_dal/bench_week.py``. The figures come from
one run on this machine; the tests assert the budgets, never the timings.
"""

from __future__ import annotations

import sys

from workload import VERSIONS, replay

from pytest_dualcache import BindingNames, DualCacheEnv

NAMES = BindingNames(do="CACHE_DO", kv="MARKET_ANALYSIS_CACHE", flag="FEATURE_FLAG_DO_CACHE")


def main(days: int = 7) -> None:
    """Replay ``days`` days against each version on a fresh env and print the figures."""
    summary = []
    for version in VERSIONS:
        env = DualCacheEnv(names=NAMES)
        week = replay(version, env, days=days)
        print(week.table(), end="\n\n")
        per_day = week.kv_writes_per_day.values()
        summary.append(
            f"{version:<9} {week.wall_seconds:6.2f} s wall for {days} simulated days; "
            f"KV writes a day {min(per_day)}..{max(per_day)}; DO hit rate "
            f"{week.do_hit_rate:.1%}; writes routed to the DO {week.do_route_share:.1%}"
        )
    print("\n".join(summary))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
