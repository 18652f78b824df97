"""Journeys test data: hand-made sessions (reloads, back-and-forth, midnight crossings, ties, bots, duplicates)
plus seeded random ones, stored for three sites that differ only by their time zone; and the independent
Python computation of what the journeys API must answer (plain loops over the event dicts, nothing from the
API's query code).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

ZONES = {"berlin.example": "Europe/Berlin", "ny.example": "America/New_York", "delhi.example": "Asia/Kolkata"}
BERLIN = "berlin.example"
PAGES = ["/", "/pricing", "/blog/a", "/blog/b", "/docs/x", "/signup"]
REACH = timedelta(days=1)

Event = dict[str, Any]


def ch(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def ts(e: Event) -> datetime:
    return datetime.strptime(e["timestamp"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def _ev(n: int, t: datetime, session: str, path: str, name: str = "pageview", **extra: Any) -> Event:
    e = {
        "timestamp": ch(t),
        "received_at": ch(t),
        "site": BERLIN,
        "event_id": f"j{n:06d}",
        "event_name": name,
        "visitor_id": session.split("-")[0],
        "session_id": session,
        "path": path,
        "host": BERLIN,
        "url": f"https://{BERLIN}{path}",
        "country": "DE",
        "browser": "Firefox",
        "props": {},
        "is_bot": 0,
    }
    e.update(extra)
    return e


def berlin(y: int, mo: int, d: int, h: int, mi: int, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=ZoneInfo("Europe/Berlin"))


def handmade() -> list[Event]:
    """Sessions on Berlin's 5 March 2024 (and its edges), each named after what it tests."""
    out: list[Event] = []
    n = 0

    def add(session: str, start: datetime, paths: list[str], gap: int = 60, **extra: Any) -> None:
        nonlocal n
        t = start
        for p in paths:
            n += 1
            out.append(_ev(n, t, session, p, **extra))
            t += timedelta(seconds=gap)

    day = (2024, 3, 5)
    add("reload-s", berlin(*day, 10, 0), ["/", "/pricing", "/pricing", "/signup"])
    add("backforth-s", berlin(*day, 11, 0), ["/", "/blog/a", "/", "/blog/b", "/pricing"])
    add("midnight-s", berlin(*day, 23, 50), ["/", "/docs/x", "/night"], gap=480)  # 23:50, 23:58, 00:06
    add("before-s", berlin(2024, 3, 4, 23, 55), ["/docs/x", "/late"], gap=600)  # starts on 4 March
    add("single-s", berlin(*day, 9, 0), ["/blog/a"])
    add("blogs-s", berlin(*day, 12, 0), ["/blog/a", "/blog/b", "/signup"])
    # two pageviews at the same instant: the least page first, whatever their event ids
    n += 1
    out.append(_ev(n, berlin(*day, 13, 0), "tie-s", "/pricing"))
    n += 1
    out.append(_ev(n, berlin(*day, 13, 0), "tie-s", "/docs/x"))
    add("signup-s", berlin(*day, 14, 0), ["/pricing", "/signup"])
    n += 1
    out.append(_ev(n, berlin(*day, 14, 5), "signup-s", "/signup", "signup", props={"plan": "pro"}))
    add("bot-s", berlin(*day, 15, 0), ["/", "/pricing"], is_bot=1)
    add("fr-s", berlin(*day, 16, 0), ["/", "/docs/x", "/pricing"], country="FR")
    return out


def random_sessions(seed: int = 18, count: int = 120) -> list[Event]:
    """Sessions around the midnights of 4..7 March in all three zones, with reloads and returns."""
    rnd = random.Random(seed)
    out: list[Event] = []
    base = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)
    for s in range(count):
        t = base + timedelta(minutes=rnd.randrange(4 * 24 * 60))
        session = f"r{s:03d}-s"
        country = rnd.choice(["DE", "FR", "US"])
        last = rnd.choice(PAGES)
        for _ in range(rnd.randint(1, 7)):
            page = last if rnd.random() < 0.25 else rnd.choice(PAGES)
            out.append(_ev(10_000 + len(out), t, session, page, country=country))
            last = page
            t += timedelta(seconds=rnd.randint(1, 900))
            if page == "/signup" and rnd.random() < 0.5:
                out.append(_ev(10_000 + len(out), t, session, page, "signup", country=country))
    return out


def events() -> list[Event]:
    """Every event of the three sites (one copy of the same events per site)."""
    base = handmade() + random_sessions()
    out = []
    for site in ZONES:
        for e in base:
            out.append({**e, "site": site, "host": site, "event_id": f"{site[:2]}-{e['event_id']}"})
    return out


# -- the reference computation --------------------------------------------------------------------


def glob(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$", re.S)


def session_paths(
    evs: list[Event],
    site: str,
    first: date,
    last: date,
    *,
    groups: list[str] = (),  # type: ignore[assignment]
    collapse: bool = True,
    pred: Callable[[Event], bool] | None = None,
    include_bots: bool = False,
) -> list[list[str]]:
    """Every session's page path, for sessions whose first pageview lies in first..last (site's local days)."""
    zone = ZoneInfo(ZONES[site])
    lo = datetime(first.year, first.month, first.day, tzinfo=zone).astimezone(UTC)
    end_day = last + timedelta(days=1)
    hi = datetime(end_day.year, end_day.month, end_day.day, tzinfo=zone).astimezone(UTC)
    by_session: dict[str, list[Event]] = defaultdict(list)
    for e in evs:
        if e["site"] == site and (include_bots or not e["is_bot"]) and lo - REACH <= ts(e) < hi + REACH:
            by_session[e["session_id"]].append(e)
    compiled = [(g, glob(g)) for g in groups]
    out = []
    for sid in sorted(by_session):
        session = by_session[sid]
        views = [e for e in session if e["event_name"] == "pageview"]
        if not views or not lo <= min(map(ts, views)) < hi:
            continue
        if pred is not None and not any(pred(e) for e in session):
            continue
        labelled = [(ts(e), next((g for g, rx in compiled if rx.match(e["path"])), e["path"])) for e in views]
        labels = [label for _, label in sorted(labelled)]
        path: list[str] = []
        for label in labels:
            if not (collapse and path and path[-1] == label):
                path.append(label)
        out.append(path)
    return out


def shaped(
    paths: list[list[str]], n: int, start: str | None, end: str | None
) -> dict[tuple[tuple[str, ...], bool], int]:
    """(path, complete) -> sessions, for the mode given by start / end."""
    out: dict[tuple[tuple[str, ...], bool], int] = defaultdict(int)
    for p in paths:
        if start and end:
            if start not in p:
                continue
            i = p.index(start)
            window = p[i : i + n]
            if end not in window:
                continue
            j = window.index(end)
            piece = window[: j + 1]
            out[(tuple(piece), i + j + 1 == len(p))] += 1
        elif start:
            if start not in p:
                continue
            i = p.index(start)
            out[(tuple(p[i : i + n]), len(p) - i <= n)] += 1
        elif end:
            if end not in p:
                continue
            j = p.index(end)
            first = max(0, j - n + 1)
            out[(tuple(p[first : j + 1]), first == 0)] += 1
        else:
            out[(tuple(p[:n]), len(p) <= n)] += 1
    return dict(out)


def columns(counts: dict[tuple[tuple[str, ...], bool], int], n: int, right: bool) -> list[dict[str, int]]:
    """Sessions per page at each step (no page folded into `other`)."""
    cols: list[dict[str, int]] = [defaultdict(int) for _ in range(n)]
    for (pages, _), s in counts.items():
        offset = n - len(pages) if right else 0
        for k, page in enumerate(pages):
            cols[offset + k][page] += s
    return [dict(c) for c in cols]


# (steps, start page, end page) of the journeys asked in every mode: all, from a page, to a page, both, a group.
MODE_CASES: list[tuple[int, str | None, str | None]] = [
    (2, None, None),
    (4, None, None),
    (3, "/", None),
    (6, "/pricing", None),
    (4, None, "/signup"),
    (2, None, "/pricing"),
    (5, "/", "/signup"),
    (3, "/blog/*", None),
]
