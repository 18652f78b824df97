"""Imported aggregates (`imported_aggregates`, written by `pixel.server.importer.aggregates`) in the report cache.

A build of local days (`ReportCache._build`) adds, for each of its days that has no events of the site at all
(bots left out; live or raw-imported), that day's imported rows as rows of `day_dimensions`, so every report
the cache answers (summary, timeseries, the cached breakdowns, the dashboard) adds them up with the live days
without knowing they are there. Rows imported with overlap "include" (`with_live`) are added on every day.

What a day's imported rows become (the shapes `cache_sql` writes for live days):
- dimension '' -> the whole-day row (visitors, pageviews; events = pageviews) and the '#sessions' row (visits
  as sessions, bounces, visit seconds as `duration_ms`, session pageviews);
- `entry_page` / `exit_page` -> their session rows (entrances / exits as sessions, bounces, durations);
- every other dimension (source, referrer, utm_*, country, region, browser, os, device, page, hostname...)
  -> a breakdown row (visitors, pageviews; events = pageviews).
Visitors are a plain figure, `imported_visitors` (the rows' sketch states stay empty), never ids: every reader
of the cache's visitors adds it after merging the sketches (visitors = the merge of the rows' states + the sum
of their `imported_visitors`: `cache_sql.totals_sql`, `event_series_sql`, `breakdown_states`, the dashboard's
breakdowns, the merged ranges of `ReportCache`), so the imported visitors of several days, values or imports
are summed (they cannot be deduplicated: the export holds daily counts) and never meet a live visitor id. A
build's cost follows the number of imported rows, not the visitors they count (any figure up to the
importers' bound, `plausible_csv.MAX_COUNT`, sums exactly). Reports that read raw events (filters, hourly
buckets, realtime, uncached dimensions such as city or title) leave imported data out.
"""

from __future__ import annotations

from pixel.server.api.query.cache_sql import SESSIONS, TOTAL

_SESSION_DIMS = f"('{SESSIONS}', 'entry_page', 'exit_page')"

# Every name below is made here; site, zone, days, window and build come as parameters (those of `_build`).
IMPORTED_INSERT = f"""INSERT INTO day_dimensions
    (site, tz, day, build, dimension, value, imported_visitors, pageviews, events, sessions, bounces, duration_ms)
SELECT {{site:String}}, {{tz:String}}, date AS d, {{build:UInt64}}, dim, value AS val, sum(visitors),
    sum(pageviews),
    if(dim IN {_SESSION_DIMS}, 0, sum(pageviews)),
    if(dim IN {_SESSION_DIMS}, sum(visits), 0),
    if(dim IN {_SESSION_DIMS}, sum(bounces), 0),
    if(dim IN {_SESSION_DIMS}, sum(visit_duration) * 1000, 0)
FROM imported_aggregates
ARRAY JOIN if(dimension = '{TOTAL}', ['{TOTAL}', '{SESSIONS}'], [CAST(dimension AS String)]) AS dim
WHERE site = {{site:String}} AND has({{days:Array(Date)}}, date)
    AND (with_live = 1 OR date NOT IN (
        SELECT DISTINCT toDate(timestamp, {{tz:String}}) FROM events
        WHERE site = {{site:String}} AND timestamp >= {{lo:DateTime64(3)}} AND timestamp < {{hi:DateTime64(3)}}
            AND is_bot = 0))
GROUP BY d, dim, val"""
