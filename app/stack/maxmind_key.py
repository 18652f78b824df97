"""The MaxMind account of a stack, from the desktop: the licence key lives in the system keyring under the
profile (`secret_store` kind `maxmind_license_key`), never in the profile file, a compose file or a setting.

- `install_values(values, account_id, key)`: the settings an install is given, with the account id
  (`PIXEL_MAXMIND_ACCOUNT_ID`, a plain setting) and the key under `secret_files.MAXMIND_LICENSE_KEY.setting`,
  which `manage.open_stack` takes out (`secret_files.split`) and the provisioner writes into the data volume
  as a file. Checked first (`check`): an account id is digits, a key one token of printable characters; a bad
  one is a `StackError` ("bad-maxmind") and nothing is installed.
- `remember(profile, key)` / `forget(profile)`: the keyring entry (no keyring: `KeyringUnavailable`).
- `with_stored_key(profile, values)`: `values` plus the key from the keyring, for upgrades and re-installs
  from the app (no key stored, or no usable keyring: `values` unchanged; the file delivered before stays).
- `apply(prov, profile, account_id, key)`: keyring, then the stack installed again with the key (the same
  `open_stack` path an upgrade takes): the file is replaced before the container that mounts the volume starts.
- `remove_file(prov)`: the key file deleted from the data volume (`rm` run as the image's user in the running
  container that mounts it, the path as an argument, no shell); the store then falls back to DB-IP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pixel.app import secret_store

from .errors import StackError
from .secret_files import MAXMIND_LICENSE_KEY, PIXEL_UID
from .spec import DATA_DIR

if TYPE_CHECKING:
    from .provisioner import Provisioner

KIND = "maxmind_license_key"
ACCOUNT_SETTING = "PIXEL_MAXMIND_ACCOUNT_ID"
KEY_SETTING = MAXMIND_LICENSE_KEY.setting
_ACCOUNT = re.compile(r"[0-9]{1,12}")
_KEY = re.compile(r"[\x21-\x7e]{1,200}")  # printable ASCII, no space: one token


def check(account_id: str, key: str) -> tuple[str, str]:
    """(account id, key) trimmed, or a `StackError` ("bad-maxmind") saying what is wrong."""
    account, token = account_id.strip(), key.strip()
    if not _ACCOUNT.fullmatch(account):
        raise StackError(
            "The MaxMind account ID is a number (shown on your MaxMind account page).",
            "Type the account ID, digits only.",
            code="bad-maxmind",
        )
    if not _KEY.fullmatch(token):
        raise StackError(
            "The MaxMind licence key must be one word of letters, digits and symbols, without spaces.",
            "Paste the licence key alone, as MaxMind shows it.",
            code="bad-maxmind",
        )
    return account, token


def ok(account_id: str, key: str) -> bool:
    try:
        check(account_id, key)
    except StackError:
        return False
    return True


def install_values(values: Mapping[str, str], account_id: str, key: str) -> dict[str, str]:
    account, token = check(account_id, key)
    return {**values, ACCOUNT_SETTING: account, KEY_SETTING: token}


def remember(profile: str, key: str) -> None:
    secret_store.set_secret(profile, KIND, key.strip())


def stored_key(profile: str) -> str:
    """The key kept for `profile`, or "" (none, or no usable keyring)."""
    try:
        return (secret_store.get_secret(profile, KIND) or "").strip()
    except secret_store.KeyringUnavailable:
        return ""


def with_stored_key(profile: str, values: Mapping[str, str] | None = None) -> dict[str, str]:
    out = dict(values or {})
    key = stored_key(profile) if profile else ""
    if key:
        out[KEY_SETTING] = key
    return out


def forget(profile: str) -> bool:
    """Remove the keyring entry; whether there was one."""
    return secret_store.delete_secret(profile, KIND)


def apply(prov: Provisioner, profile: str, account_id: str, key: str) -> Provisioner:
    """Keep the key in the keyring, then install the stack again with it (and the account id)."""
    from .manage import open_stack

    values = install_values({}, account_id, key)
    remember(profile, values[KEY_SETTING])
    new = open_stack(prov.client, prov.spec.project, None, values, target=prov.target)
    new.install()
    return new


def remove_file(prov: Provisioner) -> bool:
    """Delete the key file from the data volume; whether a running container could do it."""
    for svc in prov.spec.start_order():
        if not any(m.target == DATA_DIR and not m.read_only for m in svc.mounts):
            continue
        container = prov.container(svc.name)
        if container is None or container.status != "running":
            continue
        result = container.exec_run(["rm", "-f", MAXMIND_LICENSE_KEY.path], user=str(PIXEL_UID))
        if result.exit_code != 0:
            output = result.output if isinstance(result.output, bytes) else b""
            raise StackError(
                f"The MaxMind key file could not be removed from {svc.name}: "
                f"{output.decode('utf-8', 'replace').strip()}",
                "Start the stack, then forget the key again.",
                code="secret-removal",
            )
        return True
    raise StackError(
        "No running container of the stack holds its data volume, so the key file could not be removed.",
        "Start the stack, then forget the key again.",
        code="secret-removal",
    )
