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
  values) with that part's figures, as `page_engagement_edges` holds them, and (migration 33) `mixed` and
  `many`: bit i set when the session holds more than one (`mixed`) or more than two (`many`) values of the
  i-th dimension of `EngagementDimsCache.dims`, every bit of both when it lies on more than one day; sorted
  by `many` within a day.
- `page_engagement_by_value` (migration 28): per (day, page), for each value of each dimension, the sums
  `page_engagement` holds (a visitors sketch, an exact quantiles state) of the whole visits of the build's
  one-day sessions with one value of that dimension: the first table's visits, and (migration 33) those of
  the edges' one-day sessions whose `mixed` bit of the dimension is clear, their parts merged per visit and
  their entry and exit placed over the session. So a session navigating inside the site (two channels, one
  country) is in the country's sums.
- `page_engagement_by_pair` (migration 33): the same sums for the one-day sessions with two values of a
  dimension (`mixed` bit set, `many` clear), per dimension and pair of values: the part of each session with
  `value` (`whole` 0: its visits merged over that part's events, its entry and exit placed within it), and the
  whole sessions (`whole` 1, `value` < `other`). A filter on that dimension alone keeps of such a session the
  part with one value, the whole session, or nothing: the sums of the part (kept `value`, dropped `other`) or
  of the whole (both kept).

A report filtered on one dimension (with any operator, and `page is` filters beside it) merges the sums of
the values its filter keeps, those by pair it keeps, and the edges of the sessions with more than two values of
that dimension (few: most sessions that change their channel, source, medium or referrer hold two, the landing
page's and `Internal`), instead of aggregating every visit it keeps; filters on two dimensions or more read the
visits of the first table and the edges one by one.

Why a filter on the carried dimensions gives exactly the raw answer (filters apply to events): a session of the
first table has one value of each dimension, so a filter keeps all of its events or none, and its rows are its
whole contribution or nothing (and so are a value's sums for a filter on its dimension alone, whose sessions hold
one value of it, and the sums by pair for the sessions with two, as said above); a row of the second table is the
part of a visit whose events share its values, so the filter keeps exactly the parts whose events it keeps, and
those parts are merged per session and page (pageviews and engaged time summed: each event is in one part; first
/ last pageview, deepest scroll, flags by min / max) before the session's entry, exit and pageviews are placed,
as the raw query does over the kept events. Copies of an event carry the same values, so they collapse in the
build as in `engagement_cache`. Any operator: `filters.filter_sql` gives the same condition on these columns
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
from pixel.server.api.query.filters import (
    DIMENSIONS,
    Filter,
    SqlParams,
    compare_sql,
    filter_sql,
    keyed_value_sql,
)
from pixel.server.store.schema import CONTENT_LINKS_DIMENSIONS, OTHER_DIMENSIONS, UTM_DIMENSIONS

if TYPE_CHECKING:
    from pixel.server.api.query.report_cache import ReportCache

TABLES = ("page_engagement_dims", "page_engagement_dims_edges", "page_engagement_dims_builds")
BY_VALUE = "page_engagement_by_value"  # the whole-day visits summed per (day, dimension, value, page)
BY_PAIR = "page_engagement_by_pair"  # those of sessions with two values of a dimension, per part and whole
# The filter dimensions whose filters the cached rows answer: the link cache's, the UTM fields and the others of
# migration 32 (hostname, referrer, medium, region, city, versions, screen, language), by their API names. A
# session landing with UTM fields whose later pages have none mixes values: its visits go to the edges table.
_COLUMN_DIMENSIONS = {column: name for name, column in DIMENSIONS.items()}
CARRIED_HERE = CARRIED | frozenset(_COLUMN_DIMENSIONS[c] for c in (*UTM_DIMENSIONS, *OTHER_DIMENSIONS))


class EngagementDimsCache(EngagementCache):
    """The engagement cache by dimension beside one report cache (its runner, clock and settings)."""

    worker_name = "engagement-dims-cache"
    data_tables = (*TABLES[:2], BY_VALUE, BY_PAIR)
    builds_table = TABLES[2]
    dims = CONTENT_LINKS_DIMENSIONS + UTM_DIMENSIONS + OTHER_DIMENSIONS
    carried = CARRIED_HERE
    per_visit = True
    edge_mixed = True
    session_tables = ()  # the plain cache's session tables serve every page filter
    values_table = None  # and its values every title or property filter

    def _insert_rows(self, params: dict[str, Any]) -> None:
        """The build's visits and edges, then its visits summed per value of each dimension (read back from
        the rows just written: one pass over the events): those of the whole-day visits, and those of the
        edges' one-day sessions for each dimension they hold one value of."""
        super()._insert_rows(params)
        runner = self.cache.runner
        runner.command(
            engagement_cache.sums_per_value_sql(TABLES[0], BY_VALUE, self.dims, edges=TABLES[1]), params
        )
        runner.command(engagement_cache.sums_per_pair_sql(TABLES[1], BY_PAIR, self.dims), params)


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
        # one dimension: the sessions with one value of it from its values' sums (`BY_VALUE`); with two, the
        # sums of their parts (or of the whole sessions) the filter keeps (`BY_PAIR`); the edges of the others
        # (more than two values, or several days), cut by the filter
        (flt,) = others
        column = DIMENSIONS[flt.dimension]
        where += f" AND bitTest(many, {EngagementDimsCache.dims.index(column)})"
        pages = [filter_sql(f, params) for f in filters if f.dimension == "page"]
        value = params.add(flt.value)
        kept, other_kept = (compare_sql(c, flt.operator, value) for c in ("value", "other"))
        pairs = [
            f"dimension = {params.add(column)}",
            f"if(whole = 1, {kept} AND {other_kept}, {kept} AND NOT ({other_kept}))",
            *pages,
        ]
        return engagement_cache.pages_sql(
            days,
            (BY_VALUE, TABLES[1]),
            where,
            pages_where=" AND ".join([keyed_value_sql(flt, params), *pages]),
            also=(BY_PAIR, " AND ".join(pairs)),
        )
    return engagement_cache.pages_sql(days, (TABLES[0], TABLES[1]), where, per_visit=True)


def for_cache(cache: ReportCache) -> EngagementDimsCache:
    """The cache of `cache`'s store, kept beside its engagement cache (`engagement_cache.kept_beside`)."""
    return engagement_cache.kept_beside(cache, "by_dimension", EngagementDimsCache)
