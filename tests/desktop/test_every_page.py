"""Lists longer than one page: the app reads every page of a list (`ApiClient.every`), so an owner with more
sites than the API gives at once (its `limit` bound) sees all of them in every site list, live and offline; and
each list the app reads (segments, annotations, goals, dashboards, users, tokens) is read whole, in the order
it asked for, page after page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixel.app.client import ApiClient, ReportCache, ReportSource, people
from pixel.app.client import annotations as notes_api
from pixel.app.client import segments as segments_api
from pixel.app.client.api import PAGE_LIMIT
from pixel.app.client.dashboards_admin import DashboardsAdmin
from pixel.app.client.site_admin import SiteAdmin, goal_body
from pixel.app.desktop.dashboard import DashboardPage
from pixel.app.desktop.workers import Runner
from tests.desktop.conftest import LiveApi, running_api
from tests.ports import free_port

SITES = PAGE_LIMIT + 3  # more than one page of the API's largest
SMALL = 3  # the page size of the per-list checks: each list spans several pages
PER_LIST = 7


@pytest.fixture(scope="module")
def many_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """A `pixel serve` with more sites than one page holds; on the first site, several of each other list."""
    # names out of id order, so an order asked for is seen to be kept across pages
    sites = {f"site-{(i * 7919) % SITES:04d}.example": "UTC" for i in range(SITES)}
    with running_api(tmp_path_factory.mktemp("many-sites"), sites) as api:
        yield api


@pytest.fixture
def owner(many_api: LiveApi) -> Iterator[ApiClient]:
    client = ApiClient(many_api.url, many_api.username, many_api.password)
    yield client
    client.close()


def one_page(api: LiveApi, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The list as the API gives it in one page (an independent client)."""
    with closing(api.http()) as ref:
        r = ref.get(path, params={**(params or {}), "limit": PAGE_LIMIT})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["total"] == len(answer["items"])  # the list fits one page of this size
        return list(answer["items"])


def test_every_site_in_id_order(many_api: LiveApi, owner: ApiClient) -> None:
    ids = sorted(many_api.sites.values())
    assert [s["id"] for s in owner.sites()] == ids
    assert [s["id"] for s in SiteAdmin(owner).sites()] == ids
    assert [s["id"] for s in DashboardsAdmin(owner).sites()] == ids
    by_name = owner.every("/api/sites", {"sort": "domain", "order": "desc"})
    assert [s["domain"] for s in by_name] == sorted(many_api.sites, reverse=True)
    # the independent reading: the API's two pages, joined
    with closing(many_api.http()) as ref:
        pages = [ref.get("/api/sites", params={"limit": PAGE_LIMIT, "page": p}).json() for p in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [PAGE_LIMIT, SITES - PAGE_LIMIT, 0]
    assert owner.sites() == pages[0]["items"] + pages[1]["items"]


def test_every_page_of_each_list(many_api: LiveApi, owner: ApiClient) -> None:
    site = min(many_api.sites.values())
    admin, boards = SiteAdmin(owner), DashboardsAdmin(owner)
    for i in range(PER_LIST):
        n = (i * 5) % PER_LIST  # created out of name order
        segments_api.save(owner, site, f"segment {n}", [["country", "is", f"C{n}"]])
        notes_api.add(owner, site, f"note {n}", dt.date(2026, 1, 1) + dt.timedelta(days=n))
        admin.create_goal(site, goal_body("page", f"goal {n}", page_pattern=f"/p{n}"))
        boards.create(site, f"board {n}")
        people.add_user(owner, f"user{n}", "viewer", [site])
        people.create_token(owner, f"token {n}")
    lists = [
        (f"/api/sites/{site}/segments", {"sort": "name"}),
        (f"/api/sites/{site}/segments", {"sort": "name", "order": "desc"}),
        (f"/api/sites/{site}/annotations", {"sort": "starts_at"}),
        (f"/api/sites/{site}/goals", None),
        (f"/api/sites/{site}/dashboards", None),
        ("/api/users", {"sort": "id"}),
        ("/api/tokens", {"sort": "id"}),
    ]
    for path, params in lists:
        whole = one_page(many_api, path, params)
        assert len(whole) > SMALL, path  # spans several small pages
        assert owner.every(path, params, page_size=SMALL) == whole, (path, params)
        assert owner.every(path, params) == whole, (path, params)
    assert [s["name"] for s in segments_api.segments(owner, site)] == [
        f"segment {n}" for n in range(PER_LIST)
    ]
    assert len(admin.goals(site)) == PER_LIST and len(boards.dashboards(site)) == PER_LIST
    assert [u["username"] for u in people.users(owner)] == [
        "owner",
        *(f"user{(i * 5) % PER_LIST}" for i in range(PER_LIST)),
    ]


def test_no_empty_page_asked_when_the_last_is_full(many_api: LiveApi) -> None:
    """A list whose length is a multiple of the page size ends on its total, without asking for an empty page."""
    size = 59
    assert SITES % size == 0
    asked: list[str] = []
    counting = ApiClient(
        many_api.url, many_api.username, many_api.password, transport=_Counting(httpx.HTTPTransport(), asked)
    )
    with closing(counting):
        assert [s["id"] for s in counting.every("/api/sites", page_size=size)] == sorted(
            many_api.sites.values()
        )
    assert asked.count("/api/sites") == SITES // size


class _Counting(httpx.BaseTransport):
    """The real transport, noting each request's path."""

    def __init__(self, inner: httpx.BaseTransport, seen: list[str]) -> None:
        self.inner, self.seen = inner, seen

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.url.path)
        return self.inner.handle_request(request)


def test_dashboard_lists_every_site_live_then_offline(qtbot, many_api: LiveApi, tmp_path: Path) -> None:
    cache = ReportCache(tmp_path / "cache.sqlite3")
    domains = sorted(many_api.sites, key=lambda d: many_api.sites[d])

    def page_on(url: str) -> DashboardPage:
        source = ReportSource(ApiClient(url, many_api.username, many_api.password, timeout=3), cache, "many")
        page = DashboardPage(Runner(), source, realtime_ms=3_600_000)
        qtbot.addWidget(page)
        page.load_sites()
        return page

    live = page_on(many_api.url)
    qtbot.waitUntil(lambda: live.site_combo.count() == SITES, timeout=60_000)
    assert [live.site_combo.itemData(i) for i in range(SITES)] == [many_api.sites[d] for d in domains]
    live.runner.shutdown()
    # the API gone: every site still listed, from the cache
    offline = page_on(f"http://127.0.0.1:{free_port()}")
    assert offline.site_combo.count() == SITES
    assert offline.source.cached_sites() is not None
    assert [s["id"] for s in offline.source.cached_sites().data["items"]] == [
        many_api.sites[d] for d in domains
    ]
    offline.runner.shutdown()
