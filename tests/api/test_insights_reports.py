"""The insight reports against generated events, on both engines and in three time zones: every figure equals
the independent Python computation of `insights_dataset`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from tests.api import insights_dataset as data
from tests.api.conftest import Api
from tests.api.conftest import report as get

ENGINES = ("chdb", "clickhouse")
RANGE = {"period": "custom", "from": data.FIRST_DAY.isoformat(), "to": data.LAST_DAY.isoformat()}
DE = '[["country", "is", "DE"]]'


def is_de(e: dict[str, Any]) -> bool:
    return bool(e["country"] == "DE")


@pytest.fixture(scope="module")
def sites(api: Api) -> Iterator[dict[str, tuple[int, str]]]:
    """domain -> (site id, zone), each site holding the same generated events."""
    out = {}
    api.store.insert_rows("events", [e for site in data.ZONES for e in data.generate(site)])
    api.store.insert_rows("events", [e for site in data.ZONES for e in data.noise(site)])
    # a replayed delivery of every site's first 300 events (client retries): they must never count twice; merges
    # are stopped so that the copies stay in their own parts (a merge would collapse them before any report ran)
    api.store.command("SYSTEM STOP MERGES events")
    api.store.insert_rows("events", [e for site in data.ZONES for e in data.generate(site)[:300]])
    for domain, tz in data.ZONES.items():
        r = api.client.post("/api/sites", json={"domain": domain, "timezone": tz}, headers=api.admin)
        assert r.status_code == 201, r.text
        out[domain] = (r.json()["id"], tz)
    yield out


def everything(api: Api, site_id: int, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a paged report, asked in pages of 3 (so paging is exercised too)."""
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        body = get(api, site_id, path, limit=3, page=page, **params)
        rows += body["rows"]
        if len(rows) >= body["total_rows"] or not body["rows"]:
            return rows
        page += 1


def events_of(domain: str, tz: str, pred: Any = None) -> list[dict[str, Any]]:
    return data.select(data.generate(domain), domain, tz, pred=pred)


def test_engagement_per_page(api: Api, sites: dict[str, tuple[int, str]]) -> None:
    for domain, (site_id, tz) in sites.items():
        for filters, pred in ((None, None), (DE, is_de)):
            params = {**RANGE, **({"filters": filters} if filters else {})}
            expected = data.engagement(events_of(domain, tz, pred))
            rows = everything(api, site_id, "engagement", **params)
            assert {r["page"]: r for r in rows} == expected, (domain, filters)
            assert [r["page"] for r in rows] == sorted(expected, key=lambda p: (-expected[p]["visitors"], p))
    # the figures are not trivial: quantiles, scroll shares and both rates vary across pages
    values = data.engagement(events_of("berlin.insights", "Europe/Berlin"))
    assert len({v["p75_engaged_ms"] for v in values.values()}) > 2
    assert len({v["scroll"]["reached_50"] for v in values.values()}) > 2
    assert any(v["bounce_rate"] for v in values.values()) and any(v["exit_rate"] for v in values.values())


@pytest.mark.parametrize(
    "sort",
    ["pageviews", "median_engaged_ms", "p75_engaged_ms", "bounce_rate", "exit_rate", "scroll_75", "page"],
)
def test_engagement_sorts(api: Api, sites: dict[str, tuple[int, str]], sort: str) -> None:
    site_id, tz = sites["kolkata.insights"]
    expected = data.engagement(events_of("kolkata.insights", tz))

    def key(row: dict[str, Any]) -> Any:
        if sort == "scroll_75":
            s = row["scroll"]
            return s["reached_75"] if s["visits"] else None
        return row[sort]

    for order in ("asc", "desc"):
        rows = everything(api, site_id, "engagement", sort=sort, order=order, **RANGE)
        got = [key(r) for r in rows]
        present = sorted((key(r) for r in expected.values() if key(r) is not None), reverse=order == "desc")
        assert got == present + [None] * (len(got) - len(present)), (sort, order)


def test_content_reports(api: Api, sites: dict[str, tuple[int, str]]) -> None:
    for domain, (site_id, tz) in sites.items():
        for filters, pred in ((None, None), (DE, is_de)):
            params = {**RANGE, **({"filters": filters} if filters else {})}
            evs = events_of(domain, tz, pred)
            links = data.counted(evs, "outbound", lambda e: e["props"]["url"])
            assert {
                r["url"]: (r["clicks"], r["visitors"]) for r in everything(api, site_id, "outbound", **params)
            } == links
            files = data.counted(evs, "download", lambda e: e["props"]["url"])
            got = everything(api, site_id, "downloads", **params)
            assert {r["file"]: (r["downloads"], r["visitors"]) for r in got} == files
            assert [r["downloads"] for r in got] == sorted((n for n, _ in files.values()), reverse=True)
            got_forms = everything(api, site_id, "forms", **params)
            assert {(r["form_id"], r["action"]): r for r in got_forms} == data.forms(evs)
            got_404 = everything(api, site_id, "not-found", **params)
            assert {r["page"]: r for r in got_404} == data.not_found(evs)
            assert len(links) >= 2 and len(data.forms(evs)) >= 2 or filters, domain
    site_id, tz = sites["berlin.insights"]
    assert data.not_found(events_of("berlin.insights", tz))  # the data has 404 pages with referrers


def test_performance(api: Api, sites: dict[str, tuple[int, str]]) -> None:
    for domain, (site_id, tz) in sites.items():
        evs = events_of(domain, tz)
        body = get(api, site_id, "performance", **RANGE)
        assert body["overall"] == data.vitals(evs), domain
        by_device = data.vitals_by(evs, "device_type")
        assert {r.pop("device"): r for r in body["by_device"]} == by_device
        assert [r["samples"] for r in body["by_device"]] == sorted(
            (v["samples"] for v in by_device.values()), reverse=True
        )
        pages = everything(api, site_id, "performance/pages", **RANGE)
        assert {r.pop("page"): r for r in pages} == data.vitals_by(evs, "path")
        series = get(api, site_id, "performance/timeseries", interval="day", **RANGE)
        assert [p["bucket"] for p in series["points"]] == data.days()
        for point in series["points"]:
            day = data.vitals([e for e in evs if data.local_day(e, tz) == point["bucket"]])
            assert point == {
                "bucket": point["bucket"],
                "samples": day["samples"],
                **{m: day[m]["p75"] for m in data.VITALS},
            }
        filtered = get(api, site_id, "performance", filters=DE, **RANGE)
        assert filtered["overall"] == data.vitals(events_of(domain, tz, is_de))
    overall = data.vitals(events_of("berlin.insights", "Europe/Berlin"))
    assert all(
        overall[m]["good"] and overall[m]["poor"] and overall[m]["needs_improvement"] for m in data.VITALS
    )


def test_performance_sorted_by_a_metric(api: Api, sites: dict[str, tuple[int, str]]) -> None:
    site_id, tz = sites["newyork.insights"]
    expected = data.vitals_by(events_of("newyork.insights", tz), "path")
    rows = everything(api, site_id, "performance/pages", sort="lcp", order="asc", **RANGE)
    assert [r["page"] for r in rows] == sorted(expected, key=lambda p: (expected[p]["lcp"]["p75"], p))


def test_errors(api: Api, sites: dict[str, tuple[int, str]]) -> None:
    for domain, (site_id, tz) in sites.items():
        evs = events_of(domain, tz)
        expected = data.errors(evs)
        rows = everything(api, site_id, "errors", **RANGE)
        assert {(r["message"], r["source"], r["line"]): r for r in rows} == expected, domain
        assert [r["count"] for r in rows] == sorted((g["count"] for g in expected.values()), reverse=True)
        assert len(expected) == 3  # "boom" on two lines: two groups
        series = get(api, site_id, "errors/timeseries", interval="day", **RANGE)
        for point in series["points"]:
            day = [e for e in evs if e["event_name"] == "error" and data.local_day(e, tz) == point["bucket"]]
            assert point == {
                "bucket": point["bucket"],
                "errors": len(day),
                "visitors": len({e["visitor_id"] for e in day}),
            }
        assert sum(p["errors"] for p in series["points"]) == sum(g["count"] for g in expected.values())


def test_revenue_in_one_currency(api: Api, sites: dict[str, tuple[int, str]]) -> None:
    for domain, (site_id, tz) in sites.items():
        evs = events_of(domain, tz)
        per_currency = data.currencies(evs)
        assert set(per_currency) == {"EUR", "USD"}
        for dimension, key in (("source", "source"), ("utm_campaign", "utm_campaign"), ("page", "path")):
            for currency in ("EUR", "usd"):
                body = get(api, site_id, f"revenue/{dimension}", currency=currency, limit=100, **RANGE)
                code = currency.upper()
                assert body["currency"] == code
                assert {r["value"]: r for r in body["rows"]} == data.revenue(evs, key, code), (
                    domain,
                    dimension,
                )
                assert body["totals"] == per_currency[code]
                other = "USD" if code == "EUR" else "EUR"
                assert body["other_currencies"] == [{"currency": other, **per_currency[other]}]
        # amounts are exact decimals: 0.3333 and 1000.0001 add up to the last digit
        assert all(len(v["revenue"].split(".")[1]) == 4 for v in per_currency.values())


def test_revenue_currency_mix_and_reporting_currency(api: Api, sites: dict[str, tuple[int, str]]) -> None:
    site_id, tz = sites["berlin.insights"]
    path = f"/api/sites/{site_id}/reports/revenue/channel"
    r = api.client.get(path, params=RANGE, headers=api.admin)
    assert r.status_code == 400 and r.json()["error"] == "currency_mix"
    assert "EUR, USD" in r.json()["detail"]
    for bad in ("EURO", "XXX", "€", "12"):
        r = api.client.get(path, params={**RANGE, "currency": bad}, headers=api.admin)
        assert r.status_code == 400 and r.json()["error"] == "invalid_currency", bad
    r = api.client.patch(f"/api/sites/{site_id}", json={"currency": "XYZ"}, headers=api.admin)
    assert r.status_code == 422
    r = api.client.patch(f"/api/sites/{site_id}", json={"currency": "usd"}, headers=api.admin)
    assert r.status_code == 200 and r.json()["currency"] == "USD"
    try:
        body = get(api, site_id, "revenue/channel", **RANGE)
        assert body["currency"] == "USD"
        assert body["totals"] == data.currencies(events_of("berlin.insights", tz))["USD"]
        assert get(api, site_id, "revenue/channel", currency="EUR", **RANGE)["currency"] == "EUR"
    finally:
        r = api.client.patch(f"/api/sites/{site_id}", json={"currency": ""}, headers=api.admin)
        assert r.json()["currency"] == ""
    # one currency in the range: it is the report's without being asked
    only_eur = get(
        api,
        site_id,
        "revenue/page",
        filters='[["page", "is", "/checkout"]]',
        period="custom",
        **{"from": "2024-03-04", "to": "2024-03-04"},
    )
    evs = data.select(
        data.generate("berlin.insights"), "berlin.insights", tz, date(2024, 3, 4), date(2024, 3, 4)
    )
    present = data.currencies(evs)
    if len(present) == 1:
        assert only_eur["currency"] == next(iter(present))
    # session dimensions and unknown ones are refused with the reason
    for dimension, code in (("entry_page", "invalid_dimension"), ("nope", "invalid_dimension")):
        r = api.client.get(
            f"/api/sites/{site_id}/reports/revenue/{dimension}",
            params={**RANGE, "currency": "EUR"},
            headers=api.admin,
        )
        assert r.status_code == 400 and r.json()["error"] == code


def test_a_site_without_events_answers_empty(api: Api) -> None:
    r = api.client.post(
        "/api/sites", json={"domain": "empty.insights", "timezone": "Pacific/Chatham"}, headers=api.admin
    )
    site_id = r.json()["id"]
    for path in ("engagement", "outbound", "downloads", "forms", "not-found", "performance/pages", "errors"):
        body = get(api, site_id, path, **RANGE)
        assert body["rows"] == [] and body["total_rows"] == 0, path
    perf = get(api, site_id, "performance", **RANGE)
    assert perf["by_device"] == [] and perf["overall"]["samples"] == 0
    assert perf["overall"]["lcp"] == {
        "p75": None,
        "samples": 0,
        "good": None,
        "needs_improvement": None,
        "poor": None,
    }
    assert all(p["lcp"] is None for p in get(api, site_id, "performance/timeseries", **RANGE)["points"])
    assert all(p["errors"] == 0 for p in get(api, site_id, "errors/timeseries", **RANGE)["points"])
    body = get(api, site_id, "revenue/source", **RANGE)
    assert body["currency"] is None and body["rows"] == [] and body["other_currencies"] == []
    assert body["totals"] == {
        "revenue": "0.0000",
        "orders": 0,
        "refunds": 0,
        "average_order_value": None,
        "visitors": 0,
    }


def test_retention_in_three_zones(api: Api, sites: dict[str, tuple[int, str]]) -> None:
    for domain, (site_id, tz) in sites.items():
        evs = events_of(domain, tz)
        body = get(api, site_id, "retention", **RANGE)
        weeks = [c["cohort"] for c in body["cohorts"]]
        assert weeks == ["2024-03-04", "2024-03-11"]
        activity: dict[str, set[str]] = {}
        for e in evs:
            d = date.fromisoformat(data.local_day(e, tz))
            activity.setdefault(e["visitor_id"], set()).add((d - timedelta(days=d.weekday())).isoformat())
        for i, cohort in enumerate(body["cohorts"]):
            members = [a for a in activity.values() if min(a) == weeks[i]]
            counts = [sum(weeks[i + k] in a for a in members) for k in range(len(weeks) - i)]
            assert cohort["visitors"] == len(members) and cohort["weeks"] == counts, (domain, cohort)
            assert cohort["percent"] == [
                round(c * 100.0 / len(members), 1) if members else 0.0 for c in counts
            ]
        assert body["cohorts"][0]["weeks"][1] > 0  # returning visitors in the data set
