"""The standard reports for one site: summary, timeseries, breakdowns, realtime, goals, funnels, retention.

Common query parameters: `period` (realtime, today, yesterday, 7d, 30d, month, last_month, 12mo,
custom with `from`/`to` as YYYY-MM-DD, inclusive, in the site's zone), `filters` (a JSON list of
`[dimension, operator, value]`) and `include_bots` (default false).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import TypeAdapter, ValidationError

from pixel.server.api.deps import Auth, Cache, PathId, Runner, State, site_for
from pixel.server.api.errors import bad_request
from pixel.server.api.models import FunnelStep
from pixel.server.api.query import compare as compare_query
from pixel.server.api.query import dashboard as dashboard_query
from pixel.server.api.query import goal_counts, reports
from pixel.server.api.query.filters import (
    DIMENSIONS,
    OPERATORS,
    SESSION_DIMENSIONS,
    check_regexes,
    parse_filters,
)
from pixel.server.api.query.periods import INTERVALS, PERIODS, against, parse_compare, resolve
from pixel.server.api.query.scope import Scope

router = APIRouter(prefix="/sites/{site_id}/reports", tags=["reports"])

Period = Annotated[str, Query(description="one of " + ", ".join(PERIODS))]
DateParam = Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD, for period=custom")]
FiltersParam = Annotated[
    str | None,
    Query(
        max_length=20_000,
        description='JSON list of [dimension, operator, value], e.g. [["country","is","DE"]]',
    ),
]


def scope(
    site_id: PathId,
    principal: Auth,
    state: State,
    runner: Runner,
    cache: Cache,
    period: Period = "30d",
    date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    filters: FiltersParam = None,
    include_bots: bool = False,
) -> Scope:
    site = site_for(state, principal, site_id)
    rng = resolve(period, site["timezone"], date_from=date_from, date_to=date_to, now=cache.now())
    parsed = parse_filters(filters)
    check_regexes(runner, parsed)
    return Scope(
        runner,
        site["domain"],
        rng,
        parsed,
        include_bots,
        retention_days=int(site.get("retention_days") or 0),
        cache=cache,
    )


ScopeDep = Annotated[Scope, Depends(scope)]
CompareParam = Annotated[
    str | None,
    Query(
        max_length=20, description="previous, year or custom (with compare_from/compare_to); true = previous"
    ),
]
CompareDate = Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD, for compare=custom")]


@router.get("/summary")
def summary(
    s: ScopeDep,
    compare: CompareParam = "previous",
    compare_from: CompareDate = None,
    compare_to: CompareDate = None,
) -> dict[str, Any]:
    """Visitors, pageviews, sessions, views per session, bounce rate and visit duration, each with
    its value in the compared range (default: the previous period of the same length; `year`: the same
    dates a year earlier; `custom`: compare_from..compare_to) and the change (bounce rate: in points)."""
    other = against(s.range, compare, compare_from, compare_to)
    return {**_range(s), **reports.summary(s, other is not None, other)}


@router.get("/timeseries")
def timeseries(
    s: ScopeDep,
    interval: Annotated[str | None, Query(description="one of " + ", ".join(INTERVALS))] = None,
    metrics: Annotated[str, Query(max_length=200, description="comma-separated")] = "visitors,pageviews",
    compare: CompareParam = None,
    compare_from: CompareDate = None,
    compare_to: CompareDate = None,
) -> dict[str, Any]:
    """Metrics per bucket; with `compare`, the compared range's points under `compare` (aligned by index)."""
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    step = interval or s.range.default_interval()
    body = {**_range(s), **reports.timeseries(s, step, names)}
    other = against(s.range, compare, compare_from, compare_to)
    return {**body, "compare": compare_query.timeseries(s, other, step, names)} if other else body


@router.get("/breakdown/{dimension}")
def breakdown(
    s: ScopeDep,
    dimension: str,
    limit: Annotated[int, Query(ge=1, le=reports.MAX_LIMIT)] = 10,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    sort: Annotated[str, Query(max_length=40)] = "visitors",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    event: Annotated[str | None, Query(max_length=200, description="restrict to one event name")] = None,
    compare: CompareParam = None,
    compare_from: CompareDate = None,
    compare_to: CompareDate = None,
) -> dict[str, Any]:
    """Top values of a dimension; with `compare`, each row's `previous` metrics and `change` (percent)."""
    other = against(s.range, compare, compare_from, compare_to)
    body = reports.breakdown(s, dimension, limit=limit, page=page, sort=sort, order=order, event=event)
    if other is not None:
        body = compare_query.breakdown(s, other, body, sort=sort, order=order, event=event)
    return {**_range(s), **body}


@router.get("/dashboard")
def dashboard(
    s: ScopeDep,
    compare: CompareParam = "previous",
    compare_from: CompareDate = None,
    compare_to: CompareDate = None,
    interval: Annotated[str | None, Query(description="one of " + ", ".join(INTERVALS))] = None,
    metrics: Annotated[
        str, Query(max_length=200, description="timeseries metrics, comma-separated")
    ] = "visitors,pageviews",
    breakdowns: Annotated[str, Query(max_length=2000, description="dimensions, comma-separated")] = ",".join(
        dashboard_query.STANDARD_BREAKDOWNS
    ),
    limit: Annotated[int, Query(ge=1, le=reports.MAX_LIMIT)] = 10,
    previous_timeseries: Annotated[bool, Query(description="also the previous period's timeseries")] = False,
) -> dict[str, Any]:
    """The standard dashboard in one request: `summary` (as /summary), `timeseries` (as /timeseries),
    `previous_timeseries` (the previous period's, when asked; else null) and `breakdowns`, one per
    dimension (as /breakdown/{dimension}, first page of `limit` rows, by visitors). Same numbers as
    those reports; on the report cache it takes one query instead of one or more per widget."""
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    dims = [d.strip() for d in breakdowns.split(",") if d.strip()]
    other = against(s.range, compare, compare_from, compare_to)
    if other is None and previous_timeseries:
        other = s.range.previous()
    return {
        **_range(s),
        **dashboard_query.dashboard(
            s,
            compare=parse_compare(compare) is not None,
            against=other,
            interval=interval or s.range.default_interval(),
            metrics=names,
            breakdowns=dims,
            limit=limit,
            previous_series=previous_timeseries,
        ),
    }


@router.get("/realtime")
def realtime(
    site_id: PathId, principal: Auth, state: State, runner: Runner, filters: FiltersParam = None
) -> dict[str, Any]:
    site = site_for(state, principal, site_id)
    parsed = parse_filters(filters)
    check_regexes(runner, parsed)
    return reports.realtime(runner, site["domain"], site["timezone"], parsed)


@router.get("/goals")
def goals(s: ScopeDep, site_id: PathId, state: State) -> dict[str, Any]:
    rows = state.meta.all("SELECT * FROM goals WHERE site_id = ? ORDER BY id", site_id)
    return {**_range(s), **goal_counts.goals(s, rows)}


_steps_adapter = TypeAdapter(list[FunnelStep])


@router.get("/funnel")
def funnel(
    s: ScopeDep,
    steps: Annotated[
        str,
        Query(
            max_length=20_000,
            description='JSON list of steps, e.g. [{"kind":"page",'
            '"page_pattern":"/pricing"},{"kind":"event","event_name":"signup"}]',
        ),
    ],
    window: Annotated[int, Query(ge=1, le=90 * 86400, description="seconds from the first step")] = 3600,
) -> dict[str, Any]:
    try:
        raw = json.loads(steps)
    except ValueError:
        raise bad_request("steps must be a JSON list of steps", "invalid_funnel") from None
    try:
        parsed = _steps_adapter.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise bad_request(f"steps[{where}]: {first['msg']}", "invalid_funnel") from None
    if not 2 <= len(parsed) <= 10:
        raise bad_request("a funnel has 2 to 10 steps", "invalid_funnel")
    return {**_range(s), **reports.funnel(s, [p.model_dump() for p in parsed], window)}


@router.get("/retention")
def retention(s: ScopeDep) -> dict[str, Any]:
    """Weekly cohorts: each visitor id belongs to the week (Monday, the site's zone) of its first event in the
    range (after filters); `weeks[k]` counts the cohort's visitors active k weeks later, `percent[k]` as a share
    of the cohort (week 0). Visitor ids are what the store holds: the default tracker's server-side id
    rotates daily, so a visitor returning on another day counts as new there; only stable ids (the extended
    build's consented device id, bound to the site and the month) show returns across weeks."""
    return {**_range(s), **reports.retention(s)}


@router.get("/dimensions", tags=["reports"])
def dimensions(site_id: PathId, principal: Auth, state: State) -> dict[str, Any]:
    """What breakdowns and filters accept."""
    site_for(state, principal, site_id)
    return {
        "dimensions": [*DIMENSIONS, *SESSION_DIMENSIONS, "prop:<name>"],
        "operators": list(OPERATORS),
        "periods": list(PERIODS),
        "intervals": list(INTERVALS),
    }


def _range(s: Scope) -> dict[str, Any]:
    return {
        "site": s.site,
        "period": s.range.period,
        "timezone": s.range.tz,
        "from": s.range.start.isoformat(),
        "to": s.range.end.isoformat(),
    }
