"""Careless and hostile parameters on the insight reports: a 4xx with the reason or an answer, never a 500."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Api

PATHS = [
    "engagement",
    "outbound",
    "downloads",
    "forms",
    "not-found",
    "performance",
    "performance/pages",
    "performance/timeseries",
    "errors",
    "errors/timeseries",
    "revenue/source",
    "revenue/page",
    "revenue/prop:plan",
    "revenue/entry_page",
    "revenue/nonsense",
]
SORTS = [
    "visitors",
    "pageviews",
    "clicks",
    "count",
    "revenue",
    "lcp",
    "p75_engaged_ms",
    "value",
    "x; DROP",
    "",
]
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
params = st.fixed_dictionaries(
    {},
    optional={
        "period": st.sampled_from(["7d", "30d", "custom", "realtime", "today", "12mo", "bogus"]),
        "from": st.sampled_from(["2024-03-01", "2024-02-30", "x"]),
        "to": st.sampled_from(["2024-03-20", "2023-01-01"]),
        "sort": st.sampled_from(SORTS) | text,
        "order": st.sampled_from(["asc", "desc", "sideways"]),
        "limit": st.sampled_from(["1", "1000", "0", "1001", "-5", "abc"]),
        "page": st.sampled_from(["1", "2", "100000", "0"]),
        "interval": st.sampled_from(["day", "hour", "minute", "week", "month", "fortnight"]),
        "currency": st.sampled_from(["EUR", "usd", "XXX", "", "€", "EURO"]) | text,
        "filters": st.sampled_from(
            ['[["country","is","DE"]]', '[["nope","is","x"]]', "[", '[["page","matches","("]]']
        ),
        "include_bots": st.sampled_from(["true", "false", "maybe"]),
    },
)


def test_any_parameters_answer_or_refuse_with_a_reason(api: Api) -> None:
    seen: set[int] = set()

    @given(path=st.sampled_from(PATHS), query=params)
    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(path: str, query: dict[str, Any]) -> None:
        r = api.client.get(f"/api/sites/{api.site_id}/reports/{path}", params=query, headers=api.admin)
        seen.add(r.status_code)
        assert r.status_code in (200, 400, 422), (path, query, r.status_code, r.text)
        if r.status_code != 200:
            body = r.json()
            assert set(body) == {"error", "detail"} and body["detail"], (path, query, body)

    run()
    assert {200, 400, 422} <= seen


def test_unknown_dimension_and_sort_name_the_valid_ones(api: Api) -> None:
    base = f"/api/sites/{api.site_id}/reports"
    r = api.client.get(f"{base}/revenue/planet", headers=api.admin)
    assert (
        r.status_code == 400
        and r.json()["error"] == "invalid_dimension"
        and "utm_campaign" in r.json()["detail"]
    )
    r = api.client.get(f"{base}/engagement", params={"sort": "speed"}, headers=api.admin)
    assert r.status_code == 400 and r.json()["error"] == "invalid_sort"
    assert "median_engaged_ms" in r.json()["detail"]
    r = api.client.get(
        f"{base}/errors/timeseries", params={"interval": "minute", "period": "12mo"}, headers=api.admin
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_interval"
    r = api.client.get(f"{base}/forms", params={"page": "100000", "limit": "1000"}, headers=api.admin)
    assert r.status_code == 400 and r.json()["error"] == "invalid_pagination"
    other = f"/api/sites/{api.other_site_id}/reports/engagement"
    viewer = api.headers("viewer", "viewer-password-123")
    assert api.client.get(other, headers=viewer).status_code in (403, 404)
