"""The shared view's map data (server/api/share_map.py): path data in the desktop's projection, and the fills
the page's script gives (the same formula, JavaScript's rounding)."""

from __future__ import annotations

import pytest

from pixel.server.api import share_map


@pytest.mark.parametrize(
    ("rings", "scale", "d"),
    [
        # lon/lat 0,0 -> (18000, 8400) in hundredths of a degree; relative steps after the first point
        ([[0, 0, 100, 0, 100, 100]], 100, "M18000 8400l100 0 0 -100z"),
        ([[0, 0, 10, 0, 10, 10]], 10, "M18000 8400l100 0 0 -100z"),  # another scale, same degrees
        (
            [[-18000, 8400, -17900, 8400, -17900, 8300], [0, 0, 1, 1]],
            100,
            "M0 0l100 0 0 100z",
        ),  # 2-point ring left out
        (
            [[0, 0, 100, 0, 100, 100], [50, 20, 60, 20, 60, 30]],
            100,
            "M18000 8400l100 0 0 -100zM18050 8380l10 0 0 -10z",
        ),
    ],
)
def test_path(rings: list[list[int]], scale: int, d: str) -> None:
    assert share_map._path(rings, scale) == d


@pytest.mark.parametrize(
    ("visitors", "most", "dark", "colour"),
    [
        (0, 10, False, "#e5e7eb"),
        (0, 10, True, "#374151"),
        (3, 0, False, "#e5e7eb"),
        (10, 10, False, "#3730a3"),
        (10, 10, True, "#a5b4fc"),
        # sqrt(1/4) = 0.5: c7d2fe -> 3730a3 halfway: 199-72=127, 210-81=129, 254-45.5=208.5 -> 209 (up, as JS)
        (1, 4, False, "#7f81d1"),
        # sqrt(1/100) = 0.1: c7 -> 199-14.4=184.6 -> b9; d2 -> 210-16.2=193.8 -> c2; fe -> 254-9.1=244.9 -> f5
        (1, 100, False, "#b9c2f5"),
    ],
)
def test_fill(visitors: int, most: int, dark: bool, colour: str) -> None:
    assert share_map.fill(visitors, most, dark) == colour


def test_countries_json_is_built_from_the_desktop_shapes() -> None:
    import gzip
    import json

    body = json.loads(share_map.countries_json())
    raw = json.loads(gzip.decompress(share_map.DATA.read_bytes()))
    assert [c[0] for c in body["countries"]] == sorted(set(raw["countries"]) - {"AQ"})
    names = {c[0]: c[1] for c in body["countries"]}
    assert names["DE"] == raw["countries"]["DE"]["name"]
    scale = int(raw["scale"])
    assert {c[0]: c[2] for c in body["countries"]}["DE"] == share_map._path(
        raw["countries"]["DE"]["rings"], scale
    )
