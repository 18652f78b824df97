"""The installer's image choice (pixel.app.stack.image): pull the published image, and where the registry
cannot be reached load the offline-installer file instead. Against the real Docker engine: a registry
on 127.0.0.1 serving a saved image (pull works, the file is never read), a registry address where nothing
listens (pull fails: the file is loaded), and files that do not hold the image."""

from __future__ import annotations

import hashlib
import json
import sys
import tarfile
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker
import pytest
from docker.errors import ImageNotFound
from stack_helpers import BUSYBOX

from pixel.app.stack import image as images
from pixel.app.stack.errors import StackError
from pixel.app.stack.progress import Progress
from tests.ports import free_port

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


class Registry:
    """A registry (the Docker Registry HTTP API v2, read-only) on 127.0.0.1 serving one image made from a
    `docker save` file: its config and its layers as blobs (uncompressed tars, which the engine accepts)."""

    def __init__(self, saved: Path) -> None:
        with tarfile.open(saved) as tar:
            entry = json.loads(tar.extractfile("manifest.json").read())[0]  # type: ignore[union-attr]
            config = tar.extractfile(entry["Config"]).read()  # type: ignore[union-attr]
            layers = [tar.extractfile(name).read() for name in entry["Layers"]]  # type: ignore[union-attr]
        self.blobs = {self._digest(b): b for b in [config, *layers]}
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": len(config),
                    "digest": self._digest(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(b),
                        "digest": self._digest(b),
                    }
                    for b in layers
                ],
            }
        ).encode()
        self.requests: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.do_GET(body=False)

            def do_GET(self, body: bool = True) -> None:
                registry.requests.append(self.path)
                kind, payload = registry.answer(self.path)
                self.send_response(200 if payload is not None else 404)
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                data = payload or b"{}"
                if kind:
                    self.send_header("Content-Type", kind)
                    self.send_header("Docker-Content-Digest", Registry._digest(data))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def _digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def answer(self, path: str) -> tuple[str, bytes | None]:
        if path == "/v2/":
            return "", b"{}"
        if "/manifests/" in path:
            return MANIFEST, self.manifest
        if "/blobs/" in path:
            return "application/octet-stream", self.blobs.get(path.rsplit("/", 1)[1])
        return "", None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def refs(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Image references made by a test; their tags are removed afterwards (the busybox image stays)."""
    made: list[str] = []
    yield made
    for ref in made:
        try:
            docker_client.images.remove(ref)
        except ImageNotFound:
            pass


def saved_as(client: docker.DockerClient, ref: str, path: Path, refs: list[str]) -> Path:
    """An offline-installer file holding the busybox image under `ref` (not left on the engine)."""
    refs.append(ref)
    client.images.get(BUSYBOX).tag(ref)
    images.save(client, ref, path)
    client.images.remove(ref)
    return path


def test_pull_failing_loads_the_saved_file(
    docker_client: docker.DockerClient, refs: list[str], tmp_path: Path
) -> None:
    ref = f"127.0.0.1:{free_port()}/pixel-test/offline:{uuid.uuid4().hex[:8]}"
    saved = saved_as(docker_client, ref, tmp_path / images.OFFLINE_FILE, refs)
    assert not images.has_image(docker_client, ref)
    events: list[Progress] = []
    assert images.ensure(docker_client, ref, images.ImageSource("pull", saved), events.append) is True
    assert docker_client.images.get(ref).id == docker_client.images.get(BUSYBOX).id
    assert [e.message for e in events if e.step == "load"] == [
        f"the registry cannot be reached: loading {saved}",
        f"loading {saved}",
        f"loaded {ref}",
    ]
    # present now: nothing is fetched again
    assert images.ensure(docker_client, ref, images.ImageSource("pull", saved)) is False


def test_pull_failing_without_a_file_says_where_to_put_one(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    ref = f"127.0.0.1:{free_port()}/pixel-test/offline:none"
    with pytest.raises(StackError) as err:
        images.ensure(docker_client, ref, images.ImageSource("pull"))
    assert err.value.code == "pull-failed"
    assert err.value.action == (
        "Check that the Docker host can reach the registry, or build/load the image instead. "
        "Offline: put pixel-stack-images.tar (the offline installer) next to the app."
    )
    with pytest.raises(StackError) as err:  # a path given that does not exist: the same
        images.ensure(docker_client, ref, images.ImageSource("pull", tmp_path / "nothing.tar"))
    assert err.value.code == "pull-failed"
    assert not images.has_image(docker_client, ref)


def test_a_saved_file_without_the_image_is_refused(
    docker_client: docker.DockerClient, refs: list[str], tmp_path: Path
) -> None:
    """The offline file holds other images: nothing gets the stack image's name (an explicit
    `load` source would retag a single image; the fallback never does)."""
    ref = f"127.0.0.1:{free_port()}/pixel-test/offline:{uuid.uuid4().hex[:8]}"
    other = saved_as(docker_client, f"pixel-test/other:{uuid.uuid4().hex[:8]}", tmp_path / "other.tar", refs)
    refs.append(ref)
    with pytest.raises(StackError) as err:
        images.ensure(docker_client, ref, images.ImageSource("pull", other))
    assert err.value.code == "load-failed"
    assert err.value.problem == f"{other} holds 1 images and none is tagged {ref}"
    assert not images.has_image(docker_client, ref)


def test_a_reachable_registry_is_used_and_the_file_never_read(
    docker_client: docker.DockerClient, refs: list[str], tmp_path: Path
) -> None:
    name = f"pixel-test/published-{uuid.uuid4().hex[:8]}"
    source = saved_as(docker_client, f"{name}:src", tmp_path / "source.tar", refs)
    registry = Registry(source)
    try:
        ref = f"127.0.0.1:{registry.port}/{name}:1"
        refs.append(ref)
        unreadable = tmp_path / images.OFFLINE_FILE
        unreadable.write_bytes(b"not an image file")  # loading it would fail
        events: list[Progress] = []
        assert images.ensure(docker_client, ref, images.ImageSource("pull", unreadable), events.append)
        assert docker_client.images.get(ref).id == docker_client.images.get(BUSYBOX).id
        assert {e.step for e in events} == {"pull"}
        assert f"/v2/{name}/manifests/1" in registry.requests
    finally:
        registry.close()


def test_offline_file_is_looked_for_in_the_app_folder_then_next_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "opt" / "pixel-desktop"
    app.mkdir(parents=True)
    assert images.offline_file(app) is None
    (tmp_path / "opt" / images.OFFLINE_FILE).write_bytes(b"x")
    assert images.offline_file(app) == tmp_path / "opt" / images.OFFLINE_FILE
    (app / images.OFFLINE_FILE).write_bytes(b"x")
    assert images.offline_file(app) == app / images.OFFLINE_FILE
    (app / images.OFFLINE_FILE).unlink()
    (app / images.OFFLINE_FILE).mkdir()  # a folder of that name is not the file
    assert images.offline_file(app) == tmp_path / "opt" / images.OFFLINE_FILE
    # Not a bundle: nothing is looked for; a bundle: its executable's folder
    assert images.offline_file() is None
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app / "pixel-desktop"))
    assert images.offline_file() == tmp_path / "opt" / images.OFFLINE_FILE
