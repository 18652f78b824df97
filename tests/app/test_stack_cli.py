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
