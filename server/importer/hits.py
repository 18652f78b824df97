"""What every raw source's line becomes before the import core (`run.py`) turns it into an event: a `Hit`.

A source parses one line of its file into a `Hit`, a `Malformed` (counted with its line number, the rest of
the file imported), a skip reason (a string, counted), or `None` for a line that carries nothing (a CSV
header, a blank line). A `Source` names its parser and its file check:

- `check(path)` raises `WrongKind` for a file that is not of this source (read from its first bytes);
- `parser(path)` returns the line parser for the file (a CSV source reads the file's header first, so a
  resumed import parses its lines the same way).

Fields a source does not hold stay empty: `ip`/`user_agent` (the live enrichment then hashes nothing and
reads no device; `columns` gives the source's own device and country columns), `visitor_key` /
`session_key` (the source's own visitor and visit ids: the core keys them with the import's daily salt, so
they rotate daily as live visitor ids do and the source's ids are never stored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pixel.server.importer.accesslog import Malformed


@dataclass(slots=True)
class Hit:
    ts_ms: int
    host: str  # the site the line names ('' when the source does not say)
    path: str
    query: str = ""
    referrer: str = ""
    event_name: str = "pageview"
    title: str = ""
    ip: str = ""
    user_agent: str = ""
    visitor_key: str = ""
    session_key: str = ""
    params: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)  # device/geo columns the source gives itself


Parsed = Hit | Malformed | str | None
Parser = Callable[[str], Parsed]


@dataclass(frozen=True)
class Source:
    name: str
    what: str  # a file of this source, for messages and help ("a GA4 BigQuery export (NDJSON)")
    check: Callable[[Path], None]
    parser: Callable[[Path], Parser]


def host_of(host: str) -> str:
    """`WWW.Example.com:443.` -> `www.example.com`."""
    host = host.strip().lower()
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")
