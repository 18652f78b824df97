"""The stack-health alerts (server/alerts/health.py, sender.py) on real parts with time pinned: a site that
stops sending (judged by the automatic annotations' observer on chDB), a degraded shipper, dead letters, the
data folder's free space (statvfs of a real folder, and planted readings for the projection), the certificate
a TLS stand-in for the edge serves; delivered once per episode and "resolved" once to a webhook receiver that
verifies the HMAC, and to aiosmtpd."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pixel.server.alerts import health, rules, sender
from pixel.server.alerts.health import GB, statvfs_usage, time_to_full
from pixel.server.annotations.watch import AutoAnnotator
from pixel.server.api.app import open_meta
from pixel.server.api.meta import MetaDB
from pixel.server.api.query.runner import QueryRunner
from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore
from tests.alerts.receivers import smtp_server, webhook_receiver
from tests.alerts.tls_edge import make_certificate, tls_edge

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC).timestamp()
HOUR = 3600.0
SECRET = "whsec-0123456789abcdef"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbStore]:
    s = ChdbStore(tmp_path_factory.mktemp("health-store") / "store")
    s.migrate()
    yield s
    s.close()


@dataclass
class Env:
    settings: Settings
    meta: MetaDB
    store: ChdbStore
    runner: QueryRunner

    def site(self, name: str) -> dict[str, Any]:
        domain = f"{name}-{self.settings.data_dir.name}.example"
        sid = self.meta.insert(
            "sites", {"domain": domain, "name": name, "timezone": "UTC", "created_at": 0.0}
        )
        site = self.meta.site(sid)
        assert site is not None
        return site

    def events(self, domain: str, times: list[float]) -> None:
        self.store.insert_rows(
            "events",
            [
                {
                    "event_id": f"{domain}-{t!r}",
                    "site": domain,
                    "timestamp": dt.datetime.fromtimestamp(t, dt.UTC),
                    "received_at": dt.datetime.fromtimestamp(t, dt.UTC),
                    "event_name": "pageview",
                    "path": "/",
                }
                for t in times
            ],
        )

    def only(self, **on: bool) -> None:
        """Save the rules with only the named kinds on."""
        r = rules.Rules()
        for kind in ("ingestion", "disk", "certificate"):
            getattr(r, kind).enabled = on.get(kind, False)
        rules.save(self.meta, r, 0.0)

    def channel(self, url: str) -> None:
        self.meta.insert(
            "alert_channels",
            {"kind": "webhook", "name": "ops", "url": url, "secret": SECRET, "created_at": 0.0},
        )

    def round(self, now: float, **kwargs: Any) -> dict[str, Any]:
        found = sender.judge_health(self.meta, self.runner, self.settings.data_dir, now, **kwargs)
        return sender.check_and_send(
            self.meta, self.runner, dt.datetime.fromtimestamp(now, dt.UTC), findings=found
        )


@pytest.fixture()
def env(tmp_path: Path, store: ChdbStore) -> Env:
    settings = Settings(data_dir=tmp_path)
    return Env(settings, open_meta(settings), store, QueryRunner(store))


def alerts(received: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [a["json"] for a in received if a["json"].get("kind") == kind]


def test_rules_default_and_saved(env: Env) -> None:
    assert rules.load(env.meta) == rules.Rules()
    assert (rules.Rules().certificate.days, rules.Rules().backup.factor) == (14, 2.0)
    changed = rules.Rules.model_validate({"disk": {"min_free_percent": 25, "min_free_gb": 0.5}})
    assert rules.save(env.meta, changed, 1.0).disk.min_free_percent == 25
    assert rules.load(env.meta).disk.min_free_gb == 0.5
    for bad in (
        {"certificate": {"address": "https://x.example/"}},
        {"disk": {"min_free_percent": 101}},
        {"backup": {"factor": 0.5}},
        {"mystery": {}},
        {"certificate": {"address": "x.example:70000"}},
    ):
        with pytest.raises(ValueError):
            rules.Rules.model_validate(bad)


def test_a_site_that_stops_is_alerted_once_and_resolved_once(env: Env) -> None:
    """The observer's gap (no events for over 10x the usual 5 minutes and over an hour) is the alert; the
    steady site is not alerted; a second round sends nothing; events again end it with one "resolved"."""
    env.only(ingestion=True)
    stopped, steady = env.site("stopped"), env.site("steady")
    env.events(stopped["domain"], [T0 - 86400 + 300 * i for i in range(289)])  # every 5 min, the last at T0
    env.events(steady["domain"], [T0 - 86400 + 300 * i for i in range(361)])  # on until T0 + 6 h
    watch = AutoAnnotator(env.settings, env.meta, env.store, trackers=lambda: {}, min_gap=HOUR)
    now = T0 + 2 * HOUR
    watch.check_once(now)
    with webhook_receiver(SECRET, now) as hook:
        env.channel(hook.url)
        first = env.round(now)
        by_target = {f["target"]: f for f in first["health"] if f["kind"] == "ingestion_stopped"}
        assert by_target[stopped["domain"]]["state"] == "alert"
        assert by_target[steady["domain"]]["state"] == "ok"
        assert by_target["shipper"]["state"] == "ok"
        got = alerts(hook.accepted, "ingestion_stopped")
        assert [(a["target"], a["resolved"]) for a in got] == [(stopped["domain"], False)]
        assert got[0]["subject"] == f"ingestion stopped: {stopped['domain']}"
        assert got[0]["message"] == (
            f"Ingestion stopped: No events stored for {stopped['domain']} since 2026-03-02 12:00 UTC: "
            "2.0 h without events where one arrives every 5 min on average"
        )
        assert hook.rejected == []
        hook.now = now + HOUR
        env.round(now + HOUR)  # the same gap: nothing more
        assert len(alerts(hook.accepted, "ingestion_stopped")) == 1
        env.events(stopped["domain"], [now + 1.5 * HOUR, now + 1.5 * HOUR + 300])
        watch.check_once(now + 2 * HOUR)
        hook.now = now + 2 * HOUR
        env.round(now + 2 * HOUR)
        env.round(now + 2 * HOUR)
        got = alerts(hook.accepted, "ingestion_stopped")
        assert [(a["target"], a["resolved"]) for a in got] == [
            (stopped["domain"], False),
            (stopped["domain"], True),
        ]
        assert got[1]["subject"] == f"resolved: ingestion stopped ({stopped['domain']})"


def test_a_degraded_shipper_and_dead_letters_are_alerted(env: Env) -> None:
    env.only(ingestion=True)
    # Ahead of any real clock: the dead letters' TTL (30 days, judged by the store at its own clock) keeps them.
    now = dt.datetime(2036, 1, 5, 12, 0, tzinfo=dt.UTC).timestamp()
    status = [("degraded", ["the store cannot be reached; the spool keeps the events"])]
    AutoAnnotator(
        env.settings, env.meta, env.store, trackers=lambda: {}, status=lambda: status[0]
    ).check_once(now - 600)
    failed = dt.datetime.fromtimestamp(now - 1800, dt.UTC)
    old = dt.datetime.fromtimestamp(now - 2 * HOUR, dt.UTC)
    env.store.insert_rows(
        "dead_letters",
        [
            {
                "received_at": t,
                "failed_at": t,
                "segment": "s",
                "offset": i,
                "reason": "not JSON",
                "payload": "x",
            }
            for i, t in enumerate([failed] * 3 + [old] * 5)
        ],
    )
    saved = rules.load(env.meta)
    saved.ingestion.dead_letters_per_hour = 3
    rules.save(env.meta, saved, 0.0)
    with webhook_receiver(SECRET, now) as hook:
        env.channel(hook.url)
        env.round(now)
        got = {a["target"]: a for a in alerts(hook.accepted, "ingestion_stopped")}
        assert set(got) == {"shipper", "dead letters"}
        assert got["shipper"]["message"] == (
            "Ingestion degraded: the store cannot be reached; the spool keeps the events (since 2036-01-05 11:50 UTC)"
        )
        assert got["dead letters"]["details"] == {"count": 3}  # the older five are outside the hour
        assert "one of the reasons: not JSON" in got["dead letters"]["message"]
    saved.ingestion.dead_letters_per_hour = 4
    rules.save(env.meta, saved, 0.0)
    found = health.dead_letters(env.runner, saved.ingestion, now)
    assert (found.state, found.details) == ("ok", {"count": 3})


def test_disk_thresholds_on_a_real_folder(env: Env, tmp_path: Path) -> None:
    """statvfs of the real data folder: a percentage or an absolute figure above the free space alerts, and
    each is mailed through aiosmtpd with the login; zero thresholds do not alert."""
    env.only(disk=True)
    total, free = statvfs_usage(tmp_path)
    readings: list[tuple[int, int]] = []

    def usage(path: Path) -> tuple[int, int]:
        assert path == env.settings.data_dir
        readings.append(statvfs_usage(path))
        return readings[-1]

    r = rules.load(env.meta)
    r.disk.min_free_percent, r.disk.min_free_gb = 0.0, 0.0
    rules.save(env.meta, r, 0.0)
    [ok] = [f for f in env.round(T0, usage=usage)["health"] if f["kind"] == "disk_filling"]
    assert ok["state"] == "ok" and ok["details"]["total_bytes"] == total
    r.disk.min_free_gb = (free + 50 * GB) / GB  # above what is free, whatever the others write meanwhile
    rules.save(env.meta, r, 0.0)
    with smtp_server("pixel", "mail-password") as box:
        env.meta.insert(
            "alert_channels",
            {
                "kind": "smtp",
                "name": "mail",
                "secret": "mail-password",
                "settings": json.dumps(
                    {
                        "smtp_host": "127.0.0.1",
                        "smtp_port": box.port,
                        "smtp_security": "none",
                        "smtp_username": "pixel",
                        "sender": "pixel@example.com",
                        "recipients": ["owner@example.com"],
                    }
                ),
                "created_at": 0.0,
            },
        )
        result = env.round(T0 + 60, usage=usage)
        assert [d["ok"] for d in result["deliveries"]] == [True]
        [mail] = box.messages
        parsed = email.message_from_bytes(mail.content, policy=email.policy.default)
        assert parsed["Subject"] == f"[Pixel] disk filling: {env.settings.data_dir}"
        assert "Disk filling: the data folder" in parsed.get_content()
        env.round(T0 + 120, usage=usage)
        assert len(box.messages) == 1  # the same episode
        r.disk.min_free_gb, r.disk.min_free_percent = 0.0, 100.0  # free is always under 100 % of the total
        rules.save(env.meta, r, 0.0)
        env.round(T0 + 180, usage=usage)
        assert len(box.messages) == 1  # still low: the same episode, nothing more
    assert len(readings) == 4


def test_the_time_to_full_is_projected_from_the_recent_samples(env: Env) -> None:
    env.only(disk=True)
    frees = iter([10 * GB, 9 * GB, 8 * GB])
    total = 100 * GB

    def planted(_path: Path) -> tuple[int, int]:
        return total, next(frees)

    first = health.disk(env.meta, env.settings.data_dir, rules.DiskRule(), T0, planted)[0]
    assert first.details["seconds_to_full"] is None  # one sample: no rate
    health.disk(env.meta, env.settings.data_dir, rules.DiskRule(), T0 + HOUR, planted)
    third = health.disk(env.meta, env.settings.data_dir, rules.DiskRule(), T0 + 2 * HOUR, planted)[0]
    assert third.details["seconds_to_full"] == 8 * 3600  # 8 GB left, 1 GB an hour
    assert third.state == "alert"  # 8 % < 10 %
    assert third.message.endswith("full in about 8 hours at the recent growth")
    assert time_to_full([(0.0, 5), (HOUR, 7)]) is None  # growing free space: no projection
    assert time_to_full([(0.0, 9), (60.0, 3)]) is None  # less than an hour of samples


def test_the_disk_samples_kept_are_bounded(env: Env) -> None:
    """Every recorded round keeps a sample (POST /api/alerts/check records one too): a client checking in a
    loop keeps only the newest `MAX_SAMPLES`, and the projection still follows them."""
    env.only(disk=True)
    total = 100 * GB
    free = iter(range(50 * GB, 0, -GB // 1000))
    for i in range(health.MAX_SAMPLES + 50):
        health.disk(
            env.meta, env.settings.data_dir, rules.DiskRule(), T0 + i * 60, lambda _p: (total, next(free))
        )
    kept = health._samples(env.meta)
    assert len(kept) == health.MAX_SAMPLES
    assert kept[0][0] == T0 + 50 * 60 and kept[-1][0] == T0 + (health.MAX_SAMPLES + 49) * 60


def test_the_certificate_the_edge_serves(env: Env, tmp_path: Path) -> None:
    """10 days left alerts with the default 14 (the message quotes the expiry and issuer), 7 does not; an
    expired one alerts; an edge that does not answer is unknown and ends nothing."""
    expiry = dt.datetime.fromtimestamp(T0, dt.UTC) + dt.timedelta(days=10)
    cert, key = make_certificate(tmp_path, "stats.example.com", expiry, issuer="Pebble Test CA")
    env.only(certificate=True)
    with tls_edge(cert, key) as address:
        r = rules.load(env.meta)
        r.certificate.address = address
        rules.save(env.meta, r, 0.0)
        with webhook_receiver(SECRET, T0) as hook:
            env.channel(hook.url)
            env.round(T0)
            env.round(T0 + 60)
            [got] = alerts(hook.accepted, "certificate_expiry")
            assert got["details"] == {
                "expires_at": expiry.timestamp(),
                "issuer": "Pebble Test CA",
                "days_left": 10.0,
            }
            assert got["message"].startswith(
                f"The certificate of {address} expires in 10 days, on 2026-03-12 12:00 UTC (issuer Pebble Test CA)"
            )
            r.certificate.days = 7
            rules.save(env.meta, r, 0.0)
            [ok] = health.certificate(r.certificate, T0)
            assert ok.state == "ok"
            [late] = health.certificate(r.certificate, T0 + 11 * 86400)
            assert (late.state, late.message.split(" on ")[0]) == (
                "alert",
                f"The certificate of {address} expired",
            )
    [gone] = health.certificate(r.certificate, T0)
    assert gone.state == "unknown" and "could not be read: connection refused" in gone.message
    with webhook_receiver(SECRET, T0) as hook2:
        env.meta.delete("alert_channels", 1)
        env.channel(hook2.url)
        env.round(T0 + 120)  # unknown: the episode stays open, no "resolved"
        assert hook2.accepted == []


def test_the_stacks_public_address_is_the_certificates_address_unless_the_rule_names_another(
    env: Env, tmp_path: Path
) -> None:
    """A stack behind the edge knows its public name (`public_address`, set from PIXEL_DOMAIN by the spec): the
    certificate alert watches it without the owner typing it; an address saved in the rule wins."""
    assert rules.load(env.meta).certificate.address == ""
    assert rules.load(env.meta, "stats.example.com").certificate.address == "stats.example.com"
    r = rules.load(env.meta)
    r.certificate.address = "other.example.com:8443"
    rules.save(env.meta, r, 0.0)
    assert rules.load(env.meta, "stats.example.com").certificate.address == "other.example.com:8443"
    r.certificate.address = ""
    rules.save(env.meta, r, 0.0)
    expiry = dt.datetime.fromtimestamp(T0, dt.UTC) + dt.timedelta(days=3)
    cert, key = make_certificate(tmp_path, "stats.example.com", expiry, issuer="Pebble Test CA")
    env.only(certificate=True)
    with tls_edge(cert, key) as address:
        assert env.round(T0)["health"] == []  # no address anywhere: not judged
        [found] = sender.judge_health(
            env.meta, env.runner, env.settings.data_dir, T0, record=False, public_address=address
        )
        assert (found.kind, found.target, found.state) == ("certificate_expiry", address, "alert")
        assert found.details["days_left"] == 3.0


def test_the_silence_factor_is_the_rules(env: Env) -> None:
    """The observer reads the ingestion rule's `silence_factor` at each check (time pinned): a site with an
    event every 10 minutes, silent for 190 minutes, is not stopped at factor 20 (200 min) and is at factor 15
    (150 min) saved afterwards; bad factors are refused."""
    site = env.site("paced")
    env.events(site["domain"], [T0 - 86400 + 600 * i for i in range(145)])  # every 10 min, the last at T0
    watch = AutoAnnotator(env.settings, env.meta, env.store, trackers=lambda: {}, min_gap=HOUR)

    def gaps() -> int:
        return len(env.meta.all("SELECT id FROM annotations WHERE kind = 'ingestion_gap'"))

    r = rules.Rules()
    r.ingestion.silence_factor = 20.0  # 20 x 10 min = 200 min
    rules.save(env.meta, r, 0.0)
    watch.check_once(T0 + 190 * 60)
    assert gaps() == 0  # 190 min silent: under 20 x 10 min
    r.ingestion.silence_factor = 15.0  # 150 min: the next check uses it
    rules.save(env.meta, r, 1.0)
    watch.check_once(T0 + 190 * 60)
    assert gaps() == 1
    assert rules.load(env.meta).ingestion.silence_factor == 15.0
    for bad in (1.5, 0, 1001, "often"):
        with pytest.raises(ValueError):
            rules.Rules.model_validate({"ingestion": {"silence_factor": bad}})
