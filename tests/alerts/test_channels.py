"""Delivery to real local receivers: the webhook's HMAC signature checked by the receiver, a wrong secret
refused, a Slack-compatible webhook, SMTP to aiosmtpd including a refused login with its message."""

from __future__ import annotations

import pytest

from pixel.server.alerts.channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Channel,
    send,
    sign,
    verify_signature,
)
from tests.alerts.receivers import slack_receiver, smtp_server, webhook_receiver
from tests.conftest import free_port

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

NOW = 1_710_948_600.0  # pinned
SECRET = "whsec-0123456789abcdef"
ALERT = {"kind": "drop", "site": "shop.example", "message": "shop.example: traffic drop"}


def test_webhook_signed_and_verified_by_the_receiver() -> None:
    with webhook_receiver(SECRET, NOW) as hook:
        result = send(Channel("webhook", "ops", url=hook.url, secret=SECRET), ALERT, NOW)
        assert result.ok and result.error is None
        assert len(hook.accepted) == 1 and hook.rejected == []
        got = hook.accepted[0]
        assert got["json"] == ALERT
        assert got["headers"][TIMESTAMP_HEADER] == "1710948600"
        assert got["headers"][SIGNATURE_HEADER].startswith("sha256=")
        assert len(got["headers"][SIGNATURE_HEADER]) == 7 + 64


def test_webhook_wrong_secret_is_rejected_by_the_receiver() -> None:
    with webhook_receiver(SECRET, NOW) as hook:
        result = send(Channel("webhook", "ops", url=hook.url, secret="not-the-receivers-secret"), ALERT, NOW)
        assert not result.ok
        assert result.error == "the receiver refused the message: HTTP 401 Unauthorized: invalid signature"
        assert hook.accepted == [] and len(hook.rejected) == 1


def test_webhook_replayed_later_is_rejected() -> None:
    # A request captured and sent again ten minutes later: the timestamp is too old.
    with webhook_receiver(SECRET, NOW + 600) as hook:
        result = send(Channel("webhook", "ops", url=hook.url, secret=SECRET), ALERT, NOW)
        assert not result.ok and "HTTP 401" in (result.error or "")


def test_verify_signature_rejects_tampering() -> None:
    body = b'{"a":1}'
    good = sign(SECRET, 100, body)
    assert verify_signature(SECRET, "100", body, good, now=100)
    assert not verify_signature(SECRET, "100", b'{"a":2}', good, now=100)  # body changed
    assert not verify_signature(SECRET, "101", body, good, now=100)  # timestamp changed
    assert not verify_signature(SECRET + "x", "100", body, good, now=100)
    assert not verify_signature(SECRET, "abc", body, good, now=100)
    assert not verify_signature(SECRET, "100", body, "", now=100)
    assert not verify_signature(SECRET, "100", body, good.upper(), now=100)


def test_webhook_unreachable_in_plain_words() -> None:
    port = free_port()
    result = send(Channel("webhook", "ops", url=f"http://127.0.0.1:{port}/x", secret=SECRET), ALERT, NOW)
    assert result.error == f"could not reach 127.0.0.1:{port}: connection refused (nothing listens there)"


def test_slack_compatible() -> None:
    with slack_receiver() as slack:
        assert send(Channel("slack", "team", secret=slack.url), ALERT, NOW).ok
        assert slack.posts == [{"text": "shop.example: traffic drop"}]
        wrong = slack.url.replace("XXXXSECRET", "revoked")
        result = send(Channel("slack", "team", secret=wrong), ALERT, NOW)
        assert result.error == "the receiver refused the message: HTTP 404 Not Found: no_service"


def smtp(port: int, password: str, **kw: object) -> Channel:
    base: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_username": "pixel",
        "sender": "pixel@example.com",
        "recipients": ["owner@example.com", "ops@example.com"],
    }
    base.update(kw)
    return Channel("smtp", "mail", secret=password, **base)  # type: ignore[arg-type]


def test_smtp_delivers() -> None:
    with smtp_server("pixel", "right-password") as box:
        result = send(smtp(box.port, "right-password"), ALERT, NOW)
        assert result.ok, result.error
        assert len(box.messages) == 1
        envelope = box.messages[0]
        assert envelope.mail_from == "pixel@example.com"
        assert envelope.rcpt_tos == ["owner@example.com", "ops@example.com"]
        text = envelope.content.decode()
        assert "Subject: [Pixel] shop.example: traffic drop" in text


def test_smtp_refused_login_shows_the_servers_message() -> None:
    with smtp_server("pixel", "right-password") as box:
        result = send(smtp(box.port, "wrong-password"), ALERT, NOW)
        assert not result.ok
        assert result.error == "the server refused the login: 535 5.7.8 Authentication credentials invalid"
        assert box.messages == []


def test_smtp_without_login_where_one_is_required() -> None:
    with smtp_server("pixel", "right-password") as box:
        result = send(smtp(box.port, "", smtp_username=""), ALERT, NOW)
        assert result.error == (
            "the server refused the sender pixel@example.com: 530 5.7.0 Authentication required"
        )


def test_smtp_starttls_not_offered() -> None:
    with smtp_server("pixel", "right-password") as box:
        result = send(smtp(box.port, "right-password", smtp_security="starttls"), ALERT, NOW)
        assert result.error == "the server does not support this: STARTTLS extension not supported by server."


def test_smtp_login_in_clear_only_on_loopback() -> None:
    result = send(smtp(25, "pw", smtp_host="mail.example.com"), ALERT, NOW)
    assert result.error == "a login is sent only over TLS: choose STARTTLS or TLS for this server"


def test_smtp_unreachable() -> None:
    port = free_port()
    result = send(smtp(port, "pw"), ALERT, NOW)
    assert (
        result.error == f"could not connect to 127.0.0.1:{port}: connection refused (nothing listens there)"
    )
