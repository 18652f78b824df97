"""Date ranges in a site's time zone, their previous periods, and time buckets for timeseries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pixel.server.api.errors import bad_request

PERIODS = ("realtime", "today", "yesterday", "7d", "30d", "month", "last_month", "12mo", "custom")
INTERVALS = ("minute", "hour", "day", "week", "month")
MAX_BUCKETS = 5000


@dataclass(frozen=True, slots=True)
class Range:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    tz: str
    period: str

    @property
    def params(self) -> dict[str, str]:
        return {"start": ch_datetime(self.start), "end": ch_datetime(self.end), "tz": self.tz}

    def previous(self) -> Range:
        """The period just before this one (for comparisons): as many local days when the range is whole
        days in its zone (so a DST change between the two does not shift it off midnight), else the same
        length."""
        zone = ZoneInfo(self.tz)
        first = self.start.astimezone(zone).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(zone).date()
        if (
            self.period != "realtime"
            and local_midnight(first, zone) == self.start
            and local_midnight(last + timedelta(days=1), zone) == self.end
        ):
            days = (last - first).days + 1
            return Range(local_midnight(first - timedelta(days=days), zone), self.start, self.tz, self.period)
        length = self.end - self.start
        return Range(self.start - length, self.start, self.tz, self.period)

    def default_interval(self) -> str:
        hours = (self.end - self.start).total_seconds() / 3600
        if self.period == "realtime" or hours <= 1:
            return "minute"
        if hours <= 48:
            return "hour"
        if hours <= 24 * 93:
            return "day"
        return "month"


def ch_datetime(moment: datetime) -> str:
    """`moment` in UTC as a ClickHouse DateTime64(3) parameter value (`YYYY-MM-DD hh:mm:ss.fff`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC moment at which `day` starts in `zone`."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def parse_date(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{name} must be a date YYYY-MM-DD, not {value!r}", "invalid_range") from None


def resolve(
    period: str,
    tz: str,
    *,
    date_from: str | None = None,
    date_to: str | None = None,
    now: datetime | None = None,
) -> Range:
    """The UTC range [start, end) that `period` means today in time zone `tz`."""
    zone = ZoneInfo(tz)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    today = now.astimezone(zone).date()
    one_day = timedelta(days=1)
    if period == "realtime":
        return Range(now - timedelta(minutes=30), now, tz, period)
    if period == "today":
        first, last = today, today
    elif period == "yesterday":
        first = last = today - one_day
    elif period == "7d":
        first, last = today - 6 * one_day, today
    elif period == "30d":
        first, last = today - 29 * one_day, today
    elif period == "month":
        first, last = _month_start(today), _month_start(today, -1) - one_day
    elif period == "last_month":
        first, last = _month_start(today, 1), _month_start(today) - one_day
    elif period == "12mo":
        first, last = _month_start(today, 11), _month_start(today, -1) - one_day
    elif period == "custom":
        if not date_from or not date_to:
            raise bad_request("period=custom needs from and to (YYYY-MM-DD)", "invalid_range")
        first, last = parse_date(date_from, "from"), parse_date(date_to, "to")
        if last < first:
            raise bad_request("to must not be before from", "invalid_range")
        if (last - first).days > 3660:
            raise bad_request("a custom range may span at most 10 years", "invalid_range")
    else:
        raise bad_request(f"period must be one of {', '.join(PERIODS)}", "invalid_range")
    return Range(local_midnight(first, zone), local_midnight(last + one_day, zone), tz, period)


# -- buckets ------------------------------------------------------------------------------------

# ClickHouse expression giving each event's bucket label in the site's zone; Python makes the same
# labels to fill gaps with zeros. `{tz:String}` is the site's zone.
BUCKET_SQL = {
    "minute": "toString(toStartOfMinute(toTimeZone({col}, {{tz:String}})))",
    "hour": "toString(toStartOfHour(toTimeZone({col}, {{tz:String}})))",
    "day": "toString(toDate({col}, {{tz:String}}))",
    "week": "toString(toMonday(toDate({col}, {{tz:String}})))",
    "month": "toString(toStartOfMonth(toDate({col}, {{tz:String}})))",
}


def bucket_sql(interval: str, column: str = "timestamp") -> str:
    return BUCKET_SQL[interval].format(col=column)


def buckets(rng: Range, interval: str) -> list[str]:
    """Every bucket label the range touches, in order, as ClickHouse prints them."""
    if interval not in INTERVALS:
        raise bad_request(f"interval must be one of {', '.join(INTERVALS)}", "invalid_interval")
    zone = ZoneInfo(rng.tz)
    labels: list[str] = []
    if interval in ("minute", "hour"):
        step = timedelta(minutes=1 if interval == "minute" else 15)  # 15: zones with :30/:45 offsets
        if (rng.end - rng.start) / step > MAX_BUCKETS * 4:
            raise bad_request(
                f"too many {interval} buckets for this range; use a longer interval", "invalid_interval"
            )
        moment = rng.start.replace(second=0, microsecond=0)
        while moment < rng.end:
            local = moment.astimezone(zone)
            local = local.replace(second=0) if interval == "minute" else local.replace(minute=0, second=0)
            label = local.strftime("%Y-%m-%d %H:%M:%S")
            if not labels or labels[-1] != label:
                labels.append(label)
            moment += step
        return labels
    first = rng.start.astimezone(zone).date()
    last = (rng.end - timedelta(microseconds=1)).astimezone(zone).date()
    if interval == "day":
        day = first
    elif interval == "week":
        day = first - timedelta(days=first.weekday())
    else:
        day = first.replace(day=1)
    while day <= last:
        labels.append(day.isoformat())
        if interval == "day":
            day += timedelta(days=1)
        elif interval == "week":
            day += timedelta(days=7)
        else:
            day = _month_start(day, -1)
        if len(labels) > MAX_BUCKETS:
            raise bad_request("too many buckets for this range", "invalid_interval")
    return labels


# -- comparisons --------------------------------------------------------------------------------------

COMPARE_MODES = ("previous", "year", "custom")
_COMPARE_ALIASES = {
    "yes": "previous",
    "on": "previous",
    "true": "previous",
    "1": "previous",
    "previous": "previous",
    "year": "year",
    "custom": "custom",
}
_NO_COMPARE = ("false", "0", "none", "off", "no", "")


def parse_compare(value: str | bool | None) -> str | None:
    """The comparison a `compare` parameter asks for: previous, year or custom; None for none. `true`
    (the parameter's old boolean form) means previous, `false` none; anything else is a 400."""
    if value is None or value is False:
        return None
    if value is True:
        return "previous"
    text = value.strip().lower()
    if text in _NO_COMPARE:
        return None
    if text not in _COMPARE_ALIASES:
        raise bad_request(
            f"compare must be one of {', '.join(COMPARE_MODES)} (or true/false), not {value[:40]!r}",
            "invalid_compare",
        )
    return _COMPARE_ALIASES[text]


def _year_earlier(day: date) -> date:
    return (
        day.replace(year=day.year - 1)
        if not (day.month == 2 and day.day == 29)
        else date(day.year - 1, 2, 28)
    )


def compare_range(
    rng: Range, mode: str, *, date_from: str | None = None, date_to: str | None = None
) -> Range:
    """The range `rng` is compared with: `previous` (`Range.previous`), `year` (the same local dates a year
    earlier; 29 February becomes 28 February; a range that is not whole days moves by 365 or 366 days as the
    dates do), or `custom` (`date_from`..`date_to`, inclusive local dates in the range's zone)."""
    zone = ZoneInfo(rng.tz)
    if mode == "previous":
        return rng.previous()
    if mode == "year":
        first = rng.start.astimezone(zone)
        last = rng.end.astimezone(zone)
        start = datetime.combine(_year_earlier(first.date()), first.time(), zone).astimezone(UTC)
        end = datetime.combine(_year_earlier(last.date()), last.time(), zone).astimezone(UTC)
        if end <= start:
            end = start + (rng.end - rng.start)
        return Range(start, end, rng.tz, rng.period)
    if mode == "custom":
        if not date_from or not date_to:
            raise bad_request(
                "compare=custom needs compare_from and compare_to (YYYY-MM-DD)", "invalid_compare"
            )
        first_day, last_day = parse_date(date_from, "compare_from"), parse_date(date_to, "compare_to")
        if last_day < first_day:
            raise bad_request("compare_to must not be before compare_from", "invalid_compare")
        if (last_day - first_day).days > 3660:
            raise bad_request("a comparison range may span at most 10 years", "invalid_compare")
        return Range(
            local_midnight(first_day, zone),
            local_midnight(last_day + timedelta(days=1), zone),
            rng.tz,
            rng.period,
        )
    raise bad_request(f"compare must be one of {', '.join(COMPARE_MODES)}", "invalid_compare")


def against(
    rng: Range, compare: str | bool | None, date_from: str | None, date_to: str | None
) -> Range | None:
    """The comparison range a request's `compare`, `compare_from` and `compare_to` ask for (None: none)."""
    mode = parse_compare(compare)
    if mode is None:
        return None
    return compare_range(rng, mode, date_from=date_from, date_to=date_to)
