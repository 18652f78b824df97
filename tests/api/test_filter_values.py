"""Filter values the store cannot hold or compare (unpaired surrogates, NUL, overlong, wrong types) are a
400 naming the filter on every report that takes filters, never a 500; other text is answered."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixel.server.api.errors import ApiError
from pixel.server.api.query.runner import QueryRunner
from tests.api.conftest import Api

ENGINES = ("chdb", "clickhouse")
WEEK = {"period": "custom", "from": "2024-03-04", "to": "2024-03-10"}
ENDPOINTS = [
    "summary",
    "timeseries",
    "breakdown/page",
    "breakdown/entry_page",
    "breakdown/prop:plan",
    "dashboard",
    "realtime",
    "goals",
    "retention",
    'funnel?steps=[{"kind":"page","page_pattern":"/"},{"kind":"page","page_pattern":"/pricing"}]',
]
# Filter JSON as a client sends it (ensure_ascii: a lone surrogate travels as a "\ud800" escape).
BAD = [
    ('[["page", "is", "\\ud800"]]', "unpaired surrogate (U+D800)"),
    ('[["page", "contains", "/blog\\udfff"]]', "unpaired surrogate (U+DFFF)"),
    ('[["page", "matches", "\\ud83d"]]', "unpaired surrogate (U+D83D)"),
    ('[["prop:\\ud800", "is", "x"]]', "the dimension cannot be used"),
    ('[["page", "is\\udc00", "x"]]', "the operator cannot be used"),
    ('[["country", "is", "DE"], ["page", "is", "a\\u0000b"]]', "filter 2: the value cannot be used"),
    ('[["page", "is", "' + "x" * 1001 + '"]]', "limited to 1000 characters"),
    ('[["page", "is", 5]]', "[dimension, operator, value] strings"),
    ('[["page", "is", null]]', "[dimension, operator, value] strings"),
    ('[["page", "is", ["x"]]]', "[dimension, operator, value] strings"),
    ('[["page", "is"]]', "[dimension, operator, value] strings"),
    ('{"page": "x"}', "filters must be a JSON list"),
    ('[["page", "is", "x"', "filters must be a JSON list"),
]


def report(api: Api, endpoint: str, filters: str) -> Any:
    path, _, query = endpoint.partition("?")
    params: dict[str, str] = {**WEEK, "filters": filters}
    if query:
        name, _, value = query.partition("=")
        params[name] = value
    return api.client.get(f"/api/sites/{api.site_id}/reports/{path}", params=params, headers=api.admin)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.split("?")[0])
@pytest.mark.parametrize(("filters", "reason"), BAD, ids=[f[:30] for f, _ in BAD])
def test_unusable_filter_values_are_a_400_on_every_report(
    api: Api, endpoint: str, filters: str, reason: str
) -> None:
    r = report(api, endpoint, filters)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_filter" and reason in r.json()["detail"], r.json()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.split("?")[0])
def test_unusual_but_valid_text_is_answered(api: Api, endpoint: str) -> None:
    filters = json.dumps(
        [["page", "is_not", "😀 \t\n\\ ' \" ` ; -- é \U0010ffff"], ["prop:plan", "is_not", "\x01"]]
    )
    r = report(api, endpoint, filters)
    assert r.status_code == 200, r.text


def test_a_surrogate_elsewhere_in_a_request_is_refused_before_the_store(api: Api) -> None:
    steps = '[{"kind":"page","page_pattern":"/\\ud800"},{"kind":"event","event_name":"signup"}]'
    r = api.client.get(
        f"/api/sites/{api.site_id}/reports/funnel", params={**WEEK, "steps": steps}, headers=api.admin
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_funnel", r.text
    r = api.client.post(
        "/api/sql",
        content=b'{"site_id": %d, "query": "SELECT \'\\ud800\'"}' % api.site_id,
        headers={**api.admin, "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    # and whatever the route, a value the store cannot take never reaches it
    with pytest.raises(ApiError) as refused:
        QueryRunner(api.store).query("SELECT {v:String}", {"v": "a\udfffb"})
    assert refused.value.status == 400 and refused.value.code == "invalid_value"
    assert "unpaired surrogate (U+DFFF)" in refused.value.detail


# Any text at all, surrogates and controls included.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=30) | st.sampled_from(
    ["\ud800", "a\udfffb", "\x00", "x" * 1001, "/", "/pricing"]
)


@given(value=ANY_TEXT, operator=st.sampled_from(["is", "is_not", "contains", "not_contains"]))
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_any_filter_value_is_answered_or_refused_never_500(api: Api, value: str, operator: str) -> None:
    filters = json.dumps([["page", operator, value]])  # ensure_ascii: surrogates as \u escapes
    unusable = "\x00" in value or len(value) > 1000 or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    for endpoint in ("summary", "breakdown/page", "realtime"):
        r = report(api, endpoint, filters)
        assert r.status_code == (400 if unusable else 200), (value, r.text)
        if unusable:
            assert r.json()["error"] == "invalid_filter"
    if not unusable and operator == "is" and value not in ("/", "/pricing"):
        assert report(api, "summary", filters).json()["metrics"]["pageviews"]["value"] == 0
