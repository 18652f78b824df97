"""Serving the built tracker: loaded once per worker, precompressed, with an ETag."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass

from pixel.tracker import dist_file


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str


def load_tracker(name: str = "pixel.js") -> Asset | None:
    """The built tracker, or None when it has not been built (the collector then answers 404)."""
    try:
        body = dist_file(name).read_bytes()
    except (FileNotFoundError, OSError):
        return None
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    return Asset(body, gzip.compress(body, 9, mtime=0), etag)
