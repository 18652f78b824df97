"""Delivery of an alert to one channel: a webhook (JSON signed with HMAC-SHA256), a Slack-compatible incoming
webhook, or SMTP.

The contract:
- `send` never raises for a delivery failure: it returns a `Delivery` whose `error` says in plain words what
  went wrong, quoting the other side's own answer (an HTTP status and the start of its body, the SMTP server's
  reply code and text, e.g. a refused login's "535 5.7.8 Authentication credentials invalid").
- Webhook: `POST` of the JSON payload with `X-Pixel-Timestamp` (epoch seconds) and
  `X-Pixel-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the channel's secret>`.
  A receiver checks it with `verify_signature` (constant-time, with a bound on the timestamp's age, so a
  captured request cannot be replayed later). Redirects are not followed (the signed body would go elsewhere).
- Slack-compatible: `POST {"text": ...}` to the incoming-webhook URL (which is the secret).
- SMTP: plain, STARTTLS or implicit TLS; a login is sent only over TLS, or in the clear to a loopback server.
- Time (the signature's timestamp) is given by the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

SIGNATURE_HEADER = "X-Pixel-Signature"
TIMESTAMP_HEADER = "X-Pixel-Timestamp"
KINDS = ("webhook", "slack", "smtp")
SMTP_SECURITY = ("starttls", "tls", "none")
TIMEOUT = 10.0
MAX_QUOTED = 200


@dataclass
class Channel:
    """A configured channel with its secret (webhook: the HMAC key; slack: the URL; smtp: the password)."""

    kind: str
    name: str
    url: str = ""
    secret: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_username: str = ""
    sender: str = ""
    recipients: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Delivery:
    ok: bool
    error: str | None = None


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str, timestamp: str, body: bytes, signature: str, now: float, tolerance: float = 300.0
) -> bool:
    """A receiver's check: the signature is right for this body and timestamp, and the timestamp is recent."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(now - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature or "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + "…"


def _post(url: str, body: bytes, headers: dict[str, str]) -> Delivery:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _opener.open(request, timeout=TIMEOUT) as response:
            response.read(MAX_QUOTED)
            return Delivery(True)
    except urllib.error.HTTPError as exc:
        detail = _quote(exc.read(MAX_QUOTED * 4).decode("utf-8", "replace"))
        said = f": {detail}" if detail else ""
        if 300 <= exc.code < 400:
            return Delivery(
                False, f"the receiver answered with a redirect ({exc.code}), which is not followed"
            )
        return Delivery(False, f"the receiver refused the message: HTTP {exc.code} {exc.reason}{said}")
    except urllib.error.URLError as exc:
        return Delivery(False, f"could not reach {_host(url)}: {_reason(exc.reason)}")
    except (TimeoutError, OSError) as exc:
        return Delivery(False, f"could not reach {_host(url)}: {_reason(exc)}")


def _host(url: str) -> str:
    return urllib.parse.urlparse(url).netloc or url


def _reason(exc: object) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer in time"
    if isinstance(exc, socket.gaierror):
        return "the name does not resolve"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    return str(exc)


def payload(alert: dict[str, Any]) -> bytes:
    return json.dumps(alert, sort_keys=True, separators=(",", ":")).encode()


def send(channel: Channel, alert: dict[str, Any], now: float) -> Delivery:
    """Deliver `alert` (a JSON-able dict with at least "message") through `channel`."""
    if channel.kind == "webhook":
        body = payload(alert)
        ts = int(now)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Pixel-Alerts",
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(channel.secret, ts, body),
        }
        return _post(channel.url, body, headers)
    if channel.kind == "slack":
        body = json.dumps({"text": str(alert.get("message", ""))}).encode()
        return _post(channel.secret, body, {"Content-Type": "application/json", "User-Agent": "Pixel-Alerts"})
    if channel.kind == "smtp":
        return _send_mail(channel, alert)
    return Delivery(False, f"unknown channel kind {channel.kind!r}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    text = (
        exc.smtp_error.decode("utf-8", "replace")
        if isinstance(exc.smtp_error, bytes)
        else str(exc.smtp_error)
    )
    return _quote(f"{exc.smtp_code} {text}")


def _send_mail(channel: Channel, alert: dict[str, Any]) -> Delivery:
    host, port, security = channel.smtp_host, channel.smtp_port, channel.smtp_security
    if channel.smtp_username and security == "none" and not _loopback(host):
        return Delivery(False, "a login is sent only over TLS: choose STARTTLS or TLS for this server")
    message = EmailMessage()
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.recipients)
    message["Subject"] = "[Pixel] " + str(alert.get("subject") or alert.get("message", ""))[:150]
    message.set_content(str(alert.get("message", "")) + "\n\n" + json.dumps(alert, indent=2, sort_keys=True))
    stage = "connect to"
    try:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if security == "tls":
            smtp = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=TIMEOUT)
        with smtp:
            smtp.ehlo()
            if security == "starttls":
                stage = "start TLS with"
                smtp.starttls(context=context)
                smtp.ehlo()
            if channel.smtp_username:
                stage = "log in to"
                smtp.login(channel.smtp_username, channel.secret)
            stage = "send through"
            smtp.send_message(message)
        return Delivery(True)
    except smtplib.SMTPAuthenticationError as exc:
        return Delivery(False, f"the server refused the login: {_smtp_reply(exc)}")
    except smtplib.SMTPRecipientsRefused as exc:
        said = "; ".join(
            f"{rcpt}: {code} {msg.decode('utf-8', 'replace')}" for rcpt, (code, msg) in exc.recipients.items()
        )
        return Delivery(False, f"the server refused the recipients: {_quote(said)}")
    except smtplib.SMTPSenderRefused as exc:
        return Delivery(False, f"the server refused the sender {exc.sender}: {_smtp_reply(exc)}")
    except smtplib.SMTPNotSupportedError as exc:
        return Delivery(False, f"the server does not support this: {exc}")
    except smtplib.SMTPResponseException as exc:
        return Delivery(
            False, f"the server answered with an error when asked to {stage} it: {_smtp_reply(exc)}"
        )
    except smtplib.SMTPException as exc:
        return Delivery(False, f"could not {stage} {host}:{port}: {exc}")
    except (OSError, ssl.SSLError) as exc:
        return Delivery(False, f"could not {stage} {host}:{port}: {_reason(exc)}")
