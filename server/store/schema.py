"""The events schema and its versioned, idempotent migrations (one SQL dialect for both engines).

How duplicates are kept out of query results (the pipeline is at-least-once):

1. Shipper retries (crash between insert and checkpoint, or a timed-out insert that did land)
   re-send *exactly the same batch*: the shipper writes the batch's spool ranges to its checkpoint
   before inserting and replays that same range first after a restart. Each insert carries
   `insert_deduplication_token` = hash of those ranges, and the table keeps a deduplication window
   (`non_replicated_deduplication_window`; replicated tables dedup by default), so ClickHouse
   drops a replayed block whole, before it is ever visible.
2. Client retries (the tracker re-sends an event whose 204 it never saw) arrive in new requests
   with the same `event_id`. `events` is a ReplacingMergeTree whose sorting key ends with
   `event_id`, so such copies collapse on merge, and readers use `FINAL` (the store's
   `EVENTS` source below) so copies not yet merged never show either. The API's report cache
   (migration 2) is built from `events FINAL` too, one local day at a time, and a day is rebuilt
   whenever rows were inserted into it since (counted per hour by a materialized view), so a
   client-retry copy arriving later never counts twice there either. No rollup counts rows as
   they are inserted: such a view would count those copies.

The sorting key begins with site and day so that every report (always one site, a time range)
reads only its own granules; partitions are monthly so TTL retention drops whole parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from pixel.server.store import sessions

# What every reader should select FROM, so duplicates never show.
EVENTS = "events FINAL"

# Column name -> ClickHouse type, in table order. Rows are written as JSONEachRow with these keys;
# any key left out takes the column default.
EVENT_COLUMNS: dict[str, str] = {
    "timestamp": "DateTime64(3, 'UTC')",
    "received_at": "DateTime64(3, 'UTC')",
    "site": "LowCardinality(String)",
    "event_id": "String",
    "event_name": "LowCardinality(String)",
    "visitor_id": "String",
    "session_id": "String",
    "user_id": "String",
    "url": "String",
    "host": "LowCardinality(String)",
    "path": "String",
    "query": "String",
    "title": "String",
    "referrer": "String",
    # Sources (enrichment)
    "ref_host": "LowCardinality(String)",
    "source": "LowCardinality(String)",
    "medium": "LowCardinality(String)",
    "channel": "LowCardinality(String)",
    "utm_source": "String",
    "utm_medium": "String",
    "utm_campaign": "String",
    "utm_term": "String",
    "utm_content": "String",
    "click_id": "LowCardinality(String)",  # which click id was present: gclid, fbclid, ...
    # Geo (enrichment)
    "country": "LowCardinality(String)",
    "region": "LowCardinality(String)",
    "city": "String",
    # Rounded to 0.1 degree (~11 km) by the enrichment: never finer than a city. NULL when unknown.
    "latitude": "Nullable(Float32)",
    "longitude": "Nullable(Float32)",
    # Device (enrichment + tracker)
    "browser": "LowCardinality(String)",
    "browser_version": "LowCardinality(String)",
    "os": "LowCardinality(String)",
    "os_version": "LowCardinality(String)",
    "device_type": "LowCardinality(String)",
    "device_brand": "LowCardinality(String)",
    "device_model": "LowCardinality(String)",
    "screen": "LowCardinality(String)",
    "language": "LowCardinality(String)",
    "timezone": "LowCardinality(String)",
    "is_bot": "UInt8",
    "ip_hash": "String",  # keyed hash with a daily salt; the raw IP is never stored
    # Engagement (tracker)
    "engaged_ms": "UInt32",
    "scroll_depth": "UInt8",
    "props": "Map(String, String)",
    # Typed parameters (migration 6, pixel.server.typedfields): the 404 flag, revenue, web vitals, errors
    "not_found": "UInt8",
    "revenue": "Nullable(Decimal(18, 4))",  # exact; NULL when the event carries no valid revenue
    "currency": "LowCardinality(String)",  # ISO 4217, upper-case; '' without revenue
    "ttfb_ms": "Nullable(Float64)",  # web vitals, on `web_vitals` events; NULL when not measured
    "fcp_ms": "Nullable(Float64)",
    "lcp_ms": "Nullable(Float64)",
    "cls": "Nullable(Float64)",
    "inp_ms": "Nullable(Float64)",
    "ttfb_rating": "LowCardinality(String)",  # good, needs-improvement, poor ('' when not measured)
    "fcp_rating": "LowCardinality(String)",
    "lcp_rating": "LowCardinality(String)",
    "cls_rating": "LowCardinality(String)",
    "inp_rating": "LowCardinality(String)",
    "lcp_element": "String",  # short selectors: the LCP element, the INP interaction's target
    "inp_target": "String",
    "error_message": "String",  # on `error` events
    "error_source": "String",
    "error_line": "UInt32",
    "error_col": "UInt32",
    "error_hash": "String",
    # Import (migration 7, pixel.server.importer): the id of the import that wrote the row; '' for live events
    "import_id": "LowCardinality(String)",
}

# Derived columns (migration 16): computed by the store from other columns as rows are inserted (MATERIALIZED), so
# writers never send them (they are not in EVENT_COLUMNS, whose keys are what rows carry), `SELECT *` leaves them
# out, and every row holds the same value whichever path wrote it (collector, shipper, importer, a replay).
# Name -> (type, expression). `session_hash`: the 64-bit hash of the session id, which queries grouping by
# session read instead of the text (8 bytes a row, no hashing at query time; a collision among a range's
# sessions is about n^2 / 2^65). Parts written before migration 16 have it computed on read until the
# migration's mutation has stored it, so its value is right either way.
DERIVED_COLUMNS: dict[str, tuple[str, str]] = {
    "session_hash": ("UInt64", "cityHash64(session_id)"),
}


# Every column of the events table, in table order, with its type: the written ones, then the derived ones.
TABLE_COLUMNS: dict[str, str] = EVENT_COLUMNS | {name: kind for name, (kind, _) in DERIVED_COLUMNS.items()}


def derived_column_sql(name: str) -> str:
    """The column definition of a derived column, as in CREATE TABLE and ALTER ... ADD COLUMN."""
    kind, expression = DERIVED_COLUMNS[name]
    return f"`{name}` {kind} MATERIALIZED {expression}"


# The columns migration 6 added, in table order (appended after `props`, so an upgraded table has the
# columns of a new one, in the same order).
TYPED_COLUMNS = tuple(EVENT_COLUMNS)[
    tuple(EVENT_COLUMNS).index("not_found") : tuple(EVENT_COLUMNS).index("error_hash") + 1
]


# The start of a migration statement that stores a derived column in existing parts (a mutation: a cluster runs it
# on the local tables only, a Distributed table has no parts).
MATERIALIZE_EVENTS = "ALTER TABLE events MATERIALIZE COLUMN "


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def _events_ddl(ttl: str) -> str:
    cols = ",\n    ".join(
        [f"`{name}` {kind}" for name, kind in EVENT_COLUMNS.items()]
        + [derived_column_sql(n) for n in DERIVED_COLUMNS]
    )
    return f"""CREATE TABLE IF NOT EXISTS events (
    {cols}
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (site, toDate(timestamp), event_id)
{ttl}SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192"""


DEAD_LETTERS_DDL = """CREATE TABLE IF NOT EXISTS dead_letters (
    `received_at` DateTime64(3, 'UTC'),
    `failed_at` DateTime64(3, 'UTC'),
    `segment` String,
    `offset` UInt64,
    `reason` String,
    `payload` String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(failed_at)
ORDER BY failed_at
TTL toDateTime(failed_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000"""


# -- migration 2: the report cache (see pixel.server.api.query.report_cache) ---------------------------

# Rows inserted per site and UTC hour, counted by a materialized view as they arrive. Only a change
# detector: a cached day is valid while the count over its hours is what it was when the day was built
# (late events, client-retry copies and every other insert change it; a batch replayed under its insert token is
# dropped by `events` and, since migration 14, by this table too).
EVENT_COUNTS_DDL = """CREATE TABLE IF NOT EXISTS event_counts (
    `site` LowCardinality(String),
    `hour` DateTime('UTC'),
    `rows` UInt64
)
ENGINE = SummingMergeTree
ORDER BY (site, hour)"""

EVENT_COUNTS_MV_DDL = """CREATE MATERIALIZED VIEW IF NOT EXISTS event_counts_mv TO event_counts AS
SELECT site, toStartOfHour(timestamp) AS hour, count() AS rows FROM events GROUP BY site, hour"""

# One row per (site, zone, local day) build; the newest build of a day is the valid one.
DAY_BUILDS_DDL = """CREATE TABLE IF NOT EXISTS day_builds (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `source_rows` UInt64
)
ENGINE = ReplacingMergeTree(build)
ORDER BY (site, tz, day)"""

# Per local day, built from `events FINAL` (bots left out): for each dimension ('' = the whole day) and
# value, the visitors as a sketch state (`visitors_total`, finer, on the whole-day rows only), pageviews
# and events; dimension '#sessions' holds the day's
# sessions that do not touch either end of the day (count, bounces, summed durations), and
# 'entry_page' / 'exit_page' their first / last pageview paths.
DAY_DIMENSIONS_DDL = """CREATE TABLE IF NOT EXISTS day_dimensions (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `dimension` LowCardinality(String),
    `value` String,
    `visitors` AggregateFunction(uniqCombined(12), String),
    `visitors_total` AggregateFunction(uniqCombined(14), String),
    `pageviews` UInt64,
    `events` UInt64,
    `sessions` UInt64,
    `bounces` UInt64,
    `duration_ms` UInt64
)
ENGINE = MergeTree
ORDER BY (site, tz, dimension, day, value)"""

# The sessions of a local day that touch either end of it (and so may go on in the next or previous
# day), one row each with their part inside the day; readers merge parts of one session by `sid`, the
# 64-bit hash of its id (grouping by it is several times faster than by the string; the chance that two
# of a range's sessions share one is about n² / 2^65, 10^-9 for 200,000 sessions).
DAY_SESSION_EDGES_DDL = """CREATE TABLE IF NOT EXISTS day_session_edges (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `sid` UInt64,
    `first_ts` DateTime64(3, 'UTC'),
    `last_ts` DateTime64(3, 'UTC'),
    `pageviews` UInt64,
    `pv_visitor` String,
    `entry` String,
    `entry_ts` DateTime64(3, 'UTC'),
    `exit` String,
    `exit_ts` DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (site, tz, day, sid)"""


# -- migration 3: the report cache in small granules, and ranges of days merged ---------------------

# Granules of 256 rows: a report reads one dimension's rows, and a granule's aggregate states are read
# whole, so 8,192-row granules made a 90-row breakdown read thousands of states. The cache tables are
# dropped and made again (a cache: rebuilt on demand).
_SMALL_GRANULES = "\nSETTINGS index_granularity = 256"

# The days of a range before today (which no longer change as events arrive), merged once per set of
# day builds (`key`), so a 30-day breakdown merges one state per value instead of thirty. Rows expire
# two days after they are made; a range still in use is then merged again.
RANGE_DIMENSIONS_DDL = (
    DAY_DIMENSIONS_DDL.replace("day_dimensions (", "range_dimensions (")
    .replace("`day` Date,\n    `build` UInt64,", "`key` UInt64,\n    `created` DateTime('UTC'),")
    .replace(
        "ORDER BY (site, tz, dimension, day, value)",
        "ORDER BY (site, tz, key, dimension, value)\nTTL created + INTERVAL 2 DAY",
    )
    + _SMALL_GRANULES
)


# -- migration 4: merged ranges in the day table -----------------------------------------------------

# A range's merged rows live in day_dimensions itself (day 1970-01-01, `build` = the range key), so a
# report reads one table: each table read costs chDB a few milliseconds, whatever its size. They are
# dropped two days after they are made (`created`); a range still in use is then merged again.
DAY_DIMENSIONS_V4_DDL = (
    DAY_DIMENSIONS_DDL.replace(
        "`duration_ms` UInt64\n)", "`duration_ms` UInt64,\n    `created` DateTime('UTC') DEFAULT now()\n)"
    )
    + "\nTTL created + INTERVAL 2 DAY DELETE WHERE day = toDate(0)"
    + _SMALL_GRANULES
)


# -- migration 8: the engagement report's per-day cache (see pixel.server.api.query.engagement_cache) --------

# One row per (site, zone, local day, build) and page: the page visits of the day's sessions that have no
# engagement events on another day (a session across midnight goes to page_engagement_edges instead):
# visitors as a sketch state, pageviews, the engaged times of the visits that reported one as an exact
# quantile state, the scroll-depth marks reached and the entries, bounces and exits of those sessions.
PAGE_ENGAGEMENT_DDL = """CREATE TABLE IF NOT EXISTS page_engagement (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `path` String,
    `visitors` AggregateFunction(uniqCombined(14), String),
    `pageviews` UInt64,
    `engaged_visits` UInt64,
    `engaged` AggregateFunction(quantilesExactIf(0.5, 0.75), UInt64, UInt8),
    `scroll_visits` UInt64,
    `s25` UInt64,
    `s50` UInt64,
    `s75` UInt64,
    `s100` UInt64,
    `entries` UInt64,
    `bounces` UInt64,
    `exits` UInt64
)
ENGINE = MergeTree
ORDER BY (site, tz, day, path)
SETTINGS index_granularity = 256"""

# The page visits of the sessions with engagement events on more than one local day, one row per (day,
# session hash, page) with the day's part; readers merge a session's parts over the days of a range.
PAGE_ENGAGEMENT_EDGES_DDL = """CREATE TABLE IF NOT EXISTS page_engagement_edges (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `sid` UInt64,
    `path` String,
    `visitor_id` String,
    `pv` UInt64,
    `first_pv` DateTime64(3, 'UTC'),
    `last_pv` DateTime64(3, 'UTC'),
    `engaged` UInt64,
    `has_engaged` UInt8,
    `depth` UInt8,
    `has_scroll` UInt8
)
ENGINE = MergeTree
ORDER BY (site, tz, day, sid)
SETTINGS index_granularity = 256"""

# The newest build of a (site, zone, day) is the valid one, while `source_rows` equals event_counts.
PAGE_ENGAGEMENT_BUILDS_DDL = DAY_BUILDS_DDL.replace("day_builds (", "page_engagement_builds (")


# -- migration 9: the engagement cache's visitors in the breakdown rows' sketch --------------------------

# Per-page visitors as every breakdown row counts them (uniqCombined(12)): a month of daily 2^14-cell states
# per page was most of a cached report's time. The cache tables are made again (rebuilt on demand).
PAGE_ENGAGEMENT_V9_DDL = PAGE_ENGAGEMENT_DDL.replace(
    "`visitors` AggregateFunction(uniqCombined(14), String)",
    "`visitors` AggregateFunction(uniqCombined(12), String)",
)


# -- migration 11: imported aggregates (see pixel.server.importer.aggregates) ----------------------------

# One row per (site, import, local day, dimension, value) of an aggregate source (Plausible's CSV export):
# dimension '' is the whole day; visit_duration is the day's summed seconds. `with_live` = 1: imported with
# overlap "include" (added to the reports even on days with events). Undo deletes by import_id.
IMPORTED_AGGREGATES_DDL = """CREATE TABLE IF NOT EXISTS imported_aggregates (
    `site` LowCardinality(String),
    `import_id` String,
    `date` Date,
    `dimension` LowCardinality(String),
    `value` String,
    `visitors` UInt64,
    `pageviews` UInt64,
    `visits` UInt64,
    `bounces` UInt64,
    `visit_duration` UInt64,
    `with_live` UInt8
)
ENGINE = MergeTree
ORDER BY (site, date, dimension, value, import_id)"""


# -- migration 13: the outbound-link and download reports' per-day cache (see pixel.server.api.query.content_cache)

# One row per (site, zone, local day, build), kind ('outbound' or 'download') and link URL: the day's clicks
# (each event once) and its visitors as the state of the reports' sketch (uniqCombined(14), merges to the raw
# count). The newest build of a day is the valid one while its `source_rows` equals event_counts.
CONTENT_LINKS_DDL = """CREATE TABLE IF NOT EXISTS content_links (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `kind` LowCardinality(String),
    `url` String,
    `clicks` UInt64,
    `visitors` AggregateFunction(uniqCombined(14), String)
)
ENGINE = MergeTree
ORDER BY (site, tz, day, kind, url)
SETTINGS index_granularity = 256"""
CONTENT_LINKS_BUILDS_DDL = DAY_BUILDS_DDL.replace("day_builds (", "content_links_builds (")

# Migration 20: the link rows also carry the event dimensions a one-filter report may ask for (content_cache.CARRIED),
# so such a report reads the cache too. Rows built before have none, so every build is forgotten (rebuilt on read).
CONTENT_LINKS_DIMENSIONS = ("country", "device_type", "browser", "os", "source", "channel")
CONTENT_LINKS_WITH_DIMENSIONS = tuple(
    f"ALTER TABLE content_links ADD COLUMN IF NOT EXISTS `{name}` LowCardinality(String) AFTER `url`"
    for name in reversed(CONTENT_LINKS_DIMENSIONS)
) + ("TRUNCATE TABLE content_links", "TRUNCATE TABLE content_links_builds")


# -- migration 21: the engagement report's per-day cache by event dimension (see engagement_dims_cache) -----

# As page_engagement and page_engagement_edges, with the dimensions of content_links after `path`: the pages
# of the sessions whose page events share one local day and one value of each dimension, per (day, page,
# values); the visits of every other session per (day, session, page, values).
_DIMENSION_COLUMNS = "".join(f",\n    `{name}` LowCardinality(String)" for name in CONTENT_LINKS_DIMENSIONS)
PAGE_ENGAGEMENT_DIMS_DDL = PAGE_ENGAGEMENT_V9_DDL.replace(
    "page_engagement (", "page_engagement_dims ("
).replace("`path` String", "`path` String" + _DIMENSION_COLUMNS)
PAGE_ENGAGEMENT_DIMS_EDGES_DDL = PAGE_ENGAGEMENT_EDGES_DDL.replace(
    "page_engagement_edges (", "page_engagement_dims_edges ("
).replace("`path` String", "`path` String" + _DIMENSION_COLUMNS)
PAGE_ENGAGEMENT_DIMS_BUILDS_DDL = DAY_BUILDS_DDL.replace("day_builds (", "page_engagement_dims_builds (")


# -- migration 25: the engagement cache by dimension also splits by the UTM fields ----------------------------

# The UTM fields of the events, after the dimensions of migration 21, so a filter on one of them reads the cache.
# Rows built before have none: every build is forgotten (rebuilt on read).
UTM_DIMENSIONS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# Migration 32: the events' columns of the other filter dimensions an owner picks (hostname, referrer, medium,
# region, city, browser and OS versions, screen, language), carried by the engagement cache by dimension and
# the link cache's by-value rows too. The title is not: it changes with the page, so nearly every session
# would mix values (its visits kept one row per part instead of summed).
OTHER_DIMENSIONS = (
    "host", "ref_host", "medium", "region", "city", "browser_version", "os_version", "screen", "language"
)  # fmt: skip


def _dimension_columns_added(
    names: tuple[str, ...], after: str, forgotten: tuple[str, ...]
) -> tuple[str, ...]:
    """The statements adding the string columns `names` (in that order, after `after`) to the engagement cache
    by dimension's two tables, then emptying the tables `forgotten` (their builds rebuilt on read)."""
    return tuple(
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS `{name}` LowCardinality(String) AFTER `{after}`"
        for table in ("page_engagement_dims", "page_engagement_dims_edges")
        for name in reversed(names)
    ) + tuple(f"TRUNCATE TABLE {table}" for table in forgotten)


PAGE_ENGAGEMENT_DIMS_WITH_UTM = _dimension_columns_added(
    UTM_DIMENSIONS,
    "channel",
    ("page_engagement_dims", "page_engagement_dims_edges", "page_engagement_dims_builds"),
)


# -- migration 26: the engagement caches count page visits, and those with one pageview -------------------

# A filter `page is X` keeps exactly the visits of X (every event of a visit is on its page), so each session
# it keeps enters and leaves on X and bounces when its visit of X had one pageview: the report reads those two
# counts from the caches instead of the raw pageviews. Rows built before have neither: every build is
# forgotten (rebuilt on read). The cache by dimension is made again with its visits one row each (migration 27).
ENGAGEMENT_VISIT_COUNTS = (
    "ALTER TABLE page_engagement ADD COLUMN IF NOT EXISTS `visits` UInt64 AFTER `exits`",
    "ALTER TABLE page_engagement ADD COLUMN IF NOT EXISTS `single_visits` UInt64 AFTER `visits`",
    "TRUNCATE TABLE page_engagement",
    "TRUNCATE TABLE page_engagement_edges",
    "TRUNCATE TABLE page_engagement_builds",
)


# -- migration 27: the engagement cache by dimension keeps its whole-day visits one row each ----------------

# As migration 21's table, with a visit's plain figures instead of per-page sums and states (see
# pixel.server.api.query.engagement_dims_cache). Made again: every build is forgotten (rebuilt on read).
_UTM_COLUMNS = "".join(f",\n    `{name}` LowCardinality(String)" for name in UTM_DIMENSIONS)
PAGE_ENGAGEMENT_DIMS_VISITS_DDL = f"""CREATE TABLE IF NOT EXISTS page_engagement_dims (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `path` String{_DIMENSION_COLUMNS}{_UTM_COLUMNS},
    `visitor_id` String,
    `pv` UInt64,
    `engaged` UInt64,
    `has_engaged` UInt8,
    `depth` UInt8,
    `has_scroll` UInt8,
    `entry` UInt8,
    `bounce` UInt8,
    `exit` UInt8
)
ENGINE = MergeTree
ORDER BY (site, tz, day, path)"""
PAGE_ENGAGEMENT_DIMS_PER_VISIT = (
    "DROP TABLE IF EXISTS page_engagement_dims",
    PAGE_ENGAGEMENT_DIMS_VISITS_DDL,
    "TRUNCATE TABLE page_engagement_dims_edges",
    "TRUNCATE TABLE page_engagement_dims_builds",
)

# -- migration 28: the engagement cache by dimension also sums its visits per (day, dimension, value, page) --

# What `page_engagement` holds per (day, page), per value of one carried dimension (`dimension`: the events'
# column), summed from `page_engagement_dims`' whole-day visits of the same build: a report filtered on one
# dimension merges the rows of the values it keeps instead of aggregating every kept visit (see
# pixel.server.api.query.engagement_dims_cache). Every build is forgotten (rebuilt on read) so each build has both.
PAGE_ENGAGEMENT_BY_VALUE_DDL = """CREATE TABLE IF NOT EXISTS page_engagement_by_value (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `dimension` LowCardinality(String),
    `value` String,
    `day` Date,
    `build` UInt64,
    `path` String,
    `visitors` AggregateFunction(uniqCombined(12), String),
    `pageviews` UInt64,
    `engaged_visits` UInt64,
    `engaged` AggregateFunction(quantilesExactIf(0.5, 0.75), UInt64, UInt8),
    `scroll_visits` UInt64,
    `s25` UInt64,
    `s50` UInt64,
    `s75` UInt64,
    `s100` UInt64,
    `entries` UInt64,
    `bounces` UInt64,
    `exits` UInt64,
    `visits` UInt64,
    `single_visits` UInt64
)
ENGINE = MergeTree
ORDER BY (site, tz, dimension, value, day, path)
SETTINGS index_granularity = 1024"""
PAGE_ENGAGEMENT_BY_VALUE = (
    PAGE_ENGAGEMENT_BY_VALUE_DDL,
    "TRUNCATE TABLE page_engagement_dims",
    "TRUNCATE TABLE page_engagement_dims_edges",
    "TRUNCATE TABLE page_engagement_dims_builds",
)

# -- migration 29: the engagement cache keeps each session's pageview paths in order ------------------------

# Per (day, build): the pageviews of each session seen only inside the day, in (time, path) order, copies
# collapsed, as the `cityHash64` of their paths (`page_sessions`); the day's part of every other session, in
# the same order, put together per session in day order over a range when read (`page_session_edges`). A filter on a set of pages takes its entries, bounces and exits from
# them instead of the raw pageviews (see pixel.server.api.query.engagement_cache). Every build of the engagement
# cache is forgotten (rebuilt on read) so each build has them.
PAGE_SESSIONS_DDL = """CREATE TABLE IF NOT EXISTS page_sessions (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `pages` Array(UInt64)
)
ENGINE = MergeTree
ORDER BY (site, tz, day)"""
PAGE_SESSION_EDGES_DDL = """CREATE TABLE IF NOT EXISTS page_session_edges (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `sid` UInt64,
    `pages` Array(UInt64)
)
ENGINE = MergeTree
ORDER BY (site, tz, day, sid)"""
PAGE_SESSION_PATHS = (
    PAGE_SESSIONS_DDL,
    PAGE_SESSION_EDGES_DDL,
    "TRUNCATE TABLE page_engagement",
    "TRUNCATE TABLE page_engagement_edges",
    "TRUNCATE TABLE page_engagement_builds",
)

# -- migration 30: the link reports' cache sums its clicks per value of the page and the UTM fields ---------------

# What `content_links` holds per (day, kind, URL), per value of one of the events' columns in
# `CONTENT_LINKS_BY_VALUE` (`dimension`): a link report filtered on one of them reads the rows of the values it keeps
# (see pixel.server.api.query.content_cache). Split by them, `content_links` itself would hold nearly a row per click.
# Every build is forgotten (rebuilt on read) so each build has both.
CONTENT_LINKS_BY_VALUE = ("path", *UTM_DIMENSIONS, *OTHER_DIMENSIONS)
CONTENT_LINKS_BY_VALUE_DDL = """CREATE TABLE IF NOT EXISTS content_links_by_value (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `dimension` LowCardinality(String),
    `value` String,
    `day` Date,
    `build` UInt64,
    `kind` LowCardinality(String),
    `url` String,
    `clicks` UInt64,
    `visitors` AggregateFunction(uniqCombined(14), String)
)
ENGINE = MergeTree
ORDER BY (site, tz, dimension, value, day, kind, url)
SETTINGS index_granularity = 1024"""
CONTENT_LINKS_BY_VALUES = (
    CONTENT_LINKS_BY_VALUE_DDL,
    "TRUNCATE TABLE content_links",
    "TRUNCATE TABLE content_links_builds",
)

# -- migration 32: the engagement and link caches carry the other filter dimensions (OTHER_DIMENSIONS) ---------

# Columns of the engagement cache by dimension after the UTM fields; values of the link cache's by-value rows
# (CONTENT_LINKS_BY_VALUE). Rows built before have neither: both caches' builds are forgotten (rebuilt on read).
CACHES_WITH_OTHER_DIMENSIONS = _dimension_columns_added(
    OTHER_DIMENSIONS,
    "utm_content",
    (
        "page_engagement_dims",
        "page_engagement_dims_edges",
        "page_engagement_by_value",
        "page_engagement_dims_builds",
        "content_links",
        "content_links_by_value",
        "content_links_builds",
    ),
)

# -- migration 33: the engagement cache by dimension decides per dimension which sessions mix values ------------

# The edges' `mixed`: bit i set when the session holds more than one value of the i-th dimension of the cache (its
# columns' order: CONTENT_LINKS_DIMENSIONS, UTM_DIMENSIONS, OTHER_DIMENSIONS); `many`: more than two; every bit of
# both when it lies on more than one day. The sums by value then hold, for each dimension, the visits of every
# one-day session with one value of it, not only of those with one value of every dimension, and the sums by pair
# (`page_engagement_by_pair`) those of the sessions with two. Every build is forgotten (rebuilt on read).
# The edges are made again, sorted by `many` within a day: a filter on one dimension reads the parts of the
# sessions with more than two values of it, which a few runs of the table hold, not every part.
_CARRIED_COLUMNS = (
    _DIMENSION_COLUMNS
    + _UTM_COLUMNS
    + "".join(f",\n    `{name}` LowCardinality(String)" for name in OTHER_DIMENSIONS)
)
PAGE_ENGAGEMENT_DIMS_EDGES_MIXED_DDL = (
    PAGE_ENGAGEMENT_EDGES_DDL.replace("page_engagement_edges (", "page_engagement_dims_edges (")
    .replace("`path` String", "`path` String" + _CARRIED_COLUMNS)
    .replace("`has_scroll` UInt8\n)", "`has_scroll` UInt8,\n    `mixed` UInt64,\n    `many` UInt64\n)")
    .replace("ORDER BY (site, tz, day, sid)", "ORDER BY (site, tz, day, many, sid)")
)
# Per (day, page), dimension and pair of values (`value`, `other`) of the sessions of a build holding those two
# values of it (the edges' `mixed` bit set, `many` clear): `whole` 0, the visits of the part of each session with
# `value` (what a filter keeping `value` and not `other` keeps), its entry and exit placed within that part;
# `whole` 1 (`value` < `other`), the visits of the whole sessions (what a filter keeping both keeps).
PAGE_ENGAGEMENT_BY_PAIR_DDL = (
    PAGE_ENGAGEMENT_BY_VALUE_DDL.replace("page_engagement_by_value (", "page_engagement_by_pair (")
    .replace("`value` String,", "`value` String,\n    `other` String,\n    `whole` UInt8,")
    .replace("ORDER BY (site, tz, dimension, value, day, path)", "ORDER BY (site, tz, dimension, day, path)")
)
ENGAGEMENT_DIMS_EDGES_MIXED = (
    "DROP TABLE IF EXISTS page_engagement_dims_edges",
    PAGE_ENGAGEMENT_DIMS_EDGES_MIXED_DDL,
    PAGE_ENGAGEMENT_BY_PAIR_DDL,
    "TRUNCATE TABLE page_engagement_dims",
    "TRUNCATE TABLE page_engagement_by_value",
    "TRUNCATE TABLE page_engagement_dims_builds",
)

# -- migration 34: the filtered dashboard's sessions with two values of a filter dimension summed by pair -------

# `day_filter_sessions` rows of three kinds (`pair`, `filter_cache.ONE_VALUE` and after): 0, the sessions with one
# value of the filter dimension on the day (as before); 1, per (`filter_value`, `other`), the part with
# `filter_value` of the one-day sessions with those two values; 2, the whole of those sessions (`filter_value` <
# `other`). `day_filter_session_edges` then keeps only the sessions with more than two values or across a
# midnight. The rows are split by the UTM fields, the event name and custom properties too (`filter_cache.FILTERS`,
# `filter_cache.PROP_KEYS`). Every build is forgotten (rebuilt on read).
DAY_FILTER_SESSION_PAIRS = (
    "ALTER TABLE day_filter_sessions ADD COLUMN IF NOT EXISTS `other` String AFTER `filter_value`",
    "ALTER TABLE day_filter_sessions ADD COLUMN IF NOT EXISTS `pair` UInt8 AFTER `other`",
    "TRUNCATE TABLE day_filter_dims",
    "TRUNCATE TABLE day_filter_sessions",
    "TRUNCATE TABLE day_filter_session_edges",
    "TRUNCATE TABLE day_filter_builds",
)

# -- migration 35: journeys' per-day cache of session paths (pixel.server.api.query.path_cache) ---------------

# Per (site, zone, local day, build): one row per session (bots left out) whose first pageview falls on the day,
# read from the events of the day before to the day after: its pageviews' paths in time order with repeats folded
# (`seq`), its first pageview, its session-level dimensions (`sessions.COLUMNS`, the value its events hold) and
# `mixed` when its events disagree on one of them. Valid as the other per-day caches are (its own builds table).
_PATH_DIMENSIONS = ",\n    ".join(
    f"`{name}` {kind}" for name, kind in sessions.COLUMNS.items() if name != "is_bot"
)
DAY_SESSION_PATHS_DDL = f"""CREATE TABLE IF NOT EXISTS day_session_paths (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `sid` UInt64,
    `first_view` DateTime64(3, 'UTC'),
    `seq` Array(String),
    `mixed` UInt8,
    {_PATH_DIMENSIONS}
)
ENGINE = MergeTree
ORDER BY (site, tz, day, sid)"""
DAY_SESSION_PATH_BUILDS_DDL = DAY_BUILDS_DDL.replace("day_builds (", "day_session_path_builds (")
DAY_SESSION_PATHS = (DAY_SESSION_PATHS_DDL, DAY_SESSION_PATH_BUILDS_DDL)

# -- migration 22: the filtered dashboard's per-day cache by filter value (pixel.server.api.query.filter_cache) --

# Per (site, zone, local day, build), filter dimension (country, device, browser, os, source, channel; page since
# migration 31) and its value: the day's whole-day totals (dimension '') and breakdown rows of the events with
# that value, as day_dimensions holds them for every event. Valid as the other per-day caches are (its own
# builds table).
DAY_FILTER_DIMS_DDL = """CREATE TABLE IF NOT EXISTS day_filter_dims (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `filter` LowCardinality(String),
    `filter_value` String,
    `dimension` LowCardinality(String),
    `value` String,
    `visitors` AggregateFunction(uniqCombined(12), String),
    `visitors_total` AggregateFunction(uniqCombined(14), String),
    `pageviews` UInt64,
    `events` UInt64
)
ENGINE = MergeTree
ORDER BY (site, tz, filter, filter_value, dimension, day, value)"""
DAY_FILTER_BUILDS_DDL = DAY_BUILDS_DDL.replace("day_builds (", "day_filter_builds (")

# -- migration 23: the filtered dashboard's sessions by filter value (pixel.server.api.query.filter_cache) ----

# Per (site, zone, local day, build, filter dimension, value): the sums of the sessions whose events of that
# value all fall inside the day ('#sessions', by 'entry_page' and 'exit_page'), as day_dimensions holds them
# for all events; the other sessions' parts, one row per (day, session, filter value), as day_session_edges.
DAY_FILTER_SESSIONS_DDL = """CREATE TABLE IF NOT EXISTS day_filter_sessions (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `filter` LowCardinality(String),
    `filter_value` String,
    `dimension` LowCardinality(String),
    `value` String,
    `visitors` AggregateFunction(uniqCombined(12), String),
    `pageviews` UInt64,
    `sessions` UInt64,
    `bounces` UInt64,
    `duration_ms` UInt64
)
ENGINE = MergeTree
ORDER BY (site, tz, filter, filter_value, dimension, day, value)"""
DAY_FILTER_SESSION_EDGES_DDL = """CREATE TABLE IF NOT EXISTS day_filter_session_edges (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `filter` LowCardinality(String),
    `filter_value` String,
    `sid` UInt64,
    `first_ts` DateTime64(3, 'UTC'),
    `last_ts` DateTime64(3, 'UTC'),
    `pageviews` UInt64,
    `pv_visitor` String,
    `entry` String,
    `entry_ts` DateTime64(3, 'UTC'),
    `exit` String,
    `exit_ts` DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (site, tz, filter, filter_value, day, sid)"""

# -- migration 15: the performance reports' per-day cache (see pixel.server.api.query.performance_cache) -----

# One row per (site, zone, local day, build), page and device type: the day's web_vitals events (each once),
# and per metric the events that measured it, the p75 as an exact quantile state (merges to the raw
# quantileExact) and the good / needs-improvement / poor counts. Valid as the other per-day caches are.
PAGE_VITALS_DDL = """CREATE TABLE IF NOT EXISTS page_vitals (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `path` String,
    `device_type` LowCardinality(String),
    `samples` UInt64,
    `ttfb_n` UInt64,
    `ttfb_q` AggregateFunction(quantileExactIf(0.75), Float64, UInt8),
    `ttfb_good` UInt64,
    `ttfb_ni` UInt64,
    `ttfb_poor` UInt64,
    `fcp_n` UInt64,
    `fcp_q` AggregateFunction(quantileExactIf(0.75), Float64, UInt8),
    `fcp_good` UInt64,
    `fcp_ni` UInt64,
    `fcp_poor` UInt64,
    `lcp_n` UInt64,
    `lcp_q` AggregateFunction(quantileExactIf(0.75), Float64, UInt8),
    `lcp_good` UInt64,
    `lcp_ni` UInt64,
    `lcp_poor` UInt64,
    `cls_n` UInt64,
    `cls_q` AggregateFunction(quantileExactIf(0.75), Float64, UInt8),
    `cls_good` UInt64,
    `cls_ni` UInt64,
    `cls_poor` UInt64,
    `inp_n` UInt64,
    `inp_q` AggregateFunction(quantileExactIf(0.75), Float64, UInt8),
    `inp_good` UInt64,
    `inp_ni` UInt64,
    `inp_poor` UInt64
)
ENGINE = MergeTree
ORDER BY (site, tz, day, path, device_type)
SETTINGS index_granularity = 256"""
PAGE_VITALS_BUILDS_DDL = DAY_BUILDS_DDL.replace("day_builds (", "page_vitals_builds (")


# -- migration 18: the forms and errors reports' per-day caches (see pixel.server.api.query.form_cache, error_cache)

# One row per (site, zone, local day, build), form (id, action) and page: the day's submissions (each event
# once) and visitors as the reports' sketch state (uniqCombined(14), merges to the raw count). The pages of a
# form over a range are the distinct `path` of its rows. Valid as the other per-day caches are.
FORM_SUBMITS_DDL = """CREATE TABLE IF NOT EXISTS form_submits (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `form_id` String,
    `action` String,
    `path` String,
    `submissions` UInt64,
    `visitors` AggregateFunction(uniqCombined(14), String)
)
ENGINE = MergeTree
ORDER BY (site, tz, day, form_id, action, path)
SETTINGS index_granularity = 256"""
FORM_SUBMITS_BUILDS_DDL = DAY_BUILDS_DDL.replace("day_builds (", "form_submits_builds (")

# One row per (site, zone, local day, build), error group (message, source, line), page and browser: the
# day's error events (each once), their visitors as the sketch state, and the first and last event's time.
ERROR_GROUPS_DDL = """CREATE TABLE IF NOT EXISTS error_groups (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `message` String,
    `source` String,
    `line` UInt32,
    `path` String,
    `browser` LowCardinality(String),
    `errors` UInt64,
    `visitors` AggregateFunction(uniqCombined(14), String),
    `first_seen` DateTime64(3, 'UTC'),
    `last_seen` DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (site, tz, day, message, source, line, path, browser)
SETTINGS index_granularity = 256"""
ERROR_GROUPS_BUILDS_DDL = DAY_BUILDS_DDL.replace("day_builds (", "error_groups_builds (")


# -- migration 17: imported visitors as a number beside the report cache's sketches ---------------------

# An imported (aggregate) day's visitors are daily counts that never dedupe with live visitor ids, so the
# cache keeps them as a plain figure added after the sketch merge (pixel.server.api.query.imported) instead
# of a sketch of one synthetic id per imported visitor. The days built before (sketches of synthetic ids)
# are forgotten in day_builds, so the next report rebuilds them in the new shape.
IMPORTED_VISITORS_COLUMN = "ALTER TABLE day_dimensions ADD COLUMN IF NOT EXISTS `imported_visitors` UInt64 DEFAULT 0 AFTER `visitors_total`"
FORGET_IMPORTED_BUILDS = (
    "DELETE FROM day_builds WHERE (site, day) IN (SELECT DISTINCT site, date FROM imported_aggregates)"
)


def migrations(retention_days: int = 0) -> tuple[Migration, ...]:
    ttl = f"TTL toDateTime(timestamp) + INTERVAL {int(retention_days)} DAY\n" if retention_days > 0 else ""
    return (
        Migration(1, "events and dead letters", (_events_ddl(ttl), DEAD_LETTERS_DDL)),
        Migration(
            2,
            "report cache: hourly insert counts, per-day aggregates",
            (
                EVENT_COUNTS_DDL,
                EVENT_COUNTS_MV_DDL,
                DAY_BUILDS_DDL,
                DAY_DIMENSIONS_DDL,
                DAY_SESSION_EDGES_DDL,
            ),
        ),
        Migration(
            3,
            "report cache: small granules, merged ranges of days",
            (
                "DROP TABLE IF EXISTS day_builds",
                "DROP TABLE IF EXISTS day_dimensions",
                "DROP TABLE IF EXISTS day_session_edges",
                DAY_BUILDS_DDL + _SMALL_GRANULES,
                DAY_DIMENSIONS_DDL + _SMALL_GRANULES,
                DAY_SESSION_EDGES_DDL + _SMALL_GRANULES,
                RANGE_DIMENSIONS_DDL,
            ),
        ),
        Migration(
            4,
            "report cache: merged ranges in the day table",
            (
                "DROP TABLE IF EXISTS range_dimensions",
                "DROP TABLE IF EXISTS day_builds",
                "DROP TABLE IF EXISTS day_dimensions",
                "DROP TABLE IF EXISTS day_session_edges",
                DAY_BUILDS_DDL + _SMALL_GRANULES,
                DAY_DIMENSIONS_V4_DDL,
                DAY_SESSION_EDGES_DDL + _SMALL_GRANULES,
            ),
        ),
        Migration(
            5,
            "events: rounded coordinates",
            (
                "ALTER TABLE events ADD COLUMN IF NOT EXISTS latitude Nullable(Float32) AFTER city, "
                "ADD COLUMN IF NOT EXISTS longitude Nullable(Float32) AFTER latitude",
            ),
        ),
        Migration(
            6,
            "events: typed 404 flag, revenue, web vitals, errors",
            (
                "ALTER TABLE events "
                + ", ".join(f"ADD COLUMN IF NOT EXISTS `{c}` {EVENT_COLUMNS[c]}" for c in TYPED_COLUMNS),
            ),
        ),
        Migration(
            7,
            "events: the import id of imported rows",
            (f"ALTER TABLE events ADD COLUMN IF NOT EXISTS `import_id` {EVENT_COLUMNS['import_id']}",),
        ),
        Migration(
            8,
            "engagement report: per-day page cache",
            (PAGE_ENGAGEMENT_DDL, PAGE_ENGAGEMENT_EDGES_DDL, PAGE_ENGAGEMENT_BUILDS_DDL + _SMALL_GRANULES),
        ),
        Migration(
            9,
            "engagement report: visitors per page in the breakdown rows' sketch",
            (
                "DROP TABLE IF EXISTS page_engagement_builds",
                "DROP TABLE IF EXISTS page_engagement",
                "DROP TABLE IF EXISTS page_engagement_edges",
                PAGE_ENGAGEMENT_V9_DDL,
                PAGE_ENGAGEMENT_EDGES_DDL,
                PAGE_ENGAGEMENT_BUILDS_DDL + _SMALL_GRANULES,
            ),
        ),
        Migration(11, "imported aggregates (Plausible's CSV export)", (IMPORTED_AGGREGATES_DDL,)),
        Migration(
            12,
            "sessions table kept at insert time (session_rows, its view; the stored events copied in by the "
            "background backfill, sessions_backfill.py)",
            (sessions.ddl(retention_days), sessions.MV_DDL, sessions.STATE_DDL, sessions.PENDING),
        ),
        Migration(
            13,
            "outbound links and downloads: per-day cache",
            (CONTENT_LINKS_DDL, CONTENT_LINKS_BUILDS_DDL + _SMALL_GRANULES),
        ),
        Migration(
            14,
            "event_counts deduplicated like events (a replayed batch is not counted again)",
            # The view's blocks carry tokens derived from the source insert's (ClickHouse does that for views
            # of deduplicating tables), so only a replay of the same insert is dropped, never new rows whose
            # counts happen to equal an earlier insert's.
            ("ALTER TABLE event_counts MODIFY SETTING non_replicated_deduplication_window = 10000",),
        ),
        Migration(
            15,
            "performance reports: per-day cache",
            (PAGE_VITALS_DDL, PAGE_VITALS_BUILDS_DDL + _SMALL_GRANULES),
        ),
        Migration(
            16,
            "events: the session id's hash, stored",
            (
                f"ALTER TABLE events ADD COLUMN IF NOT EXISTS {derived_column_sql('session_hash')}",
                # Stores it in the parts written before (a mutation, waited for; until it is done those parts
                # compute it on read). Nothing to rewrite in a new table.
                f"{MATERIALIZE_EVENTS}`session_hash` SETTINGS mutations_sync = 1",
            ),
        ),
        Migration(
            17,
            "report cache: imported visitors as a figure beside the visitor sketches (days with imports rebuilt)",
            (IMPORTED_VISITORS_COLUMN, FORGET_IMPORTED_BUILDS),
        ),
        Migration(
            18,
            "forms and errors reports: per-day caches",
            (
                FORM_SUBMITS_DDL,
                FORM_SUBMITS_BUILDS_DDL + _SMALL_GRANULES,
                ERROR_GROUPS_DDL,
                ERROR_GROUPS_BUILDS_DDL + _SMALL_GRANULES,
            ),
        ),
        Migration(
            19,
            "sessions table backfill state (none pending where migration 12 filled the table inline)",
            (sessions.STATE_DDL,),
        ),
        Migration(
            20,
            "outbound-link and download cache: rows per event dimension (country, device, browser, os, source, channel)",
            CONTENT_LINKS_WITH_DIMENSIONS,
        ),
        Migration(
            21,
            "engagement report: per-day cache by event dimension (country, device, browser, os, source, channel)",
            (
                PAGE_ENGAGEMENT_DIMS_DDL,
                PAGE_ENGAGEMENT_DIMS_EDGES_DDL,
                PAGE_ENGAGEMENT_DIMS_BUILDS_DDL + _SMALL_GRANULES,
            ),
        ),
        Migration(
            22,
            "filtered dashboard: per-day cache by filter value (country, device, browser, os, source, channel)",
            (DAY_FILTER_DIMS_DDL, DAY_FILTER_BUILDS_DDL + _SMALL_GRANULES),
        ),
        Migration(
            23,
            "filtered dashboard: sessions by filter value (day_filter_sessions, day_filter_session_edges)",
            # days built by migration 22's code hold no sessions: forgotten, rebuilt on read
            (DAY_FILTER_SESSIONS_DDL, DAY_FILTER_SESSION_EDGES_DDL, "TRUNCATE TABLE day_filter_builds"),
        ),
        Migration(
            25,
            "engagement report: the cache by event dimension splits by the UTM fields too",
            PAGE_ENGAGEMENT_DIMS_WITH_UTM,
        ),
        Migration(
            26,
            "engagement report: the caches count page visits and those with one pageview (a `page is` filter)",
            ENGAGEMENT_VISIT_COUNTS,
        ),
        Migration(
            27,
            "engagement report: the cache by dimension keeps its whole-day visits one row each",
            PAGE_ENGAGEMENT_DIMS_PER_VISIT,
        ),
        Migration(
            28,
            "engagement report: the cache by dimension sums its visits per value of each dimension too",
            PAGE_ENGAGEMENT_BY_VALUE,
        ),
        Migration(
            29,
            "engagement report: the cache keeps each session's pageview paths in order (filters on a set of pages)",
            PAGE_SESSION_PATHS,
        ),
        Migration(
            30,
            "outbound-link and download cache: clicks summed per value of the page and the UTM fields too",
            CONTENT_LINKS_BY_VALUES,
        ),
        Migration(
            31,
            "filtered dashboard: the cache by filter value splits by the page too",
            # days built before hold no page rows: forgotten, rebuilt on read
            ("TRUNCATE TABLE day_filter_builds",),
        ),
        Migration(
            32,
            "engagement and link caches: hostname, referrer, medium, region, city, versions, screen, language too",
            CACHES_WITH_OTHER_DIMENSIONS,
        ),
        Migration(
            33,
            "engagement report: the cache by dimension sums a session's visits for each dimension it has one value of",
            ENGAGEMENT_DIMS_EDGES_MIXED,
        ),
        Migration(
            34,
            "filtered dashboard: sessions with two values of a filter summed by pair; split by UTM, event and props too",
            DAY_FILTER_SESSION_PAIRS,
        ),
        Migration(35, "journeys: a per-day cache of session paths", DAY_SESSION_PATHS),
        Migration(
            36,
            "sessions table: entry and exit pages as (time, path) keys, cheaper at insert (made again, then "
            "the stored events copied in by the background backfill)",
            sessions.remade(retention_days),
        ),
        Migration(
            37,
            "events and the sessions table: a month's parts merged into one a day after its last insert",
            tuple(
                f"ALTER TABLE {table} MODIFY SETTING {MERGE_CLOSED_MONTHS}"
                for table in ("events", "session_rows")
            ),
        ),
        Migration(
            38,
            "engagement report: the cache keeps each page's titles and property values (title, property filters)",
            PAGE_VALUES,
        ),
        Migration(
            39, "outbound-link and download cache: each page's titles and property values too", CONTENT_VALUES
        ),
    )


# -- migration 38: the engagement cache keeps each page's titles and property values ------------------------

# Per (day, build), path, event name and `dimension` (`title`, or `prop:` and a property key some of the events on
# the path carry): the distinct values of that dimension over the day's page events of that name on that path
# (pageview, engagement, scroll; bots left out; '' for an event without the property), at most `VALUES_KEPT` + 1
# of them (more: the values are not all known). A filter on the title or a property is a filter on the paths
# when each path's values of each event name all pass it or all fail it (see
# pixel.server.api.query.page_value_filters). At most `VALUES_KEPT` property keys per (day, path): with more (a
# client sending a new key on each event), one row `KEYS_UNKNOWN` per event name stands for them all, so the rows
# of a day stay bounded by its events. Every build of the engagement cache is forgotten (rebuilt on read) so each
# build has them.
VALUES_KEPT = 32
KEYS_UNKNOWN = "prop:*"  # (a filter's property key cannot hold `*`)
PAGE_VALUES_DDL = """CREATE TABLE IF NOT EXISTS page_values (
    `site` LowCardinality(String),
    `tz` LowCardinality(String),
    `day` Date,
    `build` UInt64,
    `dimension` String,
    `path` String,
    `event_name` LowCardinality(String),
    `values` Array(String)
)
ENGINE = MergeTree
ORDER BY (site, tz, day, dimension, path, event_name)
SETTINGS index_granularity = 256"""
PAGE_VALUES = (
    PAGE_VALUES_DDL,
    *(
        f"TRUNCATE TABLE {table}"
        for table in (
            "page_engagement",
            "page_engagement_edges",
            "page_sessions",
            "page_session_edges",
            "page_engagement_builds",
        )
    ),
)

# -- migration 39: the link reports' cache keeps each page's titles and property values too -------------------

# As `page_values`, of the outbound and download events (the link cache's builds): a title or property filter on
# the link reports is a filter on the paths the same way. Every build of the link cache is forgotten.
CONTENT_VALUES = (
    PAGE_VALUES_DDL.replace("page_values (", "content_values ("),
    *(
        f"TRUNCATE TABLE {table}"
        for table in ("content_links", "content_links_by_value", "content_links_builds")
    ),
)


# Migration 37: ClickHouse merges every part of a month (a partition of `events` or `session_rows`) into one once
# all of them are a day old, which a closed month's are a day after its last insert. The raw dashboard then
# finds no two parts there that could hold copies of one event (`copy_windows`): it reads those rows as they are
# instead of grouping copies (events) or merging each row's states per key (the sessions table).
MERGE_CLOSED_MONTHS = "min_age_to_force_merge_seconds = 86400, min_age_to_force_merge_on_partition_only = 1"


def retention_statement(retention_days: int) -> str:
    """ALTER that brings an existing table's TTL in line with the retention setting."""
    if retention_days > 0:
        return f"ALTER TABLE events MODIFY TTL toDateTime(timestamp) + INTERVAL {int(retention_days)} DAY"
    return "ALTER TABLE events REMOVE TTL"
