"""The `pixel` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pixel.server import datadir
from pixel.server.settings import Settings, SettingsError


def _common(parser: argparse.ArgumentParser, *, ports: bool = True) -> None:
    parser.add_argument(
        "--data-dir", type=Path, help="data folder (env PIXEL_DATA_DIR; default: per-user data dir)"
    )
    if ports:
        parser.add_argument("--host", help="address to listen on (env PIXEL_HOST; default 127.0.0.1)")
        parser.add_argument("--port", type=int, help="collector port (env PIXEL_PORT; default 8081)")
        parser.add_argument("--api-port", type=int, help="store/API port (env PIXEL_API_PORT; default 8082)")
        parser.add_argument(
            "--workers", type=int, help="collector worker processes (env PIXEL_WORKERS; default: cores)"
        )
        parser.add_argument(
            "--trusted-proxies", help="comma-separated addresses/CIDRs whose X-Forwarded-For is honoured"
        )


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {
        key: getattr(args, key, None)
        for key in ("data_dir", "host", "port", "api_port", "workers", "trusted_proxies")
    }
    return Settings.from_env(**overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixel", description="Pixel: self-hosted, privacy-first web analytics."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the whole single-machine system on the embedded store")
    _common(serve)
    serve.add_argument("--demo", action="store_true", help="send demo traffic once the collector is up")
    serve.set_defaults(func=cmd_serve)

    collect = sub.add_parser("collect", help="run the collector alone")
    _common(collect)
    collect.set_defaults(func=cmd_collect)

    ship = sub.add_parser("ship", help="run the store process alone: shipper, metrics, API")
    _common(ship)
    ship.set_defaults(func=cmd_ship)

    demo = sub.add_parser("demo", help="send realistic synthetic traffic to a collector")
    demo.add_argument("--url", default="http://127.0.0.1:8081", help="the collector's base URL")
    demo.add_argument("--events", type=int, default=5000, help="how many events (default 5000)")
    demo.add_argument("--days", type=int, default=30, help="spread over the last N days (default 30)")
    demo.add_argument("--seed", type=int, default=1, help="random seed (same seed, same traffic)")
    demo.set_defaults(func=cmd_demo)

    for module in (
        "pixel.server.api.cli",
        "pixel.server.enrich.geoip_update",
        "pixel.server.importer.cli",
        "pixel.app.stack.cli",
    ):
        try:
            plugin = __import__(module, fromlist=["add_cli"])
        except ImportError:
            continue
        plugin.add_cli(sub)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from pixel.server import processes

    settings = settings_from(args)
    if args.demo and not settings.trusted_proxies:
        # The demo sends visitors' addresses and countries the way a trusted proxy/CDN would.
        from pixel.server.settings import parse_networks

        settings.trusted_proxies = parse_networks("127.0.0.1,::1")
        settings.cdn_geo_headers = True
    if args.demo and settings.unregistered_sites == "auto":
        settings.unregistered_sites = "keep"  # the demo's sites are registered by nobody
    datadir.secure(settings.data_dir)
    processes.check_data_dir(settings.data_dir)
    lock = processes.DataDirLock(settings.data_dir)  # noqa: F841 - held until exit
    processes.check_port(settings.host, settings.port, "collector")
    processes.check_port(settings.host, settings.api_port, "store/API")
    store = processes.StoreSupervisor(settings)
    store.start()
    base = f"http://{settings.host}:{settings.port}"
    print(f"pixel: collector  {base}/track   tracker {base}/{settings.script_name}", flush=True)
    print(
        f"pixel: store/API  http://{settings.host}:{settings.api_port}/  (metrics /metrics, API /api/)",
        flush=True,
    )
    print(f"pixel: data       {settings.data_dir}", flush=True)
    if args.demo:
        _demo_in_background(base)
    try:
        processes.run_collector(settings)
    finally:
        store.stop()
    return 0


def _demo_in_background(base: str) -> None:
    import threading

    def run() -> None:
        import httpx

        from pixel.server import demo

        for _ in range(100):  # wait for the collector
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.HTTPError:
                import time

                time.sleep(0.2)
        sent = demo.send(base, events=5000, days=30)
        print(f"pixel: demo sent {sent} events", flush=True)

    threading.Thread(target=run, name="demo", daemon=True).start()


def cmd_collect(args: argparse.Namespace) -> int:
    from pixel.server import processes

    settings = settings_from(args)
    datadir.secure(settings.data_dir)
    processes.check_data_dir(settings.data_dir)
    processes.check_port(settings.host, settings.port, "collector")
    processes.run_collector(settings)
    return 0


def cmd_ship(args: argparse.Namespace) -> int:
    from pixel.server import processes

    settings = settings_from(args)
    datadir.secure(settings.data_dir)
    processes.check_data_dir(settings.data_dir)
    processes.check_port(settings.host, settings.api_port, "store/API")
    processes.run_store(settings)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pixel.server import demo

    sent = demo.send(args.url.rstrip("/"), events=args.events, days=args.days, seed=args.seed)
    print(f"pixel: demo sent {sent} events to {args.url}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from pixel.server.processes import StartupError, configure_logging

    configure_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with datadir.umask_restored():
            return int(args.func(args) or 0)
    except (StartupError, SettingsError) as exc:
        print(f"pixel: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
