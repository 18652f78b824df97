"""The alerts API on a real store: channels whose secrets never come back, "send test" with the receiver's
or SMTP server's own error, the traffic verdict of a site with a planted drop and of one with its normal weekly
pattern, and `POST /api/alerts/check` delivering only the drop, signed, to a local webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pixel.server.alerts import rules
from pixel.server.alerts.health import statvfs_usage
from pixel.server.alerts.sender import AlertSender, newly_alerting
from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.metaschema import MIGRATIONS
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore
from tests.alerts.receivers import slack_receiver, smtp_server, webhook_receiver
from tests.alerts.traffic import NOW, events, hourly

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

PASSWORD = "admin-password-123"
SECRET = "whsec-0123456789abcdef"
DROP_FROM = NOW.replace(hour=9, minute=0)


@dataclass
class Env:
    client: TestClient
    admin: dict[str, str]
    viewer: dict[str, str]
    normal_id: int
    drop_id: int
    data_dir: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data_dir = tmp_path_factory.mktemp("alerts")
    store = ChdbStore(data_dir / "store")
    store.migrate()
    store.insert_rows("events", events("normal.example", hourly(11)))
    store.insert_rows("events", events("dropped.example", hourly(12, DROP_FROM, 0.1)))
    settings = Settings(data_dir=data_dir)
    meta = open_meta(settings)
    meta.create_user("admin", hash_password(PASSWORD), "admin")
    normal = meta.insert(
        "sites", {"domain": "normal.example", "name": "N", "timezone": "UTC", "created_at": 0.0}
    )
    dropped = meta.insert(
        "sites", {"domain": "dropped.example", "name": "D", "timezone": "UTC", "created_at": 0.0}
    )
    meta.create_user("viewer", hash_password(PASSWORD), "viewer", [normal])
    # The data folder's free space is the machine's: judged here only where a test asks for it.
    rules.save(meta, rules.Rules(disk=rules.DiskRule(enabled=False)), 0.0)
    app = create_app(settings, store)
    app.state.pixel.report_cache.clock = NOW.timestamp
    with TestClient(app) as client:

        def login(name: str) -> dict[str, str]:
            r = client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        yield Env(client, login("admin"), login("viewer"), normal, dropped, data_dir)
    store.close()


def test_meta_migration_is_the_last_step(env: Env) -> None:
    meta = open_meta(Settings(data_dir=env.data_dir))
    with meta.connect() as c:
        version = dict(c.execute("PRAGMA user_version").fetchone())
        cols = [dict(r)["name"] for r in c.execute("PRAGMA table_info(alert_channels)")]
    assert list(version.values()) == [len(MIGRATIONS)]
    assert cols[:5] == ["id", "kind", "name", "url", "secret"]


def test_planted_drop_and_normal_pattern(env: Env) -> None:
    normal = env.client.get(f"/api/sites/{env.normal_id}/alerts/traffic", headers=env.admin).json()
    dropped = env.client.get(f"/api/sites/{env.drop_id}/alerts/traffic", headers=env.admin).json()
    counts = hourly(12, DROP_FROM, 0.1)
    expected_observed = sum(n for h, n in counts.items() if DROP_FROM <= h < NOW.replace(minute=0))
    assert normal["kind"] == "normal" and normal["alerting"] is False
    assert dropped["kind"] == "drop" and dropped["alerting"] is True
    assert dropped["observed"] == expected_observed
    assert dropped["window_start"] == "2024-03-20T09:00Z" and dropped["window_end"] == "2024-03-20T15:00Z"
    baseline = [
        sum(
            n
            for h, n in counts.items()
            if DROP_FROM - timedelta(weeks=k) <= h < DROP_FROM - timedelta(weeks=k, hours=-6)
        )
        for k in range(1, 5)
    ]
    assert dropped["baseline"] == baseline


def test_viewer_sees_only_own_site_and_no_channels(env: Env) -> None:
    assert env.client.get(f"/api/sites/{env.normal_id}/alerts/traffic", headers=env.viewer).status_code == 200
    assert env.client.get(f"/api/sites/{env.drop_id}/alerts/traffic", headers=env.viewer).status_code == 404
    assert env.client.get("/api/alerts/channels", headers=env.viewer).status_code == 403
    assert env.client.post("/api/alerts/check", headers=env.viewer).status_code == 403
    assert env.client.get("/api/alerts/channels").status_code == 401


def _secrets_absent(text: str, *secrets: str) -> None:
    for s in secrets:
        assert s not in text


def test_channels_never_return_secrets(env: Env) -> None:
    with slack_receiver() as slack:
        created = [
            env.client.post(
                "/api/alerts/channels",
                headers=env.admin,
                json={"kind": "webhook", "name": "ops", "url": "http://127.0.0.1:9/hook", "secret": SECRET},
            ),
            env.client.post(
                "/api/alerts/channels",
                headers=env.admin,
                json={"kind": "slack", "name": "team", "secret": slack.url},
            ),
            env.client.post(
                "/api/alerts/channels",
                headers=env.admin,
                json={
                    "kind": "smtp",
                    "name": "mail",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": 2525,
                    "smtp_security": "none",
                    "smtp_username": "pixel",
                    "secret": "smtp-pass-word",
                    "sender": "pixel@example.com",
                    "recipients": ["owner@example.com"],
                },
            ),
        ]
        for r in created:
            assert r.status_code == 201, r.text
            _secrets_absent(r.text, SECRET, "XXXXSECRET", "smtp-pass-word")
            assert r.json()["has_secret"] is True
        assert created[1].json()["target"] == "127.0.0.1"
        listing = env.client.get("/api/alerts/channels", headers=env.admin)
        _secrets_absent(listing.text, SECRET, "XXXXSECRET", "smtp-pass-word")
        openapi = env.client.get("/api/openapi.json").text
        assert '"secret"' in openapi  # accepted on input...
        out_schema = json.loads(openapi)["components"]["schemas"]["ChannelOut"]["properties"]
        assert "secret" not in out_schema  # ...never in an answer
        for r in created:
            assert (
                env.client.delete(f"/api/alerts/channels/{r.json()['id']}", headers=env.admin).status_code
                == 204
            )
        assert (
            env.client.delete(
                f"/api/alerts/channels/{created[0].json()['id']}", headers=env.admin
            ).status_code
            == 404
        )


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "webhook", "name": "x", "url": "http://127.0.0.1/hook", "secret": "short"},
        {"kind": "webhook", "name": "x", "url": "file:///etc/passwd", "secret": SECRET},
        {"kind": "webhook", "name": "x", "url": "http://a b/", "secret": SECRET},
        {"kind": "slack", "name": "x", "secret": "not a url"},
        {"kind": "slack", "name": "x", "url": "http://h/", "secret": "https://hooks.example/x"},
        {"kind": "smtp", "name": "x", "smtp_host": "h", "sender": "a@b", "recipients": []},
        {"kind": "smtp", "name": "x", "smtp_host": "h", "sender": "a@b\r\nBcc: e@vil", "recipients": ["c@d"]},
        {"kind": "smtp", "name": "x", "smtp_host": "h", "sender": "a@b", "recipients": ["c@d\nBcc: e@vil"]},
        {
            "kind": "smtp",
            "name": "x",
            "smtp_host": "h",
            "sender": "a@b",
            "recipients": ["c@d"],
            "smtp_port": 0,
        },
        {
            "kind": "smtp",
            "name": "x",
            "smtp_host": "h",
            "sender": "a@b",
            "recipients": ["c@d"],
            "smtp_username": "u",
        },
        {"kind": "pager", "name": "x"},
        {"kind": "webhook", "name": "x", "url": "http://h/", "secret": SECRET, "extra": 1},
    ],
)
def test_bad_channels_refused(env: Env, body: dict[str, Any]) -> None:
    r = env.client.post("/api/alerts/channels", headers=env.admin, json=body)
    assert r.status_code == 422, r.text
    assert env.client.get("/api/alerts/channels", headers=env.admin).json() == []


def test_send_test_shows_the_servers_own_error(env: Env) -> None:
    with smtp_server("pixel", "right-password") as box:
        body = {
            "kind": "smtp",
            "name": "mail",
            "smtp_host": "127.0.0.1",
            "smtp_port": box.port,
            "smtp_security": "none",
            "smtp_username": "pixel",
            "secret": "wrong-password",
            "sender": "pixel@example.com",
            "recipients": ["owner@example.com"],
        }
        bad = env.client.post("/api/alerts/channels", headers=env.admin, json=body).json()
        good = env.client.post(
            "/api/alerts/channels", headers=env.admin, json={**body, "secret": "right-password"}
        ).json()
        r = env.client.post(f"/api/alerts/channels/{bad['id']}/test", headers=env.admin)
        assert r.json() == {
            "ok": False,
            "error": "the server refused the login: 535 5.7.8 Authentication credentials invalid",
        }
        assert env.client.post(f"/api/alerts/channels/{good['id']}/test", headers=env.admin).json() == {
            "ok": True,
            "error": None,
        }
        assert len(box.messages) == 1 and b"Test alert from Pixel" in box.messages[0].content
        listed = {c["id"]: c for c in env.client.get("/api/alerts/channels", headers=env.admin).json()}
        assert listed[bad["id"]]["last_error"].startswith("the server refused the login: 535")
        assert (
            listed[good["id"]]["last_sent_at"] == NOW.timestamp() and listed[good["id"]]["last_error"] is None
        )
        assert env.client.post("/api/alerts/channels/999999/test", headers=env.admin).status_code == 404
        for c in (bad, good):
            env.client.delete(f"/api/alerts/channels/{c['id']}", headers=env.admin)


def test_check_sends_only_the_drop_signed(env: Env) -> None:
    with webhook_receiver(SECRET, NOW.timestamp()) as hook, slack_receiver() as slack:
        ids = [
            env.client.post(
                "/api/alerts/channels",
                headers=env.admin,
                json={"kind": "webhook", "name": "ops", "url": hook.url, "secret": SECRET},
            ).json()["id"],
            env.client.post(
                "/api/alerts/channels",
                headers=env.admin,
                json={"kind": "webhook", "name": "stale", "url": hook.url, "secret": "an-old-rotated-secret"},
            ).json()["id"],
            env.client.post(
                "/api/alerts/channels",
                headers=env.admin,
                json={"kind": "slack", "name": "team", "secret": slack.url},
            ).json()["id"],
        ]
        r = env.client.post("/api/alerts/check", headers=env.admin)
        assert r.status_code == 200
        doc = r.json()
        assert {v["site"]: v["kind"] for v in doc["verdicts"]} == {
            "normal.example": "normal",
            "dropped.example": "drop",
        }
        assert [(d["channel"], d["site"], d["ok"]) for d in doc["deliveries"]] == [
            (ids[0], "dropped.example", True),
            (ids[1], "dropped.example", False),
            (ids[2], "dropped.example", True),
        ]
        assert (
            doc["deliveries"][1]["error"]
            == "the receiver refused the message: HTTP 401 Unauthorized: invalid signature"
        )
        assert len(hook.accepted) == 1 and len(hook.rejected) == 1
        sent = hook.accepted[0]["json"]
        assert sent["site"] == "dropped.example" and sent["kind"] == "drop"
        assert sent["subject"] == "traffic drop on dropped.example"
        assert len(slack.posts) == 1 and slack.posts[0]["text"].startswith("dropped.example: traffic drop, ")
        # The same drop at the next check: not sent again.
        again = env.client.post("/api/alerts/check", headers=env.admin).json()
        assert again["deliveries"] == [] and len(hook.accepted) == 1
        assert {v["site"]: v["kind"] for v in again["verdicts"]}["dropped.example"] == "drop"
        for i in ids:
            env.client.delete(f"/api/alerts/channels/{i}", headers=env.admin)


def test_an_alert_is_sent_once_until_traffic_is_normal_again(env: Env) -> None:
    state = env.client.app.state.pixel  # type: ignore[attr-defined]
    kinds = ["drop", "drop", "unknown", "drop", "normal", "drop", "spike", "spike", "normal", "normal"]
    sent = [newly_alerting(state.meta, 999, kind, NOW.timestamp()) for kind in kinds]
    assert sent == [True, False, False, False, False, True, True, False, False, False]


def test_store_process_round_sends_on_its_own(env: Env) -> None:
    """The loop the store process runs: one round at the pinned time, then it stops on request."""
    state = env.client.app.state.pixel  # type: ignore[attr-defined]
    with state.meta.transaction() as conn:
        conn.execute("DELETE FROM auto_state WHERE key LIKE 'alert:%'")
    with webhook_receiver(SECRET, NOW.timestamp()) as hook:
        channel = env.client.post(
            "/api/alerts/channels",
            headers=env.admin,
            json={"kind": "webhook", "name": "ops", "url": hook.url, "secret": SECRET},
        ).json()["id"]
        loop = AlertSender(state.meta, state.runner, interval=3600)
        thread = threading.Thread(target=loop.run, args=(NOW.timestamp,), daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not hook.accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        loop.stop()
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert [a["json"]["site"] for a in hook.accepted] == ["dropped.example"]
        assert hook.accepted[0]["headers"]["X-Pixel-Timestamp"] == str(int(NOW.timestamp()))
        env.client.delete(f"/api/alerts/channels/{channel}", headers=env.admin)


def test_health_rules_and_findings_for_admins(env: Env) -> None:
    """The rules are read and replaced whole, validated; the health is judged now without recording a disk
    sample; a viewer gets neither."""
    for path in ("/api/alerts/rules", "/api/alerts/health"):
        assert env.client.get(path, headers=env.viewer).status_code == 403
    assert env.client.put("/api/alerts/rules", headers=env.viewer, json={}).status_code == 403
    saved = env.client.get("/api/alerts/rules", headers=env.admin).json()
    assert saved["certificate"] == {"enabled": True, "days": 14, "address": ""}
    assert saved["backup"] == {"enabled": True, "factor": 2.0}
    assert saved["disk"]["enabled"] is False
    assert saved["ingestion"]["silence_factor"] == 10.0
    changed = {**saved, "ingestion": {**saved["ingestion"], "silence_factor": 4.5}}
    put = env.client.put("/api/alerts/rules", headers=env.admin, json=changed)
    assert put.status_code == 200 and put.json()["ingestion"]["silence_factor"] == 4.5
    assert env.client.get("/api/alerts/rules", headers=env.admin).json()["ingestion"]["silence_factor"] == 4.5
    assert env.client.put("/api/alerts/rules", headers=env.admin, json=saved).status_code == 200
    for bad in (
        {"certificate": {"address": "https://stats.example.com/"}},
        {"disk": {"min_free_gb": -1}},
        {"ingestion": {"silence_factor": 1}},
        {"ingestion": {"silence_factor": "often"}},
        {"x": {}},
    ):
        assert (
            env.client.put("/api/alerts/rules", headers=env.admin, json={**saved, **bad}).status_code == 422
        )
    body = {**saved, "disk": {"enabled": True, "min_free_percent": 0, "min_free_gb": 0}}
    put = env.client.put("/api/alerts/rules", headers=env.admin, json=body)
    assert put.status_code == 200 and put.json()["disk"]["enabled"] is True
    found = env.client.get("/api/alerts/health", headers=env.admin).json()
    [disk] = [f for f in found if f["kind"] == "disk_filling"]
    assert (disk["state"], disk["target"]) == ("ok", str(env.data_dir))
    assert disk["details"]["total_bytes"] == statvfs_usage(env.data_dir)[0]
    assert {f["target"]: f["state"] for f in found if f["kind"] == "ingestion_stopped"} == {
        "normal.example": "ok",
        "dropped.example": "ok",
        "shipper": "ok",
        "dead letters": "ok",
    }
    assert not any(f["kind"] == "certificate_expiry" for f in found)  # no address: not judged
    state = env.client.app.state.pixel  # type: ignore[attr-defined]
    assert state.meta.one("SELECT 1 FROM auto_state WHERE key = 'disk_samples'") is None
    env.client.put("/api/alerts/rules", headers=env.admin, json=saved)
