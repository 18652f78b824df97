"""The spool's disk cap, and the shipper's replay of a pending batch and its dead letters (real chDB)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson

from pixel.server.settings import Settings
from pixel.server.shipper import Shipper
from pixel.server.shipper.checkpoint import Checkpoint, Pending
from pixel.server.spool import SpoolWriter, encode_record
from pixel.server.store import dedup_token
from pixel.server.store.chdb_engine import ChdbStore

EVENT = {"event_name": "pageview", "site": "cap.example", "page": {"url": "https://cap.example/"}}


def test_spool_over_cap_answers_503_then_204_once_drained(pixel_factory, tmp_path) -> None:
    data = tmp_path / "data"
    collector = pixel_factory("collect", data_dir=data, pixel_spool_max_bytes="20000")
    body = orjson.dumps([EVENT] * 50)  # ~3.5 KB a request
    statuses = []
    for _ in range(12):
        statuses.append(httpx.post(f"{collector.collector}/track", content=body).status_code)
        time.sleep(0.12)  # let the workers' 100 ms tick re-measure the spool
    assert statuses[:5] == [204] * 5
    assert statuses[-1] == 503
    r = httpx.post(f"{collector.collector}/track", content=body)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    assert r.headers["access-control-expose-headers"] == "Retry-After"
    assert r.json()["error"] == "spool full"
    accepted = statuses.count(204) * 50
    shipper = pixel_factory("ship", data_dir=data, pixel_segment_max_age="0.2")
    shipper.wait_shipped(accepted)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = httpx.post(f"{collector.collector}/track", content=body)
        if r.status_code == 204:
            break
        time.sleep(0.2)
    assert r.status_code == 204


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, batch_max_rows=1000)


def _spool(settings: Settings, events: list[dict], torn: bytes = b"") -> Path:
    writer = SpoolWriter(settings.spool_dir, fsync_interval=0)
    for event in events:
        writer.append(
            encode_record(
                int(time.time() * 1000), b"192.0.2.1", b"ua", b"en", b"", b"", b"", orjson.dumps(event)
            )
        )
    path = writer._path
    assert path is not None
    writer.rotate()
    sealed = path.with_suffix(".seg")
    if torn:
        with open(sealed, "ab") as f:
            f.write(torn)
    return sealed


def test_a_pending_batch_is_replayed_with_its_token_and_not_duplicated(tmp_path) -> None:
    settings = _settings(tmp_path)
    _spool(settings, [{**EVENT, "event_id": f"e{i}"} for i in range(10)])
    store = ChdbStore(settings.store_dir)
    store.migrate()
    try:
        first = Shipper(settings, store)
        batch = first.reader.plan(first.checkpoint.offsets)
        token = dedup_token(batch.ranges)
        first.checkpoint.pending = Pending(token, batch.ranges)
        first.checkpoint.save()
        # the insert lands ... and the process "dies" before the checkpoint
        first.inserter.insert(batch, token)
        assert store.scalar("SELECT count() FROM events") == 10

        again = Shipper(settings, store)  # restart: the checkpoint still names the pending batch
        assert again.checkpoint.pending is not None and again.checkpoint.pending.token == token
        assert again.step() == 10  # replayed...
        assert store.scalar("SELECT count() FROM events") == 10  # ...and deduplicated by its token
        assert again.checkpoint.pending is None
        assert again.step() == 0
        saved = Checkpoint.load(settings.checkpoint_path)
        assert saved.pending is None
    finally:
        store.close()


def test_torn_record_and_bad_events_go_to_dead_letters(tmp_path) -> None:
    settings = _settings(tmp_path)
    segment = _spool(
        settings,
        [EVENT, {"site": "cap.example"}, {**EVENT, "page": "not an object"}],
        torn=b'1795813858791\t192.0.2.1\tua\ten\t\t\t\t{"event_na',
    )
    store = ChdbStore(settings.store_dir)
    store.migrate()
    try:
        shipper = Shipper(settings, store)
        assert shipper.step() == 4
        assert store.scalar("SELECT count() FROM events") == 1
        dead = store.query("SELECT reason, segment, payload FROM dead_letters ORDER BY offset").rows
        assert [d[0] for d in dead] == [
            "event_name is missing or not a non-empty string",
            "page must be an object",
            "torn record at the end of a segment",
        ]
        assert all(d[1] == segment.stem for d in dead)
        assert dead[2][2] == '{"event_na'  # the body only: the request facts hold the raw IP
        assert shipper.stats.dead == 3 and shipper.stats.inserted == 1
        shipper.step()  # the fully shipped, sealed segment is deleted with its raw IPs
        assert not segment.exists()
        assert not any(p.suffix == ".seg" for p in settings.spool_dir.iterdir())
    finally:
        store.close()


def test_old_or_future_client_times_fall_back_to_receive_time(tmp_path) -> None:
    settings = _settings(tmp_path)
    now_ms = int(time.time() * 1000)
    _spool(
        settings,
        [
            {**EVENT, "event_id": "ok", "ts": now_ms - 3_600_000},
            {**EVENT, "event_id": "future", "ts": now_ms + 3_600_000},
            {**EVENT, "event_id": "ancient", "ts": 1000},
            {**EVENT, "event_id": "text", "ts": "yesterday"},
        ],
    )
    store = ChdbStore(settings.store_dir)
    store.migrate()
    try:
        Shipper(settings, store).step()
        rows = dict(
            store.query(
                "SELECT event_id, toUnixTimestamp64Milli(timestamp) - toUnixTimestamp64Milli(received_at) FROM events"
            ).rows
        )
    finally:
        store.close()
    assert -3_600_100 < rows["ok"] < -3_599_000
    assert rows["future"] == rows["ancient"] == rows["text"] == 0


def test_ingest_rate_is_measured_over_the_last_minute(tmp_path) -> None:
    from pixel.server.storeservice import StoreService

    service = StoreService(_settings(tmp_path))
    try:
        now = time.monotonic()
        service._rate_samples.extend([(now - 120, 0), (now - 30, 100)])  # the first is older than a minute
        service.shipper.stats.inserted = 400
        assert abs(service._ingest_rate() - 10.0) < 0.05  # (400 - 100) events over the last ~30 s
        assert len(service._rate_samples) == 2
        text = service.render_metrics().decode()
        assert "pixel_events_today 0\n" in text
    finally:
        service.stop()


def test_visibility_is_measured_at_the_insert_acknowledgement_not_the_commit(tmp_path) -> None:
    """The pipelined loop commits a batch only after planning the next one; its rows were visible before that."""
    from pixel.server.shipper.shipper import VISIBLE_BUCKETS

    settings = _settings(tmp_path)
    _spool(settings, [{**EVENT, "event_id": f"v{i}"} for i in range(5)])
    store = ChdbStore(settings.store_dir)
    store.migrate()
    try:
        shipper = Shipper(settings, store)
        batch = shipper.reader.plan(shipper.checkpoint.offsets)
        for row in batch.rows:
            row["received_at"] = time.time()  # received just now
        token = dedup_token(batch.ranges)
        shipper.cycle.begin(batch, token)
        shipper.inserter.insert(batch, token)
        assert store.scalar("SELECT count() FROM events") == 5  # visible from here on
        time.sleep(1.2)  # e.g. the next batch being planned
        shipper.cycle.commit(batch)
        stats = shipper.stats
        within_1s = sum(stats.visible_buckets[: VISIBLE_BUCKETS.index(1.0) + 1])
        assert within_1s == 5
        assert stats.visible_sum < 5 * 1.0
    finally:
        store.close()


def test_events_today_is_asked_again_only_after_the_shipper_inserted(tmp_path) -> None:
    from pixel.server.storeservice import StoreService

    service = StoreService(_settings(tmp_path))
    try:
        assert "pixel_events_today 0\n" in service.render_metrics().decode()
        now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        service.store.insert_rows(
            "events",
            [
                {"timestamp": now, "site": "a.example", "event_id": f"t{i}", "event_name": "pageview"}
                for i in range(3)
            ],
        )
        # Nothing went through the shipper: the figure cannot have changed for it, the store is not asked.
        assert "pixel_events_today 0\n" in service.render_metrics().decode()
        service.shipper.stats.inserted += 3
        assert "pixel_events_today 3\n" in service.render_metrics().decode()
    finally:
        service.stop()


def test_the_store_process_freezes_its_start_up_objects_out_of_the_gc(tmp_path) -> None:
    import gc

    from pixel.server.storeservice import StoreService

    gc.unfreeze()
    service = StoreService(_settings(tmp_path))
    try:
        assert gc.get_freeze_count() == 0
        service.start()
        assert gc.get_freeze_count() > 10_000  # the API, enrichment data and the store's bindings
    finally:
        service.stop()
        gc.unfreeze()
