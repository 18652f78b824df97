"""What a stack is doing: each container's state, health, restarts, CPU and memory; the store's ingest
figures from the API's /metrics (read from inside its container, so a remote engine answers the same);
and the containers' logs. Read only: nothing here changes the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import StackError
from ..spec import API_PORT
from .core import StackObjects, container_name, exec_output


@dataclass(frozen=True)
class ContainerStatus:
    service: str
    name: str
    image: str
    state: str  # created | running | exited | ...
    health: str  # healthy | unhealthy | starting | none
    restarts: int
    cpu_percent: float | None
    memory_bytes: int | None
    memory_limit: int | None
    ports: dict[int, int]  # container port -> host port


@dataclass(frozen=True)
class StackStatus:
    installed: bool
    containers: list[ContainerStatus]
    metrics: dict[str, float]  # from the API's /metrics, summed over labels

    @property
    def events_inserted(self) -> int | None:
        value = self.metrics.get("pixel_shipper_events_inserted_total")
        return None if value is None else int(value)

    @property
    def backlog_bytes(self) -> int | None:
        value = self.metrics.get("pixel_spool_backlog_bytes")
        return None if value is None else int(value)

    @property
    def events_today(self) -> int | None:
        value = self.metrics.get("pixel_events_today")
        return None if value is None or value < 0 else int(value)

    @property
    def ingest_rate(self) -> float | None:
        """Events inserted per second over the last minute, as the store process measures it."""
        return self.metrics.get("pixel_shipper_ingest_rate")


def parse_prometheus(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0].strip()
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


class Status(StackObjects):
    def status(self) -> StackStatus:
        rows = []
        for svc in self.spec.services:
            c = self.container(svc.name)
            if c is None:
                continue
            c.reload()
            state = c.attrs["State"]
            cpu = mem = limit = None
            if state["Status"] == "running":
                stats = c.stats(stream=False, one_shot=True)
                assert isinstance(stats, dict)  # stream=False: one answer (the stub does not narrow it)
                mem = (stats.get("memory_stats") or {}).get("usage")
                limit = (stats.get("memory_stats") or {}).get("limit")
                cpu = _cpu_percent(stats)
            ports = {}
            for key, bindings in (c.attrs["NetworkSettings"].get("Ports") or {}).items():
                if bindings:
                    ports[int(key.split("/")[0])] = int(bindings[0]["HostPort"])
            rows.append(
                ContainerStatus(
                    svc.name,
                    container_name(c),
                    c.attrs["Config"]["Image"],
                    state["Status"],
                    (state.get("Health") or {}).get("Status", "none"),
                    int(c.attrs.get("RestartCount", 0)),
                    cpu,
                    mem,
                    limit,
                    ports,
                )
            )
        return StackStatus(bool(rows), rows, self.metrics())

    def metrics(self) -> dict[str, float]:
        """The API's /metrics, read from inside its container: works the same on a remote engine,
        where the API port is bound to the remote host's loopback."""
        svc = self._api_service()
        c = self.container(svc.name) if svc else None
        if c is None:
            return {}
        c.reload()
        if c.status != "running":
            return {}
        code = f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{API_PORT}/metrics', timeout=3).read().decode())"
        res = c.exec_run(["python3", "-c", code])
        if res.exit_code != 0:
            return {}
        return parse_prometheus(exec_output(res))

    def logs(self, service: str | None = None, tail: int = 100, follow: bool = False) -> Iterator[str]:
        names = [service] if service else [s.name for s in self.spec.services]
        if follow and len(names) != 1:
            raise StackError("Following logs works for one service at a time", "Add --service NAME.")
        for name in names:
            self.spec.service(name)
            c = self.container(name)
            if c is None:
                continue
            if follow:
                buf = ""
                for chunk in c.logs(stream=True, follow=True, tail=tail):
                    buf += chunk.decode("utf-8", "replace")
                    while "\n" in buf:
                        line, buf = buf.split("\n", 1)
                        yield line
                return
            for line in c.logs(tail=tail).decode("utf-8", "replace").splitlines():
                yield f"{name} | {line}" if len(names) > 1 else line


def _cpu_percent(stats: dict) -> float | None:
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    try:
        delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
        system = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
    except (KeyError, TypeError):
        return None  # one_shot gives no previous sample on some engines
    online = cpu.get("online_cpus") or 1
    return round(delta / system * online * 100, 1) if system > 0 else 0.0
