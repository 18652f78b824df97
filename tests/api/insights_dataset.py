"""Generated events for the insight reports and the independent Python computations of their answers.

Nothing here calls the API's query code: each expectation is a plain loop over the event dicts, written from
the definitions in the query modules' docstrings (engagement, content, performance, errors, revenue). The
same events are stored under one site per time zone of `ZONES`, so every report is checked in each zone.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

ZONES = {
    "berlin.insights": "Europe/Berlin",
    "newyork.insights": "America/New_York",
    "kolkata.insights": "Asia/Kolkata",
}
PAGES = ["/", "/pricing", "/docs", "/blog/a", "/checkout"]
COUNTRIES = ["DE", "US", "IN"]
BROWSERS = ["Chrome", "Firefox", "Safari"]
DEVICES = ["desktop", "mobile", "tablet"]
SOURCES = ["", "Google", "Newsletter"]
CAMPAIGNS = ["", "spring", "launch"]
LINKS = ["https://github.com/x", "https://docs.other.org/a", "https://news.example/?q=1"]
FILES = ["https://cdn.example/a.pdf", "https://cdn.example/b.zip"]
FORMS = [("signup", "https://x.example/signup"), ("", "https://x.example/search"), ("contact", "")]
REFERRERS = ["", "https://old.example/link", "https://search.example/?q=x"]
ERRORS = [("TypeError: a is undefined", "https://x.example/app.js", 12), ("boom", "", 0), ("boom", "", 7)]
# metric -> (column, good threshold: at or below is good, poor threshold: above is poor)
VITALS = {
    "ttfb": ("ttfb_ms", 800, 1800),
    "fcp": ("fcp_ms", 1800, 3000),
    "lcp": ("lcp_ms", 2500, 4000),
    "cls": ("cls", 0.1, 0.25),
    "inp": ("inp_ms", 200, 500),
}
FIRST_DAY, LAST_DAY = date(2024, 3, 4), date(2024, 3, 17)
QUANTUM = Decimal("0.0001")


def ch(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def ts(event: dict[str, Any]) -> datetime:
    return datetime.strptime(event["timestamp"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def rating(metric: str, value: float) -> str:
    _, good, poor = VITALS[metric]
    return "poor" if value > poor else "needs-improvement" if value > good else "good"


def generate(site: str, seed: int = 11) -> list[dict[str, Any]]:
    """About 1,000 events of 24 visitors between 2024-03-02 and 2024-03-19 (UTC); for one seed the same events
    for every site but for the `site` field and the event ids."""
    rnd = random.Random(seed)
    events: list[dict[str, Any]] = []
    start = datetime(2024, 3, 2, 0, 0, tzinfo=UTC)
    n = 0

    def add(t: datetime, base: dict[str, Any], name: str, **fields: Any) -> None:
        nonlocal n
        n += 1
        events.append(
            {
                **base,
                "timestamp": ch(t),
                "received_at": ch(t),
                "event_id": f"{site}-{n:05d}",
                "event_name": name,
                **fields,
            }
        )

    for v in range(24):
        visitor = f"v{v:02d}"
        common = {
            "site": site,
            "visitor_id": visitor,
            "host": site,
            "country": rnd.choice(COUNTRIES),
            "browser": rnd.choice(BROWSERS),
            "device_type": DEVICES[v % 3],
            "is_bot": 0,
            "props": {},
        }
        for s in range(rnd.randint(1, 3)):
            t = start + timedelta(seconds=rnd.randrange(17 * 86400))
            base = {
                **common,
                "session_id": f"{visitor}-s{s}",
                "source": rnd.choice(SOURCES),
                "utm_campaign": rnd.choice(CAMPAIGNS),
            }
            for _ in range(rnd.randint(1, 5)):
                path = rnd.choice(PAGES)
                page = {**base, "path": path, "url": f"https://{site}{path}"}
                if rnd.random() < 0.12:
                    add(t, page, "pageview", not_found=1, referrer=rnd.choice(REFERRERS))
                else:
                    add(t, page, "pageview", referrer=rnd.choice(REFERRERS))
                t += timedelta(seconds=rnd.randint(1, 40))
                if rnd.random() < 0.6:
                    vitals: dict[str, Any] = {}
                    for metric, (column, good, poor) in VITALS.items():
                        if rnd.random() < 0.8:
                            spread = round(rnd.uniform(0, poor * 1.5), 3 if metric == "cls" else 0)
                            value = rnd.choice([spread, spread, spread, good, poor])  # the thresholds too
                            vitals[column] = float(value)
                            vitals[f"{metric}_rating"] = rating(metric, value)
                    add(t, page, "web_vitals", **vitals)
                for _ in range(rnd.choice([0, 1, 1, 2])):
                    t += timedelta(seconds=rnd.randint(1, 90))
                    add(
                        t,
                        page,
                        "engagement",
                        engaged_ms=rnd.choice([0, 500, 1500, 3000, rnd.randint(1, 90_000)]),
                    )
                if rnd.random() < 0.25:
                    add(t, page, "outbound", props={"url": rnd.choice(LINKS)})
                if rnd.random() < 0.15:
                    url = rnd.choice(FILES)
                    add(t, page, "download", props={"url": url, "ext": url.rsplit(".", 1)[1]})
                if rnd.random() < 0.15:
                    form_id, action = rnd.choice(FORMS)
                    add(t, page, "form_submit", props={"id": form_id, "action": action, "fields": "email"})
                if rnd.random() < 0.15:
                    message, source, line = rnd.choice(ERRORS)
                    add(t, page, "error", error_message=message, error_source=source, error_line=line)
                if path == "/checkout" and rnd.random() < 0.7:
                    amount = rnd.choice(["49.9", "120", "-20", "0.3333", "1000.0001"])
                    add(
                        t,
                        page,
                        "purchase",
                        revenue=f"{Decimal(amount):.4f}",
                        currency=rnd.choice(["EUR", "EUR", "USD"]),
                    )
                if rnd.random() < 0.8:
                    add(t, page, "scroll", scroll_depth=rnd.choice([0, 10, 25, 49, 50, 75, 99, 100]))
                t += timedelta(seconds=rnd.randint(5, 200))
    return events


def noise(site: str) -> list[dict[str, Any]]:
    """Rows no report may count: a bot's, and another site's with the same paths."""
    t = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    common = {
        "timestamp": ch(t),
        "received_at": ch(t),
        "host": site,
        "path": "/pricing",
        "url": "",
        "props": {},
    }
    return [
        {
            **common,
            "site": site,
            "event_id": "bot-1",
            "event_name": "pageview",
            "visitor_id": "bot",
            "session_id": "b",
            "is_bot": 1,
            "not_found": 1,
        },
        {
            **common,
            "site": site,
            "event_id": "bot-2",
            "event_name": "error",
            "visitor_id": "bot",
            "session_id": "b",
            "is_bot": 1,
            "error_message": "boom",
        },
        {
            **common,
            "site": "elsewhere.insights",
            "event_id": "x-1",
            "event_name": "purchase",
            "visitor_id": "x",
            "session_id": "x",
            "is_bot": 0,
            "revenue": "5.0000",
            "currency": "GBP",
        },
    ]


def local_midnight(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def select(
    events: list[dict[str, Any]],
    site: str,
    tz: str,
    first: date = FIRST_DAY,
    last: date = LAST_DAY,
    pred: Callable[[dict[str, Any]], bool] | None = None,
) -> list[dict[str, Any]]:
    lo, hi = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    return [
        e
        for e in events
        if e["site"] == site and not e.get("is_bot") and lo <= ts(e) < hi and (pred is None or pred(e))
    ]


def quantile(values: list[float], q: float) -> float | None:
    """ClickHouse's quantileExact: the value at index floor(q * n) of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def pct(part: int, whole: int) -> float | None:
    return round(part * 100.0 / whole, 1) if whole else None


# -- engagement --------------------------------------------------------------------------------------


def engagement(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    visits: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["event_name"] in ("pageview", "engagement", "scroll"):
            visits[(e["path"], e["session_id"])].append(e)
    per_page: dict[str, dict[str, Any]] = {}
    for (path, _), evs in visits.items():
        pv = sum(e["event_name"] == "pageview" for e in evs)
        if not pv:
            continue
        row = per_page.setdefault(path, {"visitors": set(), "pageviews": 0, "engaged": [], "depths": []})
        row["visitors"].add(evs[0]["visitor_id"])
        row["pageviews"] += pv
        engaged = [e.get("engaged_ms", 0) for e in evs if e["event_name"] == "engagement"]
        if engaged:
            row["engaged"].append(sum(engaged))
        depths = [e.get("scroll_depth", 0) for e in evs if e["event_name"] == "scroll"]
        if depths:
            row["depths"].append(max(depths))
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["event_name"] == "pageview":
            sessions[e["session_id"]].append(e)
    entries: dict[str, int] = defaultdict(int)
    bounces: dict[str, int] = defaultdict(int)
    exits: dict[str, int] = defaultdict(int)
    for evs in sessions.values():
        entry = min(evs, key=lambda e: (ts(e), e["path"]))["path"]
        exit_ = max(evs, key=lambda e: (ts(e), e["path"]))["path"]
        entries[entry] += 1
        bounces[entry] += len(evs) <= 1
        exits[exit_] += 1
    out = {}
    for path, row in per_page.items():
        depths = row["depths"]
        out[path] = {
            "page": path,
            "visitors": len(row["visitors"]),
            "pageviews": row["pageviews"],
            "engaged_visits": len(row["engaged"]),
            "median_engaged_ms": quantile(row["engaged"], 0.5),
            "p75_engaged_ms": quantile(row["engaged"], 0.75),
            "scroll": {
                "visits": len(depths),
                **{f"reached_{m}": pct(sum(d >= m for d in depths), len(depths)) for m in (25, 50, 75, 100)},
            },
            "entries": entries[path],
            "bounce_rate": pct(bounces[path], entries[path]),
            "exits": exits[path],
            "exit_rate": pct(exits[path], row["pageviews"]),
        }
    return out


# -- content -----------------------------------------------------------------------------------------


def counted(
    events: list[dict[str, Any]], name: str, key: Callable[[dict[str, Any]], Any]
) -> dict[Any, tuple[int, int]]:
    """(events, visitors) per key of the events named `name`."""
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["event_name"] == name:
            groups[key(e)].append(e)
    return {k: (len(evs), len({e["visitor_id"] for e in evs})) for k, evs in groups.items()}


def forms(events: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["event_name"] == "form_submit":
            groups[(e["props"]["id"], e["props"]["action"])].append(e)
    return {
        k: {
            "form_id": k[0],
            "action": k[1],
            "submissions": len(evs),
            "visitors": len({e["visitor_id"] for e in evs}),
            "pages": sorted({e["path"] for e in evs})[:10],
            "page_count": len({e["path"] for e in evs}),
        }
        for k, evs in groups.items()
    }


def not_found(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["event_name"] == "pageview" and e.get("not_found"):
            groups[e["path"]].append(e)
    out = {}
    for path, evs in groups.items():
        refs: dict[str, int] = defaultdict(int)
        for e in evs:
            refs[e.get("referrer", "")] += 1
        ranked = sorted(refs.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        out[path] = {
            "page": path,
            "pageviews": len(evs),
            "visitors": len({e["visitor_id"] for e in evs}),
            "referrers": [{"referrer": r, "pageviews": c} for r, c in ranked],
        }
    return out


# -- performance -------------------------------------------------------------------------------------


def vitals(events: list[dict[str, Any]]) -> dict[str, Any]:
    evs = [e for e in events if e["event_name"] == "web_vitals"]
    out: dict[str, Any] = {"samples": len(evs)}
    for metric, (column, _, _) in VITALS.items():
        values = [e[column] for e in evs if e.get(column) is not None]
        ratings = [rating(metric, v) for v in values]
        out[metric] = {
            "p75": quantile(values, 0.75),
            "samples": len(values),
            "good": pct(ratings.count("good"), len(values)),
            "needs_improvement": pct(ratings.count("needs-improvement"), len(values)),
            "poor": pct(ratings.count("poor"), len(values)),
        }
    return out


def vitals_by(events: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["event_name"] == "web_vitals":
            groups[e[key]].append(e)
    return {k: vitals(evs) for k, evs in groups.items()}


def local_day(e: dict[str, Any], tz: str) -> str:
    return ts(e).astimezone(ZoneInfo(tz)).date().isoformat()


def days(first: date = FIRST_DAY, last: date = LAST_DAY) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


# -- errors ------------------------------------------------------------------------------------------


def errors(events: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["event_name"] == "error":
            groups[(e.get("error_message", ""), e.get("error_source", ""), e.get("error_line", 0))].append(e)
    out = {}
    for k, evs in groups.items():
        moments = sorted(ts(e) for e in evs)
        out[k] = {
            "message": k[0],
            "source": k[1],
            "line": k[2],
            "count": len(evs),
            "visitors": len({e["visitor_id"] for e in evs}),
            "pages": sorted({e["path"] for e in evs})[:10],
            "page_count": len({e["path"] for e in evs}),
            "browsers": sorted({e["browser"] for e in evs})[:10],
            "browser_count": len({e["browser"] for e in evs}),
            "first_seen": moments[0].isoformat(timespec="milliseconds"),
            "last_seen": moments[-1].isoformat(timespec="milliseconds"),
        }
    return out


# -- revenue -----------------------------------------------------------------------------------------


def revenue_figures(evs: list[dict[str, Any]]) -> dict[str, Any]:
    amounts = [Decimal(e["revenue"]) for e in evs]
    positive = [a for a in amounts if a > 0]
    gross = sum(positive, Decimal(0))
    return {
        "revenue": str(sum(amounts, Decimal(0)).quantize(QUANTUM)),
        "orders": len(positive),
        "refunds": sum(a < 0 for a in amounts),
        "average_order_value": str((gross / len(positive)).quantize(QUANTUM, rounding=ROUND_HALF_EVEN))
        if positive
        else None,
        "visitors": len({e["visitor_id"] for e in evs}),
    }


def revenue(events: list[dict[str, Any]], key: str, currency: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e.get("revenue") is not None and e.get("currency") == currency:
            groups[e.get(key, "")].append(e)
    return {k: {"value": k, **revenue_figures(evs)} for k, evs in groups.items()}


def currencies(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e.get("revenue") is not None:
            groups[e["currency"]].append(e)
    return {c: revenue_figures(evs) for c, evs in groups.items()}
