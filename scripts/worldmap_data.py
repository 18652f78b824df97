"""Convert world-atlas's countries-110m.json (TopoJSON of Natural Earth's 1:110m Admin 0 countries, public
domain) into app/desktop/data/countries-110m.json.gz, the desktop world map's shapes keyed by ISO 3166-1 alpha-2.

Run once when the map data changes (needs npm and Debian's iso-codes package for the numeric -> alpha-2 table):

    python scripts/worldmap_data.py            # npm pack world-atlas@2 into a temporary folder, convert
    python scripts/worldmap_data.py --from countries-110m.json

Output (gzip of compact JSON):
    {"source": ..., "licence": ..., "scale": 100,
     "countries": {"FR": {"name": "France", "rings": [[x0, y0, x1, y1, ...], ...]}, ...}}
Coordinates are longitude and latitude times `scale`, rounded to integers; each ring is one closed outline
(outer rings and holes alike: the map fills them with the odd-even rule); rings crossing the 180th meridian
(Russia, Fiji) are cut there into a part on each side. Shapes without an ISO number in
Natural Earth are attached to the country GeoIP databases report for them: Kosovo as XK, Northern Cyprus as
CY, Somaliland as SO.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "app" / "desktop" / "data" / "countries-110m.json.gz"
ISO_CODES = Path("/usr/share/iso-codes/json/iso_3166-1.json")  # Debian package iso-codes
PACKAGE = "world-atlas@2"
SCALE = 100
Point = tuple[float, float]
NO_NUMBER = {"Kosovo": "XK", "N. Cyprus": "CY", "Somaliland": "SO"}
SOURCE = (
    "Natural Earth 1:110m Admin 0 countries (public domain), as TopoJSON in the npm package world-atlas 2 "
    "(ISC, Michael Bostock)"
)


def fetch_topology(work: Path) -> dict[str, Any]:
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=work, check=True, capture_output=True)
    tarball = next(work.glob("world-atlas-*.tgz"))
    with tarfile.open(tarball) as tar:
        member = tar.extractfile("package/countries-110m.json")
        assert member is not None
        return dict(json.load(member))


def decode_arcs(topology: dict[str, Any]) -> list[list[Point]]:
    """The topology's arcs as absolute longitude/latitude points (quantized, delta-encoded in the file)."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def clip(points: list[Point], edge: float, keep_below: bool) -> list[Point]:
    """Sutherland-Hodgman: the part of a ring with longitude <= edge (or >= edge)."""

    def inside(p: Point) -> bool:
        return p[0] <= edge if keep_below else p[0] >= edge

    out: list[Point] = []
    for i, current in enumerate(points):
        previous = points[i - 1]
        if inside(current):
            if not inside(previous):
                out.append(crossing(previous, current, edge))
            out.append(current)
        elif inside(previous):
            out.append(crossing(previous, current, edge))
    return out


def crossing(a: Point, b: Point, edge: float) -> Point:
    t = (edge - a[0]) / (b[0] - a[0])
    return (edge, a[1] + (b[1] - a[1]) * t)


def split_at_antimeridian(points: list[Point]) -> list[list[Point]]:
    """world-atlas keeps rings on the sphere: a ring crossing the 180th meridian jumps from +179 to -179. The
    longitudes are unwrapped into one continuous ring, then cut at +-180 into the parts on each side."""
    unwrapped = [points[0]]
    for lon, lat in points[1:]:
        previous = unwrapped[-1][0]
        while lon - previous > 180:
            lon -= 360
        while lon - previous < -180:
            lon += 360
        unwrapped.append((lon, lat))
    east, west = max(p[0] for p in unwrapped), min(p[0] for p in unwrapped)
    if east <= 180 and west >= -180:
        return [unwrapped]
    shift = -360 if east > 180 else 360
    return [
        clip(unwrapped, 180, True) if shift < 0 else clip(unwrapped, -180, False),
        clip([(lon + shift, lat) for lon, lat in unwrapped], -180, False)
        if shift < 0
        else clip([(lon + shift, lat) for lon, lat in unwrapped], 180, True),
    ]


def rings(arcs: list[list[Point]], indexes: list[int]) -> list[list[int]]:
    points: list[Point] = []
    for index in indexes:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc[1:] if points else arc)  # consecutive arcs share their joining point
    out = []
    for part in split_at_antimeridian(points):
        flat: list[int] = []
        last: tuple[int, int] | None = None
        for lon, lat in part:
            here = (round(lon * SCALE), round(lat * SCALE))
            if here != last:
                flat.extend(here)
                last = here
        if len(flat) >= 6:
            out.append(flat)
    return out


def convert(topology: dict[str, Any], numeric_to_alpha2: dict[str, str]) -> dict[str, Any]:
    arcs = decode_arcs(topology)
    countries: dict[str, dict[str, Any]] = {}
    for geometry in topology["objects"]["countries"]["geometries"]:
        name = geometry["properties"]["name"]
        number = geometry.get("id")
        code = numeric_to_alpha2.get(number, "") if number else NO_NUMBER.get(name, "")
        if not code:
            raise SystemExit(f"no ISO alpha-2 code for {name!r} ({number!r})")
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        entry = countries.setdefault(code, {"name": name, "rings": []})
        if number:  # the numbered shape names the country (N. Cyprus joins Cyprus, not the reverse)
            entry["name"] = name
        for polygon in polygons:
            for indexes in polygon:
                entry["rings"].extend(rings(arcs, indexes))
    return {"source": SOURCE, "licence": "public domain", "scale": SCALE, "countries": countries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, help="a countries-110m.json already downloaded")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    iso = json.loads(ISO_CODES.read_text())["3166-1"]
    numeric_to_alpha2 = {c["numeric"]: c["alpha_2"] for c in iso}
    if args.source:
        topology = json.loads(args.source.read_text())
    else:
        with tempfile.TemporaryDirectory() as work:
            topology = fetch_topology(Path(work))
    data = convert(topology, numeric_to_alpha2)
    body = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(gzip.compress(body, compresslevel=9, mtime=0))
    print(f"{args.out}: {len(data['countries'])} countries, {args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
