"""Opening a stack by name: the topology and settings it was installed with are read back from the
engine (container labels), so `status` or `upgrade` need not repeat what `install` was given.

`upgrade_to_image` is the upgrade as every front end runs it (the CLI's `pixel stack upgrade`, the desktop's
stack page): the stack's spec resolved again with the new image, then `Provisioner.upgrade`."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import docker

from . import secret_files
from .annotate import announce
from .edge import edge_values, has_domain
from .engine import EngineTarget
from .image import ImageSource
from .progress import ProgressCallback, ignore
from .provisioner import Provisioner
from .spec import LABEL_SETTINGS, LABEL_STACK, LABEL_TOPOLOGY, SpecError, build_spec, without_profiles


def installed(client: docker.DockerClient, project: str) -> tuple[str | None, dict[str, str], dict[str, str]]:
    """(topology, stored non-secret settings, environment of every container merged) of a stack."""
    topology = None
    stored: dict[str, str] = {}
    env: dict[str, str] = {}
    for c in client.containers.list(all=True, filters={"label": f"{LABEL_STACK}={project}"}):
        topology = topology or c.labels.get(LABEL_TOPOLOGY)
        stored.update(json.loads(c.labels.get(LABEL_SETTINGS) or "{}"))
        for item in c.attrs["Config"].get("Env") or []:
            key, _, value = item.partition("=")
            env[key] = value
    return topology, stored, env


def open_stack(
    client: docker.DockerClient,
    project: str = "pixel",
    topology: str | None = None,
    values: dict[str, str] | None = None,
    *,
    target: EngineTarget | None = None,
) -> Provisioner:
    """A provisioner for stack `project`: given values override the stored ones; a secret with no
    value is taken from the running containers, else generated (a new install)."""
    found_topology, stored, env = installed(client, project)
    if topology and found_topology and topology != found_topology:
        raise SpecError(
            f"The stack {project!r} is installed as {found_topology}, not {topology}. "
            "Uninstall it first (keeping a backup) to change the topology."
        )
    topology = topology or found_topology or "compact"
    merged, secrets_given = secret_files.split({**stored, **(values or {})})
    spec = build_spec(topology, project, edge=has_domain(merged))
    if has_domain(merged):
        merged = edge_values(merged)  # PIXEL_EDGE_CDN expanded into the CDN's ranges, each range checked
    for var in spec.variables:
        if var.secret and not merged.get(var.name):
            merged[var.name] = env.get(var.name) or secrets.token_urlsafe(24)
    if "GEOIPUPDATE_ACCOUNT_ID" in merged:  # the earlier updater's setting: now the store process's own
        legacy = merged.pop("GEOIPUPDATE_ACCOUNT_ID")
        merged.setdefault("PIXEL_MAXMIND_ACCOUNT_ID", legacy)
    spec = without_profiles(spec)
    public = {
        k: v for k, v in merged.items() if not any(var.name == k and var.secret for var in spec.variables)
    }
    return Provisioner(client, spec.resolve(merged), target=target, settings=public, secrets=secrets_given)


def upgrade_to_image(
    prov: Provisioner,
    image: str,
    *,
    backup_dir: Path,
    values: dict[str, str] | None = None,
    source: ImageSource | None = None,
    progress: ProgressCallback = ignore,
    now: Callable[[], float] = time.time,
) -> Path:
    """Upgrade the stack of `prov` to `image`: its spec is resolved again as `open_stack` does (the stored
    settings, then `values`, then PIXEL_IMAGE), then `prov.upgrade` backs up into `backup_dir`, starts
    the new containers and puts the previous version and its data back if they are not healthy.
    Returns the backup's path; `prov` then describes the upgraded stack, whose charts get an annotation
    naming both images (app/stack/annotate.py)."""
    before = prov.settings.get("PIXEL_IMAGE") or next((s.image for s in prov.spec.services), "")
    new = open_stack(
        prov.client,
        prov.spec.project,
        prov.spec.topology,
        {**prov.settings, **(values or {}), "PIXEL_IMAGE": image},
        target=prov.target,
    )
    backup = prov.upgrade(
        new.spec,
        backup_dir=backup_dir,
        source=source,
        settings=new.settings,
        secrets=new.secrets or prov.secrets,
        progress=progress,
    )
    announce(
        prov,
        "upgrade",
        f"Stack upgraded from {before} to {image}",
        now(),
        {"from_image": before, "to_image": image, "backup": backup.name},
    )
    return backup
