"""What to do about each stack error code is written once (`pixel.app.stack.errors.REMEDIES`): a
`StackError` raised with the code gets it, the CLI prints it, the wizard shows its own words for the
same code where they differ, and no other module of the app repeats the text."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

from pixel.app.stack.errors import REMEDIES, StackError, action_for, wizard_action
from pixel.server.cli import main

APP = Path(__file__).resolve().parents[2] / "app"


def test_an_error_gets_the_action_of_its_code() -> None:
    err = StackError("Docker is installed but not running.", code="engine-down")
    assert err.action == "Start Docker Desktop, or on Linux run: sudo systemctl start docker"
    assert str(err) == (
        "Docker is installed but not running.\n  What to do: Start Docker Desktop, or on Linux run: sudo "
        "systemctl start docker"
    )
    assert (
        wizard_action(err)
        == "Start Docker Desktop (or `sudo systemctl start docker`), then press Check again."
    )
    own = StackError("Port 8081 is taken.", "Stop the other program.", code="engine-down")
    assert own.action == "Stop the other program."  # an action given where it is raised wins
    assert wizard_action(own) == wizard_action(err)  # the wizard's words are per code
    plain = StackError("Something odd.", code="no-such-code")
    assert (plain.action, wizard_action(plain), action_for("no-such-code")) == ("", "", "")
    refused = StackError("The SSH server refused the key.", code="ssh-key-refused")
    assert wizard_action(refused) == "Add your SSH public key to the server's ~/.ssh/authorized_keys."


def test_the_wizard_has_its_own_words_for_six_codes() -> None:
    assert sorted(code for code, r in REMEDIES.items() if r.wizard) == [
        "docker-missing", "engine-down", "engine-permission", "host-key-unknown", "ssh-key-locked",
        "ssh-key-refused",
    ]  # fmt: skip
    for code, remedy in REMEDIES.items():
        assert remedy.action and remedy.action != remedy.wizard, code
        assert remedy.action[0].isupper() and not remedy.action.endswith(" "), code


def _source_text(path: Path) -> str:
    """The module's text with adjacent string literals joined, as Python joins them."""
    parts: list[str] = []
    last_string = False
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING and not tok.string.startswith(("f", "rf", "fr")):
            value = ast.literal_eval(tok.string)
            if isinstance(value, bytes):
                value = ""
            parts.append(value if last_string else "\n" + value)
            last_string = True
        elif tok.type in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
            continue
        else:
            last_string = False
    return "".join(parts)


@pytest.mark.parametrize("path", sorted(APP.rglob("*.py")), ids=lambda p: str(p.relative_to(APP)))
def test_no_other_module_repeats_a_remedy(path: Path) -> None:
    if path == APP / "stack" / "errors.py":
        return
    text = _source_text(path)
    repeated = [
        code for code, r in REMEDIES.items() for words in (r.action, r.wizard) if words and words in text
    ]
    assert repeated == []


def test_the_cli_prints_the_remedy(capsys) -> None:
    assert main(["stack", "trust", "--engine", "ssh://nobody@127.0.0.1:1", "--fingerprint", "SHA256:x"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == ("  What to do: " + REMEDIES["ssh-unreachable"].action)
