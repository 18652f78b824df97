"""Fixtures for the stack tests: a real Docker engine (scripts/system.d/20-docker.sh starts it) and
stacks with unique names that are removed, data included, after each test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import docker
import pytest
from stack_helpers import BUSYBOX, PIXEL_BASE, PIXEL_BROKEN, PIXEL_TAG

from pixel.app.stack import image as images
from pixel.app.stack.engine import EngineTarget, connect
from pixel.app.stack.provisioner import Provisioner


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = connect(EngineTarget())
    client.images.get(BUSYBOX)  # made by scripts/system.d/20-docker.sh
    yield client
    client.close()


@pytest.fixture(scope="session")
def pixel_image(docker_client, tmp_path_factory) -> Iterator[str]:
    """Build the image from this checkout once per session (1-2 minutes; test_stack_pixel and
    test_stack_standard share it): wheels downloaded on the host, `--network none` build."""
    ctx = images.make_context(tmp_path_factory.mktemp("ctx"))
    images.build(
        docker_client, images.ImageSource("build", ctx, base=PIXEL_BASE, network_mode="none"), PIXEL_TAG
    )
    broken = tmp_path_factory.mktemp("broken")
    # An upgrade that wipes the data (like a botched migration) and never answers its healthcheck.
    (broken / "Dockerfile").write_text(
        f'FROM {PIXEL_TAG}\nENTRYPOINT ["sh", "-c", "rm -rf /data/* && exec sleep 3600", "--"]\n'
    )
    images.build(docker_client, images.ImageSource("build", broken), PIXEL_BROKEN)
    yield PIXEL_TAG
    for tag in (PIXEL_BROKEN, PIXEL_TAG):
        docker_client.images.remove(tag, force=True)


@pytest.fixture
def cleanup(docker_client) -> Iterator[list[Provisioner]]:
    """Register provisioners; their stacks (and data) are removed after the test."""
    stacks: list[Provisioner] = []
    yield stacks
    for p in stacks:
        with contextlib.suppress(Exception):
            p.uninstall(delete_data=True)
