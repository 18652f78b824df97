"""Real local receivers for the alert channels: an HTTP server that checks the webhook signature (as a
user's receiver would) and an aiosmtpd SMTP server with a login, both on 127.0.0.1 free ports."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from pixel.server.alerts.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from tests.conftest import free_port


@dataclass
class Receiver:
    url: str
    secret: str
    now: float
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[bytes] = field(default_factory=list)
    status: int = 204  # what an accepted request is answered with


@contextmanager
def webhook_receiver(secret: str, now: float, path: str = "/hook") -> Iterator[Receiver]:
    """Accepts a POST to `path` whose signature verifies with `secret` at `now`; 401 otherwise."""
    state = Receiver("", secret, now)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            good = self.path == path and verify_signature(
                state.secret,
                self.headers.get(TIMESTAMP_HEADER, ""),
                body,
                self.headers.get(SIGNATURE_HEADER, ""),
                now=state.now,
            )
            if not good:
                state.rejected.append(body)
                self.send_response(401)
                payload = b"invalid signature"
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            state.accepted.append({"headers": dict(self.headers), "json": json.loads(body)})
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Slack:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def slack_receiver(token_path: str = "/services/T000/B000/XXXXSECRET") -> Iterator[Slack]:
    """Slack's incoming-webhook contract: a JSON body with "text" to the secret path answers 200 "ok"."""
    state = Slack("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != token_path:
                code, answer = 404, b"no_service"
            else:
                doc = json.loads(body)
                code, answer = (200, b"ok") if isinstance(doc.get("text"), str) else (400, b"no_text")
                state.posts.append(doc)
            self.send_response(code)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}{token_path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    port: int
    messages: list[Any] = field(default_factory=list)


@contextmanager
def smtp_server(username: str, password: str) -> Iterator[Mailbox]:
    """aiosmtpd with a login (plain text, on loopback) that accepts only `username`/`password`."""
    box = Mailbox(free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.messages.append(envelope)
            return "250 Message accepted for delivery"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == username.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=box.port,
        authenticator=authenticator,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
