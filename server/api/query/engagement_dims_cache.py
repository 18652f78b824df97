"""The engagement report's per-day cache by event dimension: what `engagement_cache` holds, split by the
values of the event dimensions in `CARRIED_HERE` (country, device type, browser, OS, source, channel, the
five UTM fields, and hostname, referrer, medium, region, city, browser and OS versions, screen, language), so
that a report filtered on those dimensions reads cached rows instead of grouping the raw events by session.

Tables (schema migration 21; the UTM columns migration 25, the others migration 32), built, validated and
purged by the engagement cache's machinery (`engagement_cache.EngagementCache`, one instance per report cache
beside it, with its own builds table):
- `page_engagement_dims`: the page visits of the sessions whose page events in the build window share one
  local day and one value of every carried dimension, one row per visit (migration 27): its page, values,
  visitor, figures as plain values, and whether its session entered, bounced or left there. Split by all those
  dimensions, sums per (day, page, values) held nearly one row per visit anyway, and a filtered report spent
  its time merging each row's sketch and quantiles state; plain values are summed per page when read.
- `page_engagement_dims_edges`: the visits of every other session, one row per (day, session, page,
  values) with that part's figures, as `page_engagement_edges` holds them, and `mixed` (migration 33): bit i
  set when the session holds more than one value of the i-th dimension of `EngagementDimsCache.dims`, every
  bit when it lies on more than one day.
- `page_engagement_by_value` (migration 28): per (day, page), for each value of each dimension, the sums
  `page_engagement` holds (a visitors sketch, an exact quantiles state) of the whole visits of the build's
  one-day sessions with one value of that dimension: the first table's visits, and (migration 33) those of
  the edges' one-day sessions whose `mixed` bit of the dimension is clear, their parts merged per visit and
  their entry and exit placed over the session. So a session navigating inside the site (two channels, one
  country) is in the country's sums. A report filtered on one dimension (with any operator, and `page is`
  filters beside it) merges the sums of the values its filter keeps, a few rows per page and day, and the
  edges of the sessions that mix that dimension, instead of aggregating every visit it keeps; filters on two
  dimensions or more read the visits one by one.

Why a filter on the carried dimensions gives exactly the raw answer (filters apply to events): a session of
the first table has one value of each dimension, so a filter keeps all of its events or none, and its
rows are its whole contribution or nothing (and so are a value's sums for a filter on its dimension alone:
their sessions hold one value of it; the edges of every other session are read beside them); a row of the
second table is the part of a visit whose events share its values, so the filter keeps exactly the parts
whose events it keeps, and those parts are merged per
session and page (pageviews and engaged time summed: each event is in one part; first / last pageview,
deepest scroll, flags by min / max) before the session's entry, exit and pageviews are placed, as the raw
query does over the kept events. Copies of an event carry the same values, so they collapse in the build
as in `engagement_cache`. Any operator: `filters.filter_sql` gives the same condition on these columns
(named as the events' columns) as on the events.

Used when the report has filters, all on `CARRIED_HERE` dimensions, leaves bots out and covers whole days in
the site's zone; a report without filters reads `engagement_cache` (fewer rows); everything else reads the raw
events. Nothing here puts user text in SQL: filter values are parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pixel.server.api.query import engagement_cache
from pixel.server.api.query.cache_sql import Days
from pixel.server.api.query.content_cache import CARRIED
from pixel.server.api.query.engagement_cache import EngagementCache
from pixel.server.api.query.filters import DIMENSIONS, Filter, SqlParams, filter_sql, keyed_value_sql
from pixel.server.store.schema import CONTENT_LINKS_DIMENSIONS, OTHER_DIMENSIONS, UTM_DIMENSIONS

if TYPE_CHECKING:
    from pixel.server.api.query.report_cache import ReportCache

TABLES = ("page_engagement_dims", "page_engagement_dims_edges", "page_engagement_dims_builds")
BY_VALUE = "page_engagement_by_value"  # the whole-day visits summed per (day, dimension, value, page)
# The filter dimensions whose filters the cached rows answer: the link cache's, the UTM fields and the others of
# migration 32 (hostname, referrer, medium, region, city, versions, screen, language), by their API names. A
# session landing with UTM fields whose later pages have none mixes values: its visits go to the edges table.
_COLUMN_DIMENSIONS = {column: name for name, column in DIMENSIONS.items()}
CARRIED_HERE = CARRIED | frozenset(_COLUMN_DIMENSIONS[c] for c in (*UTM_DIMENSIONS, *OTHER_DIMENSIONS))


class EngagementDimsCache(EngagementCache):
    """The engagement cache by dimension beside one report cache (its runner, clock and settings)."""

    worker_name = "engagement-dims-cache"
    data_tables = (*TABLES[:2], BY_VALUE)
    builds_table = TABLES[2]
    dims = CONTENT_LINKS_DIMENSIONS + UTM_DIMENSIONS + OTHER_DIMENSIONS
    carried = CARRIED_HERE
    per_visit = True
    edge_mixed = True
    session_tables = ()  # the plain cache's session tables serve every page filter

    def _insert_rows(self, params: dict[str, Any]) -> None:
        """The build's visits and edges, then its visits summed per value of each dimension (read back from
        the rows just written: one pass over the events): those of the whole-day visits, and those of the
        edges' one-day sessions for each dimension they hold one value of."""
        super()._insert_rows(params)
        self.cache.runner.command(
            engagement_cache.sums_per_value_sql(TABLES[0], BY_VALUE, self.dims, edges=TABLES[1]), params
        )


def pages_sql(days: Days, filters: list[Filter], params: SqlParams) -> str:
    """`engagement_cache.pages_sql` over these tables, of the rows that pass `filters` (each on a
    `CARRIED_HERE` dimension or the page, else a ValueError), whose values go to `params`. A page filter
    keeps whole visits; the session figures it cuts are the caller's to place (`engagement._cached`)."""
    if any(f.dimension not in CARRIED_HERE | {"page"} for f in filters):
        raise ValueError(
            f"the engagement cache by dimension answers filters on {', '.join(sorted(CARRIED_HERE | {'page'}))} only"
        )
    where = " AND ".join(filter_sql(f, params) for f in filters)
    others = [f for f in filters if f.dimension != "page"]
    if len(others) == 1:
        # one dimension: its values' sums (`BY_VALUE`), and the edges as the filters cut them
        (flt,) = others
        # the edges of the sessions that mix values of this dimension (or lie on several days); the others'
        # visits are in its sums by value
        bit = EngagementDimsCache.dims.index(DIMENSIONS[flt.dimension])
        where += f" AND bitTest(mixed, {bit})"
        by_value = [
            keyed_value_sql(flt, params),
            *(filter_sql(f, params) for f in filters if f.dimension == "page"),
        ]
        return engagement_cache.pages_sql(
            days, (BY_VALUE, TABLES[1]), where, pages_where=" AND ".join(by_value)
        )
    return engagement_cache.pages_sql(days, (TABLES[0], TABLES[1]), where, per_visit=True)


def for_cache(cache: ReportCache) -> EngagementDimsCache:
    """The cache of `cache`'s store, kept beside its engagement cache (`engagement_cache.kept_beside`)."""
    return engagement_cache.kept_beside(cache, "by_dimension", EngagementDimsCache)
