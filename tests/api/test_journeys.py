"""Journeys against known answers computed in Python (tests/api/journeys_data.py), on both store engines:
reloads, back-and-forth, sessions crossing local midnight, three time zones, filters, groups; bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store import Store
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.clickhouse_engine import ClickHouseStore
from tests.api import journeys_data as jd
from tests.chfront import ChFront

PASSWORD = "journeys-admin-pw-1"
DAY = {"period": "custom", "from": "2024-03-05", "to": "2024-03-05"}
FOUR = {"period": "custom", "from": "2024-03-04", "to": "2024-03-07"}


@dataclass
class J:
    client: TestClient
    headers: dict[str, str]
    site_ids: dict[str, int]
    events: list[dict[str, Any]]
    store: Store

    def get(self, path: str, site: str = jd.BERLIN, status: int = 200, **params: Any) -> dict[str, Any]:
        url = f"/api/sites/{self.site_ids[site]}/reports/journeys{path}"
        r = self.client.get(url, params=params, headers=self.headers)
        assert r.status_code == status, r.text
        return r.json()


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def j(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[J]:
    data_dir = tmp_path_factory.mktemp("journeys")
    store: Store
    if request.param == "clickhouse":
        front: ChFront = request.getfixturevalue("api_chfront")
        store = ClickHouseStore(front.url, database=f"pixel_j_{data_dir.name.replace('-', '_')}")
    else:
        store = ChdbStore(data_dir / "store")
    store.migrate()
    events = jd.events()
    store.insert_rows("events", events)
    store.insert_rows("events", events[:7])  # a replayed delivery: never a step twice
    settings = Settings(data_dir=data_dir)
    meta = open_meta(settings)
    meta.create_user("admin", hash_password(PASSWORD), "admin")
    ids = {
        site: meta.insert("sites", {"domain": site, "name": site, "timezone": tz, "created_at": 0.0})
        for site, tz in jd.ZONES.items()
    }
    with TestClient(create_app(settings, store, sql_seconds=5.0)) as client:
        r = client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        yield J(client, headers, ids, events, store)
    store.close()


def as_counts(body: dict[str, Any]) -> dict[tuple[tuple[str, ...], bool], int]:
    return {(tuple(p["pages"]), p["complete"]): p["sessions"] for p in body["paths"]}


# -- exact answers on the hand-made sessions --------------------------------------------------------


def test_reload_is_not_a_step_unless_asked(j: J) -> None:
    body = j.get("", steps=4, start="/", filters=json.dumps([["browser", "is", "Firefox"]]), limit=100, **DAY)
    counts = as_counts(body)
    # reload-s: / /pricing /pricing /signup -> the reload collapses; the path ends with the session
    assert counts[(("/", "/pricing", "/signup"), True)] >= 1  # reload-s
    raw = as_counts(j.get("", steps=4, start="/", collapse_repeats="false", limit=100, **DAY))
    assert (("/", "/pricing", "/pricing", "/signup"), True) in raw
    assert (
        raw.get((("/", "/pricing", "/signup"), True), 0) == counts[(("/", "/pricing", "/signup"), True)] - 1
    )


def test_two_views_at_one_instant_are_two_steps_and_a_copy_is_none(j: J) -> None:
    """On 20 March (no other session): twin-s views /pricing twice at the same instant (two event ids), then
    /signup; copy-s views /docs/x and /signup, and its /docs/x is delivered three times (one event id). Without
    collapsing, the twin is two steps and the copies one; collapsed, the twin is one step too."""
    at = jd.berlin(2024, 3, 20, 10, 0)
    twin = [jd._ev(900_001, at, "twin-s", "/pricing"), jd._ev(900_002, at, "twin-s", "/pricing")]
    twin.append(jd._ev(900_003, at + timedelta(seconds=30), "twin-s", "/signup"))
    copy = [jd._ev(900_004, at + timedelta(minutes=5), "copy-s", "/docs/x")]
    copy.append(jd._ev(900_005, at + timedelta(minutes=6), "copy-s", "/signup"))
    j.store.insert_rows("events", twin + copy)
    j.store.insert_rows("events", copy[:1])  # replayed deliveries of one event
    j.store.insert_rows("events", copy[:1])
    day = {"period": "custom", "from": "2024-03-20", "to": "2024-03-20"}
    raw = as_counts(j.get("", steps=4, collapse_repeats="false", **day))
    assert raw == {(("/pricing", "/pricing", "/signup"), True): 1, (("/docs/x", "/signup"), True): 1}
    collapsed = as_counts(j.get("", steps=4, **day))
    assert collapsed == {(("/pricing", "/signup"), True): 1, (("/docs/x", "/signup"), True): 1}
    assert as_counts(j.get("", steps=2, start="/docs/x", collapse_repeats="false", **day)) == {
        (("/docs/x", "/signup"), True): 1
    }


def test_back_and_forth_keeps_every_step(j: J) -> None:
    body = j.get("", steps=5, start="/", limit=100, **DAY)
    assert as_counts(body).get((("/", "/blog/a", "/", "/blog/b", "/pricing"), True)) is not None
    # next pages from /: the first view of / only (backforth-s goes to /blog/a, not /blog/b as well)
    nxt = j.get("/next", page="/", limit=100, **DAY)
    paths = jd.session_paths(j.events, jd.BERLIN, date(2024, 3, 5), date(2024, 3, 5))
    after = [p[p.index("/") + 1] for p in paths if "/" in p and p.index("/") + 1 < len(p)]
    assert {x["page"]: x["sessions"] for x in nxt["pages"]} == {pg: after.count(pg) for pg in set(after)}
    assert nxt["sessions"] == sum(1 for p in paths if "/" in p)
    assert nxt["dropoff"] == sum(1 for p in paths if p and p[-1] == "/" and p.index("/") == len(p) - 1)


def test_session_crossing_midnight_counts_on_its_first_day_only(j: J) -> None:
    """midnight-s: / at 23:50 and /docs/x at 23:58 on 5 March, /night at 00:06 on the 6th (Berlin): a 5 March
    session with all three pages. before-s: /docs/x at 23:55 on 4 March, /late at 00:05 on the 5th."""
    day6 = {"period": "custom", "from": "2024-03-06", "to": "2024-03-06"}
    day4 = {"period": "custom", "from": "2024-03-04", "to": "2024-03-04"}
    assert as_counts(j.get("", steps=3, end="/night", **DAY)) == {(("/", "/docs/x", "/night"), True): 1}
    assert as_counts(j.get("", steps=2, start="/night", **DAY)) == {(("/night",), True): 1}
    six = j.get("", steps=3, end="/night", **day6)  # /night was viewed on the 6th, by a session of the 5th
    assert six["sessions"] == 0 and six["paths"] == []
    assert j.get("", steps=2, start="/late", **DAY)["sessions"] == 0
    assert as_counts(j.get("", steps=2, end="/late", **day4)) == {(("/docs/x", "/late"), True): 1}
    assert j.get("/previous", page="/late", **day4)["pages"] == [
        {"page": "/docs/x", "sessions": 1, "percent": 100.0}
    ]
    # New York and Delhi: the same instants fall on other local days
    ny = j.get("", site="ny.example", steps=3, end="/night", **DAY)
    assert as_counts(ny) == {(("/", "/docs/x", "/night"), True): 1}  # 17:50 .. 18:06 on 5 March in New York
    delhi = {"period": "custom", "from": "2024-03-06", "to": "2024-03-06"}
    assert as_counts(j.get("", site="delhi.example", steps=3, end="/night", **delhi)) == {
        (("/", "/docs/x", "/night"), True): 1
    }  # 04:20 .. 04:36 on 6 March in Delhi


def test_handmade_exact_figures(j: J) -> None:
    """Literal values for the Berlin day, with the random sessions filtered out (browser is Firefox for all;
    the hand-made ones are the only sessions whose visitor id has no digit)."""
    flt = json.dumps([["country", "is_not", "US"], ["hostname", "is", jd.BERLIN]])
    body = j.get("", steps=3, end="/signup", filters=flt, limit=100, per_step=50, **DAY)
    paths = jd.session_paths(
        j.events, jd.BERLIN, date(2024, 3, 5), date(2024, 3, 5), pred=lambda e: e["country"] != "US"
    )
    assert as_counts(body) == jd.shaped(paths, 3, None, "/signup")
    hand = [p for p in paths]
    assert ["/", "/pricing", "/signup"] in hand and ["/blog/a", "/blog/b", "/signup"] in hand
    # the tie: /pricing (the smaller event id) and /docs/x at one instant go as /docs/x, /pricing
    tie = j.get("", steps=2, end="/pricing", limit=100, **DAY)
    assert as_counts(tie).get((("/docs/x", "/pricing"), True), 0) >= 1
    assert (("/pricing", "/docs/x"), True) not in as_counts(
        j.get("", steps=2, start="/pricing", limit=100, **DAY)
    )


# -- every mode against the reference, three zones, both engines ------------------------------------

MODES = jd.MODE_CASES


@pytest.mark.parametrize("site", list(jd.ZONES))
@pytest.mark.parametrize("steps,start,end", MODES)
@pytest.mark.parametrize("collapse", [True, False])
def test_paths_and_columns_equal_the_reference(
    j: J, site: str, steps: int, start: str | None, end: str | None, collapse: bool
) -> None:
    groups = ["/blog/*"] if start == "/blog/*" else []
    params: dict[str, Any] = {
        "steps": steps,
        "limit": 100,
        "per_step": 50,
        "collapse_repeats": str(collapse).lower(),
    }
    if start:
        params["start"] = start
    if end:
        params["end"] = end
    body = j.get("", site=site, **params, **FOUR)
    paths = jd.session_paths(
        j.events, site, date(2024, 3, 4), date(2024, 3, 7), groups=groups, collapse=collapse
    )
    expected = jd.shaped(paths, steps, start, end)
    assert sum(expected.values()) > 5
    top = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))[:100]
    assert [((tuple(p["pages"]), p["complete"]), p["sessions"]) for p in body["paths"]] == top
    assert body["sessions"] == sum(expected.values())
    cols = jd.columns(expected, steps, right=bool(end) and not start)
    assert [{n["page"]: n["sessions"] for n in c["nodes"]} for c in body["columns"]] == cols
    assert body["timezone"] == jd.ZONES[site]


def test_three_zones_give_three_answers(j: J) -> None:
    """The same events, three zones: each site's 5 March holds other sessions, as the reference says."""
    got, want = [], []
    for site in jd.ZONES:
        got.append(as_counts(j.get("", site=site, steps=3, limit=100, **DAY)))
        want.append(
            jd.shaped(jd.session_paths(j.events, site, date(2024, 3, 5), date(2024, 3, 5)), 3, None, None)
        )
    assert got == want
    assert got[0] != got[1] and got[1] != got[2] and got[0] != got[2]


def test_filters_select_whole_sessions(j: J) -> None:
    """A page filter keeps the whole path of sessions that viewed the page; an event filter those with the event."""
    flt = json.dumps([["page", "is", "/docs/x"]])
    body = j.get("", steps=4, filters=flt, limit=100, **FOUR)
    paths = jd.session_paths(
        j.events, jd.BERLIN, date(2024, 3, 4), date(2024, 3, 7), pred=lambda e: e["path"] == "/docs/x"
    )
    assert as_counts(body) == jd.shaped(paths, 4, None, None)
    assert any(p[0] != "/docs/x" for p in paths)
    flt = json.dumps([["event", "is", "signup"], ["prop:plan", "is", "pro"]])
    body = j.get("", steps=3, filters=flt, limit=100, **DAY)
    assert as_counts(body) == {(("/pricing", "/signup"), True): 1}


def test_bots_only_when_asked(j: J) -> None:
    plain = j.get("", steps=2, start="/", limit=100, **DAY)
    bots = j.get("", steps=2, start="/", limit=100, include_bots="true", **DAY)
    assert bots["sessions"] == plain["sessions"] + 1


def test_groups_fold_pages_and_other_node(j: J) -> None:
    body = j.get("", steps=3, groups=json.dumps(["/blog/*", "/docs/*"]), per_step=2, limit=100, **FOUR)
    paths = jd.session_paths(
        j.events, jd.BERLIN, date(2024, 3, 4), date(2024, 3, 7), groups=["/blog/*", "/docs/*"]
    )
    expected = jd.shaped(paths, 3, None, None)
    assert as_counts(body) == expected
    cols = jd.columns(expected, 3, right=False)
    for c, col in zip(body["columns"], cols, strict=True):
        ranked = sorted(col.items(), key=lambda kv: (-kv[1], kv[0]))
        named = [n for n in c["nodes"] if n["page"] is not None]
        assert [(n["page"], n["sessions"]) for n in named] == ranked[:2]
        other = [n for n in c["nodes"] if n["page"] is None]
        assert sum(v for _, v in ranked[2:]) == (other[0]["sessions"] if other else 0)
    # links out of a step plus its drop-off never exceed the sessions at that step
    for c in body["columns"][:-1]:
        for node in c["nodes"]:
            out = sum(
                x["sessions"] for x in body["links"] if x["step"] == c["step"] and x["source"] == node["page"]
            )
            assert out + node["dropoff"] == node["sessions"]
    assert "/blog/a" not in json.dumps(body)


def test_previous_pages_and_entries(j: J) -> None:
    body = j.get("/previous", page="/signup", limit=1, **FOUR)
    paths = jd.session_paths(j.events, jd.BERLIN, date(2024, 3, 4), date(2024, 3, 7))
    before = [p[p.index("/signup") - 1] for p in paths if "/signup" in p and p.index("/signup") > 0]
    counts = {pg: before.count(pg) for pg in set(before)}
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(x["page"], x["sessions"]) for x in body["pages"]] == top[:1]
    assert body["other"]["sessions"] == sum(v for _, v in top[1:])
    assert body["dropoff"] == sum(1 for p in paths if p and p[0] == "/signup")
    assert body["sessions"] == sum(1 for p in paths if "/signup" in p)


# -- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params,status,code",
    [
        ({"steps": 1}, 400, "invalid_journey"),
        ({"steps": 7}, 400, "invalid_journey"),
        ({"steps": "x"}, 422, "invalid_request"),
        ({"limit": 0}, 400, "invalid_journey"),
        ({"per_step": 51}, 400, "invalid_journey"),
        ({"start": "pricing"}, 400, "invalid_pattern"),
        ({"start": "/a", "end": "/a"}, 400, "invalid_journey"),
        ({"groups": "[1]"}, 400, "invalid_pattern"),
        ({"groups": "/blog/*"}, 400, "invalid_pattern"),
        ({"groups": json.dumps(["blog*"])}, 400, "invalid_pattern"),
        ({"groups": json.dumps(["/x\u0001"])}, 400, "invalid_pattern"),
        ({"groups": json.dumps([f"/{i}" for i in range(21)])}, 400, "invalid_pattern"),
        ({"start": "/nowhere"}, 404, "unknown_page"),
        ({"end": "/nowhere/*"}, 404, "unknown_page"),
        ({"start": "/blog/a", "groups": json.dumps(["/blog/*"])}, 400, "invalid_journey"),
        ({"filters": "[[1]]"}, 400, "invalid_filter"),
        ({"period": "custom", "from": "2024-13-01", "to": "2024-03-05"}, 400, "invalid_range"),
    ],
)
def test_bad_input_is_a_clear_4xx(j: J, params: dict[str, Any], status: int, code: str | None) -> None:
    query = {**DAY, **params}
    body = j.get("", status=status, **query)
    if code:
        assert body["error"] == code, body
    assert body["detail"]


def test_neighbours_bad_input(j: J) -> None:
    assert j.get("/next", status=404, page="/nowhere", **DAY)["error"] == "unknown_page"
    assert j.get("/previous", status=400, page="nowhere", **DAY)["error"] == "invalid_pattern"
    assert j.get("/next", status=400, page="/", limit=101, **DAY)["error"] == "invalid_journey"
    assert j.get("/next", status=422, **DAY)["error"] == "invalid_request"


def test_openapi_documents_the_routes_with_models(j: J) -> None:
    spec = j.client.get("/api/openapi.json").json()
    for path in ("", "/next", "/previous"):
        op = spec["paths"][f"/api/sites/{{site_id}}/reports/journeys{path}"]["get"]
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema["$ref"].split("/")[-1] in ("JourneysOut", "NeighboursOut")
        names = {p["name"] for p in op["parameters"]}
        assert {"period", "filters", "groups", "collapse_repeats"} <= names
    assert "columns" in spec["components"]["schemas"]["JourneysOut"]["properties"]


# -- any parameters: a 200 that adds up, or a clear 4xx, never a 500 ----------------------------------

PAGE_TEXT = st.one_of(
    st.sampled_from(["/", "/pricing", "/signup", "/blog/*", "/blog/a", "/docs/*", "/nowhere", "*", ""]),
    st.text(max_size=12),
)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.integers(min_value=-1, max_value=8),
    start=st.none() | PAGE_TEXT,
    end=st.none() | PAGE_TEXT,
    groups=st.none() | st.lists(PAGE_TEXT, max_size=3).map(json.dumps) | st.text(max_size=8),
    collapse=st.booleans(),
    limit=st.integers(min_value=-1, max_value=120),
    per_step=st.integers(min_value=0, max_value=60),
    flt=st.sampled_from(["", json.dumps([["country", "is", "DE"]]), json.dumps([["page", "matches", "("]])]),
)
def test_any_parameters_never_500(
    j: J,
    steps: int,
    start: str | None,
    end: str | None,
    groups: str | None,
    collapse: bool,
    limit: int,
    per_step: int,
    flt: str,
) -> None:
    params: dict[str, Any] = {**FOUR, "steps": steps, "collapse_repeats": str(collapse).lower()}
    params.update({"limit": limit, "per_step": per_step, "filters": flt})
    for name, value in (("start", start), ("end", end), ("groups", groups)):
        if value is not None:
            params[name] = value
    r = j.client.get(f"/api/sites/{j.site_ids[jd.BERLIN]}/reports/journeys", params=params, headers=j.headers)
    assert r.status_code in (200, 400, 404, 422), r.text
    body = r.json()
    if r.status_code != 200:
        assert body["error"] and body["detail"]
        return
    cols = body["columns"]
    edge = cols[-1] if body["mode"] == "end" else cols[0]
    assert sum(n["sessions"] for n in edge["nodes"]) == body["sessions"]
    for c in cols[:-1]:
        for node in c["nodes"]:
            out = sum(
                x["sessions"] for x in body["links"] if x["step"] == c["step"] and x["source"] == node["page"]
            )
            if body["mode"] != "end":
                assert out + node["dropoff"] == node["sessions"]
    nxt = j.client.get(
        f"/api/sites/{j.site_ids[jd.BERLIN]}/reports/journeys/next",
        params={**FOUR, "page": start or "/", "limit": max(limit, 1), "filters": flt},
        headers=j.headers,
    )
    assert nxt.status_code in (200, 400, 404, 422), nxt.text
