"""Exports (CSV of a report, ZIP of the dashboard's CSVs, Parquet of raw events) read back and compared with
the API's JSON and with the data set; access like the reports; formula cells defused. Both store engines."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.api import dataset
from tests.api.conftest import VIEWER_PASSWORD, Api

ENGINES = ("chdb", "clickhouse")
RANGE = "period=custom&from=2024-02-26&to=2024-03-17"


def get(api: Api, path: str, headers: dict[str, str] | None = None) -> Any:
    return api.client.get(f"/api/sites/{api.site_id}/{path}", headers=headers or api.admin)


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def as_text(row: list[Any]) -> list[str]:
    return ["" if v is None else str(v) for v in row]


def test_breakdown_csv_equals_the_json_report(api: Api) -> None:
    for dim in ("page", "country", "entry_page", "prop:plan"):
        js = get(api, f"reports/breakdown/{dim}?{RANGE}&limit=1000").json()
        r = get(api, f"exports/breakdown/{dim}.csv?{RANGE}")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["content-disposition"] == (
            f'attachment; filename="shop.example-{dim.replace(":", "_")}-2024-02-26-custom.csv"'
        )
        rows = read_csv(r.content)
        assert rows[0] == [dim, *js["metrics"]]
        assert rows[1:] == [as_text([x["value"], *(x[m] for m in js["metrics"])]) for x in js["rows"]]
        assert len(rows) - 1 == js["total_rows"]


def test_breakdown_csv_pages_through_every_row(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from pixel.server.api.query import reports

    monkeypatch.setattr(reports, "MAX_LIMIT", 2)  # five pages, two rows each, for five pages' worth of rows
    rows = read_csv(get(api, f"exports/breakdown/page.csv?{RANGE}").content)
    paths = sorted(
        {
            e["path"]
            for e in dataset.select(
                api.events,
                dataset.local_midnight(dataset.date(2024, 2, 26)).date(),
                dataset.date(2024, 3, 17),
            )
        }
    )
    assert sorted(r[0] for r in rows[1:]) == paths and len(rows) == 6


def test_timeseries_and_summary_csv(api: Api) -> None:
    js = get(api, f"reports/timeseries?{RANGE}&interval=day&metrics=visitors,pageviews,bounce_rate").json()
    rows = read_csv(
        get(
            api, f"exports/timeseries.csv?{RANGE}&interval=day&metrics=visitors,pageviews,bounce_rate"
        ).content
    )
    assert rows[0] == ["bucket", "visitors", "pageviews", "bounce_rate"]
    assert rows[1:] == [
        as_text([p["bucket"], p["visitors"], p["pageviews"], p["bounce_rate"]]) for p in js["points"]
    ]
    assert len(rows) == 22  # 21 days, the empty 7 March included
    summary = get(api, f"reports/summary?{RANGE}").json()["metrics"]
    rows = read_csv(get(api, f"exports/summary.csv?{RANGE}").content)
    assert rows == [["metric", "value"], *([k, str(v["value"])] for k, v in summary.items())]
    want = dataset.summary(dataset.select(api.events, dataset.date(2024, 2, 26), dataset.date(2024, 3, 17)))
    assert dict(rows[1:])["visitors"] == str(want["visitors"]) == "15"


def test_dashboard_zip_holds_one_csv_per_report(api: Api) -> None:
    r = get(api, f"exports/dashboard.zip?{RANGE}&breakdowns=page,country,source")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.testzip() is None
    assert archive.namelist() == [
        "summary.csv",
        "timeseries.csv",
        "breakdown-page.csv",
        "breakdown-country.csv",
        "breakdown-source.csv",
    ]
    for dim in ("page", "country", "source"):
        assert (
            archive.read(f"breakdown-{dim}.csv") == get(api, f"exports/breakdown/{dim}.csv?{RANGE}").content
        )
    assert archive.read("summary.csv") == get(api, f"exports/summary.csv?{RANGE}").content


def test_events_parquet_holds_the_ranges_events_once(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from pixel.server.api.query import exports

    want = dataset.select(api.events, dataset.date(2024, 2, 26), dataset.date(2024, 3, 17))
    for chunk in (
        exports.PARQUET_CHUNK_ROWS,
        7,
    ):  # one row group, and many (keyed pages must not skip or repeat)
        monkeypatch.setattr(exports, "PARQUET_CHUNK_ROWS", chunk)
        r = get(api, f"exports/events.parquet?{RANGE}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.parquet"
        table = pq.read_table(io.BytesIO(r.content))
        assert table.num_rows == len(want)  # the replayed copies, the bot and the other site are not there
        ids = table.column("event_id").to_pylist()
        assert sorted(ids) == sorted(e["event_id"] for e in want) and len(set(ids)) == len(ids)
        keys = [(t.date(), i) for t, i in zip(table.column("timestamp").to_pylist(), ids, strict=True)]
        assert keys == sorted(keys)  # the table's own order: UTC day, then event id
        if chunk == 7:
            assert pq.ParquetFile(io.BytesIO(r.content)).num_row_groups == -(-len(want) // 7)
    # filters apply; an empty range is a valid empty file with the columns
    flt = '[["country","is","FR"]]'
    table = pq.read_table(io.BytesIO(get(api, f"exports/events.parquet?{RANGE}&filters={flt}").content))
    assert set(table.column("country").to_pylist()) == {"FR"}
    assert table.num_rows == sum(e["country"] == "FR" for e in want)
    empty = pq.read_table(
        io.BytesIO(get(api, "exports/events.parquet?period=custom&from=2020-01-01&to=2020-01-02").content)
    )
    assert empty.num_rows == 0 and "event_id" in empty.column_names


def test_access_and_bad_parameters(api: Api) -> None:
    viewer = api.headers("viewer", VIEWER_PASSWORD)
    for path in (
        "exports/summary.csv",
        "exports/dashboard.zip",
        "exports/events.parquet",
        "exports/breakdown/page.csv",
    ):
        assert api.client.get(f"/api/sites/{api.site_id}/{path}").status_code == 401
        assert api.client.get(f"/api/sites/{api.other_site_id}/{path}", headers=viewer).status_code == 404
    token = api.client.post("/api/tokens", json={"name": "export script"}, headers=viewer).json()["token"]
    r = get(api, f"exports/summary.csv?{RANGE}", {"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and read_csv(r.content)[1] == ["visitors", "15"]
    assert get(api, "exports/breakdown/nope.csv").json()["error"] == "invalid_dimension"
    assert get(api, "exports/timeseries.csv?metrics=nope").json()["error"] == "invalid_metric"
    assert get(api, "exports/dashboard.zip?breakdowns=page,nope").status_code == 400
    assert get(api, "exports/events.parquet?period=forever").status_code == 400


def test_csv_cells_never_run_as_formulas() -> None:
    from pixel.server.api.query.exports import csv_lines

    out = b"".join(
        csv_lines(["page", "n"], [['=HYPERLINK("x")', 1], ["+1", -2], ["@SUM(A1)", 0.5], ["/ok", None]])
    )
    assert read_csv(out) == [
        ["page", "n"],
        ['\'=HYPERLINK("x")', "1"],
        ["'+1", "-2"],
        ["'@SUM(A1)", "0.5"],
        ["/ok", ""],
    ]
