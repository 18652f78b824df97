"""Sites CRUD with validation, the snippet, saved dashboards, error shape and OpenAPI."""

from __future__ import annotations

from tests.api.conftest import VIEWER_PASSWORD, Api


def test_site_crud_and_validation(api: Api) -> None:
    body = {
        "domain": "Blog.Example",
        "timezone": "America/New_York",
        "allowed_origins": ["https://blog.example"],
        "honour_dnt": False,
        "excluded_paths": ["/admin/*"],
        "excluded_ips": ["10.0.0.1", "192.168.0.0/16"],
        "retention_days": 400,
    }
    r = api.client.post("/api/sites", json=body, headers=api.admin)
    assert r.status_code == 201, r.text
    site = r.json()
    assert site["domain"] == "blog.example" and site["name"] == "blog.example"
    assert site["excluded_ips"] == ["10.0.0.1/32", "192.168.0.0/16"] and site["honour_gpc"] is True
    assert (
        api.client.post("/api/sites", json={"domain": "blog.example"}, headers=api.admin).status_code == 409
    )
    r = api.client.patch(
        f"/api/sites/{site['id']}", json={"timezone": "Asia/Kolkata", "name": "Blog"}, headers=api.admin
    )
    assert (r.json()["timezone"], r.json()["name"], r.json()["retention_days"]) == (
        "Asia/Kolkata",
        "Blog",
        400,
    )
    assert api.client.get(f"/api/sites/{site['id']}", headers=api.admin).json()["timezone"] == "Asia/Kolkata"
    bad = [
        {"domain": "not a domain"},
        {"domain": "x.example", "timezone": "Mars/Base"},
        {"domain": "x.example", "allowed_origins": ["ftp://x"]},
        {"domain": "x.example", "excluded_ips": ["999.1.1.1"]},
        {"domain": "x.example", "excluded_paths": ["admin"]},
        {"domain": "x.example", "retention_days": -1},
        {"domain": "x.example", "unknown": 1},
    ]
    for item in bad:
        r = api.client.post("/api/sites", json=item, headers=api.admin)
        assert r.status_code == 422 and r.json()["error"] == "invalid_request" and r.json()["detail"], item
    listed = api.client.get("/api/sites", params={"sort": "domain", "limit": 2}, headers=api.admin).json()
    assert listed["total"] == 3 and [s["domain"] for s in listed["items"]] == [
        "blog.example",
        "other.example",
    ]
    page2 = api.client.get(
        "/api/sites", params={"sort": "domain", "limit": 2, "page": 2}, headers=api.admin
    ).json()
    assert [s["domain"] for s in page2["items"]] == ["shop.example"]
    assert (
        api.client.get("/api/sites", params={"sort": "password"}, headers=api.admin).json()["error"]
        == "invalid_sort"
    )
    assert api.client.delete(f"/api/sites/{site['id']}", headers=api.admin).status_code == 204
    r = api.client.get(f"/api/sites/{site['id']}", headers=api.admin)
    assert r.status_code == 404 and r.json() == {"error": "not_found", "detail": "site not found"}


def test_snippet(api: Api) -> None:
    r = api.client.get(f"/api/sites/{api.site_id}/snippet", headers=api.admin)
    assert r.json()["html"] == (
        '<script defer src="http://127.0.0.1:8081/pixel.js" data-site="shop.example" '
        'data-endpoint="http://127.0.0.1:8081/track"></script>'
    )
    r = api.client.get(
        f"/api/sites/{api.site_id}/snippet",
        params={"collector_url": "https://t.shop.example/"},
        headers=api.admin,
    )
    assert 'src="https://t.shop.example/pixel.js"' in r.json()["html"]
    r = api.client.get(
        f"/api/sites/{api.site_id}/snippet",
        params={"collector_url": 'https://x"><script>'},
        headers=api.admin,
    )
    assert r.status_code == 422


WIDGETS = [
    {
        "title": "Visitors",
        "report": "summary",
        "chart": "number",
        "position": {"x": 0, "y": 0, "w": 3, "h": 2},
    },
    {
        "title": "Top pages",
        "report": "breakdown",
        "params": {"dimension": "page", "limit": 10},
        "chart": "table",
        "filters": [["country", "is", "DE"]],
        "position": {"x": 3, "y": 0, "w": 6, "h": 4},
    },
]


def test_dashboards_crud_and_viewers_read_only(api: Api) -> None:
    r = api.client.post(
        f"/api/sites/{api.site_id}/dashboards", json={"name": "Main", "widgets": WIDGETS}, headers=api.admin
    )
    assert r.status_code == 201, r.text
    board = r.json()
    assert [w["title"] for w in board["widgets"]] == ["Visitors", "Top pages"]
    assert all(len(w["id"]) == 12 for w in board["widgets"])
    assert board["widgets"][1]["filters"] == [["country", "is", "DE"]]
    viewer = api.headers("viewer", VIEWER_PASSWORD)
    got = api.client.get(f"/api/dashboards/{board['id']}", headers=viewer)
    assert got.status_code == 200 and got.json() == board
    listed = api.client.get(f"/api/sites/{api.site_id}/dashboards", headers=viewer).json()
    assert [d["name"] for d in listed["items"]] == ["Main"]
    assert (
        api.client.put(f"/api/dashboards/{board['id']}", json={"name": "x"}, headers=viewer).status_code
        == 403
    )
    assert api.client.delete(f"/api/dashboards/{board['id']}", headers=viewer).status_code == 403
    moved = [dict(WIDGETS[1], id=board["widgets"][1]["id"], position={"x": 0, "y": 0, "w": 12, "h": 4})]
    r = api.client.put(
        f"/api/dashboards/{board['id']}", json={"name": "Renamed", "widgets": moved}, headers=api.admin
    )
    assert r.status_code == 200
    assert r.json()["name"] == "Renamed" and r.json()["widgets"][0]["position"]["w"] == 12
    assert (
        r.json()["widgets"][0]["id"] == board["widgets"][1]["id"]
        and r.json()["updated_at"] >= board["updated_at"]
    )
    bad_widgets = [
        {**WIDGETS[0], "report": "sql"},
        {**WIDGETS[0], "chart": "hologram"},
        {**WIDGETS[0], "filters": [["country", "like", "DE"]]},
        {**WIDGETS[0], "position": {"x": 0, "y": 0, "w": 0, "h": 1}},
    ]
    for widget in bad_widgets:
        r = api.client.post(
            f"/api/sites/{api.site_id}/dashboards",
            json={"name": "Bad", "widgets": [widget]},
            headers=api.admin,
        )
        assert r.status_code == 422 and r.json()["error"] == "invalid_request", widget
    assert api.client.delete(f"/api/dashboards/{board['id']}", headers=api.admin).status_code == 204
    assert api.client.get(f"/api/dashboards/{board['id']}", headers=api.admin).status_code == 404


def test_dashboards_are_scoped_to_visible_sites(api: Api) -> None:
    r = api.client.post(
        f"/api/sites/{api.other_site_id}/dashboards", json={"name": "Hidden"}, headers=api.admin
    )
    board = r.json()
    viewer = api.headers("viewer", VIEWER_PASSWORD)
    assert api.client.get(f"/api/dashboards/{board['id']}", headers=viewer).status_code == 404
    api.client.delete(f"/api/dashboards/{board['id']}", headers=api.admin)


def test_openapi_docs_and_unknown_paths(api: Api) -> None:
    assert api.client.get("/api/docs").status_code == 404  # no page loading Swagger UI from a CDN
    schema = api.client.get("/api/openapi.json").json()
    assert schema["info"]["title"] == "Pixel Analytics API"
    assert "/api/sites/{site_id}/reports/breakdown/{dimension}" in schema["paths"]
    r = api.client.get("/api/nothing-here", headers=api.admin)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = api.client.put("/api/health")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
