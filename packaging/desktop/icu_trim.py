"""Shrink the ICU data library Qt brings (`libicudata.so.NN`, about 31 MB) to what Qt uses (Linux bundles).

Contract:
- `trim_icu(lib)` rewrites the library in place: it reads the ICU common-data package the library exports
  (`icudtNN_dat`), keeps the items `keep()` accepts, and links a new library with the same soname that
  exports the smaller package under the same symbol (needs a C compiler driver, `cc`). Returns the sizes
  before and after. Nothing changes when the library holds no such symbol or the package is not ICU's.
- `keep(name)` drops what Qt never asks ICU for: locale display names (languages, regions, currencies,
  units, time zones), spelled-out numbers, transliteration, legacy charset tables (`*.cnv`), stringprep
  profiles, character names, the spoof checker, the word-break dictionaries, and the locale and collation
  data of languages other than root and English (ICU falls back to root for those). Kept: normalization,
  character properties, case mapping, break rules, root and English locale data, root collation, the
  time-zone and supplemental tables.
- `repack(blob, keep)` works on the package bytes alone (no ICU tools): the same header, a table of
  contents of the kept items in their original (sorted) order, each item 16-byte aligned.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

DROP_TREES = ("lang/", "region/", "curr/", "unit/", "zone/", "rbnf/", "translit/")
DROP_SUFFIXES = (".cnv", ".spp", ".dict", ".cfu")
DROP_NAMES = ("unames.icu",)
# Locale-keyed .res files (top level): a language code, then optional subtags.
LOCALE_RES = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]+)*\.res$")
KEEP_LOCALES = re.compile(r"^(root|en|en_[A-Za-z0-9_]+)\.res$")
ALIGN = 16


def keep(name: str) -> bool:
    """Whether the item `name` (as listed in the package, without its `icudtNNl/` prefix) stays."""
    if name.startswith(DROP_TREES) or name.endswith(DROP_SUFFIXES) or name in DROP_NAMES:
        return False
    if name.startswith("coll/"):  # the root collation (with its table) and English's
        return name in ("coll/ucadata.icu", "coll/res_index.res") or bool(KEEP_LOCALES.match(name[5:]))
    base = name
    if "/" in base:  # brkitr/ rules and the rest of the trees kept whole
        return True
    if LOCALE_RES.match(base) and not KEEP_LOCALES.match(base):
        return base in SUPPLEMENTAL
    return True


# Top-level .res files whose names look like locale codes but are ICU tables (kept).
SUPPLEMENTAL = frozenset({"res_index.res"})


def _header_size(blob: bytes) -> int:
    if len(blob) < 32 or blob[2:4] != b"\xda\x27" or blob[12:16] != b"CmnD":
        raise ValueError("not an ICU common-data package")
    return int(struct.unpack_from("<H", blob, 0)[0])


def items(blob: bytes) -> list[tuple[str, bytes]]:
    """The package's items as (full name with prefix, bytes), in table order."""
    head = _header_size(blob)
    (count,) = struct.unpack_from("<I", blob, head)
    entries = [struct.unpack_from("<II", blob, head + 4 + 8 * i) for i in range(count)]
    out: list[tuple[str, bytes]] = []
    for i, (name_off, data_off) in enumerate(entries):
        start = head + name_off
        name = blob[start : blob.index(b"\0", start)].decode("ascii")
        end = head + entries[i + 1][1] if i + 1 < count else len(blob)
        out.append((name, blob[head + data_off : end]))
    return out


def repack(blob: bytes, accept: Callable[[str], bool] = keep) -> bytes:
    """A package holding the items of `blob` whose name (prefix removed) `accept` keeps."""
    head = _header_size(blob)
    kept = [(n, d) for n, d in items(blob) if accept(n.split("/", 1)[1] if "/" in n else n)]
    toc = 4 + 8 * len(kept)
    names = b"".join(n.encode("ascii") + b"\0" for n, _ in kept)
    data_start = -(-(toc + len(names)) // ALIGN) * ALIGN
    entries, chunks, name_off, data_off = [], [], toc, data_start
    for name, data in kept:
        entries.append(struct.pack("<II", name_off, data_off))
        name_off += len(name) + 1
        padded = data + b"\0" * (-len(data) % ALIGN)
        chunks.append(padded)
        data_off += len(padded)
    body = struct.pack("<I", len(kept)) + b"".join(entries) + names
    body += b"\0" * (data_start - len(body))
    return blob[:head] + body + b"".join(chunks)


def _symbol(lib: Path) -> tuple[str, int, int] | None:
    """(name, file offset, size) of the `icudtNN_dat` symbol (objdump, from binutils)."""
    syms = subprocess.run(["objdump", "-T", str(lib)], capture_output=True, text=True).stdout
    found = re.search(r"^([0-9a-f]+)\s.*\s(\.\S+)\s+([0-9a-f]+)\s+(?:\S+\s+)?(icudt\d+_dat)\s*$", syms, re.M)
    if not found:
        return None
    value, section, size, name = int(found[1], 16), found[2], int(found[3], 16), found[4]
    heads = subprocess.run(["objdump", "-h", str(lib)], capture_output=True, text=True).stdout
    row = re.search(rf"^\s*\d+\s+{re.escape(section)}\s+\S+\s+([0-9a-f]+)\s+\S+\s+([0-9a-f]+)", heads, re.M)
    if not row:
        return None
    return name, value - int(row[1], 16) + int(row[2], 16), size


def soname(lib: Path) -> str:
    out = subprocess.run(["objdump", "-p", str(lib)], capture_output=True, text=True).stdout
    found = re.search(r"^\s*SONAME\s+(\S+)", out, re.M)
    return found[1] if found else lib.name


def trim_icu(lib: Path, accept: Callable[[str], bool] = keep) -> tuple[int, int]:
    """Rewrite `lib` with the package reduced to the items `accept` keeps; (bytes before, bytes after)."""
    before = lib.stat().st_size
    sym = _symbol(lib)
    if sym is None:
        return before, before
    name, offset, size = sym
    with open(lib, "rb") as fh:
        fh.seek(offset)
        blob = fh.read(size)
    try:
        small = repack(blob, accept)
    except ValueError:
        return before, before
    with tempfile.TemporaryDirectory() as tmp:
        dat, asm, out = Path(tmp, "icu.dat"), Path(tmp, "icu.S"), Path(tmp, lib.name)
        dat.write_bytes(small)
        asm.write_text(
            f'.section .rodata\n.balign 16\n.globl {name}\n.type {name}, @object\n{name}:\n.incbin "{dat.name}"\n'
            f'.size {name}, .-{name}\n.section .note.GNU-stack,"",@progbits\n'
        )
        subprocess.run(
            ["cc", "-shared", "-nostdlib", f"-Wl,-soname,{soname(lib)}", "-Wl,-s", "-o", str(out), str(asm)],
            check=True,
            capture_output=True,
            cwd=tmp,
        )
        shutil.copyfile(out, lib)
    return before, lib.stat().st_size
