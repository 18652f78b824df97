"""The durable spool between the collector and the shipper.

Layout: `<data>/spool/` holds segment files named `<created_ns>-<pid>-<n>.open` while a collector
worker appends to them and `…seg` once sealed. Each worker owns its segments (no cross-process
lock on the hot path) and holds an exclusive `flock` on its open segment for as long as it writes
to it, so the shipper can tell a live writer from a dead one: when it can take the lock itself, the
writer is gone and the segment is sealed on its behalf.

A record is one line (see `record.py`); the first line of a segment is the format header.
"""

from pixel.server.spool.record import HEADER, Record, encode_record, parse_record
from pixel.server.spool.writer import SpoolWriter, spool_bytes, unshipped_bytes

__all__ = [
    "HEADER",
    "Record",
    "SpoolWriter",
    "encode_record",
    "parse_record",
    "spool_bytes",
    "unshipped_bytes",
]
