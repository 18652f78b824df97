"""Telling a stack's store process what was done to it, so that its charts carry the annotation.

An upgrade or a restore happens outside the store process (the containers are replaced or refilled), so the tool
that did it leaves an announcement in the data folder: `<data>/state/annotations-inbox/<id>.json` with the kind,
the text, the moment and the details (the format `pixel.server.annotations.watch` reads). The store process writes
it as an automatic annotation once and removes the file. The file is put into the running container that serves
the API (it mounts the data folder), owned by the user the container runs as.

An announcement that cannot be delivered (no such container, the engine refused) is logged and skipped: the
upgrade or restore itself has succeeded, and an annotation is not worth failing it.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
import uuid
from typing import Any

from docker.errors import APIError

from .provisioner.core import StackObjects, exec_output
from .spec import API_PORT, DATA_DIR

log = logging.getLogger(__name__)

INBOX = (
    "annotations-inbox"  # the folder of `<data>/state` the store process reads (server/annotations/watch.py)
)


def _announcement(kind: str, text: str, at: float, details: dict[str, Any], uid: int, gid: int) -> bytes:
    name = uuid.uuid4().hex
    body = json.dumps({"id": name, "kind": kind, "text": text, "at": at, "details": details}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folder = tarfile.TarInfo(INBOX)
        folder.type, folder.mode, folder.uid, folder.gid, folder.mtime = (
            tarfile.DIRTYPE,
            0o700,
            uid,
            gid,
            int(at),
        )
        tar.addfile(folder)
        item = tarfile.TarInfo(f"{INBOX}/{name}.json")
        item.size, item.mode, item.uid, item.gid, item.mtime = len(body), 0o600, uid, gid, int(at)
        tar.addfile(item, io.BytesIO(body))
    return buf.getvalue()


def announce(
    prov: StackObjects, kind: str, text: str, at: float, details: dict[str, Any] | None = None
) -> bool:
    """Leave the announcement in the stack's data folder; whether it was delivered."""
    service = next(
        (
            svc
            for svc in prov.spec.services
            if any(p.container == API_PORT for p in svc.ports)
            and any(m.target == DATA_DIR for m in svc.mounts)
        ),
        None,
    )
    container = prov.container(service.name) if service else None
    if container is None:
        log.warning("no container of the stack serves the API: the %s is not annotated", kind)
        return False
    try:
        ids = container.exec_run(["id", "-u"]), container.exec_run(["id", "-g"])
        uid, gid = (int(exec_output(res).strip()) for res in ids)
        delivered = container.put_archive(
            f"{DATA_DIR}/state", _announcement(kind, text, at, details or {}, uid, gid)
        )
    except (APIError, ValueError) as exc:
        log.warning("the %s could not be announced to the stack: %s", kind, exc)
        return False
    return bool(delivered)
