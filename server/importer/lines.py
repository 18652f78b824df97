"""A file as numbered lines with byte offsets: plain or gzip (told by its magic bytes, not its name).

`read_lines(path, start)` yields `(line_number, offset, next_offset, text)` from the line that begins at byte
`start` (of the decompressed stream for gzip; a resume decompresses again and skips up to it). Memory is
bounded: the file is read in chunks and a line longer than `MAX_LINE` bytes is yielded cut, flagged by
`Truncated` text (the parser calls it malformed). Bytes that are not UTF-8 are replaced, never an error.

A gzip stream that ends early (a truncated download) yields every whole line before the cut and then
raises `TruncatedFile`: the caller imports what was whole and reports the error. Gzip files of several
members (`cat a.gz b.gz`) are read whole. A file that is neither gzip nor text (a NUL byte in its first
4 KiB) raises `WrongKind` before anything is read.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pixel.server.errors import PixelError
from pixel.server.importer.accesslog import MAX_LINE

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
TOO_LONG = "\x00too long"  # yielded instead of a line over MAX_LINE bytes


class ImportFileError(PixelError, ValueError):
    pass


class TruncatedFile(ImportFileError):
    pass


class WrongKind(ImportFileError):
    pass


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def check_kind(path: Path) -> None:
    """Raises WrongKind for a file that is neither gzip nor text (a ZIP, an image, a database...)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:2] == GZIP_MAGIC:
        return
    if b"\x00" in head or head[:4] in (b"PK\x03\x04", b"\x89PNG", b"BZh9", b"\xfd7zX"):
        raise WrongKind(f"{path.name} is not a text or gzip access log")


class RawPosition:
    """How far into the file on disk reading got (compressed bytes for gzip): for a progress bar."""

    def __init__(self) -> None:
        self.raw: BinaryIO | None = None

    def tell(self) -> int:
        try:
            return self.raw.tell() if self.raw is not None and not self.raw.closed else 0
        except (OSError, ValueError):
            return 0


def read_lines(
    path: Path, start: int = 0, first_line: int = 1, position: RawPosition | None = None
) -> Iterator[tuple[int, int, int, str]]:
    """(line number, offset, offset after it, text without the newline) from byte `start` (which must begin
    line `first_line`). Raises TruncatedFile after the last whole line of a gzip stream that ends early."""
    number = first_line
    offset = start
    raw = open(path, "rb")
    if position is not None:
        position.raw = raw
    f: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if raw.read(2) == GZIP_MAGIC else raw  # type: ignore[assignment]
    raw.seek(0)
    with raw, f:
        try:
            skip = start
            while skip > 0:  # a resume: gzip cannot seek cheaply, so read and drop
                got = f.read(min(skip, CHUNK))
                if not got:
                    return
                skip -= len(got)
            pending = b""
            discarding = False  # inside a line over MAX_LINE bytes: drop until its newline
            read = f.read1 if isinstance(f, gzip.GzipFile) else f.read  # read1: what is whole, up to a cut
            while True:
                chunk = read(CHUNK)
                if not chunk:
                    break
                data = pending + chunk if pending else chunk
                pos = 0
                while True:
                    nl = data.find(b"\n", pos)
                    if nl < 0:
                        break
                    end = offset + nl - pos + 1
                    if discarding:
                        discarding = False
                    else:
                        yield number, offset, end, data[pos:nl].rstrip(b"\r").decode("utf-8", "replace")
                    number += 1
                    offset = end
                    pos = nl + 1
                pending = data[pos:]
                if len(pending) > MAX_LINE:
                    if not discarding:
                        yield number, offset, offset + len(pending), TOO_LONG
                        discarding = True
                    offset += len(pending)
                    pending = b""
            if pending and not discarding:
                yield number, offset, offset + len(pending), pending.rstrip(b"\r").decode("utf-8", "replace")
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise TruncatedFile(
                f"{path.name}: the gzip data ends early or is damaged after line {number - 1} ({exc})"
            ) from None
