"""Parsing one access-log line: nginx/Apache `combined`, `common`, and Apache's `vhost_combined`.

`parse_line(text)` never raises: it returns a `LogLine` or a `Malformed` with the reason. Formats:

    common:          %h %l %u %t "%r" %>s %b
    combined:        common + "%{Referer}i" "%{User-agent}i"
    vhost_combined:  %v:%p before the common fields (Apache), or any one host field before them

The time (`[10/Oct/2000:13:55:36 -0700]`) carries its own offset; times are converted to UTC epoch
milliseconds. Quoted fields may hold `\\"` and `\\\\` (Apache) or `\\xHH` (nginx) escapes, which are undone.
Years outside 1970..2099 are malformed (no plausible log holds them).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from functools import lru_cache

MAX_LINE = 65_536  # characters; longer lines are malformed (the reader cuts them at this many bytes)

# a quoted field: runs of plain characters or one escape each, possessive (a field has one way to match, so
# nothing is given back, and a run is one step instead of one per character)
_QUOTED = r'"((?:[^"\\]++|\\.)*+)"'
_LINE = re.compile(
    r'(?:(\S+) )?(\S+) \S+ (?:\S+|"[^"]*") \[([^\]]{1,40})\] ' + _QUOTED + r" (\d{3}) (\S+)"
    r"(?: " + _QUOTED + " " + _QUOTED + r")?\s*"
)
_MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|.)")


@dataclass(slots=True)
class LogLine:
    vhost: str  # '' when the format has no host field
    ip: str
    ts_ms: int
    request: str  # the request line as logged ("GET /a?b HTTP/1.1", or junk)
    status: int
    referrer: str  # '' for "-"
    user_agent: str  # '' for "-"


@dataclass(slots=True)
class Malformed:
    reason: str


@lru_cache(maxsize=4096)
def _day_start_ms(day: str, zone: str) -> int:
    """Epoch ms of 00:00:00 local of `day` ("10/Oct/2000") in the `zone` offset ("-0700"); ValueError if bad."""
    d, mon, y = day.split("/")
    year = int(y)
    if not 1970 <= year <= 2099 or len(zone) != 5 or zone[0] not in "+-" or not zone[1:].isdigit():
        raise ValueError(day)
    month = _MONTHS[mon]
    day_n = int(d)
    if not 1 <= day_n <= calendar.monthrange(year, month)[1]:
        raise ValueError(day)
    offset = (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60) * (-1 if zone[0] == "-" else 1)
    return (calendar.timegm((year, month, day_n, 0, 0, 0)) - offset) * 1000


def parse_time(text: str) -> int:
    """`10/Oct/2000:13:55:36 -0700` (or with fractions of a second, `...:36.123 -0700`) to UTC epoch ms."""
    if len(text) == 26 and text[11] == ":" and text[14] == ":" and text[17] == ":" and text[20] == " ":
        h, m, s = text[12:14], text[15:17], text[18:20]  # the usual spelling, read in place
        if h.isdigit() and m.isdigit() and s.isdigit():
            hour, minute, second = int(h), int(m), int(s)
            if hour < 24 and minute < 60 and second < 61:
                return (
                    _day_start_ms(text[:11], text[21:]) + hour * 3_600_000 + minute * 60_000 + second * 1000
                )
    return _parse_time_split(text)


def _parse_time_split(text: str) -> int:
    """`parse_time` for every spelling (fractions of a second, a bad text): the time split into its parts."""
    clock, _, zone = text.partition(" ")
    day, _, hms = clock.partition(":")
    h, m, s = hms.split(":")
    hour, minute = int(h), int(m)
    sec = float(s) if "." in s else int(s)
    if not (0 <= hour < 24 and 0 <= minute < 60 and 0 <= sec < 61 and len(h) == 2 and len(m) == 2):
        raise ValueError(text)
    return _day_start_ms(day, zone) + hour * 3_600_000 + minute * 60_000 + int(sec * 1000)


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: chr(int(m.group(1)[1:], 16)) if len(m.group(1)) == 3 else m.group(1), text)


def _dash(text: str | None) -> str:
    return "" if text is None or text == "-" else _unescape(text)


def parse_line(text: str) -> LogLine | Malformed:
    """One line (without its newline) to a LogLine, or Malformed with the reason. Never raises."""
    if len(text) > MAX_LINE:
        return Malformed("line too long")
    match = _LINE.fullmatch(text)
    if match is None:
        return Malformed("not a common/combined log line")
    vhost, ip, when, request, status, _size, referrer, agent = match.groups()
    try:
        ts_ms = parse_time(when)
    except (ValueError, KeyError, IndexError):
        return Malformed(f"bad time [{when[:40]}]")
    return LogLine(
        vhost=vhost or "",
        ip=ip,
        ts_ms=ts_ms,
        request=_unescape(request),
        status=int(status),
        referrer=_dash(referrer),
        user_agent=_dash(agent),
    )
