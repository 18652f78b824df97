"""Traffic spikes and drops judged against the site's own weekly pattern, not a fixed threshold.

The contract:
- The judged window is the last `window_hours` whole hours before `now` (the current, partial hour is
  left out). Its pageviews are compared with the same local hours of the same weekday in each of the
  previous `weeks` weeks (wall-clock arithmetic in the site's zone, so a DST change keeps the hours aligned).
- The expectation is the median of those weeks; the spread is the larger of the scaled median absolute
  deviation and the square root of the expectation (Poisson noise), so a site with a steady pattern is held
  to it and a noisy one is not. An alert needs both a robust z-score beyond `z` and a relative change of at
  least `min_change`; a drop also needs an expectation, a spike an observed count, of at least `min_expected`
  pageviews (a site with a handful of visits is never "down", nor "spiking" from one visit to five).
- With fewer than `min_weeks` previous weeks that saw any traffic in the window there is no judgement
  (`Verdict.kind` is "unknown"): a new site is never alerted on.
- Pageviews are counted as distinct event ids without bots, so a client-retry copy counts once.
- Time is always given (`now`); nothing here reads the clock.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # the API's package imports this module's router: no import of it at run time
    from pixel.server.api.query.runner import QueryRunner


def ch_datetime(moment: datetime) -> str:
    """`moment` in UTC as a ClickHouse DateTime64(3) parameter value (as `server/api/query/periods.py`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@dataclass(frozen=True)
class Rule:
    window_hours: int = 6
    weeks: int = 4
    min_weeks: int = 3
    z: float = 3.0
    min_change: float = 0.5
    min_expected: float = 20.0


@dataclass(frozen=True)
class Verdict:
    kind: str  # "drop" | "spike" | "normal" | "unknown"
    site: str
    window_start: str  # ISO 8601, UTC
    window_end: str
    observed: int
    expected: float | None  # median of the previous weeks' same window
    baseline: list[int]  # each previous week's count, most recent first
    z: float | None
    message: str

    @property
    def alerting(self) -> bool:
        return self.kind in ("drop", "spike")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "alerting": self.alerting}


def windows(now: datetime, tz: str, rule: Rule) -> list[tuple[datetime, datetime]]:
    """The judged window first, then the same local hours 1..`rule.weeks` weeks earlier (UTC bounds)."""
    zone = ZoneInfo(tz)
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=rule.window_hours)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    out = [(start, end)]
    for k in range(1, rule.weeks + 1):
        back = timedelta(weeks=k)
        out.append(((local_start - back).astimezone(UTC), (local_end - back).astimezone(UTC)))
    return out


def judge(
    hourly: Mapping[datetime, int], site: str, now: datetime, tz: str = "UTC", rule: Rule | None = None
) -> Verdict:
    """The verdict on `site`'s last window from its pageviews per UTC hour (`hourly`, keys aware datetimes
    at the start of each hour; a missing hour is zero)."""
    rule = rule or Rule()
    spans = windows(now, tz, rule)

    def count(span: tuple[datetime, datetime]) -> int:
        return sum(n for hour, n in hourly.items() if span[0] <= hour < span[1])

    observed = count(spans[0])
    baseline = [count(s) for s in spans[1:]]
    start, end = (ch_datetime(t)[:16].replace(" ", "T") + "Z" for t in spans[0])
    seen = [b for b in baseline if b > 0]
    if len(seen) < rule.min_weeks:
        msg = f"{site}: not enough history to judge ({len(seen)} of {rule.min_weeks} previous weeks with traffic)"
        return Verdict("unknown", site, start, end, observed, None, baseline, None, msg)
    expected = float(statistics.median(baseline))
    mad = statistics.median(abs(b - expected) for b in baseline) * 1.4826
    spread = max(mad, expected**0.5, 1.0)
    z = (observed - expected) / spread
    change = (observed - expected) / expected if expected else float("inf")
    hours = f"the last {rule.window_hours} hours"
    if z <= -rule.z and change <= -rule.min_change and expected >= rule.min_expected:
        kind = "drop"
        msg = (
            f"{site}: traffic drop, {observed} pageviews in {hours} where this time of the week usually has "
            f"about {expected:.0f} ({change:+.0%})"
        )
    elif z >= rule.z and change >= rule.min_change and observed >= rule.min_expected:
        kind = "spike"
        msg = (
            f"{site}: traffic spike, {observed} pageviews in {hours} where this time of the week usually has "
            f"about {expected:.0f} ({change:+.0%})"
        )
    else:
        kind = "normal"
        msg = f"{site}: traffic as usual for this time of the week ({observed} pageviews, about {expected:.0f} expected)"
    return Verdict(kind, site, start, end, observed, expected, baseline, round(z, 2), msg)


def hourly_pageviews(runner: QueryRunner, site: str, start: datetime, end: datetime) -> dict[datetime, int]:
    """Pageviews of `site` per UTC hour in [start, end), distinct event ids, bots left out."""
    sql = """SELECT toStartOfHour(timestamp) AS hour, uniqExact(event_id) AS n FROM events
        WHERE site = {site:String} AND event_name = 'pageview' AND is_bot = 0
          AND timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
        GROUP BY hour"""
    params = {"site": site, "start": ch_datetime(start), "end": ch_datetime(end)}
    out: dict[datetime, int] = {}
    for row in runner.query(sql, params).dicts():
        hour = row["hour"]
        if isinstance(hour, str):
            hour = datetime.fromisoformat(hour)
        out[hour.replace(tzinfo=UTC) if hour.tzinfo is None else hour.astimezone(UTC)] = int(row["n"])
    return out


def check_site(runner: QueryRunner, site: str, tz: str, now: datetime, rule: Rule | None = None) -> Verdict:
    """Read the site's hours that the rule needs from the store and judge them."""
    rule = rule or Rule()
    spans = windows(now, tz, rule)
    lo = min(s for s, _ in spans)
    hi = max(e for _, e in spans)
    return judge(hourly_pageviews(runner, site, lo, hi), site, now, tz, rule)
