"""Is the engine ready for the stack: its version, memory, disk, and the host ports the spec publishes.

Each answer is a `Finding` (ok or not, in plain words, with what to do and a stable code); nothing here
changes the engine. `install` refuses to start while a port finding is not ok.
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass

from .core import StackObjects, container_name


@dataclass(frozen=True)
class Finding:
    name: str  # engine | disk | memory | port
    ok: bool
    message: str
    action: str = ""
    code: str = ""


class Checks(StackObjects):
    def check(self, *, include_ports: bool = True) -> list[Finding]:
        findings: list[Finding] = []
        info = self.client.info()
        version = self.client.version()
        findings.append(
            Finding(
                "engine",
                True,
                f"Docker {version.get('Version')} (API {version.get('ApiVersion')}) at {self.target.describe()}, "
                f"{info.get('NCPU')} CPUs, {info.get('OperatingSystem')}",
            )
        )
        need_mem = sum(_bytes(s.mem_limit) for s in self.spec.services)
        total = int(info.get("MemTotal") or 0)
        findings.append(
            Finding(
                "memory",
                total >= need_mem,
                f"{total / 2**30:.1f} GiB memory, the stack may use up to {need_mem / 2**30:.1f} GiB",
                "" if total >= need_mem else "Use a host with more memory or lower PIXEL_MEMORY.",
                "" if total >= need_mem else "low-memory",
            )
        )
        root = info.get("DockerRootDir", "/var/lib/docker")
        if self.target.is_local and os.path.isdir(root):
            free = shutil.disk_usage(root).free
            ok = free >= 2 * 2**30
            findings.append(
                Finding(
                    "disk",
                    ok,
                    f"{free / 2**30:.1f} GiB free for Docker ({root})",
                    "" if ok else "Free at least 2 GiB on the disk that holds Docker's data.",
                    "" if ok else "disk-full",
                )
            )
        else:
            findings.append(
                Finding("disk", True, "free disk of a remote host is checked when the stack starts")
            )
        if include_ports:
            findings.extend(self._check_ports())
        return findings

    def _check_ports(self) -> list[Finding]:
        ours = {c.name for c in self.containers()}
        taken: dict[int, str] = {}
        for c in self.client.containers.list():
            if c.name in ours:
                continue
            for bindings in (c.attrs.get("HostConfig", {}).get("PortBindings") or {}).values():
                for b in bindings or []:
                    if b.get("HostPort"):
                        taken[int(b["HostPort"])] = container_name(c)
        findings = []
        for svc in self.spec.services:
            for port in svc.ports:
                host_port = int(port.host or 0)
                if not host_port:
                    continue
                holder = taken.get(host_port)
                if (
                    holder is None
                    and self.target.is_local
                    and not any(c.name in ours for c in self.client.containers.list())
                ):
                    holder = _local_port_holder(port.host_ip, host_port)
                if holder:
                    findings.append(
                        Finding(
                            "port",
                            False,
                            f"Port {host_port} ({svc.name}) is already used by {holder}.",
                            "Stop that program or choose another port (PIXEL_COLLECTOR_PORT / PIXEL_API_PORT).",
                            "port-in-use",
                        )
                    )
                else:
                    findings.append(Finding("port", True, f"Port {host_port} ({svc.name}) is free"))
        return findings


def _bytes(limit: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    limit = limit.strip().lower()
    if limit and limit[-1] in units:
        return int(float(limit[:-1]) * units[limit[-1]])
    return int(limit or 0)


def _local_port_holder(host_ip: str, port: int) -> str | None:
    ip = "" if host_ip in ("0.0.0.0", "") else host_ip
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return "another program on this computer"
    return None
