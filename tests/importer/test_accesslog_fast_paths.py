"""The access-log parser's fast paths give what the general ones give: the line pattern with possessive quoted
fields against the backtracking pattern it replaced, and the in-place reading of the usual time spelling
against the time split into its parts (values and errors alike)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.server.importer import accesslog

# the pattern before the possessive quoted fields: the reference
BACKTRACKING = re.compile(
    r'(?:(\S+) )?(\S+) \S+ (?:\S+|"[^"]*") \[([^\]]{1,40})\] "((?:[^"\\]|\\.)*)" (\d{3}) (\S+)'
    r'(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?\s*'
)
PROPS = settings(max_examples=400, deadline=None, derandomize=True)


def _outcome(text: str) -> int | str:
    try:
        return accesslog.parse_time(text)
    except (ValueError, KeyError, IndexError) as exc:
        return type(exc).__name__


def _split_outcome(text: str) -> int | str:
    try:
        return accesslog._parse_time_split(text)
    except (ValueError, KeyError, IndexError) as exc:
        return type(exc).__name__


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/Oct/2000:13:55:36 -0700", 971_211_336_000),
        ("01/Jan/2024:00:00:00 +0000", 1_704_067_200_000),
        ("31/Dec/2023:23:59:60 +0100", 1_704_063_600_000),  # a leap second's spelling: the next minute
        ("01/Jan/2024:23:59:59 -1200", 1_704_196_799_000),
        ("01/Jan/2024:24:00:00 +0000", "ValueError"),
        ("01/Jan/2024:12:60:00 +0000", "ValueError"),
        ("01/Jan/2024:12:00:61 +0000", "ValueError"),
        ("01/Jan/2024:+1:00:00 +0000", 1_704_070_800_000),  # int() reads "+1" in the split path too
        ("01/Jan/2024:1:00:00 +00000", "ValueError"),
        ("31/Feb/2024:10:00:00 +0000", "ValueError"),
        ("01/Foo/2024:10:00:00 +0000", "KeyError"),
        ("01/Jan/1969:10:00:00 +0000", "ValueError"),
        ("01/Jan/2024:10:00:00 0000X", "ValueError"),
        ("01/Jan/2024:10:00:00.250 +0000", 1_704_103_200_250),
    ],
)
def test_time_spellings_fast_and_split_agree(text: str, expected: int | str) -> None:
    assert _outcome(text) == expected
    assert _split_outcome(text) == expected


@PROPS
@given(
    day=st.sampled_from(["01/Jan/2024", "29/Feb/2024", "29/Feb/2023", "1/Jan/2024", "10/Oct/2000"]),
    parts=st.lists(st.text(alphabet="0123456789+- :.x", min_size=0, max_size=3), min_size=3, max_size=3),
    zone=st.sampled_from(["+0000", "-0700", "+0130", "0000", "+00:00", "-2359"]),
)
def test_any_time_fast_and_split_agree(day: str, parts: list[str], zone: str) -> None:
    text = f"{day}:{parts[0]}:{parts[1]}:{parts[2]} {zone}"
    assert _outcome(text) == _split_outcome(text)


field = st.text(alphabet='ab "\\x/-', max_size=12)


@PROPS
@given(request=field, referrer=field, agent=field, tail=st.sampled_from(["", " ", ' "x"', " -"]))
def test_line_pattern_matches_as_the_backtracking_one(
    request: str, referrer: str, agent: str, tail: str
) -> None:
    for line in (
        f'1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "{request}" 200 12 "{referrer}" "{agent}"{tail}',
        f'site.org:443 1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "{request}" 404 -{tail}',
    ):
        ours, reference = accesslog._LINE.fullmatch(line), BACKTRACKING.fullmatch(line)
        assert (ours and ours.groups()) == (reference and reference.groups())
