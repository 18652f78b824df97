"""Back up, restore and upgrade a stack: the operations that put its data at stake.

`backup` copies every data volume into one .tar.gz on this machine (the stack stopped meanwhile, so the
copy is consistent, then started again); `restore` replaces the stack's data with such a file; `upgrade`
rests on both: a backup first (if it fails nothing is changed), then the new containers, and if they are
not healthy in time, the previous images (pinned by ID) and the backed-up data are put back.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath

from docker.errors import APIError

from .. import image as images
from ..errors import StackError
from ..progress import Progress, ProgressCallback, ignore
from ..spec import Service, StackSpec
from .core import api_error
from .lifecycle import InstallResult, Lifecycle

BACKUP_FORMAT = 1


class Backups(Lifecycle):
    def _volume_holders(self) -> dict[str, tuple[Service, str]]:
        """volume -> (a service mounting it read-write, mount point)."""
        holders: dict[str, tuple[Service, str]] = {}
        for svc in self.spec.services:
            for m in svc.mounts:
                if not m.read_only and m.volume not in holders:
                    holders[m.volume] = (svc, m.target)
        return holders

    def backup(self, path: Path, *, progress: ProgressCallback = ignore) -> Path:
        """Every data volume (ClickHouse data, Pixel's spool, store and metadata) into one .tar.gz on
        this machine. The stack is stopped meanwhile so the copy is consistent, then started again."""
        self._require_installed()
        path = Path(path)
        running = [
            s.name for s in self.spec.services if (c := self.container(s.name)) and c.status == "running"
        ]
        manifest = {
            "format": BACKUP_FORMAT,
            "project": self.spec.project,
            "topology": self.spec.topology,
            "spec_version": self.spec.spec_version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "images": {s.name: s.image for s in self.spec.services},
            "volumes": {},
        }
        tmp = path.with_name(path.name + ".partial")
        self.stop(progress=progress)
        try:
            with tarfile.open(tmp, "w:gz") as out, tempfile.TemporaryDirectory() as work:
                holders = self._volume_holders()
                for n, (vol, (svc, target)) in enumerate(holders.items()):
                    progress(Progress("backup", n / len(holders), f"copying volume {vol}"))
                    container = self.container(svc.name)
                    assert container is not None
                    part = Path(work) / f"{vol}.tar"
                    stream, _ = container.get_archive(target)
                    with open(part, "wb") as fh:
                        for chunk in stream:
                            fh.write(chunk)
                    out.add(part, arcname=f"volumes/{vol}.tar")
                    manifest["volumes"][vol] = target  # type: ignore[index]
                blob = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo("manifest.json")
                info.size = len(blob)
                out.addfile(info, io.BytesIO(blob))
            os.replace(tmp, path)
        except APIError as exc:
            tmp.unlink(missing_ok=True)
            raise api_error(exc, "Backup failed") from None
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StackError(
                f"Backup failed: cannot write {path}: {exc.strerror or exc}", code="backup-failed"
            ) from None
        finally:
            for name in running:
                c = self.container(name)
                if c is not None:
                    self._start(c)
            for name in running:
                self.wait_healthy(name, progress=progress)
        progress(Progress("backup", 1.0, f"backup written to {path}"))
        return path

    def restore(
        self, path: Path, *, progress: ProgressCallback = ignore, now: Callable[[], float] = time.time
    ) -> None:
        """Replace the stack's data with a backup: containers and volumes are recreated, the volumes
        filled from the file, then the stack is started; its charts get an annotation (app/stack/annotate.py)."""
        path = Path(path)
        try:
            with tarfile.open(path, "r:gz") as archive:
                manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
                if manifest.get("format") != BACKUP_FORMAT:
                    raise StackError(f"{path} is not a Pixel backup this version can read", code="bad-backup")
                holders = self._volume_holders()
                if set(manifest["volumes"]) != set(holders):
                    raise StackError(
                        f"{path} was made from a {manifest['topology']} stack with volumes "
                        f"{sorted(manifest['volumes'])}; this stack has {sorted(holders)}.",
                        "Restore it into a stack of the same topology.",
                        code="bad-backup",
                    )
                progress(Progress("restore", 0.0, "removing the current containers and data"))
                self.uninstall(delete_data=True)
                created: list[tuple[str, str]] = []
                result = InstallResult()
                self._ensure_network_and_volumes(created, result)
                for svc in self.spec.services:
                    self._create(svc)
                for n, (vol, (svc, target)) in enumerate(holders.items()):
                    progress(Progress("restore", n / len(holders), f"restoring volume {vol}"))
                    member = archive.extractfile(f"volumes/{vol}.tar")
                    assert member is not None
                    container = self.container(svc.name)
                    assert container is not None
                    parent = str(PurePosixPath(target).parent)
                    if not container.put_archive(parent, member.read()):
                        raise StackError(f"Restoring volume {vol} failed", code="restore-failed")
        except (tarfile.TarError, KeyError, json.JSONDecodeError) as exc:
            raise StackError(f"{path} is not a readable Pixel backup: {exc}", code="bad-backup") from None
        except APIError as exc:
            raise api_error(exc, "Restore failed") from None
        for svc in self.spec.start_order():
            c = self.container(svc.name)
            assert c is not None
            self._start(c)
            self.wait_healthy(svc.name, progress=progress)
        progress(Progress("restore", 1.0, "restored"))
        from ..annotate import announce  # imported here: annotate imports this package

        announce(self, "restore", f"Data restored from the backup {path.name}", now(), {"backup": path.name})

    def upgrade(
        self,
        new_spec: StackSpec,
        *,
        backup_dir: Path,
        source: images.ImageSource | None = None,
        health_timeout: float | None = None,
        settings: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
        progress: ProgressCallback = ignore,
    ) -> Path:
        """Back up, then replace the containers with those of `new_spec` (usually a new image).

        If the backup fails nothing is changed. If the new version is not healthy in time, the
        previous images and the backed-up data are put back, and the error is raised."""
        self._require_installed()
        if new_spec.project != self.spec.project or set(new_spec.volumes) != set(self.spec.volumes):
            raise StackError("An upgrade cannot change the stack's name or its volumes", code="bad-upgrade")
        # Pin the images in use now by ID, so a tag moved by the upgrade cannot change the rollback.
        pinned = []
        for svc in self.spec.services:
            c = self.container(svc.name)
            pinned.append(replace(svc, image=c.attrs["Image"]) if c is not None else svc)
        old_spec = replace(self.spec, services=tuple(pinned))
        backup = self._backup_before_upgrade(Path(backup_dir), progress)
        for ref in dict.fromkeys(s.image for s in new_spec.services):
            images.ensure(self.client, ref, source or images.ImageSource("pull"), progress)
        self.stop(progress=progress)
        new = type(self)(
            self.client, new_spec, target=self.target,
            health_timeout=health_timeout or self.health_timeout, settings=settings or self.settings,
            secrets=self.secrets if secrets is None else secrets,
        )  # fmt: skip
        delivered: list[str] = []
        try:
            for svc in new_spec.start_order():
                progress(Progress("upgrade", None, f"starting new {svc.name}"))
                new._ensure_container(svc, [], InstallResult(), progress)
                new._deliver_secrets(svc, new.container(svc.name), delivered)  # type: ignore[arg-type]
                new._start(new.container(svc.name))  # type: ignore[arg-type]
                new.wait_healthy(svc.name, progress=progress)
        except (StackError, APIError) as exc:
            problem = exc.problem if isinstance(exc, StackError) else str(exc)
            progress(Progress("rollback", None, "new version unhealthy: restoring the previous one"))
            old = type(self)(self.client, old_spec, target=self.target,
                             health_timeout=self.health_timeout, settings=self.settings)  # fmt: skip
            old.restore(backup, progress=progress)
            raise StackError(
                f"The new version did not start properly, so the previous version and its data were put "
                f"back.\n{problem}",
                "Nothing was lost. Report the log lines above to Pixel's maintainers.",
                code="upgrade-rolled-back",
            ) from None
        self.spec = new_spec
        self.settings = new.settings
        progress(Progress("upgrade", 1.0, "upgrade complete"))
        return backup

    def _backup_before_upgrade(self, backup_dir: Path, progress: ProgressCallback) -> Path:
        """The backup an upgrade starts with; a `StackError` saying the upgrade was not started if it fails."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        try:
            try:
                backup_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StackError(f"cannot create {backup_dir}: {exc.strerror or exc}") from None
            return self.backup(
                backup_dir / f"{self.spec.project}-before-upgrade-{stamp}.tar.gz", progress=progress
            )
        except StackError as exc:
            raise StackError(
                f"The upgrade was not started because the backup failed: {exc.problem}",
                exc.action or "Fix the backup problem first; the running stack was not changed.",
                code="backup-failed",
            ) from None
