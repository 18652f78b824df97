"""Where copies of an event can sit in `events`, so that the raw dashboard drops copies only there.

Copies of an event (client retries of one tracker request, a batch sent again) share the table's key
(site, the UTC day of `timestamp`, `event_id`). An insert stores a block with its copies already
collapsed (ReplacingMergeTree's `optimize_on_insert`), and a merge collapses the copies in the parts it
merges. So two copies can only sit in two different active parts of one partition (month), on one UTC
day, which puts their timestamps less than a day apart. For two parts P and Q of one partition, such a
pair lies in the window [max(P.first, Q.first) - 1 day, min(P.last, Q.last) + 1 day], clipped to the
span of the two parts. `first` and `last` are a part's timestamp bounds (system.parts' `min_time` and
`max_time`, rounded down to the second, so the windows reach one second further). Outside the union of
these windows, no row has a copy and it can be read as it is. Inside, the copies are grouped by the
key's hash as before. A month with a single part (for example after an OPTIMIZE) has no window, and
parts inserted in time order only meet at their edges.

The parts are read before the query, and an insert after that read could put a copy of a row outside the
windows. So `still_holds` reads the parts again after the query. If a part holds blocks newer than the
first read's newest in its partition (an insert, or a merge that took one in), the day around that part
must lie inside one window, else the caller runs the query again with copies dropped everywhere. Any
copy the query saw that involves a new row lies within a day of that row, and that row (or the copy a
merge kept in its place) lies in such a part.

The same holds for the sessions table (`session_rows`, partitioned by the month of its 15-minute `slot`):
its rows hold the event and pageview hashes of their events as `uniqExact` states, and two of its rows
hold one event only when copies of it came in two inserts. Copies carry the same values, so the same slot
and dimensions: the two rows have the same key, and the table's view writes one row per key and insert (it
groups an inserted block's events by the key, copies collapsing in the states; the shipper's and the
importer's inserts are one block each), so they sit in two active parts of one month whose slot bounds
(`min_time`, `max_time`) both hold that slot: inside these windows (`read_parts(store, SESSIONS)`), which are
wider than needed (a day on each side). Outside them a row shares no event with any other row, and its
states' sizes can be summed as they are (`session_dashboard`).

Safe by default: an empty or failed answer, or a part without timestamp bounds, gives `None`: copies
possible everywhere. A Distributed table (the cluster engine) has no parts of its own, so it always gives
`None`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pixel.server.store import Store
from pixel.server.store.base import StoreError

DAY = 86_400
EVENTS, SESSIONS = "events", "session_rows"  # the tables whose parts are read (constants, not user text)
_PARTS_SQL = """SELECT partition_id, max_block_number, toUInt32(min_time) AS first, toUInt32(max_time) AS last, rows
    FROM system.parts WHERE database = currentDatabase() AND table = {table:String} AND active AND rows > 0"""


@dataclass(frozen=True)
class Part:
    """One active part of `events` (or `session_rows`): its partition, newest block number and time bounds
    (unix seconds, rounded down)."""

    partition: str
    max_block: int
    first: int
    last: int
    rows: int = 0


# Half-open [start, end) unix-second intervals, sorted and not touching each other.
Windows = tuple[tuple[int, int], ...]


def read_parts(store: Store, table: str = EVENTS) -> tuple[Part, ...] | None:
    """The active, non-empty parts of `table` (`EVENTS` or `SESSIONS`), or None when they cannot be known
    (none listed, a failed read, a part without timestamp bounds)."""
    try:
        rows = store.query(_PARTS_SQL, {"table": table}).dicts()
    except StoreError:
        return None
    parts = tuple(
        Part(
            str(r["partition_id"]),
            int(r["max_block_number"]),
            int(r["first"]),
            int(r["last"]),
            int(r["rows"]),
        )
        for r in rows
    )
    if not parts or any(p.last == 0 for p in parts):
        return None
    return parts


def _merged(intervals: list[tuple[int, int]]) -> Windows:
    out: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def windows(parts: tuple[Part, ...]) -> Windows:
    """Every span of time where two of `parts` could hold copies of one event.

    In order of `first`, a part P before Q has a window with Q only if P ends less than two days before Q
    starts (the window starts at least a day before Q and ends at most a day after P), and the later parts
    start later still: so each part is paired only with the earlier parts still that close (parts inserted
    in time order cost one step each, not one per pair)."""
    by_partition: dict[str, list[Part]] = {}
    for p in parts:
        by_partition.setdefault(p.partition, []).append(p)
    found = []
    for group in by_partition.values():
        near: list[Part] = []
        for q in sorted(group, key=lambda part: part.first):
            near = [p for p in near if p.last + 1 + 2 * DAY > q.first]
            for p in near:
                start = max(q.first - DAY, p.first)
                end = min(min(p.last, q.last) + 1 + DAY, max(p.last, q.last) + 1)
                if start < end:
                    found.append((start, end))
            near.append(q)
    return _merged(found)


def _covered(wins: Windows, start: int, end: int) -> bool:
    return any(a <= start and end <= b for a, b in wins)


def still_holds(before: tuple[Part, ...], wins: Windows, after: tuple[Part, ...] | None) -> bool:
    """Whether a query run between the reads `before` (which gave `wins`) and `after` saw no copies
    outside `wins`: every part of `after` holding blocks newer than `before`'s in its partition lies,
    with a day on each side, inside one window."""
    if after is None:
        return False
    newest: dict[str, int] = {}
    for p in before:
        newest[p.partition] = max(newest.get(p.partition, -1), p.max_block)
    return all(
        _covered(wins, p.first - DAY, p.last + 1 + DAY)
        for p in after
        if p.max_block > newest.get(p.partition, -1)
    )


def rows_within(parts: tuple[Part, ...], wins: Windows, spans: list[tuple[int, int]]) -> int:
    """About how many rows of `parts` lie inside `wins` and inside one of `spans` (half-open unix-second
    intervals): each part's rows taken as spread evenly over its [first, last + 1) seconds. An estimate for
    deciding how to run a query (how many rows it groups by their key), never for an answer."""
    total = 0.0
    for p in parts:
        length = p.last + 1 - p.first
        inside = 0
        for a, b in wins:
            for start, end in spans:
                inside += max(0, min(b, end, p.last + 1) - max(a, start, p.first))
        total += p.rows * min(inside, length) / length
    return round(total)
