"""Install, watch, upgrade, back up and remove a Pixel stack on a Docker engine, from a resolved spec.

The engine is the only state: every object carries the stack's labels, and each container the hash of
its service definition, so a second `install` sees what exists and changes nothing (compose's
reconcile idea, without compose's own labels so `docker compose down` never fights us).

`Provisioner` is one object per stack, put together from one module per concern:

- `core`: the stack's engine objects (containers by label and name), starting one, waiting for health,
  the engine errors a person can act on (`api_error`);
- `checks`: is the engine ready (version, memory, disk, ports): `Finding`;
- `status`: containers, health, CPU, memory, the store's figures, logs: `StackStatus`, `ContainerStatus`;
- `lifecycle`: install (idempotent, rolled back on failure), start, stop, restart, uninstall, the first
  admin account: `InstallResult`, `Credentials`;
- `backup`: backup, restore, and the upgrade that rests on them (rolled back to the backup if the new
  version is not healthy).

Progress is per call: every operation that reports it takes a `progress` callback (default: ignored) and
hands it down to what it calls; the object keeps none, so two operations on one provisioner report to
their own callers. The upgrade as the CLI and the desktop run it (the stack's spec resolved again with a
new image) is `pixel.app.stack.manage.upgrade_to_image`.
"""

from __future__ import annotations

from .backup import BACKUP_FORMAT, Backups
from .checks import Finding
from .core import api_error
from .lifecycle import Credentials, InstallResult
from .status import ContainerStatus, StackStatus, Status, parse_prometheus


class Provisioner(Backups, Status):
    """A stack on a Docker engine: checks, status and logs, install and the lifecycle, backup, restore
    and upgrade. Construct it with the engine client and the resolved spec (`manage.open_stack` does
    both from a stack's name)."""


__all__ = [
    "BACKUP_FORMAT",
    "ContainerStatus",
    "Credentials",
    "Finding",
    "InstallResult",
    "Provisioner",
    "StackStatus",
    "api_error",
    "parse_prometheus",
]
