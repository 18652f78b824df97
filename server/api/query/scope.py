"""What a report is about: the store (through its `QueryRunner`), the site, the range, the filters, whether
bots count, the site's own retention, and the report cache that may answer instead of the raw events.

Every report function in `reports` and `dashboard` takes a `Scope`; the routers build it per request
from the app's runner and cache (`deps.query_runner`, `deps.report_cache`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pixel.server.api.query.cache_sql import Days, whole_days
from pixel.server.api.query.filters import Filter, SqlParams, base_where
from pixel.server.api.query.periods import Range
from pixel.server.api.query.runner import QueryRunner

if TYPE_CHECKING:
    from pixel.server.api.query.report_cache import ReportCache

# The report caches hold few rows of heavy aggregate states (visitors sketches, quantile states): ClickHouse reads
# a part on one thread until a read covers `merge_tree_min_rows_for_concurrent_read` rows (its default is sized
# for plain columns), so a cached report merging the states of a few hundred thousand rows ran on one core. The
# caches' granules are small (`index_granularity` 1024): every read of them may take one thread per granule.
CACHE_READ_SETTINGS = "SETTINGS merge_tree_min_rows_for_concurrent_read = 1024"


@dataclass
class Scope:
    runner: QueryRunner
    site: str  # domain, as events carry it
    range: Range
    filters: list[Filter] = field(default_factory=list)
    include_bots: bool = False
    retention_days: int = (
        0  # the site's own retention (0: the store's); days past it read as empty when cached
    )
    cache: ReportCache | None = None  # None: every report reads the raw events

    def __post_init__(self) -> None:
        if self.cache is not None and self.cache.runner is not self.runner:
            raise ValueError("a scope's report cache must run on the scope's own runner (one store)")

    def where(self, params: SqlParams) -> str:
        return base_where(self.filters, params, include_bots=self.include_bots)

    def run(self, sql: str, params: SqlParams) -> list[dict[str, Any]]:
        """`sql` over the raw events, with the site and range parameters added to `params`."""
        fixed = {"site": self.site, **self.range.params}
        return self.runner.query(sql, params.with_fixed(**fixed)).dicts()

    def cached_days(self) -> Days | None:
        """The range as whole days of the report cache when the cache can answer (a cache, no filters, bots
        left out, midnight to midnight in the site's zone, its days built or cheap to build now), else None:
        read the raw events (a long build then runs in the background, see `ReportCache.ready`)."""
        if self.cache is None or self.filters or self.include_bots:
            return None
        days = whole_days(self.range)
        if days is None or not self.cache.ready(self, days):
            return None
        return days

    def ensure(self, days: Days) -> Days:
        """`days` (from `cached_days`) with their valid builds, building the days that have none."""
        if self.cache is None:
            raise ValueError("this scope has no report cache")
        return self.cache.ensure(self, days)

    def run_cached(self, sql: str, params: SqlParams | None = None) -> list[dict[str, Any]]:
        """`sql` over the report cache's tables, with the site and zone parameters added to `params`."""
        values = {"site": self.site, "tz": self.range.tz, **(params.values if params else {})}
        return self.runner.query(f"{sql}\n{CACHE_READ_SETTINGS}", values).dicts()
