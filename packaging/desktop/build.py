"""Build the desktop app's installable bundle (run through `scripts/build-desktop`).

Contract:
- `dist/desktop/pixel-desktop/` is a PyInstaller one-folder bundle of `pixel-desktop` (no Python needed to
  run it), built from a copy of app/ staged as `pixel/app` in `build/desktop/stage` (the desktop needs no
  `pixel.server`), then pruned: Qt plugins, libraries and translations the app does not load are removed
  (`PRUNE`); on Linux Qt's ICU data library is cut to what Qt uses (`icu_trim`); the bundle's own launcher is checked afterwards by the clean-machine test.
- On Linux it is also packed as `pixel-desktop-<version>-linux-<arch>.tar.gz` (the folder as it is) and
  `pixel-desktop_<version>_<debarch>.deb` (dpkg-deb): the folder under /opt/pixel-desktop, `pixel-desktop`
  on PATH (/usr/bin symlink), a desktop entry and an icon. The .deb depends only on what a Linux desktop
  always has and PyInstaller deliberately leaves out (glibc, the GL/EGL dispatch libraries, libxcb) and tzdata.
- `--stack-images REF...`: also write the offline-installer file `pixel-stack-images.tar` next to the
  bundle (`docker save` of those images from the local engine); the app loads it when it cannot pull
  (`pixel.app.stack.image`).
- Prints one line per artefact with its size; `--json` prints them as JSON instead.
- Windows and macOS run the same PyInstaller step on their own CI runners (.github/workflows/desktop.yml).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from icu_trim import trim_icu

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "packaging" / "desktop"
BUILD = ROOT / "build" / "desktop"
DIST = ROOT / "dist" / "desktop"
NAME = "pixel-desktop"
STACK_IMAGES = "pixel-stack-images.tar"

# Relative to the bundle's PySide6/Qt folder: what the app never loads (QML, Quick, translations,
# Designer, networking/TLS, SQL, printing, virtual keyboards, multimedia).
PRUNE = [
    "translations",
    "qml",
    "plugins/designer",
    "plugins/qmltooling",
    "plugins/sqldrivers",
    "plugins/printsupport",
    "plugins/tls",
    "plugins/networkinformation",
    "plugins/platforminputcontexts",
    "plugins/egldeviceintegrations",
    "plugins/wayland-graphics-integration-server",
    "plugins/generic",
    "plugins/vectorimageformats",
    "plugins/platforms/libqvnc.so",
    "plugins/platforms/libqlinuxfb.so",
    "plugins/platforms/libqeglfs.so",
    "plugins/platforms/libqminimalegl.so",
    "plugins/platforms/libqvkkhrdisplay.so",
    # GTK's theme pulls in GTK, cairo, pango and ATK; the portal theme (dark mode included) stays
    "plugins/platformthemes/libqgtk3.so",
    # SVG and the rarer image formats need QtSvg or libraries the app never uses
    "plugins/iconengines",
    "plugins/imageformats/libqsvg.so",
    "plugins/imageformats/libqicns.so",
    "plugins/imageformats/libqtiff.so",
    "plugins/imageformats/libqwebp.so",
    "plugins/imageformats/libqtga.so",
    "plugins/imageformats/libqwbmp.so",
    "plugins/imageformats/libqjpeg.so",
    "plugins/imageformats/libqgif.so",
]
# Relative to the bundle's _internal folder (Linux): CPython's CJK codecs (Shift-JIS, GB18030, Big5, EUC-KR,
# ISO-2022: nothing the app reads or writes uses them; asking for one is a LookupError); readline (with
# libreadline and libtinfo: a GUI app has no interactive prompt); PyYAML's LibYAML speed-up (pure Python
# is used without it); pyqtgraph's own application icon (set only when pyqtgraph makes the QApplication,
# the app makes its own); the tzdata package's copy of the time-zone database (zoneinfo reads the
# system's first: the .deb depends on tzdata; Windows and macOS bundles keep the copy).
PRUNE_LINUX = (
    "python3.*/lib-dynload/_codecs_jp.*.so",
    "python3.*/lib-dynload/_codecs_hk.*.so",
    "python3.*/lib-dynload/_codecs_cn.*.so",
    "python3.*/lib-dynload/_codecs_kr.*.so",
    "python3.*/lib-dynload/_codecs_tw.*.so",
    "python3.*/lib-dynload/_codecs_iso2022.*.so",
    "python3.*/lib-dynload/readline.*.so",
    "yaml/_yaml.*.so",
    "pyqtgraph/icons/peegee",
    "tzdata/zoneinfo",
)
# Loaded with dlopen (not listed as needed by any bundled file): never pruned as unreferenced.
DLOPENED = ("libpython", "libdbus-1")
# Library name prefixes (in PySide6/Qt/lib or the bundle's top level) the app does not load.
PRUNE_LIBS = (
    "libQt6Qml",
    "libQt6Quick",
    "libQt6Designer",
    "libQt6Network",
    "libQt6Sql",
    "libQt6Pdf",
    "libQt6VirtualKeyboard",
    "libQt6WaylandCompositor",
    "libQt6LabsStyleKit",
    "libQt6ShaderTools",
    "libQt6Test",
    "libQt6Svg",
)


def version() -> str:
    import tomllib

    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def stage() -> Path:
    """`build/desktop/stage/pixel/app`: a clean copy of app/ (no caches)."""
    dest = BUILD / "stage"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(
        ROOT / "app", dest / "pixel" / "app", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return dest


def icon_png(size: int = 256) -> Path:
    """Render the SVG icon to a PNG (the .deb's icon; PyInstaller converts it for Windows/macOS)."""
    out = BUILD / f"{NAME}.png"
    code = (
        "import sys;from PySide6.QtGui import QGuiApplication,QImage,QPainter,QColor;"
        "from PySide6.QtSvg import QSvgRenderer;app=QGuiApplication([]);"
        f"img=QImage({size},{size},QImage.Format.Format_ARGB32);img.fill(QColor(0,0,0,0));"
        "p=QPainter(img);QSvgRenderer(sys.argv[1]).render(p);p.end();sys.exit(0 if img.save(sys.argv[2]) else 1)"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    subprocess.run([sys.executable, "-c", code, str(HERE / f"{NAME}.svg"), str(out)], check=True, env=env)
    return out


def pyinstaller(stage_dir: Path, icon: Path) -> Path:
    env = {**os.environ, "PIXEL_BUNDLE_STAGE": str(stage_dir), "PIXEL_BUNDLE_ICON": str(icon)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            str(HERE / f"{NAME}.spec"),
            "--noconfirm",
            "--log-level=WARN",
            "--distpath",
            str(DIST),
            "--workpath",
            str(BUILD / "work"),
        ],
        check=True,
        env=env,
        cwd=ROOT,
    )
    return DIST / NAME


def prune(bundle: Path) -> list[str]:
    """Remove PRUNE and PRUNE_LIBS from the bundle; returns what was removed (relative paths)."""
    removed: list[str] = []
    for qt in bundle.rglob("PySide6/Qt"):
        for rel in PRUNE:
            path = qt / rel
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                continue
            removed.append(str(path.relative_to(bundle)))
    for lib in [*bundle.rglob("libQt6*"), *bundle.rglob("Qt*.dll")]:
        if lib.name.startswith(PRUNE_LIBS) or lib.name.removesuffix(".dll").startswith(
            tuple(p.removeprefix("lib") for p in PRUNE_LIBS)
        ):
            lib.unlink()
            removed.append(str(lib.relative_to(bundle)))
    return removed


def needed(path: Path) -> list[str]:
    """The shared libraries an ELF file names as NEEDED (objdump, from binutils)."""
    out = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True).stdout
    return [line.split()[1] for line in out.splitlines() if line.strip().startswith("NEEDED")]


def prune_unreferenced(bundle: Path) -> list[str]:
    """Remove the shared libraries (lib*.so*) that no remaining file needs: those PyInstaller collected
    for what PRUNE removed (GTK for its theme, the EGLFS integration, …). Roots: the launcher, Python's
    extension modules, Qt's plugins (Qt loads them with dlopen) and DLOPENED; then NEEDED, transitively.
    Symlinks left pointing at nothing are removed too."""
    files = [p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()]
    libs = {
        p.name: p
        for p in files
        if p.name.startswith("lib")
        and ".so" in p.name
        and "plugins" not in p.parts
        and not p.name.startswith(DLOPENED)
        and ".cpython-" not in p.name
        and ".abi3.so" not in p.name
    }
    roots = [p for p in files if p.name not in libs and p.open("rb").read(4) == b"\x7fELF"]
    reached: set[str] = set()
    queue = list(roots)
    while queue:
        for name in needed(queue.pop()):
            if name in libs and name not in reached:
                reached.add(name)
                queue.append(libs[name])
    removed = sorted(str(libs[name].relative_to(bundle)) for name in set(libs) - reached)
    for rel in removed:
        (bundle / rel).unlink()
    for link in [p for p in bundle.rglob("*") if p.is_symlink() and not p.exists()]:
        link.unlink()
    return removed


def glibc_needed(bundle: Path) -> str:
    """The newest GLIBC_x.y symbol version any ELF file of the bundle references (objdump -T): the .deb's
    libc6 lower bound, as dpkg-shlibdeps would compute it for the libraries built on this machine."""
    found = {(2, 17)}
    for path in bundle.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.open("rb").read(4) == b"\x7fELF":
            out = subprocess.run(["objdump", "-T", str(path)], capture_output=True, text=True).stdout
            for major, minor in re.findall(r"\bGLIBC_(\d+)\.(\d+)", out):
                found.add((int(major), int(minor)))
    major, minor = max(found)
    return f"{major}.{minor}"


def strip(bundle: Path) -> int:
    """`strip --strip-unneeded` every ELF file except the libraries auditwheel vendored into a wheel's
    `*.libs` folder (numpy's OpenBLAS): strip breaks those (their load segments are no longer page-aligned).
    Returns the bytes saved."""
    before = tree_size(bundle)
    for path in bundle.rglob("*"):
        if (
            path.is_file()
            and not path.is_symlink()
            and not any(part.endswith(".libs") for part in path.relative_to(bundle).parts)
            and path.open("rb").read(4) == b"\x7fELF"
        ):
            subprocess.run(["strip", "--strip-unneeded", str(path)], check=True, capture_output=True)
    return before - tree_size(bundle)


def tree_size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def pack_tar(bundle: Path, ver: str) -> Path:
    out = DIST / f"{NAME}-{ver}-linux-{platform.machine()}.tar.gz"
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=NAME)
    return out


def pack_deb(bundle: Path, icon: Path, ver: str) -> Path:
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    root = BUILD / "deb"
    shutil.rmtree(root, ignore_errors=True)
    opt = root / "opt" / NAME
    shutil.copytree(bundle, opt, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / NAME).symlink_to(f"/opt/{NAME}/{NAME}")
    apps = root / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copy(HERE / f"{NAME}.desktop", apps / f"{NAME}.desktop")
    for sub, src in (("scalable", HERE / f"{NAME}.svg"), ("256x256", icon)):
        dest = root / "usr" / "share" / "icons" / "hicolor" / sub / "apps"
        dest.mkdir(parents=True)
        shutil.copy(src, dest / f"{NAME}{src.suffix}")
    control = (HERE / "control.in").read_text()
    control = (
        control.replace("@VERSION@", ver)
        .replace("@ARCH@", arch)
        .replace("@SIZE_KB@", str(tree_size(root) // 1024 + 1))
        .replace("@GLIBC@", glibc_needed(bundle))
    )
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(control)
    for path in root.rglob("*"):  # dpkg-deb refuses group/other-writable control files; no umask surprises
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
    out = DIST / f"{NAME}_{ver}_{arch}.deb"
    done = subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "-z6", "--build", str(root), str(out)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"dpkg-deb failed:\n{done.stderr}")
    return out


def save_stack_images(refs: list[str], out: Path = DIST / STACK_IMAGES) -> Path:
    """`docker save` of `refs` from the local engine into the offline-installer file (next to the bundle)."""
    import docker

    client = docker.from_env(timeout=600)
    try:
        tmp = out.with_suffix(".part")
        # GET /images/get?names=…: one tar holding every image (docker-py's get_image takes one name)
        answer = client.api.get(f"{client.api.base_url}/images/get", params={"names": refs}, stream=True)
        answer.raise_for_status()
        with open(tmp, "wb") as fh:
            for chunk in answer.iter_content(1 << 20):
                fh.write(chunk)
        os.replace(tmp, out)
    finally:
        client.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/build-desktop", description=__doc__.split("\n")[0])
    parser.add_argument("--no-packages", action="store_true", help="only the bundle folder (no .deb/.tar.gz)")
    parser.add_argument("--stack-images", nargs="*", default=[], metavar="REF", help="also save these images")
    parser.add_argument("--json", action="store_true", help="print the artefacts as JSON")
    args = parser.parse_args(argv)

    ver = version()
    BUILD.mkdir(parents=True, exist_ok=True)
    DIST.mkdir(parents=True, exist_ok=True)
    icon = icon_png()
    bundle = pyinstaller(stage(), icon)
    prune(bundle)
    if sys.platform.startswith("linux"):
        for rel in PRUNE_LINUX:
            for path in bundle.glob(f"_internal/{rel}"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        prune_unreferenced(bundle)
        strip(bundle)
        for lib in bundle.rglob("libicudata.so.*"):
            if not lib.is_symlink():
                trim_icu(lib)
    made: dict[str, dict[str, int | str]] = {
        "bundle": {"path": str(bundle.relative_to(ROOT)), "bytes": tree_size(bundle)}
    }
    if sys.platform.startswith("linux") and not args.no_packages:
        for kind, path in (("tar", pack_tar(bundle, ver)), ("deb", pack_deb(bundle, icon, ver))):
            made[kind] = {"path": str(path.relative_to(ROOT)), "bytes": path.stat().st_size}
    if args.stack_images:
        path = save_stack_images(args.stack_images)
        made["stack_images"] = {"path": str(path.relative_to(ROOT)), "bytes": path.stat().st_size}
    if args.json:
        print(json.dumps(made, indent=2))
    else:
        for kind, info in made.items():
            print(f"{kind:13} {int(info['bytes']) / 1e6:8.1f} MB  {info['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
