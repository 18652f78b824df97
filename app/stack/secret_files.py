"""Secrets that reach a stack as files in its data volume, never as settings.

A value such as the MaxMind licence key must appear in no profile, compose file, container label, `.env`
or `docker inspect` output. The desktop keeps it in the keyring and hands it to `manage.open_stack` among
the settings under its name (`PIXEL_MAXMIND_LICENSE_KEY`); `split` takes it out before the spec is resolved,
so the spec, the settings label and the container environment never see it. The provisioner then writes it
(`deliver`) through the Docker API (`put_archive`, no shell, no command line) into the data volume as
`/data/secrets/<file>`: the directory `0700` and the file `0400`, both owned by the Pixel image's user
(`PIXEL_UID`), on every install and upgrade, before the container that mounts the volume starts. The
containers only know the file's path (`PIXEL_MAXMIND_LICENSE_KEY_FILE`, the `*_FILE` convention), which is
also all the compose files name.

A stack installed without the secret gets no file and nothing is invented; a later install or upgrade
without it leaves a file delivered before in place (the CLI's upgrade does not hold the keyring). An empty
or whitespace value counts as not given. A value with a line break or a NUL is refused: a key is one token.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass

from docker.models.containers import Container

from .errors import StackError
from .spec import DATA_DIR

PIXEL_UID = 10001  # the `pixel` user of packaging/Dockerfile
SECRETS_DIR = "secrets"  # inside the data volume


@dataclass(frozen=True)
class SecretFile:
    setting: str  # the name it is given under (keyring → open_stack), never a spec variable
    file: str  # its file name in `<data>/secrets/`
    help: str

    @property
    def path(self) -> str:
        """Where the containers read it."""
        return f"{DATA_DIR}/{SECRETS_DIR}/{self.file}"


MAXMIND_LICENSE_KEY = SecretFile(
    "PIXEL_MAXMIND_LICENSE_KEY", "maxmind-license-key", "MaxMind licence key (GeoLite2 instead of DB-IP)"
)
SECRET_FILES: tuple[SecretFile, ...] = (MAXMIND_LICENSE_KEY,)
# settings of earlier versions that carried a secret in the settings label: read once, then never stored
LEGACY_NAMES = {"GEOIPUPDATE_LICENSE_KEY": MAXMIND_LICENSE_KEY.setting}


def split(values: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(settings without the file secrets, the file secrets given with a value). Legacy names are taken
    as their new secret (a stack installed before keeps its key, moved out of its label)."""
    settings = dict(values)
    found: dict[str, str] = {}
    for old, new in LEGACY_NAMES.items():
        value = settings.pop(old, "")
        if value.strip() and not str(values.get(new, "")).strip():
            found[new] = value.strip()
    for secret in SECRET_FILES:
        value = settings.pop(secret.setting, "").strip()
        if value:
            found[secret.setting] = value
    for name, value in found.items():
        if any(ch in value for ch in "\n\r\0"):
            raise StackError(
                f"{name} holds a line break or a NUL character.",
                "Paste the key alone, on one line.",
                code="bad-secret",
            )
    return settings, found


def archive(secrets: Mapping[str, str], now: float | None = None) -> bytes:
    """A tar of `secrets/` (0700) with one 0400 file per secret, owned by the image's user."""
    mtime = int(time.time() if now is None else now)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folder = tarfile.TarInfo(SECRETS_DIR)
        folder.type, folder.mode, folder.uid, folder.gid, folder.mtime = (
            tarfile.DIRTYPE,
            0o700,
            PIXEL_UID,
            PIXEL_UID,
            mtime,
        )
        tar.addfile(folder)
        for secret in SECRET_FILES:
            if secret.setting not in secrets:
                continue
            data = (secrets[secret.setting] + "\n").encode("utf-8")
            info = tarfile.TarInfo(f"{SECRETS_DIR}/{secret.file}")
            info.size, info.mode, info.uid, info.gid, info.mtime = (
                len(data),
                0o400,
                PIXEL_UID,
                PIXEL_UID,
                mtime,
            )
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def deliver(container: Container, secrets: Mapping[str, str]) -> bool:
    """Write `secrets` into the data volume of `container` (created or running; it mounts the volume at
    DATA_DIR). Returns whether anything was written."""
    if not secrets:
        return False
    if not container.put_archive(DATA_DIR, archive(secrets)):
        raise StackError(
            f"Could not write the stack's secrets into {container.name}.",
            "Check the Docker host's disk, then install again.",
            code="secret-delivery",
        )
    return True
