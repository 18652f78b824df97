"""Getting the Pixel image onto an engine: pull a published tag, build from a context sent over the
API (packaging/Dockerfile + wheels), or load a saved image file. A remote host may not reach a registry,
so the last two need nothing but the Docker API.

The installer's one choice (the desktop bundle's "pull"): pull the published image; where the registry
cannot be reached, load the offline-installer file instead, `ImageSource.path` or else
`pixel-stack-images.tar` (OFFLINE_FILE, a `docker save` of the stack's images, made by scripts/build-desktop
--stack-images) found in the app's folder or the folder that holds it. No file there: the pull's error,
saying where to put one."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound

from .errors import StackError
from .progress import Progress, ProgressCallback, ignore

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"
OFFLINE_FILE = "pixel-stack-images.tar"
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)")


@dataclass(frozen=True)
class ImageSource:
    """How to get an image that is not on the engine yet."""

    kind: str = "pull"  # pull | build | load
    # build: context directory; load: image tar (docker save); pull: the tar to load if the pull fails
    path: Path | None = None
    base: str = ""  # build: BASE build argument (default in the Dockerfile: python:3.11-slim-bookworm)
    network_mode: str = ""  # build: "none" for a fully offline build

    def __post_init__(self) -> None:
        if self.kind not in ("pull", "build", "load"):
            raise StackError(f"unknown image source {self.kind!r}", "Use pull, build or load.")
        if self.kind in ("build", "load") and self.path is None:
            raise StackError(f"image source {self.kind!r} needs a path")


def has_image(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except ImageNotFound:
        return False


def pull(client: docker.DockerClient, ref: str, progress: ProgressCallback = ignore) -> None:
    repo, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
    layers: dict[str, tuple[int, int]] = {}
    try:
        for msg in client.api.pull(repo, tag=tag or "latest", stream=True, decode=True):
            if "error" in msg:
                raise StackError(
                    f"Downloading {ref} failed: {msg['error']}",
                    "Check the internet connection of the Docker host, or build/load the image instead.",
                    code="pull-failed",
                )
            detail = msg.get("progressDetail") or {}
            if msg.get("id") and detail.get("total", -1) > 0:
                layers[msg["id"]] = (detail.get("current", 0), detail["total"])
            done = sum(c for c, _ in layers.values())
            total = sum(t for _, t in layers.values())
            progress(Progress("pull", done / total if total else None, f"{ref}: {msg.get('status', '')}"))
    except APIError as exc:
        raise StackError(
            f"Downloading {ref} failed: {exc.explanation or exc}",
            "Check that the Docker host can reach the registry, or build/load the image instead.",
            code="pull-failed",
        ) from None


def build(
    client: docker.DockerClient, source: ImageSource, tag: str, progress: ProgressCallback = ignore
) -> None:
    """Build from a context directory; the engine receives it as a tar over the API."""
    assert source.path is not None
    tail: list[str] = []
    progress(Progress("build", 0.0, f"sending build context {source.path}"))
    try:
        stream = client.api.build(
            path=str(source.path),
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            pull=False,
            buildargs={"BASE": source.base} if source.base else None,
            network_mode=source.network_mode or None,
        )
        for msg in stream:
            if "error" in msg:
                raise StackError(
                    f"Building the image failed: {msg['error'].strip()}",
                    "See the build output above; an offline build needs every wheel in wheels/.",
                    code="build-failed",
                )
            line = msg.get("stream", "").strip()
            if line:
                tail = (tail + [line])[-20:]
                step = _STEP.match(line)
                if step:
                    n, total = int(step.group(1)), int(step.group(2))
                    progress(Progress("build", (n - 1) / total, step.group(3)[:100]))
    except APIError as exc:
        raise StackError(
            f"Building the image failed: {exc.explanation or exc}", code="build-failed"
        ) from None
    # The multi-stage build leaves its build stage (wheels + compilers' output, ~1.5 GB) untagged.
    with contextlib.suppress(APIError):
        client.images.prune(filters={"dangling": True, "label": "io.pixel.build-stage"})
    progress(Progress("build", 1.0, f"built {tag}"))


def load(
    client: docker.DockerClient,
    path: Path,
    tag: str,
    progress: ProgressCallback = ignore,
    *,
    retag: bool = True,
) -> None:
    """Load the image file `path`; `retag`: a file holding one image under another name gives it `tag`
    (else the file must hold `tag`)."""
    progress(Progress("load", None, f"loading {path}"))
    with open(path, "rb") as fh:
        images = client.images.load(fh)
    if not has_image(client, tag):
        if len(images) != 1 or not retag:
            raise StackError(
                f"{path} holds {len(images)} images and none is tagged {tag}", code="load-failed"
            )
        images[0].tag(tag)
    progress(Progress("load", 1.0, f"loaded {tag}"))


def save(client: docker.DockerClient, ref: str, path: Path) -> None:
    with open(path, "wb") as fh:
        for chunk in client.images.get(ref).save(named=True):
            fh.write(chunk)


def ensure(
    client: docker.DockerClient, ref: str, source: ImageSource, progress: ProgressCallback = ignore
) -> bool:
    """Make `ref` present on the engine. Returns True when it had to be fetched."""
    if has_image(client, ref):
        return False
    if source.kind == "pull":
        try:
            pull(client, ref, progress)
        except StackError as exc:
            saved = source.path or offline_file()
            if saved is None or not saved.is_file():
                exc.action = (
                    f"{exc.action} Offline: put {OFFLINE_FILE} (the offline installer) next to the app."
                ).strip()
                raise
            progress(Progress("load", None, f"the registry cannot be reached: loading {saved}"))
            load(client, saved, ref, progress, retag=False)
    elif source.kind == "build":
        build(client, source, ref, progress)
    else:
        assert source.path is not None
        load(client, source.path, ref, progress)
    return True


def offline_file(app_dir: Path | None = None) -> Path | None:
    """OFFLINE_FILE in the app's folder (the bundle's: its executable's folder) or the folder holding it,
    if there is one. Not in a bundle and no `app_dir`: None."""
    if app_dir is None:
        if not getattr(sys, "frozen", False):
            return None
        app_dir = Path(sys.executable).resolve().parent
    for folder in (app_dir, app_dir.parent):
        if (folder / OFFLINE_FILE).is_file():
            return folder / OFFLINE_FILE
    return None


def make_context(dest: Path, *, project_root: Path | None = None, offline: bool = True) -> Path:
    """Fill `dest` with a build context: Dockerfile, the project's wheel (and, offline, every
    dependency's wheel for the image's CPython 3.11 / glibc x86_64), and the host's extra CA
    certificates (so an online build works behind a TLS-intercepting proxy)."""
    root = project_root or PACKAGING.parent
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(PACKAGING / "Dockerfile", dest / "Dockerfile")
    wheels, certs, project = dest / "wheels", dest / "certs", dest / "project"
    for folder in (wheels, certs, project):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        (folder / ".keep").touch()
    for crt in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(crt, certs / crt.name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    with tempfile.TemporaryDirectory() as tmp:
        _run([*pip, "wheel", "-q", "--no-deps", "-w", tmp, str(root)])
        for whl in Path(tmp).glob("pixel_analytics-*.whl"):
            shutil.move(str(whl), project / whl.name)
        if offline:
            _run([*pip, "wheel", "-q", "-w", str(wheels), "-r", str(_requirements(root, Path(tmp)))])
    if not list(project.glob("*.whl")):
        raise StackError("Building the pixel-analytics wheel produced no file", code="wheels-failed")
    return dest


def _requirements(root: Path, tmp: Path) -> Path:
    """The [server] extra's requirements, read from the project's own metadata."""
    import tomllib

    meta = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    reqs = list(meta.get("dependencies", [])) + list(meta["optional-dependencies"]["server"])
    path = tmp / "requirements.txt"
    path.write_text("\n".join(reqs) + "\n")
    return path


def _run(args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run(args, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise StackError(f"Preparing wheels failed:\n{done.stderr[-2000:]}", code="wheels-failed")
