"""`pixel stack …` through the real `pixel` entry point."""

from __future__ import annotations

from pathlib import Path

from stack_helpers import unique_project

from pixel.server.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_compose_writes_and_checks(tmp_path, capsys):
    assert main(["stack", "compose", "--check", "--out", str(REPO / "compose")]) == 0
    assert main(["stack", "compose", "--check", "--out", str(tmp_path)]) == 1
    assert f"out of date: {tmp_path / 'docker-compose.yml'}" in capsys.readouterr().out
    assert main(["stack", "compose", "--out", str(tmp_path)]) == 0
    for name in ("docker-compose.yml", "docker-compose.standard.yml", ".env.example"):
        assert (tmp_path / name).read_text() == (REPO / "compose" / name).read_text()


def test_status_of_a_missing_stack_and_bad_settings(docker_client, capsys):
    name = unique_project()
    assert main(["stack", "status", "--name", name]) == 1
    assert f"no stack named {name!r} on this engine" in capsys.readouterr().out
    assert main(["stack", "install", "--name", name, "--set", "PIXEL_IMAGE"]) == 1
    err = capsys.readouterr().err
    assert "--set 'PIXEL_IMAGE' is not NAME=VALUE" in err and "What to do: Example" in err
    assert main(["stack", "install", "--name", name, "--set", "NOPE=1"]) == 2
    assert "unknown setting(s) ['NOPE']" in capsys.readouterr().err
    assert main(["stack", "check", "--name", "Bad Name"]) == 2
    assert "stack name 'Bad Name'" in capsys.readouterr().err


def test_unreachable_engine_is_explained(capsys):
    assert main(["stack", "status", "--engine", "unix:///nonexistent/docker.sock"]) == 1
    err = capsys.readouterr().err
    assert "Docker is installed but not running" in err
    assert "What to do:" in err


def test_every_sub_command_has_one_function():
    """The parser's sub-commands and the table of their functions name the same commands."""
    import argparse

    from pixel.app.stack import cli as stack_cli
    from pixel.server.cli import build_parser

    def choices(parser: argparse.ArgumentParser) -> set[str]:
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return set(action.choices)

    (action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert choices(action.choices["stack"]) == set(stack_cli.COMMANDS) == {
        "compose", "trust", "check", "status", "start", "stop", "restart", "install", "logs", "upgrade",
        "backup", "restore", "uninstall", "image",
    }  # fmt: skip


def test_install_with_a_site_creates_it_and_prints_the_snippet(docker_client, pixel_image, cleanup, capsys):
    """`pixel stack install --site` (onboarding.install_site, as the wizard): the stack, its admin account,
    the site created through the stack's API and the snippet to paste; a second run says what to do."""
    from stack_helpers import PIXEL_TAG

    from pixel.app.client import ApiClient
    from pixel.app.stack.manage import open_stack
    from pixel.app.stack.spec import API_PORT, COLLECTOR_PORT

    name = unique_project("pxi")
    cleanup.append(open_stack(docker_client, name))
    settings = [f"PIXEL_IMAGE={PIXEL_TAG}", "PIXEL_COLLECTOR_BIND=127.0.0.1", "PIXEL_COLLECTOR_PORT=0",
                "PIXEL_API_PORT=0", "PIXEL_WORKERS=1"]  # fmt: skip
    args = ["stack", "install", "--name", name, *(a for s in settings for a in ("--set", s))]
    assert main([*args, "--site", "Shop.Example", "--site-timezone", "Asia/Tokyo"]) == 0
    out = capsys.readouterr().out.splitlines()
    ports = open_stack(docker_client, name).status().containers[0].ports
    api, collector = f"http://127.0.0.1:{ports[API_PORT]}", f"http://127.0.0.1:{ports[COLLECTOR_PORT]}"
    password = out[1].split("password ")[1].split(" ")[0].strip("'")
    assert out[0].startswith("changed: ") and f"container {name}-pixel-1" in out[0]
    assert out[1:] == [
        f"admin account: user 'admin', password '{password}' (shown once)",
        "site shop.example: id 1",
        f"API (on the stack's host): {api}",
        f"collector (for visitors): {collector}",
        "paste into every page of the site, just before </head>:",
        f'<script defer src="{collector}/pixel.js" data-site="shop.example" data-endpoint="{collector}/track">'
        "</script>",
    ]
    with ApiClient(api, "admin", password) as client:
        assert [(s["domain"], s["timezone"]) for s in client.sites()] == [("shop.example", "Asia/Tokyo")]

    # installed before: no new admin account, so no site; the error line and what to do
    assert main([*args, "--site", "blog.example"]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-2:] == [
        f"pixel stack: The stack {name!r} was installed before: no new admin account was made, so the site "
        "cannot be created with one.",
        "  What to do: Create the site with the admin account made at the first install: in the desktop app, "
        "or through the API (POST /api/sites).",
    ]


def test_install_with_a_bad_site_installs_nothing(docker_client, capsys):
    name = unique_project("pxi")
    assert main(["stack", "install", "--name", name, "--site", "https://shop.example/"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "pixel stack: 'https://shop.example/' is not a website's domain.",
        "  What to do: Type the domain as in the site's address, e.g. example.com: letters, digits, dots and "
        "dashes, without https:// or a path.",
    ]
    assert main(["stack", "status", "--name", name]) == 1  # nothing was installed
