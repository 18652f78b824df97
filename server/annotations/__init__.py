"""Annotations written by Pixel itself: what happened to the appliance that changes the numbers.

- `records`: writing an annotation once (its `auto_key` is UNIQUE in the metadata DB: a second write of the same
  key is a no-op), what the writers last observed (`auto_state`), and the diff of a site's rules.
- `watch.AutoAnnotator`: the store process's observer; each `check_once(now)` compares what it sees with what it
  saw last and writes an annotation per change: a new Pixel release (an upgrade), a restore announced by a file
  in the data folder, a new GeoIP database, a new tracker build, a site whose events stopped for longer than
  `gap_factor` times its usual interval, the shipper degraded.

Time is always passed in (`now`, epoch seconds): nothing here reads the wall clock itself.
"""

from pixel.server.annotations.records import (
    AUTHOR,
    KINDS,
    RULE_FIELDS,
    add_auto,
    clear_state,
    note_site_rules,
    read_state,
    rule_changes,
    write_state,
)

__all__ = [
    "AUTHOR",
    "KINDS",
    "RULE_FIELDS",
    "add_auto",
    "clear_state",
    "note_site_rules",
    "read_state",
    "rule_changes",
    "write_state",
]
