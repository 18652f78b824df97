"""Enrichment: what the shipper adds to each event before it is stored (never on the collector's hot path).

Contract with the shipper (`pixel.server.shipper`): for each event the shipper builds `row`, a dict
keyed by the column names of `pixel.server.store.schema.EVENT_COLUMNS`, already holding the fields
the tracker sent (timestamp, received_at, site, event_id, event_name, visitor_id, session_id,
user_id, url, host, path, query, title, referrer, screen, language, timezone, engaged_ms,
scroll_depth, props), then calls `Enricher.enrich(row, event, facts)` which fills the enrichment
columns in place (ip_hash, sources/UTMs/channel, geo, device, is_bot) and may rewrite identity and
privacy-relevant fields. The raw IP exists only in `facts` and must never be put into `row`.
`enrich` returns False when the event must be dropped (Do-Not-Track / GPC on a site that honours it), and
`Enricher.close()` at shutdown saves the identity state (sessions, cross-domain links) for the next start.
"""

from __future__ import annotations

from pixel.server.enrich.pipeline import Enricher, RequestFacts

__all__ = ["Enricher", "RequestFacts"]
