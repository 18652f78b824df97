"""Fixtures for the stack tests: a real Docker engine (scripts/system.d/20-docker.sh starts it) and
stacks with unique names that are removed, data included, after each test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import docker
import pytest
from pixel.app.stack.engine import EngineTarget, connect
from pixel.app.stack.provisioner import Provisioner
from stack_helpers import BUSYBOX


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = connect(EngineTarget())
    client.images.get(BUSYBOX)  # made by scripts/system.d/20-docker.sh
    yield client
    client.close()


@pytest.fixture
def cleanup(docker_client) -> Iterator[list[Provisioner]]:
    """Register provisioners; their stacks (and data) are removed after the test."""
    stacks: list[Provisioner] = []
    yield stacks
    for p in stacks:
        with contextlib.suppress(Exception):
            p.uninstall(delete_data=True)
