"""A fixed, generated data set and the independent Python computations of what reports must say.

Nothing here calls the API's query code: expectations are plain loops over the event dicts.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SITE = "shop.example"
OTHER_SITE = "other.example"
TZ = "Europe/Berlin"
PAGES = ["/", "/pricing", "/blog/a", "/blog/b", "/signup"]
COUNTRIES = ["DE", "FR", "US"]
BROWSERS = ["Chrome", "Firefox", "Safari"]
SOURCES = ["", "Google", "Twitter"]


def ch(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def local_midnight(day: date, tz: str = TZ) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def generate(seed: int = 7) -> list[dict[str, Any]]:
    """About 150 events of 14 visitors in 2024-02-26 .. 2024-03-17 (Berlin), no event on 2024-03-07."""
    rnd = random.Random(seed)
    events: list[dict[str, Any]] = []
    counter = 0
    start = datetime(2024, 2, 25, 22, 0, tzinfo=UTC)
    span = int((datetime(2024, 3, 17, 22, 0, tzinfo=UTC) - start).total_seconds())
    for v in range(14):
        visitor = f"v{v:02d}"
        country, browser = rnd.choice(COUNTRIES), rnd.choice(BROWSERS)
        device = "mobile" if v % 3 == 0 else "desktop"
        for s in range(rnd.randint(1, 4)):
            t = start + timedelta(seconds=rnd.randrange(span))
            if t.astimezone(ZoneInfo(TZ)).date() == date(2024, 3, 7):
                t += timedelta(days=1)
            source = rnd.choice(SOURCES)
            session = f"{visitor}-s{s}"
            for p in range(rnd.randint(1, 4)):
                counter += 1
                path = PAGES[0] if p == 0 and rnd.random() < 0.5 else rnd.choice(PAGES)
                events.append(
                    _event(counter, t, visitor, session, "pageview", path, country, browser, device, source)
                )
                t += timedelta(seconds=rnd.randint(10, 300))
                if path == "/signup" and rnd.random() < 0.7:
                    counter += 1
                    plan = rnd.choice(["pro", "free"])
                    events.append(
                        _event(
                            counter,
                            t,
                            visitor,
                            session,
                            "signup",
                            path,
                            country,
                            browser,
                            device,
                            source,
                            {"plan": plan},
                        )
                    )
                    t += timedelta(seconds=rnd.randint(10, 60))
    # Right at the Berlin day boundary: 23:30 UTC on 5 March is 00:30 on 6 March in Berlin.
    boundary = datetime(2024, 3, 5, 23, 30, tzinfo=UTC)
    events.append(
        _event(900, boundary, "v90", "v90-s0", "pageview", "/pricing", "DE", "Chrome", "desktop", "")
    )
    return events


def _event(
    n: int,
    t: datetime,
    visitor: str,
    session: str,
    name: str,
    path: str,
    country: str,
    browser: str,
    device: str,
    source: str,
    props: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "timestamp": ch(t),
        "received_at": ch(t),
        "site": SITE,
        "event_id": f"e{n:05d}",
        "event_name": name,
        "visitor_id": visitor,
        "session_id": session,
        "path": path,
        "host": SITE,
        "url": f"https://{SITE}{path}",
        "country": country,
        "browser": browser,
        "device_type": device,
        "source": source,
        "ref_host": source.lower() + ".com" if source else "",
        "props": props or {},
        "is_bot": 0,
    }


def noise() -> list[dict[str, Any]]:
    """Rows that must never count: bots, another site's events."""
    t = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
    bot = _event(5000, t, "bot1", "bot1-s0", "pageview", "/", "US", "Googlebot", "desktop", "")
    bot["is_bot"] = 1
    other = _event(5001, t, "x1", "x1-s0", "pageview", "/secret", "DE", "Chrome", "desktop", "")
    other["site"] = OTHER_SITE
    return [bot, other]


# -- expectations ---------------------------------------------------------------------------------


def ts(event: dict[str, Any]) -> datetime:
    return datetime.strptime(event["timestamp"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def select(
    events: list[dict[str, Any]], first: date, last: date, pred: Any = None, *, site: str = SITE, tz: str = TZ
) -> list[dict[str, Any]]:
    """`site`'s events of the local days `first` .. `last` in `tz`, bots left out (and `pred` true)."""
    lo, hi = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    return [
        e
        for e in events
        if e["site"] == site and not e["is_bot"] and lo <= ts(e) < hi and (pred is None or pred(e))
    ]


def summary(events: list[dict[str, Any]]) -> dict[str, float]:
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        sessions[e["session_id"]].append(e)
    pageviews = sum(1 for e in events if e["event_name"] == "pageview")
    n = len(sessions)
    bounces = sum(1 for evs in sessions.values() if sum(e["event_name"] == "pageview" for e in evs) <= 1)
    duration_ms = sum(
        int((max(map(ts, evs)) - min(map(ts, evs))).total_seconds() * 1000) for evs in sessions.values()
    )
    return {
        "visitors": len({e["visitor_id"] for e in events}),
        "pageviews": pageviews,
        "sessions": n,
        "views_per_session": round(pageviews / n, 2) if n else 0.0,
        "bounce_rate": round(bounces * 100.0 / n, 1) if n else 0.0,
        "visit_duration": round(duration_ms * 0.001 / n, 1) if n else 0.0,
    }


def local_day(e: dict[str, Any], tz: str = TZ) -> str:
    return ts(e).astimezone(ZoneInfo(tz)).date().isoformat()


def funnel(events: list[dict[str, Any]], conditions: list[Any], window_s: int) -> list[int]:
    """Visitors reaching each step: chains of strictly later events within the window of step 1."""
    by_visitor: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_visitor[e["visitor_id"]].append(e)
    levels = []
    for evs in by_visitor.values():
        evs.sort(key=ts)
        best = 0
        for i, first in enumerate(evs):
            if not conditions[0](first):
                continue
            level, last_t = 1, ts(first)
            for e in evs[i + 1 :]:
                if level == len(conditions) or ts(e) - ts(first) > timedelta(seconds=window_s):
                    break
                if conditions[level](e) and ts(e) > last_t:
                    level, last_t = level + 1, ts(e)
            best = max(best, level)
        levels.append(best)
    return [sum(1 for lv in levels if lv >= k) for k in range(1, len(conditions) + 1)]


def retention(events: list[dict[str, Any]], weeks: list[str], tz: str = TZ) -> dict[str, list[int]]:
    activity: dict[str, set[str]] = defaultdict(set)
    for e in events:
        d = ts(e).astimezone(ZoneInfo(tz)).date()
        activity[e["visitor_id"]].add((d - timedelta(days=d.weekday())).isoformat())
    out = {w: [0] * (len(weeks) - i) for i, w in enumerate(weeks)}
    for active in activity.values():
        cohort = min(active)
        ci = weeks.index(cohort)
        for w in active:
            out[cohort][weeks.index(w) - ci] += 1
    return out
