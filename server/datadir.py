"""The data folder is readable by the user that runs Pixel and nobody else.

Everything under it (spool segments with raw IPs, the store's files, salts, checkpoints, the metadata database
with its password hashes, the GeoIP database) is created with umask 077 — folders 0700, files 0600, whatever
creates them: Pixel itself, chDB, SQLite — because every `pixel` command that writes the data folder calls
`secure()` first: `serve`, `collect`, `ship`, `api`, `user`, `geoip update`. The umask is inherited by the
processes they start.

`secure()` also looks at what is already there (a folder made by an older Pixel, a restored backup, a copy):
an entry that its group or other users may use has those permissions removed, and the start logs a warning
naming it; an entry that belongs to another user (e.g. made by `sudo pixel user add`) is named in a warning with
the command that fixes it, since only its owner or root may change it. Symbolic links are not followed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

UMASK = 0o077


@dataclass
class Report:
    """What `check` found under a data folder."""

    loosened: list[tuple[Path, int]] = field(default_factory=list)  # (path, mode found) open to group/others
    foreign: list[tuple[Path, int]] = field(default_factory=list)  # (path, owner uid) not ours
    fixed: bool = False  # the loosened ones were tightened


def owner(root: Path) -> int:
    """The service user: the one running Pixel; for root, the data folder's owner (root may run `pixel user
    add` on the service's folder)."""
    uid = os.geteuid()
    return os.stat(root).st_uid if uid == 0 else uid


def check(root: Path, *, fix: bool = True) -> Report:
    """Walks `root` (not following symbolic links): entries group/other users may use are tightened (`fix`) and
    reported, as are entries owned by another user than the service user (`owner`)."""
    report = Report(fixed=fix)
    uid = owner(root)
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        entries = [here] if here == root else []
        entries += [here / name for name in (*dirs, *files)]
        for path in entries:
            try:
                st = os.lstat(path)
            except FileNotFoundError:  # removed meanwhile (a running store merges parts)
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_uid != uid:
                report.foreign.append((path, st.st_uid))
                continue
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o077:
                report.loosened.append((path, mode))
                if fix:
                    try:
                        os.chmod(path, mode & ~0o077, follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    except NotImplementedError:  # no lchmod here: the entry is not a link (checked above)
                        os.chmod(path, mode & ~0o077)
    return report


@contextlib.contextmanager
def umask_restored() -> Iterator[None]:
    """The process's umask as it was once the block ends: a command run in-process (tests, an embedding
    program) leaves its caller's umask alone; a `pixel` process simply ends with it."""
    old = os.umask(UMASK)
    os.umask(old)
    try:
        yield
    finally:
        os.umask(old)


def secure(root: Path, *, fix: bool = True) -> Report:
    """Call first in every command that writes the data folder `root`: sets the process's umask to 077, then
    checks (and by default fixes) what is there, logging one warning per kind of problem."""
    os.umask(UMASK)
    root = Path(root)
    if not root.exists():
        return Report(fixed=fix)
    if root.resolve() in (Path("/"), Path.home().resolve()):
        log.warning(
            "the data folder %s is your home or the root folder: its permissions are not checked; use a "
            "folder of its own for Pixel (PIXEL_DATA_DIR)",
            root,
        )
        return Report(fixed=False)
    report = check(root, fix=fix)
    if report.loosened:
        path, mode = report.loosened[0]
        more = f" and {len(report.loosened) - 1} more" if len(report.loosened) > 1 else ""
        done = (
            "their group and other permissions were removed" if fix else f"remove them: chmod -R go= {root}"
        )
        log.warning(
            "the data folder was open to other users: %s (mode %04o)%s; %s (the data folder is for the user "
            "running Pixel only)",
            path,
            mode,
            more,
            done,
        )
    if report.foreign:
        path, uid = report.foreign[0]
        more = f" and {len(report.foreign) - 1} more" if len(report.foreign) > 1 else ""
        service = owner(root)
        log.warning(
            "%s%s in the data folder belong(s) to uid %d, not to the user running Pixel (uid %d), which may "
            "not be able to read or replace it; fix: chown -R %d %s",
            path,
            more,
            uid,
            service,
            service,
            root,
        )
    return report
