"""Report queries over the events store: date ranges, filters, and the reports themselves.

Nothing here builds SQL from user strings: dimensions and sort keys come from allow-lists, and
every user value travels as a server-side parameter (`{name:Type}`) through `SqlParams`.

Modules: `periods` (ranges and buckets), `filters` (dimensions, filters, `SqlParams`), `runner`
(`QueryRunner`: SQL on one store, parameters checked and escaped), `scope` (`Scope`: what a report is
about), `reports` (the standard reports, their shared validation and summary builder), `dashboard` (the
standard dashboard in one query), `report_cache` (`ReportCache`: the per-day cache and its lifecycle)
and `cache_sql` (the SQL that builds and reads that cache). Each module's public names are its surface;
nothing imports another module's underscore names.
"""
