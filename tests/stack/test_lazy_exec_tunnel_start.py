"""A `LazyExecTunnel` started at once (not lazily) connects to its engine in `start`, so an engine that
cannot be reached is the `StackError` the app shows, and nothing listens. No Docker engine needed: the
engine address is a closed port on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixel.app.stack.engine import EngineTarget
from pixel.app.stack.errors import StackError
from pixel.app.stack.tunnel import LazyExecTunnel
from tests.ports import free_port


def _targets(tmp_path: Path) -> list[EngineTarget]:
    port = free_port()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("not read: the engine is never reached\n")
    return [
        EngineTarget(f"tcp://127.0.0.1:{port}", timeout=5),
        EngineTarget(
            f"tcp://127.0.0.1:{port}",
            tls_ca=tmp_path / "ca.pem",
            tls_cert=tmp_path / "cert.pem",
            tls_key=tmp_path / "key.pem",
            timeout=5,
        ),
    ]


def test_lazy_exec_tunnel_started_at_once_reports_the_unreachable_engine(tmp_path: Path) -> None:
    """It used to fail with AttributeError ('NoneType' object has no attribute 'api'): its login read
    the client it had not connected yet."""
    for target in _targets(tmp_path):
        tunnel = LazyExecTunnel(target, "pixel")
        with pytest.raises(StackError) as caught:
            tunnel.start()
        assert caught.value.code == "engine-unreachable", target.kind
        assert tunnel.client is None and tunnel.container == ""
        with pytest.raises(RuntimeError, match="not started"):
            _ = tunnel.local_port
        tunnel.stop()  # nothing to close: no error either


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_lazy_exec_tunnel_refuses_a_port_out_of_range(tmp_path: Path, port: int) -> None:
    with pytest.raises(StackError) as caught:
        LazyExecTunnel(_targets(tmp_path)[0], "pixel", port)
    assert caught.value.code == "bad-port"
