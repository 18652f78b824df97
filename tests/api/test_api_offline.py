"""The API works offline: no page it serves references another host (FastAPI's documentation pages load
Swagger UI / ReDoc and a favicon from CDNs, so none is served); the OpenAPI schema stays at /api/openapi.json."""

from __future__ import annotations

import re

from tests.api.conftest import Api

EXTERNAL = re.compile(
    r"(?:https?:)?//(?!testserver\b|127\.0\.0\.1\b|localhost\b)[a-z0-9.-]+\.[a-z]{2,}", re.I
)
DOC_PAGES = ("/api/docs", "/api/redoc", "/api/docs/oauth2-redirect", "/docs", "/redoc", "/api", "/api/")


def _get_paths(api: Api) -> list[str]:
    """Every GET route of the schema, its path parameters filled with ids that exist."""
    schema = api.client.get("/api/openapi.json").json()
    values = {"site_id": str(api.site_id), "dimension": "pages", "user_id": "1", "dashboard_id": "1"}
    paths = []
    for path, operations in schema["paths"].items():
        if "get" in operations:
            paths.append(re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), path))
    return paths


def test_no_documentation_page_and_the_schema_is_served(api: Api) -> None:
    for path in DOC_PAGES:
        r = api.client.get(path, headers=api.admin)
        assert r.status_code == 404, path
        assert not EXTERNAL.search(r.text), (path, r.text[:200])
    schema = api.client.get("/api/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "Pixel Analytics API"
    assert not EXTERNAL.search(schema.text)


def test_no_page_the_api_serves_references_another_host(api: Api) -> None:
    paths = _get_paths(api)
    assert len(paths) >= 20
    for path in [*paths, *DOC_PAGES]:  # the schema's pages and the ones FastAPI serves by default
        r = api.client.get(path, headers=api.admin)
        kind = r.headers.get("content-type", "")
        if "html" in kind or "javascript" in kind or "css" in kind:
            assert not EXTERNAL.search(r.text), (path, EXTERNAL.search(r.text))
        # whatever the type, nothing is loaded from a CDN or a documentation site
        for host in ("cdn.jsdelivr.net", "unpkg.com", "fastapi.tiangolo.com", "cdnjs", "googleapis.com"):
            assert host not in r.text, (path, host)
