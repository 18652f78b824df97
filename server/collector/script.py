"""Serving the built trackers: loaded once per worker, precompressed (gzip -9), with an ETag.

Two builds are served (tracker/build.mjs): the consent-free default `pixel.js` at `/<PIXEL_SCRIPT_NAME>` and
the extended `pixel.ext.js` at the same name with `.ext` before its extension (`/pixel.ext.js`, or
`/stats.ext.js` when the script is renamed `stats.js`). A renamed script serves the same built file: the name
is only what the site's pages ask for. Brotli is not offered: no brotli package is a dependency, and gzip -9
of the default build is within its 2,000-byte budget.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass

from pixel.tracker import dist_file

DEFAULT_BUILD = "pixel.js"
EXTENDED_BUILD = "pixel.ext.js"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str


def extended_name(script_name: str) -> str:
    """The name the extended build is served at, next to `script_name`: `.ext` before the extension."""
    stem, dot, ext = script_name.rpartition(".")
    return f"{stem}.ext.{ext}" if dot and stem else f"{script_name}.ext"


def load_tracker(build: str = DEFAULT_BUILD) -> Asset | None:
    """The built tracker `build` (a file of tracker/dist/), or None when it has not been built (the collector
    then answers 404)."""
    try:
        body = dist_file(build).read_bytes()
    except (FileNotFoundError, OSError):
        return None
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    return Asset(body, gzip.compress(body, 9, mtime=0), etag)
