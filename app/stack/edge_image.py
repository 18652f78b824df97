"""Getting the edge's Caddy image onto an engine: one documented choice.

- Already on the engine (any tag `PIXEL_EDGE_IMAGE` names): used as it is.
- `pixel-edge/caddy:bookworm` (edge.LOCAL_EDGE_IMAGE): built on the engine from packaging/edge/, Debian's `caddy`
  package installed by apt from the engine's own network (Debian's mirror; no container registry). The base is
  `PIXEL_EDGE_BASE` given to `ensure`, `debian:bookworm-slim` by default; scripts/system.d/25-edge.sh builds it
  on the debootstrap base of 20-docker.sh.
- Any other tag (the default: the official, pinned `caddy` image): pulled from its registry; when that fails the
  error says to use the local image instead.
"""

from __future__ import annotations

from pathlib import Path

import docker

from . import image as images
from .edge import EDGE_SERVICE, LOCAL_EDGE_IMAGE
from .errors import StackError
from .progress import ProgressCallback, ignore

SERVICE = EDGE_SERVICE
CONTEXT = Path(__file__).resolve().parents[2] / "packaging" / "edge"
DEFAULT_BASE = "debian:bookworm-slim"


def ensure(
    client: docker.DockerClient, ref: str, progress: ProgressCallback = ignore, *, base: str = DEFAULT_BASE
) -> bool:
    """Make the edge image `ref` present on the engine. Returns True when it had to be fetched or built."""
    if images.has_image(client, ref):
        return False
    if ref == LOCAL_EDGE_IMAGE:
        images.build(client, images.ImageSource("build", CONTEXT, base=base), ref, progress)
        return True
    try:
        images.pull(client, ref, progress)
    except StackError as exc:
        raise StackError(
            exc.problem,
            f"Without access to the registry, set PIXEL_EDGE_IMAGE={LOCAL_EDGE_IMAGE}: it is built on the "
            "Docker host from Debian's caddy package.",
            code="pull-failed",
        ) from None
    return True
