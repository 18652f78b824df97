"""Generated traffic with a weekly pattern: busy weekdays, quiet weekends, a quiet Wednesday, nights nearly
empty; deterministic (seeded). `planted_drop` keeps only a tenth of the last hours before `NOW`."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

# A Wednesday afternoon. The judged window is 09:00-15:00 UTC of that day.
NOW = datetime(2024, 3, 20, 15, 30, tzinfo=UTC)
START = NOW.replace(hour=0, minute=0) - timedelta(weeks=5)


def rate(hour: datetime) -> float:
    """Expected pageviews in this UTC hour."""
    day = hour.weekday()
    level = {0: 30.0, 1: 32.0, 2: 8.0, 3: 30.0, 4: 26.0, 5: 6.0, 6: 5.0}[day]
    return level if 8 <= hour.hour < 20 else 1.0


def hourly(seed: int, drop_from: datetime | None = None, factor: float = 1.0) -> dict[datetime, int]:
    """Pageviews per UTC hour from START to NOW's hour (excluded); from `drop_from` on scaled by `factor`."""
    rnd = random.Random(seed)
    out: dict[datetime, int] = {}
    hour = START
    end = NOW.replace(minute=0)
    while hour < end:
        mean = rate(hour) * (factor if drop_from is not None and hour >= drop_from else 1.0)
        # Binomial-ish noise around the mean, bounded: about +-20 %.
        out[hour] = max(0, round(mean * rnd.uniform(0.8, 1.2)))
        hour += timedelta(hours=1)
    return out


def events(site: str, counts: dict[datetime, int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for hour, n in counts.items():
        for i in range(n):
            t = hour + timedelta(seconds=(i * 3599) // max(n, 1))
            stamp = t.strftime("%Y-%m-%d %H:%M:%S.000")
            rows.append(
                {
                    "timestamp": stamp,
                    "received_at": stamp,
                    "site": site,
                    "event_id": f"{site}-{hour:%Y%m%d%H}-{i}",
                    "event_name": "pageview",
                    "visitor_id": f"v{i % 7}",
                    "session_id": f"s{hour:%Y%m%d%H}-{i % 7}",
                    "path": "/",
                    "host": site,
                    "url": f"https://{site}/",
                    "is_bot": 0,
                }
            )
    return rows
