"""Serving the built trackers: loaded once per worker, precompressed (brotli at its best quality, gzip -9), with
an ETag.

Two builds are served (tracker/build.mjs): the consent-free default `pixel.js` at `/<PIXEL_SCRIPT_NAME>` and
the extended `pixel.ext.js` at the same name with `.ext` before its extension (`/pixel.ext.js`, or
`/stats.ext.js` when the script is renamed `stats.js`). A renamed script serves the same built file: the name
is only what the site's pages ask for. The encoding follows the request's Accept-Encoding with its q-values
(`preferred_encoding`): brotli when accepted, else gzip, else the plain file; `q=0` refuses an encoding.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass

import brotli

from pixel.tracker import dist_file

DEFAULT_BUILD = "pixel.js"
EXTENDED_BUILD = "pixel.ext.js"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    brotli: bytes
    etag: str


def preferred_encoding(accept_encoding: bytes) -> str | None:
    """`br`, `gzip` or None (the plain file) for an Accept-Encoding header value: the accepted one (q > 0, or
    `*`) that compresses best."""
    accepted: dict[str, float] = {}
    for part in accept_encoding.decode("latin-1").lower().split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name.strip():
            accepted[name.strip()] = q
    wildcard = accepted.get("*", 0.0)
    for name in ("br", "gzip"):
        if accepted.get(name, wildcard) > 0:
            return name
    return None


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
    packed = brotli.compress(body, mode=brotli.MODE_TEXT, quality=11)
    return Asset(body, gzip.compress(body, 9, mtime=0), packed, etag(body))


def etag(body: bytes) -> str:
    """The ETag a build is served with (the automatic annotations compare it to see a new build)."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
