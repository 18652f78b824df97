"""packaging/desktop/icu_trim.py against the ICU library of the venv's PySide6 (the one the bundle ships):
the repacked package holds exactly the kept items, byte for byte, in a valid table of contents; the rebuilt
library serves ICU what Qt asks for (collation, line breaks, normalization, time zones, UTF-8, root and
English locale data) and refuses what was dropped with ICU's own "no data" error, never a crash."""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("pixel_icu_trim", ROOT / "packaging/desktop/icu_trim.py")
assert _spec is not None and _spec.loader is not None
icu_trim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(icu_trim)

QT_LIB = Path(importlib.util.find_spec("PySide6").origin).parent / "Qt" / "lib"  # type: ignore[arg-type, union-attr]
ICUDATA = next(QT_LIB.glob("libicudata.so.*"), None)
pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or ICUDATA is None or not shutil.which("cc"), reason="Linux ICU data and cc"
)

# Each probe: ICU C call -> its UErrorCode (0 = ok, negative = a warning such as "used the fallback").
PROBE = r"""
import ctypes, json, sys
data, uc, i18n, ver = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ctypes.CDLL(data, mode=ctypes.RTLD_GLOBAL)
uc = ctypes.CDLL(uc, mode=ctypes.RTLD_GLOBAL)
i18n = ctypes.CDLL(i18n, mode=ctypes.RTLD_GLOBAL)
f = lambda lib, name: getattr(lib, f"{name}_{ver}")
def status(call):
    err = ctypes.c_int(0)
    call(ctypes.byref(err))
    return err.value
u16 = lambda s: ctypes.create_unicode_buffer(s) if ctypes.sizeof(ctypes.c_wchar) == 2 else (ctypes.c_uint16 * (len(s) + 1))(*map(ord, s), 0)
f(uc, "ures_open").restype = ctypes.c_void_p
f(i18n, "ucol_open").restype = ctypes.c_void_p
f(uc, "ubrk_open").restype = ctypes.c_void_p
f(uc, "ucnv_open").restype = ctypes.c_void_p
f(uc, "unorm2_getNFKCInstance").restype = ctypes.c_void_p
text = u16("Pixel shows charts")
name = ctypes.create_string_buffer(100)
out = {
    "locale_root": status(lambda e: f(uc, "ures_open")(None, b"root", e)),
    "locale_en_GB": status(lambda e: f(uc, "ures_open")(None, b"en_GB", e)),
    "collator_en": status(lambda e: f(i18n, "ucol_open")(b"en_US", e)),
    "collator_root": status(lambda e: f(i18n, "ucol_open")(b"", e)),
    "line_breaks": status(lambda e: f(uc, "ubrk_open")(2, b"en", text, 18, e)),
    "word_breaks": status(lambda e: f(uc, "ubrk_open")(1, b"en", text, 18, e)),
    "nfkc": status(lambda e: f(uc, "unorm2_getNFKCInstance")(e)),
    "utf8": status(lambda e: f(uc, "ucnv_open")(b"UTF-8", e)),
    "dst_berlin": status(lambda e: f(i18n, "ucal_getDSTSavings")(u16("Europe/Berlin"), e)),
    "shift_jis": status(lambda e: f(uc, "ucnv_open")(b"Shift_JIS", e)),
    "char_name": status(lambda e: f(uc, "u_charName")(0x41, 0, name, 100, e)),
}
f(i18n, "ucal_getDSTSavings").restype = ctypes.c_int32
err = ctypes.c_int(0)
out["dst_berlin_ms"] = f(i18n, "ucal_getDSTSavings")(u16("Europe/Berlin"), ctypes.byref(err))
print(json.dumps(out))
"""
U_FILE_ACCESS_ERROR = 4  # ICU: "the requested file cannot be found" (its data item is missing)


def _probe(icudata: Path) -> dict[str, int]:
    ver = icudata.name.rsplit(".", 1)[1]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            str(icudata),
            str(QT_LIB / f"libicuuc.so.{ver}"),
            str(QT_LIB / f"libicui18n.so.{ver}"),
            ver,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_repack_keeps_exactly_the_kept_items_byte_for_byte() -> None:
    assert ICUDATA is not None
    sym = icu_trim._symbol(ICUDATA)
    assert sym is not None
    name, offset, size = sym
    with open(ICUDATA, "rb") as fh:
        fh.seek(offset)
        blob = fh.read(size)
    small = icu_trim.repack(blob)
    everything, kept = icu_trim.items(blob), icu_trim.items(small)
    expected = [(n, d) for n, d in everything if icu_trim.keep(n.split("/", 1)[1])]
    # item bytes may carry the original's trailing alignment padding: compare each up to its length
    assert [n for n, _ in kept] == [n for n, _ in expected]
    for (_, new), (_, old) in zip(kept, expected, strict=True):
        assert new[: len(old.rstrip(b"\0"))] == old.rstrip(b"\0")
    head = struct.unpack_from("<H", blob)[0]
    assert small[:head] == blob[:head]  # the same header (format, ICU version)
    (count,) = struct.unpack_from("<I", small, head)
    offsets = [struct.unpack_from("<II", small, head + 4 + 8 * i)[1] for i in range(count)]
    assert all(o % 16 == 0 for o in offsets) and offsets == sorted(offsets)
    names = [n for n, _ in kept]
    assert names == sorted(names)  # ICU finds items by binary search
    short = {n.split("/", 1)[1] for n in names}
    for needed in ("root.res", "en.res", "coll/root.res", "coll/ucadata.icu", "brkitr/line.brk", "nfkc.nrm"):
        assert needed in short, needed
    for dropped in ("de.res", "lang/en.res", "zone/en.res", "ibm-943_P15A-2003.cnv", "unames.icu"):
        assert dropped not in short, dropped
    assert len(small) < len(blob) / 5
    assert name.startswith("icudt") and name.endswith("_dat")


def test_keep_rules() -> None:
    keep = icu_trim.keep
    assert [keep(n) for n in ("root.res", "en.res", "en_GB.res", "en_US_POSIX.res", "res_index.res")] == [
        True
    ] * 5
    assert [keep(n) for n in ("pool.res", "zoneinfo64.res", "supplementalData.res", "likelySubtags.res")] == [
        True
    ] * 4
    assert [keep(n) for n in ("de.res", "zh_Hant_TW.res", "sr_Latn.res", "ars.res")] == [False] * 4
    assert [keep(n) for n in ("coll/root.res", "coll/en.res", "coll/ucadata.icu", "coll/res_index.res")] == [
        True
    ] * 4
    assert [keep(n) for n in ("coll/zh.res", "coll/de_.res", "coll/de__PHONEBOOK.res")] == [False] * 3
    assert [keep(n) for n in ("lang/en.res", "region/root.res", "curr/pool.res", "translit/root.res")] == [
        False
    ] * 4
    assert [keep(n) for n in ("brkitr/line.brk", "brkitr/en.res", "brkitr/cjdict.dict")] == [
        True,
        True,
        False,
    ]
    assert [keep(n) for n in ("gb18030.cnv", "rfc3491.spp", "unames.icu", "confusables.cfu")] == [False] * 4
    assert [keep(n) for n in ("cnvalias.icu", "uts46.nrm", "ulayout.icu", "uemoji.icu")] == [True] * 4


def test_trimmed_library_serves_what_qt_asks_and_refuses_the_rest(tmp_path: Path) -> None:
    assert ICUDATA is not None
    copy = tmp_path / ICUDATA.name
    shutil.copyfile(ICUDATA, copy)
    before, after = icu_trim.trim_icu(copy)
    assert before == ICUDATA.stat().st_size and after < 5_000_000 < before
    assert icu_trim.soname(copy) == icu_trim.soname(ICUDATA)
    full, trimmed = _probe(ICUDATA), _probe(copy)
    kept = ("locale_root", "locale_en_GB", "collator_en", "collator_root", "line_breaks", "word_breaks")
    for key in (*kept, "nfkc", "utf8", "dst_berlin"):
        assert full[key] <= 0 and trimmed[key] <= 0, (key, full[key], trimmed[key])
    assert trimmed["dst_berlin_ms"] == full["dst_berlin_ms"] == 3_600_000
    # dropped: a legacy charset and character names answer ICU's "no data", as documented
    assert full["shift_jis"] <= 0 and trimmed["shift_jis"] == U_FILE_ACCESS_ERROR  # full: an alias warning
    assert (full["char_name"], trimmed["char_name"]) == (0, U_FILE_ACCESS_ERROR)
    # a second trim of the trimmed library changes nothing
    assert icu_trim.trim_icu(copy) == (after, after)


def test_trim_leaves_a_library_without_icu_data_alone(tmp_path: Path) -> None:
    other = tmp_path / "libQt6Core.so.6"
    shutil.copyfile(QT_LIB / "libQt6Core.so.6", other)
    size = other.stat().st_size
    assert icu_trim.trim_icu(other) == (size, size)
    assert other.read_bytes() == (QT_LIB / "libQt6Core.so.6").read_bytes()
