"""`/api/imports` (server/api/routers/imports.py over server/importer/jobs.py) through the real app on chDB:
upload the fixtures, preview numbers exact, start, progress to 100 %, the reports show the known numbers,
undo removes them; the overlap choice; wrong kind, truncated gzip, too large; one import per site at a time,
cancel leaves nothing; a run interrupted by a crash resumes without duplicates; a viewer is refused."""

from __future__ import annotations

import gzip
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.routers.imports import jobs_of
from pixel.server.api.security import hash_password
from pixel.server.importer import records, run
from pixel.server.importer.sources import SOURCES
from pixel.server.settings import Settings
from pixel.server.store import Store
from tests.importer.reports import Reports, reports
from tests.importer.test_import_accesslog import big_log
from tests.importer.test_import_goatcounter import GOAT, GOAT_DAYS, SITE

FIXTURES = Path(__file__).parent / "fixtures"


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings.from_env(data_dir=tmp_path / "data", **overrides)


def upload(api: Reports, content: bytes, name: str) -> Any:
    return api.client.post("/api/imports/files", params={"name": name}, content=content, headers=api.headers)


def preview(api: Reports, json: dict[str, Any], headers: dict[str, str]) -> Any:
    """POST the preview, then its state until it is no longer running (the last answer)."""
    r = api.client.post("/api/imports/preview", json=json, headers=headers)
    if r.status_code != 202:
        return r
    deadline = time.monotonic() + 120
    while True:
        r = api.client.get(f"/api/imports/previews/{r.json()['id']}", headers=headers)
        if r.status_code != 200 or r.json()["status"] != "running":
            return r
        assert time.monotonic() < deadline, r.text
        time.sleep(0.02)


def wait_done(api: Reports, import_id: str, until: tuple[str, ...] = ("done", "truncated")) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        r = api.client.get(f"/api/imports/{import_id}", headers=api.headers)
        if r.status_code == 200 and r.json()["status"] in until:
            return dict(r.json())
        assert time.monotonic() < deadline, r.text
        time.sleep(0.05)


def test_upload_preview_start_progress_reports_undo(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with reports(settings, store, SITE) as api:
        r = upload(api, GOAT.read_bytes(), "../goat export.csv")
        assert r.status_code == 201, r.text
        up = r.json()
        assert (up["name"], up["size"], up["gzip"], up["kind"]) == (
            "goat_export.csv",
            GOAT.stat().st_size,
            False,
            "goatcounter",
        )
        body = {"upload": up["id"], "kind": "goatcounter", "site_id": api.site_id}
        r = preview(api, json=body, headers=api.headers)
        assert r.status_code == 200, r.text
        shown = r.json()
        assert (shown["status"], shown["percent"], shown["error"]) == ("done", 100.0, "")
        # goatcounter_export.csv by hand (tests/importer/test_import_goatcounter.py): 11 lines, 3 events a day
        # on the 5th and 6th of March 2024 (UTC), one bot, lines 9 and 10 malformed, no live data
        assert shown["lines"] == 11
        assert (shown["first"], shown["last"]) == ("2024-03-05T10:00:00Z", "2024-03-06T12:00:00Z")
        assert shown["days"] == [
            {"day": "2024-03-05", "rows": 3, "live": False},
            {"day": "2024-03-06", "rows": 3, "live": False},
        ]
        assert shown["rows"] == {"skip": 6, "include": 6} and shown["overlap_days"] == []
        assert shown["hosts"] == {SITE: 6}
        assert shown["skipped"] == {"bot (GoatCounter)": 1}
        assert shown["malformed"] == [[9, "8 fields, the header has 14"], [10, "bad Date 'not a date'"]]
        assert shown["malformed_count"] == 2
        assert store.scalar("SELECT count() FROM events") == 0  # a preview writes nothing

        r = api.client.post("/api/imports", json={**body, "overlap": "skip"}, headers=api.headers)
        assert r.status_code == 202, r.text
        import_id = r.json()["id"]
        done = wait_done(api, import_id)
        assert (done["status"], done["percent"], done["rows"], done["kind"], done["file"]) == (
            "done",
            100.0,
            6,
            "goatcounter",
            "goat_export.csv",
        )
        assert done["days"] == {"2024-03-05": 3, "2024-03-06": 3} and done["lines"] == 11
        assert done["malformed"] == [[9, "8 fields, the header has 14"], [10, "bad Date 'not a date'"]]
        jobs_of(api.client.app.state.pixel).wait(import_id, 60)  # type: ignore[attr-defined]
        assert not list((records.folder(settings.state_dir) / "uploads").iterdir())  # the upload is gone
        per_day = store.query(
            "SELECT toString(toDate(timestamp)) AS d, countIf(event_name = 'pageview'), count(), "
            "uniqExact(visitor_id), uniqExact(session_id) FROM events FINAL WHERE import_id = {id:String} "
            "GROUP BY d ORDER BY d",
            {"id": import_id},
        ).rows
        assert per_day == GOAT_DAYS
        got = api.metrics("2024-03-05", "2024-03-06")
        assert (got["pageviews"], got["visitors"], got["sessions"]) == (5, 3, 3)

        listed = api.client.get("/api/imports", headers=api.headers).json()
        assert [(i["id"], i["status"], i["rows"]) for i in listed] == [(import_id, "done", 6)]

        # the same file again for the same site: refused, the first import named
        up2 = upload(api, GOAT.read_bytes(), "again.csv").json()
        r = api.client.post(
            "/api/imports", json={**body, "upload": up2["id"], "overlap": "skip"}, headers=api.headers
        )
        assert r.status_code == 409 and import_id in r.json()["detail"]
        assert api.client.delete(f"/api/imports/files/{up2['id']}", headers=api.headers).status_code == 204

        # in service a day's build stands for a few seconds after a change (today's, while events stream in);
        # an undo tells the caches, which rebuild its days at once: shown here with an hour's wait
        page = {"period": "custom", "compare": "false", "from": "2024-03-05", "to": "2024-03-06"}
        assert sum(r["pageviews"] for r in api.get("engagement", **page)["rows"]) == 5
        api.client.app.state.pixel.report_cache.rebuild_min_seconds = 3600.0  # type: ignore[attr-defined]
        r = api.client.delete(f"/api/imports/{import_id}", headers=api.headers)
        assert r.status_code == 200 and r.json() == {"id": import_id, "rows_deleted": 6}
        got = api.metrics("2024-03-05", "2024-03-06")
        assert (got["pageviews"], got["visitors"], got["sessions"]) == (0, 0, 0)
        assert api.get("engagement", **page)["rows"] == []
        assert api.client.get("/api/imports", headers=api.headers).json() == []
        assert api.client.delete(f"/api/imports/{import_id}", headers=api.headers).status_code == 404
    assert store.scalar("SELECT count() FROM events") == 0


def test_overlap_choice_and_gzip(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    live = {"timestamp": "2024-03-05 08:00:00", "site": SITE, "event_id": "live-1", "event_name": "pageview"}
    store.insert_rows("events", [live])
    with reports(settings, store, SITE) as api:
        r = upload(api, gzip.compress(GOAT.read_bytes()), "goat.csv.gz")
        assert r.status_code == 201 and (r.json()["gzip"], r.json()["kind"]) == (True, "goatcounter")
        body = {"upload": r.json()["id"], "kind": "goatcounter", "site_id": api.site_id}
        shown = preview(api, json=body, headers=api.headers).json()
        assert shown["days"] == [
            {"day": "2024-03-05", "rows": 3, "live": True},
            {"day": "2024-03-06", "rows": 3, "live": False},
        ]
        assert shown["rows"] == {"skip": 3, "include": 6} and shown["overlap_days"] == ["2024-03-05"]
        r = api.client.post("/api/imports", json={**body, "overlap": "skip"}, headers=api.headers)
        done = wait_done(api, r.json()["id"])
        assert done["rows"] == 3 and done["skipped"] == {"bot (GoatCounter)": 1, run.LIVE: 3}
        assert done["days"] == {"2024-03-06": 3}
        assert (
            api.client.delete(f"/api/imports/{done['id']}", headers=api.headers).json()["rows_deleted"] == 3
        )

        r = upload(api, gzip.compress(GOAT.read_bytes()), "goat.csv.gz")
        body["upload"] = r.json()["id"]
        r = api.client.post("/api/imports", json={**body, "overlap": "include"}, headers=api.headers)
        done = wait_done(api, r.json()["id"])
        assert done["rows"] == 6 and done["days"] == {"2024-03-05": 3, "2024-03-06": 3}
        assert store.scalar("SELECT count() FROM events FINAL WHERE import_id = ''") == 1


def test_bad_input_is_a_clear_4xx(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, import_max_bytes=4096)
    uploads = records.folder(settings.state_dir) / "uploads"
    with reports(settings, store, SITE) as api:
        whole = gzip.compress((FIXTURES / "ga4_events.ndjson").read_bytes())
        r = upload(api, whole[:-30], "events.ndjson.gz")
        assert r.status_code == 422 and "ends early" in r.json()["detail"], r.text
        r = upload(api, whole[:20] + b"\xff" * 40 + whole[60:], "events.ndjson.gz")
        assert r.status_code == 422 and "damaged" in r.json()["detail"], r.text
        assert upload(api, b"", "empty.log").status_code == 422
        r = upload(api, b"x" * 5000, "big.log")
        assert r.status_code == 413 and "PIXEL_IMPORT_MAX_BYTES" in r.json()["detail"]
        assert list(uploads.iterdir()) == []  # nothing kept of a refused upload

        r = upload(api, whole + gzip.compress(b""), "two-members.ndjson.gz")
        assert r.status_code == 201 and r.json()["kind"] == "ga4"

        umami = upload(api, (FIXTURES / "umami_export.csv").read_bytes(), "umami.csv").json()
        assert umami["kind"] == "umami"
        body = {"upload": umami["id"], "kind": "goatcounter", "site_id": api.site_id}
        r = preview(api, json=body, headers=api.headers)
        assert r.status_code == 422 and "not a GoatCounter CSV export" in r.json()["detail"]
        r = preview(api, json={**body, "kind": "accesslog"}, headers=api.headers)
        assert r.status_code == 422 and "it looks like umami" in r.json()["detail"], r.text
        r = preview(api, json={**body, "kind": "nosuchtool"}, headers=api.headers)
        assert r.status_code == 422 and "unknown kind 'nosuchtool'" in r.json()["detail"]
        r = preview(api, json={**body, "upload": "0123456789abcdef"}, headers=api.headers)
        assert r.status_code == 404
        r = preview(api, json={**body, "site_id": 999}, headers=api.headers)
        assert r.status_code == 404
        r = api.client.post(
            "/api/imports", json={**body, "kind": "umami", "overlap": "maybe"}, headers=api.headers
        )
        assert r.status_code == 422


def test_one_per_site_and_cancel_leaves_nothing(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    log = tmp_path / "big.log"
    pageviews = big_log(log, 20_000)
    with reports(settings, store, SITE) as api:
        jobs = jobs_of(api.client.app.state.pixel)  # type: ignore[attr-defined]
        jobs.batch_lines = 100  # many batches: the cancel lands while it runs
        first = upload(api, log.read_bytes(), "big.log").json()
        assert first["kind"] == "accesslog"
        shown = preview(
            api,
            json={"upload": first["id"], "kind": "accesslog", "site_id": api.site_id},
            headers=api.headers,
        ).json()
        assert shown["rows"]["include"] == pageviews and shown["lines"] == 20_000
        r = api.client.post(
            "/api/imports",
            json={"upload": first["id"], "kind": "accesslog", "site_id": api.site_id},
            headers=api.headers,
        )
        import_id = r.json()["id"]
        second = upload(api, GOAT.read_bytes(), "goat.csv").json()
        r = api.client.post(
            "/api/imports",
            json={"upload": second["id"], "kind": "goatcounter", "site_id": api.site_id},
            headers=api.headers,
        )
        assert r.status_code == 409 and import_id in r.json()["detail"]
        deadline = time.monotonic() + 60
        while api.client.get(f"/api/imports/{import_id}", headers=api.headers).json()["lines"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        moving = api.client.get(f"/api/imports/{import_id}", headers=api.headers).json()
        assert 0 < moving["percent"] <= 100 and moving["lines"] % 100 == 0
        r = api.client.post(f"/api/imports/{import_id}/cancel", headers=api.headers)
        assert r.status_code == 202 and r.json()["status"] in ("cancelling", "cancelled")
        assert wait_done(api, import_id, ("cancelled", "failed"))["status"] == "cancelled"
        assert store.scalar("SELECT count() FROM events") == 0
        assert records.load(settings.state_dir, import_id) is None
        listed = api.client.get("/api/imports", headers=api.headers).json()
        assert [(i["id"], i["status"], i["kind"], i["file"], i["rows"]) for i in listed] == [
            (import_id, "cancelled", "accesslog", "big.log", 0)
        ]
        assert not (records.folder(settings.state_dir) / "uploads" / first["id"]).exists()
        # the site is free again
        r = api.client.post(
            "/api/imports",
            json={"upload": second["id"], "kind": "goatcounter", "site_id": api.site_id},
            headers=api.headers,
        )
        assert r.status_code == 202 and wait_done(api, r.json()["id"])["rows"] == 6


class Crash(Exception):
    pass


def test_a_run_cut_by_a_crash_resumes_without_duplicates(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    log = tmp_path / "big.log"
    pageviews = big_log(log, 3_000)
    with reports(settings, store, SITE) as api:
        up = upload(api, log.read_bytes(), "big.log").json()
        path = next((records.folder(settings.state_dir) / "uploads" / up["id"]).iterdir())
    # the store process dies after its first committed batch (as a SIGKILL then: the record says running)
    record = run.start(settings, store, path, SITE, "skip", SOURCES["accesslog"])

    def crash(done: int, total: int, lines: int) -> None:
        raise Crash

    with pytest.raises(Crash):
        run.run(settings, store, record, progress=crash, batch_lines=1000)
    assert records.load(settings.state_dir, record.id).status == "running"  # type: ignore[union-attr]
    assert 0 < store.scalar("SELECT count() FROM events") < pageviews
    # the next process: the imports API's first use resumes it
    app = create_app(settings, store, sql_seconds=5.0)
    with TestClient(app) as client:
        login = client.post("/api/auth/login", json={"username": "admin", "password": "admin-password-123"})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        listed = client.get("/api/imports", headers=headers).json()
        assert [i["id"] for i in listed] == [record.id]
        jobs_of(app.state.pixel).wait(record.id, 120)
        done = client.get(f"/api/imports/{record.id}", headers=headers).json()
    assert (done["status"], done["rows"], done["percent"]) == ("done", pageviews, 100.0)
    assert store.scalar("SELECT count() FROM events FINAL") == pageviews
    assert store.scalar("SELECT count() FROM events") == pageviews  # no copies, even before merges


def test_a_viewer_is_refused(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with reports(settings, store, SITE) as api:
        open_meta(settings).create_user("viewer", hash_password("viewer-password-1"), "viewer")
        login = api.client.post(
            "/api/auth/login", json={"username": "viewer", "password": "viewer-password-1"}
        )
        viewer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        calls = [
            ("GET", "/api/imports", None),
            ("POST", "/api/imports/files", None),
            ("POST", "/api/imports/preview", {"upload": "a", "kind": "ga4", "site_id": api.site_id}),
            ("POST", "/api/imports", {"upload": "a", "kind": "ga4", "site_id": api.site_id}),
            ("GET", "/api/imports/x", None),
            ("GET", "/api/imports/previews/x", None),
            ("DELETE", "/api/imports/previews/x", None),
            ("POST", "/api/imports/x/cancel", None),
            ("DELETE", "/api/imports/x", None),
            ("DELETE", "/api/imports/files/x", None),
        ]
        for method, path, body in calls:
            r = api.client.request(method, path, json=body, headers=viewer)
            assert r.status_code == 403 and r.json()["error"] == "admins_only", (method, path, r.text)
        assert api.client.get("/api/imports", headers={}).status_code == 401


def test_waiting_uploads_and_running_previews_are_bounded(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A careless or hostile client cannot fill the disk with uploads nobody imports (each may be as large as the
    limit) nor start a preview thread per request: past `KEPT_UPLOADS` and `RUNNING_PREVIEWS`, a plain 409."""
    from pixel.server.importer import jobs as module

    settings = settings_for(tmp_path)
    with reports(settings, store, SITE) as api:
        ids = []
        for i in range(module.KEPT_UPLOADS):
            r = upload(api, GOAT.read_bytes(), f"goat-{i}.csv")
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        r = upload(api, GOAT.read_bytes(), "one-too-many.csv")
        assert r.status_code == 409 and r.json()["error"] == "import_busy", r.text
        assert "10 uploads are waiting for their import" in r.json()["detail"]
        assert api.client.delete(f"/api/imports/files/{ids.pop()}", headers=api.headers).status_code == 204
        r = upload(api, GOAT.read_bytes(), "now-room.csv")
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])

        release = threading.Event()
        jobs = jobs_of(api.client.app.state.pixel)  # type: ignore[attr-defined]
        real = jobs._preview_work

        def held(job: Any) -> None:  # the file is read only once the test lets it
            release.wait(60)
            real(job)

        monkeypatch.setattr(jobs, "_preview_work", held)
        body = {"kind": "goatcounter", "site_id": api.site_id}
        started = [
            api.client.post("/api/imports/preview", json={**body, "upload": u}, headers=api.headers)
            for u in ids[: module.RUNNING_PREVIEWS]
        ]
        assert [r.status_code for r in started] == [202] * module.RUNNING_PREVIEWS
        r = api.client.post("/api/imports/preview", json={**body, "upload": ids[-1]}, headers=api.headers)
        assert r.status_code == 409 and r.json()["error"] == "import_busy", r.text
        release.set()
        for r in started:
            pid = r.json()["id"]
            deadline = time.monotonic() + 60
            while (
                api.client.get(f"/api/imports/previews/{pid}", headers=api.headers).json()["status"]
                == "running"
            ):
                assert time.monotonic() < deadline
                time.sleep(0.02)
        r = preview(api, json={**body, "upload": ids[-1]}, headers=api.headers)
        assert r.status_code == 200 and r.json()["status"] == "done", r.text
