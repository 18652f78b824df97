"""The shared view's world map: country outlines as SVG path data, from the Natural Earth 1:110m shapes the
desktop ships (`app/desktop/data/countries-110m.json.gz`, made by scripts/worldmap_data.py; public domain).

Contract:
- `countries_json()` is the bytes of `/share/assets/countries.json`: `{"viewBox": "0 0 W H", "countries":
  [[code, name, d], ...]}` sorted by ISO alpha-2 code, where `d` draws the country (every ring a closed
  subpath, even-odd fill for holes) in the same equirectangular projection as the desktop map: x = longitude
  + 180, y = 84 - latitude, in hundredths of a degree (latitudes -58 to 84; Antarctica is left out).
- Built once per process from the shipped file (read-only, the same in a wheel and the source tree: `pixel.app`
  and `pixel.server` are sibling packages); `MapDataMissing` when an install lacks it (the page then says the
  map is unavailable and shows the rest).
- `fill(visitors, most, dark)` is the colour of a country: the neutral fill without visitors, else a mix from
  the lightest to the darkest fill by sqrt(visitors / most) — what the page's script computes.
"""

from __future__ import annotations

import gzip
import json
import math
from functools import cache
from pathlib import Path

from pixel.server.errors import PixelError

DATA = Path(__file__).resolve().parents[2] / "app" / "desktop" / "data" / "countries-110m.json.gz"
WEST, EAST, SOUTH, NORTH = -180, 180, -58, 84
SKIPPED = {"AQ"}
# (no visitors, fewest, most) on a light and on a dark background; share.js holds the same values
LIGHT_FILLS = ("#e5e7eb", "#c7d2fe", "#3730a3")
DARK_FILLS = ("#374151", "#312e81", "#a5b4fc")


class MapDataMissing(PixelError):
    """The country shapes are not in this install."""


def _path(rings: list[list[int]], scale: int) -> str:
    """SVG path data of `rings` ([lon, lat, lon, lat, ...] in 1/scale degrees) in hundredths of a degree."""
    factor = 100 / scale
    parts: list[str] = []
    for ring in rings:
        points = [
            (round((ring[i] * factor) - WEST * 100), round(NORTH * 100 - ring[i + 1] * factor))
            for i in range(0, len(ring) - 1, 2)
        ]
        if len(points) < 3:
            continue
        x, y = points[0]
        step = [f"M{x} {y}l"]
        for nx, ny in points[1:]:
            step.append(f"{nx - x} {ny - y}")
            x, y = nx, ny
        parts.append(" ".join(step).replace("l ", "l") + "z")
    return "".join(parts)


@cache
def countries_json() -> bytes:
    try:
        raw = json.loads(gzip.decompress(DATA.read_bytes()))
    except OSError as exc:
        raise MapDataMissing(f"the country shapes are missing ({DATA.name}): {exc.strerror or exc}") from None
    scale = int(raw["scale"])
    countries = [
        [code, country["name"], _path(country["rings"], scale)]
        for code, country in sorted(raw["countries"].items())
        if code not in SKIPPED
    ]
    body = {
        "viewBox": f"0 0 {(EAST - WEST) * 100} {(NORTH - SOUTH) * 100}",
        "source": raw.get("source", "Natural Earth"),
        "countries": [c for c in countries if c[2]],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _mix(a: str, b: str, t: float) -> str:
    t = min(1.0, max(0.0, t))
    ca = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    # floor(v + 0.5): JavaScript's Math.round, which share.js uses (Python's round() halves to even)
    return "#" + "".join(f"{math.floor(x + (y - x) * t + 0.5):02x}" for x, y in zip(ca, cb, strict=True))


def fill(visitors: int, most: int, dark: bool = False) -> str:
    none, few, many = DARK_FILLS if dark else LIGHT_FILLS
    if visitors <= 0 or most <= 0:
        return none
    return _mix(few, many, math.sqrt(visitors / most))
