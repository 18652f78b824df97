"""The access-log line parser and the pageview rules: known lines from the nginx/Apache documentation's formats
(time zones, IPv6, `-` fields, escaped quotes, vhost_combined), and never an exception on any input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.server.importer.accesslog import LogLine, Malformed, parse_line
from pixel.server.importer.pageviews import Page, classify

APACHE_DOC = (
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
    '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"'
)


def test_the_apache_documentation_line() -> None:
    line = parse_line(APACHE_DOC)
    assert line == LogLine(
        vhost="",
        ip="127.0.0.1",
        ts_ms=971_211_336_000,  # 2000-10-10 20:55:36 UTC
        request="GET /apache_pb.gif HTTP/1.0",
        status=200,
        referrer="http://www.example.com/start.html",
        user_agent="Mozilla/4.08 [en] (Win98; I ;Nav)",
    )
    assert isinstance(line, LogLine) and classify(line) == "static asset or file"


def test_common_format_without_referrer_and_agent() -> None:
    line = parse_line('::1 - - [01/Jan/2024:00:00:00 +0000] "GET /index.html HTTP/1.1" 200 -')
    assert isinstance(line, LogLine)
    assert (line.ip, line.ts_ms, line.referrer, line.user_agent) == ("::1", 1_704_067_200_000, "", "")
    assert classify(line) == Page("", "/index.html", "")


def test_time_zones_east_and_west_give_the_same_instant() -> None:
    a = parse_line('1.2.3.4 - - [01/Jan/2024:01:30:00 +0130] "GET / HTTP/1.1" 200 1 "-" "-"')
    b = parse_line('1.2.3.4 - - [31/Dec/2023:14:00:00 -1000] "GET / HTTP/1.1" 200 1 "-" "-"')
    assert isinstance(a, LogLine) and isinstance(b, LogLine)
    assert a.ts_ms == b.ts_ms == 1_704_067_200_000


def test_escaped_quotes_apache_and_nginx() -> None:
    apache = parse_line(r'1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET /q HTTP/1.1" 200 1 "-" "A \"b\" c"')
    nginx = parse_line(
        r'1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET /q HTTP/1.1" 200 1 "-" "A \x22b\x22 c"'
    )
    assert isinstance(apache, LogLine) and isinstance(nginx, LogLine)
    assert apache.user_agent == nginx.user_agent == 'A "b" c'


def test_vhost_combined_and_an_absolute_target() -> None:
    line = parse_line(
        'www.example.com:443 [2001:db8::1] - - [01/Jan/2024:00:00:00 +0000] "GET https://example.com/a?b=1 '
        'HTTP/1.1" 304 0 "-" "Mozilla/5.0"'
    )
    assert isinstance(line, LogLine)
    assert (line.vhost, line.ip, line.status) == ("www.example.com:443", "[2001:db8::1]", 304)
    assert classify(line) == Page("example.com", "/a", "b=1")


def test_what_is_not_a_pageview() -> None:
    def reason(request: str, status: int = 200) -> object:
        line = parse_line(f'1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "{request}" {status} 1 "-" "-"')
        assert isinstance(line, LogLine)
        return classify(line)

    assert reason("HEAD / HTTP/1.1") == "method HEAD"
    assert reason("POST /form HTTP/1.1") == "method POST"
    assert reason("GET / HTTP/1.1", 404) == "status 4xx"
    assert reason("GET /old HTTP/1.1", 301) == "status 3xx"
    assert reason("GET /x.js HTTP/1.1") == "static asset or file"
    assert reason("GET /robots.txt HTTP/1.1") == "static asset or file"
    assert reason("-") == "request line unreadable"
    assert reason(r"\x16\x03\x01") == "request line unreadable"
    assert reason("GET /page.php?id=3 HTTP/1.1") == Page("", "/page.php", "id=3")
    assert reason("GET /dir/ HTTP/1.0") == Page("", "/dir/", "")


def test_malformed_lines_say_why() -> None:
    assert parse_line("not a log line") == Malformed("not a common/combined log line")
    assert parse_line('1.2.3.4 - - [32/Oct/2000:10:00:00 +0000] "GET / HTTP/1.1" 200 1') == Malformed(
        "bad time [32/Oct/2000:10:00:00 +0000]"
    )
    assert isinstance(
        parse_line('1.2.3.4 - - [01/Foo/2000:10:00:00 +0000] "GET / HTTP/1.1" 200 1'), Malformed
    )
    assert isinstance(
        parse_line('1.2.3.4 - - [01/Jan/1960:10:00:00 +0000] "GET / HTTP/1.1" 200 1'), Malformed
    )
    assert isinstance(
        parse_line('1.2.3.4 - - [01/Jan/2000:25:00:00 +0000] "GET / HTTP/1.1" 200 1'), Malformed
    )
    assert parse_line("x" * 70_000) == Malformed("line too long")


FIELDS = st.sampled_from(
    ["-", '"', "\\", "[", "]", " ", "GET", "/a?b", "200", "+0100", "10/Oct/2000:13:55:36", "::1", "\\x22"]
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.one_of(st.text(max_size=300), st.lists(FIELDS, max_size=30).map(" ".join)))
def test_the_parser_never_raises(text: str) -> None:
    line = parse_line(text)
    if isinstance(line, LogLine):
        classify(line)  # nor does the classifier


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.text(min_size=0, max_size=40).filter(lambda s: '"' not in s and "\\" not in s),
    st.integers(0, 86_399),
    st.integers(-14 * 60, 14 * 60),
)
def test_any_agent_and_time_round_trip(agent: str, second: int, zone_minutes: int) -> None:
    sign = "-" if zone_minutes < 0 else "+"
    zone = f"{sign}{abs(zone_minutes) // 60:02d}{abs(zone_minutes) % 60:02d}"
    clock = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
    text = f'1.2.3.4 - - [15/Jun/2020:{clock} {zone}] "GET / HTTP/1.1" 200 1 "-" "{agent}"'
    line = parse_line(text)
    assert isinstance(line, LogLine)
    assert line.ts_ms == 1_592_179_200_000 + (second - zone_minutes * 60) * 1000
    assert line.user_agent == ("" if agent == "-" else agent)
