"""The embedded store's working memory: what one statement may hold before it spills to disk.

chDB runs inside Pixel's store process, so its memory is that process's. Left to itself it spills a
GROUP BY to disk only once the process nears a share of the machine's RAM, so one report read from the
raw events on a large store grows the process by gigabytes (a cold dashboard's sessions grouped per session
and slot, with their event sets: bench/README.md, "The store's memory budget"): the owner's small server
swaps, or the kernel kills the store. With a budget the same statements spill their aggregation to
temporary files once it holds half of the budget: the answers are the same, a statement that outgrows the
budget is slower instead of larger.

The budget bounds the working state of aggregations, which is what grows with the events; the rest of the
process (the engine's caches, the columns of the rows being read, Python) comes on top. Statements run one
at a time on the store's session, so one statement's budget is the store's; the SQL console's session has
the budget too, and its own stricter limits on top (`api/sqlguard/console.py`).

A ClickHouse server is not bounded here: its memory is its operator's (`max_server_memory_usage`).
"""

from __future__ import annotations

from pixel.server.settings import STORE_MEMORY_MAX_MB

MIB = 1024 * 1024


def spill_settings(budget_mb: int) -> dict[str, int]:
    """The session settings bounding each statement's working memory to `budget_mb` MiB; none for 0."""
    if not 0 <= budget_mb <= STORE_MEMORY_MAX_MB:
        raise ValueError(f"the store's memory budget must be 0 to {STORE_MEMORY_MAX_MB} MiB, not {budget_mb}")
    if budget_mb == 0:
        return {}
    budget = budget_mb * MIB
    return {
        "max_bytes_before_external_group_by": budget // 2,
    }


def set_statements(budget_mb: int) -> list[str]:
    """`SET` statements applying `spill_settings` to a session."""
    return [f"SET {name} = {value}" for name, value in spill_settings(budget_mb).items()]
