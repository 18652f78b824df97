"""The raw sources' line parsers on hostile input: whatever a line holds, a parser returns a `Hit`, a
`Malformed`, a skip reason or nothing, and never raises (one bad line must not stop an import)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.server.importer import ga4, goatcounter, umami
from pixel.server.importer.accesslog import Malformed
from pixel.server.importer.hits import Hit

UMAMI_HEADER = ["session_id", "visit_id", "hostname", "url_path", "url_query", "referrer_domain", "event_type",
                "event_name", "created_at", "browser", "country", "screen"]  # fmt: skip
GOAT_HEADER = ["path", *goatcounter.COLUMNS[1:]]
PROPS = settings(max_examples=300, deadline=None, derandomize=True)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
ga4_keys = st.sampled_from(["event_name", "event_timestamp", "event_params", "user_pseudo_id", "device", "x"])
param_keys = st.sampled_from(["page_location", "page_referrer", "page_title", "ga_session_id", "k"])
ga4_params = st.lists(
    st.fixed_dictionaries(
        {
            "key": param_keys | json_values,
            "value": st.dictionaries(st.sampled_from(["string_value", "int_value"]), json_values, max_size=2),
        }  # fmt: skip
    )
    | json_values,
    max_size=4,
)
ga4_events = st.dictionaries(ga4_keys, json_values, max_size=6).map(lambda d: d) | st.fixed_dictionaries(
    {
        "event_name": st.sampled_from(["page_view", "session_start", "x"]) | json_values,
        "event_timestamp": st.integers(min_value=-(2**70), max_value=2**70).map(str) | json_values,
        "event_params": ga4_params,
        "user_pseudo_id": json_values,
        "device": st.dictionaries(st.sampled_from(["category", "web_info", "operating_system"]), json_values),
    }
)


def _ok(got: Any) -> None:
    assert got is None or isinstance(got, (Hit, Malformed, str))
    if isinstance(got, Hit):
        assert got.path == "" or got.path.startswith("/") and got.ts_ms > 0


@PROPS
@given(event=ga4_events)
def test_ga4_never_raises_on_any_json(event: dict[str, Any]) -> None:
    _ok(ga4.parse(json.dumps(event)))  # the stdlib writes what orjson cannot: huge integers, NaN


@PROPS
@given(text=st.text(max_size=200))
def test_every_parser_never_raises_on_any_text(text: str) -> None:
    _ok(ga4.parse(text))
    _ok(umami.UmamiParser(UMAMI_HEADER)(text))
    _ok(goatcounter.GoatCounterParser(GOAT_HEADER)(text))


def _csv(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


@PROPS
@given(cells=st.lists(st.text(max_size=30), min_size=12, max_size=14), date=st.text(max_size=40))
def test_csv_parsers_never_raise_on_any_cells(cells: list[str], date: str) -> None:
    umami_row = cells[:12]
    umami_row[8] = date
    _ok(umami.UmamiParser(UMAMI_HEADER)(_csv(umami_row)))
    goat_row = (cells + ["", ""])[:14]
    goat_row[13] = date
    _ok(goatcounter.GoatCounterParser(GOAT_HEADER)(_csv(goat_row)))
