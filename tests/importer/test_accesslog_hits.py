"""The fused access-log parser (`accesslog_hits.accesslog_hit`, what the import runs) gives what the reference
composition gives (`sources.accesslog_line`: `accesslog.parse_line`, then `pageviews.classify`, then the `Hit`):
the same `Hit`, the same malformed reason, the same skip reason, on the documentation's lines, the tricky cases,
a generated mixed log, and random lines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.server.importer.accesslog import MAX_LINE, Malformed
from pixel.server.importer.accesslog_hits import accesslog_hit
from pixel.server.importer.hits import Hit
from pixel.server.importer.lines import TOO_LONG
from pixel.server.importer.sources import ACCESSLOG, accesslog_line
from tests.importer.test_import_fast_rows import generated_lines

T = "[10/Oct/2000:13:55:36 -0700]"
LINES = [
    f'127.0.0.1 - frank {T} "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" '
    '"Mozilla/4.08 [en] (Win98; I ;Nav)"',
    f'::1 - - {T} "GET /index.html HTTP/1.1" 200 -',
    f'1.2.3.4 - - {T} "GET /q HTTP/1.1" 200 1 "-" "A \\"b\\" c"',
    f'1.2.3.4 - - {T} "GET /q HTTP/1.1" 200 1 "https://r.example/?a=\\x22" "A \\x22b\\x22 c"',
    f'www.example.com:443 [2001:db8::1] - - {T} "GET https://example.com/a?b=1 HTTP/1.1" 304 0 "-" "M"',
    f'www.example.com:443 1.2.3.4 - - {T} "GET HTTPS://Example.COM:8443/x HTTP/1.1" 200 0 "-" "M"',
    f'- 1.2.3.4 - - {T} "GET /dir/ HTTP/1.0" 200 1 "-" "-"',
    f'[::1]:80 1.2.3.4 - - {T} "GET /page.php?id=3#top HTTP/1.1" 200 1 "-" "-"',
    f'1.2.3.4 - - {T} "GET /a#frag?x HTTP/1.1" 200 1 "-" "-"',
    f'1.2.3.4 - - {T} "GET /x.js HTTP/1.1" 200 1 "-" "-"',
    f'1.2.3.4 - - {T} "GET /robots.txt HTTP/1.1" 200 1 "-" "-"',
    f'1.2.3.4 - - {T} "GET /v1.2/ HTTP/1.1" 200 1 "-" "-"',
    f'1.2.3.4 - - {T} "GET /a.HTML HTTP/1.1" 200 1 "-" "-"',
    f'1.2.3.4 - - {T} "HEAD / HTTP/1.1" 200 1 "-" "-"',
    f'1.2.3.4 - - {T} "POST /form HTTP/1.1" 200 1 "-" "-"',
    f'1.2.3.4 - - {T} "PROPFINDVERYLONGMETHOD / HTTP/1.1" 200 1 "-" "-"',
    f'1.2.3.4 - - {T} "GET / HTTP/1.1" 404 1 "-" "-"',
    f'1.2.3.4 - - {T} "GET / HTTP/1.1" 301 1 "-" "-"',
    f'1.2.3.4 - - {T} "GET / HTTP/1.1" 304 1 "-" "-"',
    f'1.2.3.4 - - {T} "-" 400 1 "-" "-"',
    f'1.2.3.4 - - {T} "\\x16\\x03\\x01" 400 1 "-" "-"',
    f'1.2.3.4 - - {T} "GET  HTTP/1.1" 200 1 "-" "-"',
    f'1.2.3.4 - - {T} "GET ftp://x/ HTTP/1.1" 200 1 "-" "-"',
    f'1.2.3.4 - - {T} "GET http://[::1 HTTP/1.1" 200 1 "-" "-"',
    f'1.2.3.4 - - {T} "GET http:///nohost HTTP/1.1" 200 1 "-" "-"',
    f'1.2.3.4 - - {T} "GET /a b c d" 200 1 "-" "-"',
    '1.2.3.4 - - [32/Oct/2000:10:00:00 +0000] "GET / HTTP/1.1" 200 1',
    '1.2.3.4 - - [01/Foo/2000:10:00:00 +0000] "POST / HTTP/1.1" 500 1',  # a bad time before the method
    '1.2.3.4 - - [01/Jan/2000:10:00:00.250 +0130] "GET / HTTP/1.1" 200 1',
    "not a log line",
    "",
    "x" * (MAX_LINE + 1),
    TOO_LONG,
]


@pytest.mark.parametrize("text", LINES, ids=range(len(LINES)))
def test_known_lines_as_the_reference(text: str) -> None:
    assert accesslog_hit(text) == accesslog_line(text)


def test_a_generated_mixed_log_as_the_reference() -> None:
    lines = generated_lines(3000, seed=11)
    got = [accesslog_hit(text) for text in lines]
    assert got == [accesslog_line(text) for text in lines]
    kinds = {type(g).__name__ if not isinstance(g, str) else g for g in got}
    assert {"Hit", "Malformed", "static asset or file", "method POST", "status 4xx"} <= kinds


def test_the_access_log_source_uses_the_fused_parser(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert ACCESSLOG.parser(tmp_path / "any.log") is accesslog_hit


PART = st.sampled_from(
    ["-", '"', "\\", "\\x22", "[", "]", " ", "GET", "POST", "/a?b", "/x.css", "/p.php#f", "http://h:1/p",
     "HTTP/1.1", "200", "304", "404", "+0100", "10/Oct/2000:13:55:36", "::1", "h.example:80", "#"]
)  # fmt: skip


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    st.one_of(
        st.text(max_size=200),
        st.lists(PART, max_size=25).map(" ".join),
        st.tuples(
            st.lists(PART, max_size=4).map(" ".join), st.sampled_from(["200", "304", "404", "abc"])
        ).map(lambda t: f'v:1 1.2.3.4 - - {T} "{t[0]}" {t[1]} 1 "{t[0]}" "{t[0]}"'),
    )
)
def test_any_line_as_the_reference(text: str) -> None:
    got = accesslog_hit(text)
    assert got == accesslog_line(text)
    assert isinstance(got, Hit | Malformed | str)
