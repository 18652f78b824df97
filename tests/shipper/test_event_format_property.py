"""Property: any body the collector answers 204 (POST) or 200 (GET pixel) to ends, once the shipper has run,
as rows, dead letters or drops the site asked for — every event accounted for — and never as a stuck
shipper (nothing pending, the spool fully shipped). Bodies come from hypothesis: tracker-like events with
every field mutated (deep nesting, arrays, NUL characters, odd URLs and schemes, huge and empty values,
compact and long keys mixed). The real collector core (`Collector.handle`) writes the real spool, and a
real Shipper inserts into chDB in a temp folder."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixel.server.collector.core import Collector
from pixel.server.eventformat import check_body
from pixel.server.settings import Settings
from pixel.server.shipper import Shipper
from pixel.server.store.chdb_engine import ChdbStore

# Valid UTF-8 only (no lone surrogates): a JSON body is bytes the collector decodes; NUL and controls kept.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
# Any JSON, shallow or deep: nested arrays up to ~300 levels as the poison pill, and bushy small trees.
DEEP = st.integers(1, 300).map(lambda n: orjson.loads(b"[" * n + b"1" + b"]" * n))
JSON = st.recursive(
    SCALAR, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(TEXT, kids, max_size=3), max_leaves=8
)
ANY = st.one_of(SCALAR, JSON, DEEP)
URL = st.one_of(
    st.sampled_from(
        [
            "https://shop.example/a?b=1",
            "HTTP://Shop.Example/",
            "/relative",
            "//cdn.example/x",
            "javascript:alert(1)",
            " javascript:alert(1)",
            "data:text/html,x",
            "https:///nohost",
            "http://[::1/",
            "",
            "shop.example/no-scheme",
            "https://shop.example/\x00nul",
        ]
    ),
    TEXT,
    ANY,
)


PAGE = st.fixed_dictionaries({}, optional={"u": URL, "t": TEXT, "r": URL, "url": URL})
EVENT_FIELDS = {
    "n": st.sampled_from(["pageview", "purchase", "\x00", " ", "a\x00b"]),
    "h": st.sampled_from(["site.example", "site.example", "", "\x00"]),
}
OPTIONAL_FIELDS = {
    "event_name": st.just("signup"),
    "i": TEXT,
    "t": st.integers(0, 2**53),
    "site": st.just("long.example"),
    "p": PAGE,
    "page": PAGE,
    "d": st.fixed_dictionaries({}, optional={"s": TEXT, "l": SCALAR, "z": SCALAR, "w": SCALAR}),
    "a": st.dictionaries(TEXT, SCALAR, max_size=5),
    "params": st.dictionaries(TEXT, SCALAR, max_size=5),
    "e": SCALAR,
    "c": SCALAR,
}
KEYS = sorted({*EVENT_FIELDS, *OPTIONAL_FIELDS, "extra"})


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A tracker-like event; then, half the time, one field (top level or inside page, device, params)
    replaced by anything at all."""
    event = draw(st.fixed_dictionaries(EVENT_FIELDS, optional=OPTIONAL_FIELDS))
    if draw(st.booleans()):
        key = draw(st.sampled_from(KEYS))
        target = event.get(key)
        if type(target) is dict and draw(st.booleans()):
            target[draw(st.sampled_from([*target, "u", "k"]))] = draw(ANY)
        else:
            event[key] = draw(ANY)
    return event


EVENT = events()
BODY = st.one_of(EVENT, st.lists(EVENT, min_size=1, max_size=4), ANY)


def test_every_accepted_body_ends_as_rows_or_dead_letters(tmp_path_factory) -> None:
    base: Path = tmp_path_factory.mktemp("property")
    config = Settings(data_dir=base, batch_max_rows=500, max_event_age_days=100_000)
    collector = Collector(config)
    collector.start()
    store = ChdbStore(config.store_dir)
    store.migrate()
    shipper = Shipper(config, store)
    accepted = {"bodies": 0, "refused": 0}
    try:

        @settings(
            max_examples=300,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(body=BODY, via_get=st.booleans())
        def one(body: Any, via_get: bool) -> None:
            try:
                raw = orjson.dumps(body)
            except TypeError:  # deeper than orjson writes: send the text of it built by hand instead
                raw = b'{"n":"x","h":"s.example","a":{"k":' + b"[" * 300 + b"1" + b"]" * 300 + b"}}"
            if via_get:
                e = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
                response = collector.handle("GET", "/track", f"e={e}", {}, "192.0.2.10", b"", False)
            else:
                response = collector.handle("POST", "/track", "", {}, "192.0.2.10", raw, False)
            n, problem = check_body(orjson.loads(raw), config.max_events_per_request)
            if response.status not in (200, 204):
                assert response.status == 400 and problem is not None
                assert orjson.loads(response.body)["detail"] == problem[1]
                accepted["refused"] += 1
                return
            assert problem is None and n >= 1
            accepted["bodies"] += 1
            before = shipper.stats.inserted + shipper.stats.dead + shipper.stats.dropped
            for _ in range(10):  # a stuck shipper raises here or never empties the spool
                if shipper.step() == 0 and shipper.checkpoint.pending is None:
                    break
            assert shipper.checkpoint.pending is None
            assert shipper.backlog_bytes() == 0
            assert shipper.stats.inserted + shipper.stats.dead + shipper.stats.dropped - before == n

        one()
        # the store holds what the shipper counted, no NUL, no path that is not one, no raw IP in dead letters
        # (rows of one site, day and event id collapse when the ReplacingMergeTree merges: at most that many)
        stored, keys = store.query(
            "SELECT count(), uniqExact(site, toDate(timestamp), event_id) FROM events"
        ).rows[0]
        assert keys <= stored <= shipper.stats.inserted
        assert store.scalar("SELECT count() FROM dead_letters") == shipper.stats.dead
        assert store.scalar("SELECT count() FROM events WHERE position(event_name, char(0)) > 0") == 0
        assert store.scalar("SELECT count() FROM events WHERE path != '' AND NOT startsWith(path, '/')") == 0
        assert store.scalar("SELECT count() FROM dead_letters WHERE position(payload, '192.0.2.10') > 0") == 0
        # both outcomes were exercised, each many times
        assert accepted["bodies"] >= 30 and accepted["refused"] >= 30, accepted
        assert shipper.stats.inserted >= 10 and shipper.stats.dead >= 10, shipper.stats
    finally:
        collector.stop()
        shipper.enricher.close()
        store.close()
