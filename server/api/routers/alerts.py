"""Alerts: the channels the stack sends them to, a "send test", and traffic judged against the weekly pattern.

- `GET/POST /api/alerts/channels`, `DELETE /api/alerts/channels/{id}` (admins): webhook, Slack-compatible or
  SMTP channels. A channel's secret is accepted on POST and never returned (`has_secret` says it is set).
- `POST /api/alerts/channels/{id}/test` (admins): sends a test alert now and answers `{"ok", "error"}`, the
  error in plain words with the receiver's or SMTP server's own reply.
- `GET /api/sites/{id}/alerts/traffic`: the verdict on the site's last hours against the same hours of the
  previous weeks (`server/alerts/detect.py`).
- `POST /api/alerts/check` (admins): judges every site and sends each alerting verdict to every enabled
  channel; answers the verdicts and the deliveries. An alert is sent once: while a site stays in the same
  alert (a drop over several checks) nothing more is sent; a "normal" verdict ends it, so the next drop is
  sent again (`server/alerts/sender.py`, which the store process also runs on its own).
- `GET/PUT /api/alerts/rules` (admins): the stack-health kinds' settings (`server/alerts/rules.py`: ingestion,
  disk, certificate, backup; on/off and thresholds); PUT takes and answers the whole set.
- `GET /api/alerts/health` (admins): the stack's health judged now (`server/alerts/health.py`: ingestion
  stopped, disk filling of the data folder, certificate near expiry), without sending or recording anything.
  `POST /api/alerts/check` judges it too and sends each new episode (and its end, "resolved") to the channels.
- Time comes from the app's clock (the report cache's `now()`), so tests pin it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from pixel.server.alerts import channels, config, detect, rules, sender
from pixel.server.alerts.config import ChannelIn, ChannelOut
from pixel.server.alerts.rules import Rules
from pixel.server.api.deps import Admin, AppState, Auth, PathId, State, site_for
from pixel.server.api.errors import not_found

router = APIRouter(tags=["alerts"])


class ChannelTestResult(BaseModel):
    ok: bool
    error: str | None


def _now(state: AppState) -> float:
    return state.report_cache.now().timestamp()


@router.get("/alerts/channels", response_model=list[ChannelOut])
def list_channels(principal: Admin, state: State) -> list[dict[str, Any]]:
    return [config.public(r) for r in config.rows(state.meta)]


@router.post("/alerts/channels", response_model=ChannelOut, status_code=201)
def create_channel(body: ChannelIn, principal: Admin, state: State) -> dict[str, Any]:
    channel_id = config.create(state.meta, body, _now(state))
    row = config.row(state.meta, channel_id)
    assert row is not None
    return config.public(row)


@router.delete("/alerts/channels/{channel_id}", status_code=204)
def delete_channel(channel_id: PathId, principal: Admin, state: State) -> Response:
    if not config.delete(state.meta, channel_id):
        raise not_found("alert channel")
    return Response(status_code=204)


@router.post("/alerts/channels/{channel_id}/test", response_model=ChannelTestResult)
def test_channel(channel_id: PathId, principal: Admin, state: State) -> dict[str, Any]:
    row = config.row(state.meta, channel_id)
    if row is None:
        raise not_found("alert channel")
    now = _now(state)
    alert = {"kind": "test", "subject": "test alert", "message": f"Test alert from Pixel to {row['name']!r}"}
    result = channels.send(config.channel(row), alert, now)
    config.record(state.meta, channel_id, now, result.error)
    return {"ok": result.ok, "error": result.error}


@router.get("/sites/{site_id}/alerts/traffic")
def traffic(site_id: PathId, principal: Auth, state: State) -> dict[str, Any]:
    site = site_for(state, principal, site_id)
    verdict = detect.check_site(state.runner, site["domain"], site["timezone"], state.report_cache.now())
    return verdict.as_dict()


@router.get("/alerts/rules", response_model=Rules)
def get_rules(principal: Admin, state: State) -> Rules:
    return rules.load(state.meta, state.settings.public_address)


@router.put("/alerts/rules", response_model=Rules)
def put_rules(body: Rules, principal: Admin, state: State) -> Rules:
    return rules.save(state.meta, body, _now(state))


@router.get("/alerts/health")
def get_health(principal: Admin, state: State) -> list[dict[str, Any]]:
    found = sender.judge_health(
        state.meta,
        state.runner,
        state.settings.data_dir,
        _now(state),
        record=False,
        public_address=state.settings.public_address,
    )
    return [f.as_dict() for f in found]


@router.post("/alerts/check")
def check(principal: Admin, state: State) -> dict[str, Any]:
    return sender.check_and_send(
        state.meta,
        state.runner,
        state.report_cache.now(),
        state.settings.data_dir,
        public_address=state.settings.public_address,
    )
