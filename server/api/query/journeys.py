"""Journeys: the paths sessions take through a site's pages, as top paths and as a flow of steps (a Sankey).

Definitions (tests/api/journeys_data.py computes the same numbers independently):
- A session's **path** is its pageviews in time order, each page replaced by its group's
  pattern when it matches one of `groups` (globs such as `/blog/*`, `*` = any characters, first match wins).
  With `collapse_repeats` (the default) a page equal to the one before it (a reload, or two pages of one group
  in a row) is not a new step; back-and-forth navigation (`/a`, `/b`, `/a`) keeps every step. Pageviews at
  the same instant go in the order of their labels (the least first, as for `entry_page`).
- A session belongs to the range when its **first pageview** is in it (local days of the site's zone), and then
  its whole path counts, pages after the range's end included: a session crossing local midnight is counted
  once, on the day it started. Pages more than `SESSION_REACH` before the range's start or after its end are
  not read (a session that long is cut there).
- Filters select **sessions**: a session counts when at least one of its events matches every filter (so
  `[["page","is","/pricing"]]` keeps the whole path of sessions that viewed /pricing). Bots are left out unless
  `include_bots`. Events are read without FINAL, and a duplicate delivery (a copy of an event: same event id,
  time and page) never adds a step: collapsed, a copy sorts next to its original and folds like a reload (the
  event id is not even read); with `collapse_repeats` false a session's pageviews are its distinct (time, page,
  event id hash) triples, so two views at one instant are two steps and copies one. Sessions are grouped by
  `session_hash`, the session id's 64-bit hash the store keeps with each event (store migration 16), and event
  ids by theirs (a collision is negligible; reading and grouping 8 bytes is much cheaper than the text).
- Modes, with N steps (2..6): across all sessions, the first N pages; with `start` X, the N pages from the
  session's first view of X; with `end` Y, the N pages up to its first view of Y (fewer when the session
  entered the site later); with both, the path from the first X up to the first Y after it, when Y comes
  within N steps (else the session does not count).
- `complete` on a path: the session ended right after its last page (start / all / both), or entered the site
  on its first page (end). A node's `dropoff` counts the complete paths that end (start) there.

The journeys answer is summed by the store (`path_tallies`): what comes back is bounded by `limit`, the pages
per step and `per_step` (the top paths, each step's pages, the links and drop-offs with the pages outside a
step's `per_step` busiest already folded into the `other` node), never one row per distinct path (a large site
has about as many as sessions). `shape` over `path_counts` computes the same answer in Python from every
distinct path (the tests hold the two equal; `neighbours` uses it: two steps have few distinct paths).

`next_pages` and `previous_pages` are the two-step cases ("where do sessions go after their first view of X",
"where do they come from before it"), with the sessions that left (or entered) at X as the drop-off.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pixel.server.api.errors import ApiError, bad_request
from pixel.server.api.query.filters import SqlParams, filter_sql, text_problem
from pixel.server.api.query.goal_match import glob_regex
from pixel.server.api.query.periods import ch_datetime
from pixel.server.api.query.scope import Scope
from pixel.server.api.query.session_dashboard import SESSION_FILTERS
from pixel.server.store import sessions_backfill

MIN_STEPS, MAX_STEPS = 2, 6
MAX_GROUPS = 20
MAX_PAGE = 500
MAX_LIMIT = 100
MAX_PER_STEP = 50
SESSION_REACH = timedelta(days=1)
SLOT_SECONDS = 900  # session_rows' slot: 15 minutes
MODES = ("all", "start", "end", "both")


@dataclass(frozen=True)
class JourneyQuery:
    """One journeys request, validated by `check` (a 400 for anything out of bounds)."""

    steps: int = 4
    start: str | None = None
    end: str | None = None
    groups: list[str] = field(default_factory=list)
    collapse_repeats: bool = True
    limit: int = 10
    per_step: int = 8

    @property
    def mode(self) -> str:
        if self.start and self.end:
            return "both"
        return "start" if self.start else "end" if self.end else "all"

    def check(self) -> JourneyQuery:
        if not MIN_STEPS <= self.steps <= MAX_STEPS:
            raise bad_request(f"steps must be between {MIN_STEPS} and {MAX_STEPS}", "invalid_journey")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise bad_request(f"limit must be between 1 and {MAX_LIMIT}", "invalid_journey")
        if not 1 <= self.per_step <= MAX_PER_STEP:
            raise bad_request(f"per_step must be between 1 and {MAX_PER_STEP}", "invalid_journey")
        if len(self.groups) > MAX_GROUPS:
            raise bad_request(f"at most {MAX_GROUPS} page groups", "invalid_pattern")
        for pattern in self.groups:
            check_page(pattern, "group pattern")
        for name, page in (("start", self.start), ("end", self.end)):
            if page is not None:
                check_page(page, f"{name} page")
        if self.start and self.start == self.end:
            raise bad_request("start and end must be different pages", "invalid_journey")
        return self

    def all_groups(self) -> list[str]:
        """`groups`, then a start / end page holding `*` that is not a group yet (it names its own group)."""
        out = list(dict.fromkeys(self.groups))
        for page in (self.start, self.end):
            if page and "*" in page and page not in out:
                out.append(page)
        return out


def check_page(page: str, what: str) -> None:
    """A page or group pattern: a path starting with `/`, at most `MAX_PAGE` characters of storable text."""
    problem = text_problem(page)
    if problem:
        raise bad_request(f"the {what} cannot be used: {problem}", "invalid_pattern")
    if not page.startswith("/"):
        raise bad_request(f"the {what} must start with / (got {page[:80]!r})", "invalid_pattern")
    if len(page) > MAX_PAGE:
        raise bad_request(f"the {what} is limited to {MAX_PAGE} characters", "invalid_pattern")
    if any(ord(c) < 32 for c in page):
        raise bad_request(f"the {what} holds a control character", "invalid_pattern")


def label_sql(groups: list[str], params: SqlParams) -> str:
    """The node label of a pageview: its group's pattern (first match), else its path."""
    if not groups:
        return "path"
    branches = [f"match(path, {params.add(glob_regex(g))}), {params.add(g)}" for g in groups]
    return f"multiIf({', '.join(branches)}, path)"


def shape_sql(q: JourneyQuery, params: SqlParams) -> tuple[str, str, str]:
    """(pages, complete, keep) expressions over `seq`, the session's collapsed path, for the query's mode."""
    n = int(q.steps)
    if q.mode == "all":
        return f"arraySlice(seq, 1, {n})", f"length(seq) <= {n}", "1"
    if q.mode == "start":
        x = params.add(q.start)
        return (
            f"arraySlice(seq, indexOf(seq, {x}), {n})",
            f"length(seq) - indexOf(seq, {x}) < {n}",
            f"indexOf(seq, {x}) > 0",
        )
    if q.mode == "end":
        y = params.add(q.end)
        return (
            f"arraySlice(seq, greatest(1, indexOf(seq, {y}) - {n - 1}), least(indexOf(seq, {y}), {n}))",
            f"indexOf(seq, {y}) <= {n}",
            f"indexOf(seq, {y}) > 0",
        )
    x, y = params.add(q.start), params.add(q.end)
    rest = f"arraySlice(seq, indexOf(seq, {x}), {n})"
    return (
        f"arraySlice({rest}, 1, indexOf({rest}, {y}))",
        f"length(seq) = indexOf(seq, {x}) + indexOf({rest}, {y}) - 1",
        f"indexOf(seq, {x}) > 0 AND indexOf({rest}, {y}) > 0",
    )


def filters_from_session_rows(scope: Scope) -> bool:
    """Whether the filters' set of sessions is read from the sessions table (`session_rows`, a few times fewer
    rows than the events) rather than the events: when every filter is on a dimension it keeps per row (a
    row's events all hold the same values, so a row matches every filter exactly when one of its events
    does, and its `sid` is the events' `session_hash`), the window's ends fall on its 15-minute slots (a
    range of local days does, and `SESSION_REACH` is whole days), and it holds every event of the window
    (`sessions_backfill.covers`). The same set either way."""
    lo = scope.range.start - SESSION_REACH
    return (
        all(f.dimension in SESSION_FILTERS for f in scope.filters)
        and all(m.timestamp() % SLOT_SECONDS == 0 for m in (lo, scope.range.end + SESSION_REACH))
        and sessions_backfill.covers(scope.runner.store, lo.timestamp())
    )


def _window(scope: Scope, params: SqlParams, column: str = "timestamp") -> str:
    """The rows the route reads (`column`: the events' time, or `session_rows`' slot): the site's,
    `SESSION_REACH` either side of the range, bots left out unless asked for."""
    lo = params.add(ch_datetime(scope.range.start - SESSION_REACH), "DateTime64(3)")
    hi = params.add(ch_datetime(scope.range.end + SESSION_REACH), "DateTime64(3)")
    bots = "" if scope.include_bots else " AND is_bot = 0"
    return f"site = {{site:String}} AND {column} >= {lo} AND {column} < {hi}{bots}"


def filter_set_sql(scope: Scope, params: SqlParams) -> str:
    """The query of the hashes of the sessions with an event of the window matching every filter (read from the
    sessions table when `filters_from_session_rows`, else the events)."""
    cond = " AND ".join(f"({filter_sql(f, params)})" for f in scope.filters)
    if filters_from_session_rows(scope):
        return f"SELECT sid FROM session_rows PREWHERE {_window(scope, params, 'slot')} AND {cond}"
    return f"SELECT session_hash FROM events PREWHERE {_window(scope, params)} AND {cond}"


def session_rows_sql(scope: Scope, q: JourneyQuery, params: SqlParams) -> str:
    """The query of each of the scope's sessions under `q`: its `pages` (the mode's steps) and `complete`.

    One scan of the site's pageviews in the window, grouped by the stored `session_hash` (the session id itself
    is never read). Every condition is in `PREWHERE` (site, time, event name and bots first, then the chosen
    sessions' hashes), so the hash is read only for the window's pageviews and time and page only for the chosen sessions' (an explicit PREWHERE
    turns ClickHouse's own moving of WHERE conditions off, so nothing is left in WHERE); each session's path is its
    (time, label) pairs sorted, and the steps are built from it in the same pass (`HAVING` keeps the sessions
    that started in the range and fit the mode). With `collapse_repeats` the event id is not read at all: the
    copies of one event have its time and page, so they sort next to each other and collapse like a reload.
    Without it, a copy is told from a second view at the same instant by the event id's hash."""
    from pixel.server.api.query import path_cache  # (it builds on this module)

    cached = path_cache.rows_sql(scope, q, params)
    if cached is not None:
        return cached
    label = label_sql(q.all_groups(), params)
    window = _window(scope, params)
    chosen = []
    if scope.filters:  # the sessions with an event matching every filter: a set of hashes, read first
        chosen.append(f"session_hash IN ({filter_set_sql(scope, params)})")
    anchor = q.start or q.end  # only sessions that viewed it can count: chosen first, as for filters
    if anchor:
        seen = page_condition(anchor, q.all_groups(), params)
        chosen.append(
            f"""session_hash IN (SELECT session_hash FROM events
            PREWHERE {window} AND event_name = 'pageview' AND {seen})"""
        )
    if q.collapse_repeats:  # labels and times gathered apart (a tuple's groupArray is the slow generic one)
        raw = f"arraySort((p, t) -> (t, p), groupArray({label}), groupArray(timestamp))"
        seq = f"arrayFilter((p, i) -> i = 1 OR p != raw[i - 1], {raw} AS raw, arrayEnumerate(raw))"
    else:
        steps = f"arraySort(groupArray((timestamp, {label}, cityHash64(event_id))))"
        seq = f"arrayMap(t -> t.2, arrayDistinct({steps}))"
    pages, complete, keep = shape_sql(q, params)
    sets = "".join(f" AND {c}" for c in chosen)
    return f"""SELECT {seq} AS seq, {pages} AS pages, {complete} AS complete
        FROM events
        PREWHERE {window} AND event_name = 'pageview'{sets}
        GROUP BY session_hash
        HAVING min(timestamp) >= {{start:DateTime64(3)}} AND min(timestamp) < {{end:DateTime64(3)}} AND {keep}"""


def sessions_sql(scope: Scope, q: JourneyQuery, params: SqlParams) -> str:
    """The query of every distinct (pages, complete) of the scope's sessions under `q`, with its sessions
    (`session_rows_sql` grouped)."""
    return f"""SELECT pages, complete, count() AS sessions FROM ({session_rows_sql(scope, q, params)})
    GROUP BY pages, complete"""


# The kinds of tally `tallies_sql` sums (its `kind` column).
PATH, PAGE, LINK, DROPOFF, TOTAL = range(5)


def tallies_sql(scope: Scope, q: JourneyQuery, params: SqlParams) -> str:
    """The query of the journeys' `Tallies`, summed in the store so that only they come back (the paths
    themselves never are: a large site has about as many distinct paths as sessions, and as many links as
    pairs of pages).

    The sessions of `session_rows_sql` are first grouped by (pages, complete), the distinct paths with their
    sessions `s`. Each distinct path is turned into its facts by ARRAY JOIN, one row per (kind, column, page,
    next page), grouped and summed: `PATH` one per path, `PAGE` (column, page) for each page, `LINK` (column,
    page, next page) for each pair in a row, `DROPOFF` (edge column, edge page) of a complete path, `TOTAL` one
    per path. Columns are 0-based; `end` mode aligns on the last. The path itself is not in the grouping key:
    the `PATH` group keeps only the top `limit` paths, `groupArraySorted` of (-sessions, pages, complete)
    (busiest first, then by pages and complete, as Python orders tuples: UTF-8 text compares byte by byte as
    code points do, arrays element by element, a prefix first).

    Then the grouped rows (every page, link and drop-off: as many as the distinct links, far fewer than the
    paths) are gathered into one row, where each column's `per_step` busiest pages (ranked as `_ranked` does)
    are picked and every link and drop-off has its pages outside them replaced by NULL (the `other` node);
    the rows are spread out again by ARRAY JOIN and summed once more. What comes back: the top paths, every
    `PAGE`, the folded links and drop-offs and the `TOTAL`, in the columns `path_tallies` reads."""
    n = int(q.steps)
    if q.mode == "end":
        col, edge_col, edge_page = (
            f"toUInt8({n} - length(pages) + i - 1)",
            f"toUInt8({n} - length(pages))",
            "pages[1]",
        )
    else:
        col, edge_col, edge_page = "toUInt8(i - 1)", "toUInt8(length(pages) - 1)", "pages[-1]"
    facts = f"""arrayConcat(
            [(toUInt8({PATH}), toUInt8(0), '', ''), (toUInt8({TOTAL}), toUInt8(0), '', '')],
            arrayMap((p, i) -> (toUInt8({PAGE}), {col}, p, ''), pages, arrayEnumerate(pages)),
            arrayMap((p, x, i) -> (toUInt8({LINK}), {col}, p, x),
                arrayPopBack(pages), arrayPopFront(pages), arrayEnumerate(arrayPopBack(pages))),
            if(complete, [(toUInt8({DROPOFF}), {edge_col}, {edge_page}, '')], []))"""
    kept = ", ".join(  # column c's busiest pages: rows are (kind, c, page, next page, sessions)
        f"""arrayMap(r -> r.3, arraySlice(arraySort(r -> (-toInt64(r.5), r.3),
                arrayFilter(r -> r.1 = {PAGE} AND r.2 = {c}, rows)), 1, {int(q.per_step)}))"""
        for c in range(n)
    )
    none = "CAST([], 'Array(String)')"
    folded = f"""arrayMap(r -> (r.1, r.2,
                if(r.1 IN ({LINK}, {DROPOFF}) AND NOT has(kept[r.2 + 1], r.3), NULL, r.3),
                if(r.1 = {LINK} AND NOT has(kept[r.2 + 2], r.4), NULL, r.4), {none}, toUInt8(0), r.5), rows)"""
    top = f"arrayMap(t -> (toUInt8({PATH}), toUInt8(0), NULL, NULL, t.2, t.3, toUInt64(-t.1)), top)"
    return f"""SELECT f.1 AS kind, f.2 AS c, f.3 AS page, f.4 AS next_page, f.5 AS path, f.6 AS done,
        sum(f.7) AS n
    FROM (
        SELECT arrayConcat({top}, {folded}) AS out
        FROM (
            SELECT rows, top, [{kept}] AS kept
            FROM (
                SELECT groupArrayIf((kind, c, a, b, n), kind != {PATH}) AS rows, groupArrayArray(top) AS top
                FROM (
                    SELECT f.1 AS kind, f.2 AS c, f.3 AS a, f.4 AS b, sum(s) AS n,
                        groupArraySortedIf({int(q.limit)})((-toInt64(s), pages, complete), f.1 = {PATH}) AS top
                    FROM (SELECT pages, complete, count() AS s FROM ({session_rows_sql(scope, q, params)})
                        GROUP BY pages, complete)
                    ARRAY JOIN {facts} AS f
                    GROUP BY kind, c, a, b))))
    ARRAY JOIN out AS f
    GROUP BY kind, c, page, next_page, path, done"""


def path_tallies(scope: Scope, q: JourneyQuery) -> Tallies:
    """The journeys' tallies of the scope's sessions under `q`, summed by the store (`tallies_sql`)."""
    params = SqlParams()
    out = Tallies()
    paths: list[tuple[tuple[str, ...], bool, int]] = []
    for r in scope.run(tallies_sql(scope, q, params), params):
        kind, c, n = int(r["kind"]), int(r["c"]), int(r["n"])
        if kind == PATH:
            paths.append((tuple(r["path"]), bool(r["done"]), n))
        elif kind == PAGE:
            out.pages[(c, r["page"])] += n
        elif kind == LINK:
            out.links[(c, r["page"], r["next_page"])] += n
        elif kind == DROPOFF:
            out.dropoff[(c, r["page"])] += n
        else:
            out.total += n
    out.top = sorted(paths, key=lambda p: (-p[2], p[0], p[1]))
    return out


def path_counts(scope: Scope, q: JourneyQuery) -> list[tuple[tuple[str, ...], bool, int]]:
    """Every distinct (path, complete) of the scope's sessions under `q`, with its number of sessions."""
    params = SqlParams()
    sql = sessions_sql(scope, q, params)
    return [(tuple(r["pages"]), bool(r["complete"]), int(r["sessions"])) for r in scope.run(sql, params)]


def _ranked(counts: dict[str, int], top: int) -> list[str]:
    return [p for p, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]


def _columns(q: JourneyQuery, length: int) -> range:
    """The step columns (0-based) of a path of `length` pages: from the first (`end` mode: up to the last)."""
    return range(q.steps - length, q.steps) if q.mode == "end" else range(length)


@dataclass
class Tallies:
    """What the journeys answer is made of, summed over the sessions: the top `limit` (path, complete) with
    their sessions (busiest first, then by path and complete), sessions per (column, page), per link
    (column, page, next page) and per drop-off (column, page); in links and drop-offs, a page may already be
    `None` (`other`: not among its column's `per_step` busiest), never in `pages`."""

    total: int = 0
    top: list[tuple[tuple[str, ...], bool, int]] = field(default_factory=list)
    pages: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))
    links: dict[tuple[int, str | None, str | None], int] = field(default_factory=lambda: defaultdict(int))
    dropoff: dict[tuple[int, str | None], int] = field(default_factory=lambda: defaultdict(int))


def tallies(q: JourneyQuery, rows: list[tuple[tuple[str, ...], bool, int]]) -> Tallies:
    """The tallies of every distinct (path, complete) with its sessions (as `path_counts` returns them)."""
    out = Tallies()
    merged: dict[tuple[tuple[str, ...], bool], int] = defaultdict(int)
    for pages, complete, sessions in rows:
        merged[(pages, complete)] += sessions
    paths = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))
    out.top = [(pages, complete, s) for (pages, complete), s in paths[: q.limit]]
    right = q.mode == "end"
    for (pages, complete), s in merged.items():
        out.total += s
        columns = list(_columns(q, len(pages)))
        for c, page in zip(columns, pages, strict=True):
            out.pages[(c, page)] += s
        for c, a, b in zip(columns, pages, pages[1:], strict=False):
            out.links[(c, a, b)] += s
        if complete:
            edge = 0 if right else -1
            out.dropoff[(columns[edge], pages[edge])] += s
    return out


def shape(q: JourneyQuery, rows: list[tuple[tuple[str, ...], bool, int]]) -> dict[str, Any]:
    """The journeys answer from the distinct paths (as `path_counts` returns them)."""
    return answer(q, tallies(q, rows))


def answer(q: JourneyQuery, t: Tallies) -> dict[str, Any]:
    """The journeys answer from its tallies: top paths, and the steps' nodes and links for a Sankey (each
    step's `per_step` busiest pages, the rest as one node whose `page` is null)."""
    n = q.steps
    per_col: list[dict[str, int]] = [defaultdict(int) for _ in range(n)]
    for (c, page), s in t.pages.items():
        per_col[c][page] += s
    kept = [set(_ranked(per_col[c], q.per_step)) for c in range(n)]

    def node(c: int, page: str | None) -> str | None:
        return page if page in kept[c] else None

    sessions_at: list[dict[str | None, int]] = [defaultdict(int) for _ in range(n)]
    dropoff: list[dict[str | None, int]] = [defaultdict(int) for _ in range(n)]
    links: dict[tuple[int, str | None, str | None], int] = defaultdict(int)
    for (c, page), s in t.pages.items():
        sessions_at[c][node(c, page)] += s
    for (c, a, b), s in t.links.items():
        links[(c, node(c, a), node(c + 1, b))] += s
    for (c, edge), s in t.dropoff.items():
        dropoff[c][node(c, edge)] += s

    def order(c: int) -> list[str | None]:
        named: list[str | None] = [p for p in _ranked(per_col[c], q.per_step)]
        return named + ([None] if None in sessions_at[c] else [])

    columns_out = [
        {
            "step": c + 1,
            "nodes": [
                {"page": p, "sessions": sessions_at[c][p], "dropoff": dropoff[c].get(p, 0)} for p in order(c)
            ],
        }
        for c in range(n)
    ]
    rank = [{p: i for i, p in enumerate(order(c))} for c in range(n)]
    links_out = [
        {"step": c + 1, "source": a, "target": b, "sessions": s}
        for (c, a, b), s in sorted(
            links.items(), key=lambda kv: (kv[0][0], rank[kv[0][0]][kv[0][1]], rank[kv[0][0] + 1][kv[0][2]])
        )
    ]
    return {
        "mode": q.mode,
        "steps": n,
        "start": q.start,
        "end": q.end,
        "groups": q.all_groups(),
        "collapse_repeats": q.collapse_repeats,
        "sessions": t.total,
        "paths": [
            {"pages": list(pages), "sessions": s, "complete": complete} for pages, complete, s in t.top
        ],
        "columns": columns_out,
        "links": links_out,
    }


def page_condition(page: str, groups: list[str], params: SqlParams) -> str:
    """A pageview of `page`: its glob when it is a group pattern, else the exact path."""
    return f"match(path, {params.add(glob_regex(page))})" if page in groups else f"path = {params.add(page)}"


def page_seen(scope: Scope, page: str, groups: list[str]) -> bool:
    """Whether the site has a pageview of `page` (a path, or a group pattern) in the range or in the
    `SESSION_REACH` after it (where the range's sessions may still go), filters aside."""
    params = SqlParams()
    cond = page_condition(page, groups, params)
    bots = "" if scope.include_bots else " AND is_bot = 0"
    hi = params.add(ch_datetime(scope.range.end + SESSION_REACH), "DateTime64(3)")
    sql = f"""SELECT count() AS n FROM (SELECT 1 FROM events WHERE site = {{site:String}}
        AND timestamp >= {{start:DateTime64(3)}} AND timestamp < {hi}{bots}
        AND event_name = 'pageview' AND {cond} LIMIT 1)"""
    return int(scope.run(sql, params)[0]["n"]) > 0


def _check_pages(scope: Scope, q: JourneyQuery) -> None:
    groups = q.all_groups()
    for name, page in (("start", q.start), ("end", q.end)):
        if not page:
            continue
        before = groups[: groups.index(page)] if page in groups else groups
        inside = next((g for g in before if re.match(glob_regex(g), page)), None)
        if inside is not None:
            raise bad_request(
                f"the {name} page {page!r} is inside the group {inside!r}: use the group as the {name} page",
                "invalid_journey",
            )
        if not page_seen(scope, page, groups):
            raise ApiError(
                404,
                "unknown_page",
                f"no pageview of {page!r} on this site in this period: pick the {name} page among the "
                "site's pages (or a pattern such as /blog/*)",
            )


def journeys(scope: Scope, q: JourneyQuery) -> dict[str, Any]:
    q.check()
    _check_pages(scope, q)
    return answer(q, path_tallies(scope, q))


def neighbours(scope: Scope, page: str, direction: str, q: JourneyQuery) -> dict[str, Any]:
    """The pages right after (`direction` "next") or right before ("previous") the sessions' first view of
    `page`, busiest first (`q.limit` of them, the rest summed in `other`), with the drop-off: the sessions
    that left the site at `page` (next) or entered it there (previous)."""
    two = JourneyQuery(
        steps=2,
        start=page if direction == "next" else None,
        end=page if direction == "previous" else None,
        groups=q.groups,
        collapse_repeats=q.collapse_repeats,
        limit=1,
        per_step=1,
    ).check()
    if not 1 <= q.limit <= MAX_LIMIT:
        raise bad_request(f"limit must be between 1 and {MAX_LIMIT}", "invalid_journey")
    _check_pages(scope, two)
    rows = path_counts(scope, two)
    total = sum(s for _, _, s in rows)
    counts: dict[str, int] = defaultdict(int)
    dropped = 0
    for pages, _, s in rows:
        if len(pages) == 2:
            counts[pages[1] if direction == "next" else pages[0]] += s
        else:
            dropped += s

    def pct(v: int) -> float:
        return round(v * 100.0 / total, 2) if total else 0.0

    ranked = _ranked(counts, len(counts))
    shown = [{"page": p, "sessions": counts[p], "percent": pct(counts[p])} for p in ranked[: q.limit]]
    rest = sum(counts[p] for p in ranked[q.limit :])
    return {
        "page": page,
        "direction": direction,
        "groups": two.all_groups(),
        "collapse_repeats": q.collapse_repeats,
        "sessions": total,
        "pages": shown,
        "other": {"sessions": rest, "percent": pct(rest)} if rest else None,
        "dropoff": dropped,
        "dropoff_rate": pct(dropped),
    }
