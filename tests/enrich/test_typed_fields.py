"""Typed columns from the tracker's parameters (pixel.server.typedfields), as the shipper's `normalize` and the
enrichment fill them: known-answer tables for revenue amounts (numbers, strings, locale spellings, garbage),
currencies, web-vital ratings at and around every threshold, error texts (cut, e-mail and IP addresses
redacted), the 404 flag; which parameters leave `props`; hypothesis over the amount and vital parsers; and
the agreement with the collector's event format: every event it accepts becomes a row the store takes."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixel.server.enrich import Enricher, RequestFacts
from pixel.server.eventformat import check_event
from pixel.server.settings import Settings
from pixel.server.shipper.normalize import normalize
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.typedfields import (
    CURRENCIES,
    MAX_AMOUNT,
    VITALS,
    parse_amount,
    parse_currency,
    rate,
    redact_addresses,
    vital_value,
)

NOW = 1_767_225_600_000  # 2026-01-01 00:00 UTC: pinned, no wall clock
TYPED = (
    "not_found",
    "revenue",
    "currency",
    "ttfb_ms",
    "fcp_ms",
    "lcp_ms",
    "cls",
    "inp_ms",
    "ttfb_rating",
    "fcp_rating",
    "lcp_rating",
    "cls_rating",
    "inp_rating",
    "lcp_element",
    "inp_target",
    "error_message",
    "error_source",
    "error_line",
    "error_col",
    "error_hash",
)


def row_of(name: str, params: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"n": name, "h": "shop.example", "p": {"u": "https://shop.example/"}, **top}
    if params is not None:
        event["a"] = params
    assert check_event(event) is None  # the collector accepts it
    return normalize(event, NOW, min_ms=0, segment="seg", offset=0, index=0)


def typed(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in TYPED if k in row}


# -- revenue -------------------------------------------------------------------------------------------------

AMOUNTS = [
    # (what the page sent, the Decimal(18, 4) stored as text, or None: not an amount)
    (49.90, "49.9000"),
    (49, "49.0000"),
    ("49.90", "49.9000"),
    (" 49.90 ", "49.9000"),
    ("49.90\n", "49.9000"),
    ("+49.9", "49.9000"),
    (-49.90, "-49.9000"),  # a refund
    ("-49.90", "-49.9000"),
    (0, "0.0000"),
    (-0.0, "0.0000"),
    ("-0", "0.0000"),
    ("0000012.5", "12.5000"),
    (".5", "0.5000"),
    ("5.", "5.0000"),
    (19.99, "19.9900"),
    (0.1 + 0.2, "0.3000"),  # 0.30000000000000004: rounded at the fourth place
    (1234567.891, "1234567.8910"),
    (0.00005, "0.0000"),  # half to even
    ("0.00015", "0.0002"),
    ("0.00025", "0.0002"),
    ("0.000051", "0.0001"),
    (1e-300, "0.0000"),
    ("12345678901234.5678", "12345678901234.5678"),  # a string: exact to the last digit
    (12345678901234.5678, "12345678901234.5680"),  # 18 significant digits as a JSON number: a double's
    ("99999999999999.9999", "99999999999999.9999"),
    ("-99999999999999.9999", "-99999999999999.9999"),
    (10**14 - 1, "99999999999999.0000"),
    (999999999999999.9, None),
    ("99999999999999.99995", None),  # rounds up past the largest amount
    ("100000000000000", None),
    (10**15, None),
    (-(10**15) + 1, None),
    (10**30, None),
    (1e15, None),
    (1e300, None),
    (math.inf, None),
    (math.nan, None),
    ("49,90", None),  # locale spellings: ambiguous, refused
    ("1,234.56", None),
    ("1.234,56", None),
    ("1 234.56", None),
    ("€49.90", None),
    ("$49.90", None),
    ("49.90 EUR", None),
    ("EUR 49.90", None),
    ("1e3", None),
    ("0x10", None),
    ("NaN", None),
    ("Infinity", None),
    ("-Infinity", None),
    ("١٢", None),  # Arabic-Indic digits
    ("１２", None),  # full-width digits
    ("", None),
    ("   ", None),
    ("-", None),
    (".", None),
    ("+-1", None),
    ("1.2.3", None),
    ("4 9", None),
    ("1" * 41, None),  # longer than any amount
    ("0" * 30 + "1", "1.0000"),
    (True, None),
    (False, None),
    (None, None),
]


@pytest.mark.parametrize(("sent", "stored"), AMOUNTS)
def test_amounts(sent: Any, stored: str | None) -> None:
    amount = parse_amount(sent)
    assert (None if amount is None else str(amount)) == stored


CURRENCY_CASES = [
    ("EUR", "EUR"),
    ("eur", "EUR"),
    ("Eur", "EUR"),
    (" usd ", "USD"),
    ("JPY", "JPY"),
    ("KWD", "KWD"),
    ("XCG", "XCG"),
    ("XAU", "XAU"),
    ("XXX", None),  # "no currency"
    ("XTS", None),  # testing
    ("ABC", None),
    ("EURO", None),
    ("EU", None),
    ("€", None),
    ("$", None),
    ("E U", None),
    ("EUR\x00", None),
    ("", None),
    (978, None),  # the numeric code
    (None, None),
    (True, None),
    ("eur" * 10, None),
]


@pytest.mark.parametrize(("sent", "stored"), CURRENCY_CASES)
def test_currencies(sent: Any, stored: str | None) -> None:
    assert parse_currency(sent) == stored


def test_currency_list_is_iso_4217_codes() -> None:
    assert len(CURRENCIES) == 180
    assert all(len(c) == 3 and c.isascii() and c.isupper() for c in CURRENCIES)
    assert {"EUR", "USD", "GBP", "CHF", "JPY", "CNY", "INR", "BRL", "ZAR"} <= CURRENCIES


REVENUE_EVENTS = [
    # (event name, params) -> (typed columns, props)
    (
        "purchase",
        {"revenue": 49.90, "currency": "EUR", "plan": "pro"},
        {"revenue": "49.9000", "currency": "EUR"},
        {"plan": "pro"},
    ),
    ("refund", {"revenue": "-49.90", "currency": "eur"}, {"revenue": "-49.9000", "currency": "EUR"}, {}),
    (
        "pageview",
        {"revenue": 5, "currency": "USD"},
        {"revenue": "5.0000", "currency": "USD"},
        {},
    ),  # any event
    ("purchase", {"revenue": 0, "currency": "CHF"}, {"revenue": "0.0000", "currency": "CHF"}, {}),
    # not stored as revenue: every parameter stays in props as sent
    ("purchase", {"revenue": 49.9}, {}, {"revenue": "49.9"}),  # no currency
    ("purchase", {"currency": "EUR"}, {}, {"currency": "EUR"}),  # no amount
    ("purchase", {"revenue": 49.9, "currency": "€"}, {}, {"revenue": "49.9", "currency": "€"}),
    ("purchase", {"revenue": "49,90", "currency": "EUR"}, {}, {"revenue": "49,90", "currency": "EUR"}),
    ("purchase", {"revenue": True, "currency": "EUR"}, {}, {"revenue": "true", "currency": "EUR"}),
    ("purchase", {"revenue": None, "currency": "EUR"}, {}, {"currency": "EUR"}),
    ("purchase", {"Revenue": 1, "currency": "EUR"}, {}, {"Revenue": "1", "currency": "EUR"}),  # exact names
    ("purchase", {"amount": 49, "currency": "EUR"}, {}, {"amount": "49", "currency": "EUR"}),
]


@pytest.mark.parametrize(("name", "params", "columns", "props"), REVENUE_EVENTS)
def test_revenue_in_events(
    name: str, params: dict[str, Any], columns: dict[str, Any], props: dict[str, str]
) -> None:
    row = row_of(name, params)
    assert typed(row) == columns
    assert row["props"] == props


# -- web vitals ----------------------------------------------------------------------------------------------


def _around(vital_param: str) -> list[tuple[str, float, str]]:
    vital = next(v for v in VITALS if v.param == vital_param)
    step = 0.0001 if vital_param == "cls" else 1
    return [
        (vital_param, 0, "good"),
        (vital_param, vital.good - step, "good"),
        (vital_param, vital.good, "good"),  # at the threshold: good, as web-vitals rates
        (vital_param, vital.good + step, "needs-improvement"),
        (vital_param, math.nextafter(vital.good, math.inf), "needs-improvement"),
        (vital_param, vital.poor - step, "needs-improvement"),
        (vital_param, vital.poor, "needs-improvement"),
        (vital_param, vital.poor + step, "poor"),
        (vital_param, math.nextafter(vital.poor, math.inf), "poor"),
        (vital_param, vital.maximum, "poor"),
    ]


RATINGS = [case for p in ("ttfb", "fcp", "lcp", "cls", "inp") for case in _around(p)]


def test_thresholds_are_googles() -> None:
    assert [(v.param, v.column, v.good, v.poor) for v in VITALS] == [
        ("ttfb", "ttfb_ms", 800, 1800),
        ("fcp", "fcp_ms", 1800, 3000),
        ("lcp", "lcp_ms", 2500, 4000),
        ("cls", "cls", 0.1, 0.25),
        ("inp", "inp_ms", 200, 500),
    ]


@pytest.mark.parametrize(("param", "value", "rating"), RATINGS)
def test_vital_ratings_at_and_around_each_threshold(param: str, value: float, rating: str) -> None:
    vital = next(v for v in VITALS if v.param == param)
    row = row_of("web_vitals", {param: value})
    assert typed(row) == {vital.column: float(value), f"{param}_rating": rating}
    assert row["props"] == {}


def test_the_extended_builds_web_vitals_event() -> None:
    params = {
        "ttfb": 112,
        "fcp": 480,
        "lcp": 2600,
        "lcp_el": "img#hero",
        "cls": 0.1234,
        "inp": 312,
        "inp_el": "button#slow",
    }
    row = row_of("web_vitals", params)
    assert typed(row) == {
        "ttfb_ms": 112.0,
        "ttfb_rating": "good",
        "fcp_ms": 480.0,
        "fcp_rating": "good",
        "lcp_ms": 2600.0,
        "lcp_rating": "needs-improvement",
        "cls": 0.1234,
        "cls_rating": "needs-improvement",
        "inp_ms": 312.0,
        "inp_rating": "needs-improvement",
        "lcp_element": "img#hero",
        "inp_target": "button#slow",
    }
    assert row["props"] == {}
    # a page without interactions and without LCP (a hidden tab): only what was measured
    row = row_of("web_vitals", {"ttfb": 0, "cls": 0})
    assert typed(row) == {"ttfb_ms": 0.0, "ttfb_rating": "good", "cls": 0.0, "cls_rating": "good"}


BAD_VITALS = [
    ("lcp", -1, "-1"),
    ("lcp", 3_600_001, "3600001"),
    ("cls", 100.5, "100.5"),
    ("cls", -0.1, "-0.1"),
    ("inp", "312", "312"),  # a string: the tracker sends numbers
    ("inp", True, "true"),
    ("fcp", 1e308, "1e+308"),
    ("lcp_el", 5, "5"),
]


@pytest.mark.parametrize(("param", "value", "prop"), BAD_VITALS)
def test_bad_vitals_stay_in_props_only(param: str, value: Any, prop: str) -> None:
    row = row_of("web_vitals", {param: value, "ttfb": 100})
    assert typed(row) == {"ttfb_ms": 100.0, "ttfb_rating": "good"}
    assert row["props"] == {param: prop}


def test_vitals_only_on_web_vitals_events() -> None:
    row = row_of("signup", {"lcp": 2600, "cls": 0.2, "lcp_el": "img"})
    assert typed(row) == {}
    assert row["props"] == {"lcp": "2600", "cls": "0.2", "lcp_el": "img"}


def test_selectors_are_cut_and_redacted() -> None:
    row = row_of("web_vitals", {"lcp_el": "div#" + "x" * 300, "inp_el": "a#mail-jane.doe@example.org"})
    assert typed(row) == {"lcp_element": "div#" + "x" * 196, "inp_target": "a#[email]"}


# -- errors --------------------------------------------------------------------------------------------------

ERRORS = [
    # params -> (typed columns, props left)
    (
        {
            "message": "Uncaught Error: boom",
            "source": "https://shop.example/app.js",
            "line": 12,
            "col": 5,
            "hash": "k2j4",
        },
        {
            "error_message": "Uncaught Error: boom",
            "error_source": "https://shop.example/app.js",
            "error_line": 12,
            "error_col": 5,
            "error_hash": "k2j4",
        },
        {},
    ),
    # a rejection without a place, as the tracker sends it
    (
        {"message": "r", "source": "", "line": 0, "col": 0, "hash": "9"},
        {"error_message": "r", "error_hash": "9"},
        {},
    ),
    # cut to the column's length after redaction
    ({"message": "m" * 1500, "hash": "h" * 100}, {"error_message": "m" * 1000, "error_hash": "h" * 64}, {}),
    (
        {"message": "x" * 995 + " jane@example.org"},
        {"error_message": "x" * 995 + " [ema"},  # never half an address
        {},
    ),
    (
        {"message": "fetch http://203.0.113.7:8080/api failed"},
        {"error_message": "fetch http://[ip]:8080/api failed"},
        {},
    ),
    ({"message": "no route to 2001:db8::1: refused"}, {"error_message": "no route to [ip]: refused"}, {}),
    ({"message": "at [2001:db8:85a3::8a2e:370:7334]:443"}, {"error_message": "at [[ip]]:443"}, {}),
    ({"message": "user jane%40example.org not found"}, {"error_message": "user [email] not found"}, {}),
    ({"message": "a\x00b"}, {"error_message": "ab"}, {}),
    (
        {"message": "v1.2.3 at 12:30:45, a::b::c, std::vector"},
        {"error_message": "v1.2.3 at 12:30:45, a::b::c, std::vector"},
        {},
    ),
    ({"message": "version 1.2.3.4.5"}, {"error_message": "version 1.2.3.4.5"}, {}),
    ({"message": 404}, {"error_message": "404"}, {}),  # a number: its text
    (
        {"source": "https://jane:s3cret@cdn.example/app.js"},
        {"error_source": "https://cdn.example/app.js"},
        {},
    ),
    # bad places stay in props
    ({"line": -1, "col": 1.5}, {}, {"line": "-1", "col": "1.5"}),
    ({"line": "12", "col": 2**32}, {}, {"line": "12", "col": "4294967296"}),
    ({"line": 2**32 - 1, "col": 7.0}, {"error_line": 2**32 - 1, "error_col": 7}, {}),
    ({"message": True, "source": None}, {}, {"message": "true"}),
]


@pytest.mark.parametrize(("params", "columns", "props"), ERRORS)
def test_error_events(params: dict[str, Any], columns: dict[str, Any], props: dict[str, str]) -> None:
    row = row_of("error", params)
    assert typed(row) == columns
    assert row["props"] == props


def test_error_fields_only_on_error_events() -> None:
    row = row_of("checkout_error", {"message": "m", "line": 3})
    assert typed(row) == {}
    assert row["props"] == {"message": "m", "line": "3"}


def test_the_enrichment_scrubs_the_visitors_address_and_pii_parameters_from_errors(tmp_path: Path) -> None:
    enricher = Enricher(Settings(data_dir=tmp_path))
    try:
        ip = "198.51.100.23"
        event = {
            "n": "error",
            "h": "shop.example",
            "p": {"u": "https://shop.example/"},
            "a": {
                "message": "blocked ip-198-51-100-23.isp.example and 198_51_100_23",
                "source": "https://cdn.example/app.js?v=3&token=s3cret&email=jane%40example.org#access_token=x",
                "hash": "198-51-100-23",
            },
        }
        row = normalize(event, NOW, min_ms=0, segment="seg", offset=0, index=0)
        facts = RequestFacts(NOW, ip, "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", "en", "shop.example")
        assert enricher.enrich(row, event, facts) is True
        assert typed(row) == {
            "error_message": "blocked ip-[ip].isp.example and [ip]",
            "error_source": "https://cdn.example/app.js?v=3",
            "error_hash": "[ip]",
        }
    finally:
        enricher.close()


# -- the 404 flag --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "stored"),
    [(1, 1), (True, 1), (1.0, 1), (0, None), (False, None), (2, None), ("1", None), (None, None), (-1, None)],
)
def test_not_found_flag(flag: Any, stored: int | None) -> None:
    assert row_of("pageview", None, f=flag).get("not_found") == stored
    assert (
        normalize(
            {"event_name": "pageview", "site": "shop.example", "not_found": flag},
            NOW,
            min_ms=0,
            segment="s",
            offset=0,
            index=0,
        ).get("not_found")
        == stored
    )


def test_untyped_events_are_as_before() -> None:
    row = row_of("signup", {"plan": "pro", "seats": 3})
    assert typed(row) == {}
    assert row["props"] == {"plan": "pro", "seats": "3"}


# -- properties ------------------------------------------------------------------------------------------------

SETTINGS = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
AMOUNT = st.decimals(
    min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT, places=4, allow_nan=False, allow_infinity=False
)


@SETTINGS
@given(AMOUNT)
def test_any_amount_as_a_string_is_stored_exactly(amount: Decimal) -> None:
    for text in (str(amount), f"{amount:f}", f" {amount:f} ", f"{amount:f}000"):
        assert parse_amount(text) == amount, text


@SETTINGS
@given(st.decimals(min_value=-(10**11), max_value=10**11, places=4, allow_nan=False, allow_infinity=False))
def test_an_amount_of_at_most_15_digits_as_a_json_number_is_stored_exactly(amount: Decimal) -> None:
    assert parse_amount(float(amount)) == amount


@SETTINGS
@given(st.one_of(st.text(max_size=45), st.floats(), st.integers(), st.booleans(), st.none()))
def test_the_amount_parser_never_raises_and_stays_in_range(value: Any) -> None:
    amount = parse_amount(value)
    if amount is not None:
        assert abs(amount) <= MAX_AMOUNT
        assert amount == amount.quantize(Decimal("0.0001"))
        assert str(amount) == f"{amount:f}" and "E" not in str(amount)


@SETTINGS
@given(st.sampled_from(VITALS), st.one_of(st.floats(), st.integers(-(10**9), 10**9)))
def test_a_vital_is_rated_as_web_vitals_rates(vital: Any, value: float) -> None:
    stored = vital_value(vital, value)
    if stored is None:
        assert not (0 <= value <= vital.maximum)
        return
    assert stored == value
    expected = "good" if value <= vital.good else "needs-improvement" if value <= vital.poor else "poor"
    assert rate(vital, stored) == expected


@SETTINGS
@given(st.ip_addresses())
def test_any_ip_address_literal_is_redacted(address: Any) -> None:
    text = str(address)
    if text == "::":
        return  # the unspecified address is left: `::` is punctuation in many messages
    for spelled in (text, text.upper(), getattr(address, "exploded", text)):
        redacted = redact_addresses(f"at {spelled}, now")
        assert "[ip]" in redacted
        assert redacted.replace("[ip]", "").replace(":", "") == "at , now", redacted


# The collector and the shipper agree: any event the collector's format accepts, with any scalar under the
# typed parameter names, becomes a row the store takes (never a refused insert, which would dead-letter it).
TYPED_NAMES = [
    "revenue",
    "currency",
    "ttfb",
    "fcp",
    "lcp",
    "cls",
    "inp",
    "lcp_el",
    "inp_el",
    "message",
    "source",
    "line",
    "col",
    "hash",
]
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),  # what orjson reads as an int
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["49.90", "-0.0001", "99999999999999.9999", "EUR", "usd", "1e3", "١٢", "203.0.113.7"]),
)


@pytest.fixture(scope="module")
def chdb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = ChdbStore(tmp_path_factory.mktemp("typed") / "store")
    store.migrate()
    yield store
    store.close()


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from(["web_vitals", "error", "purchase", "pageview"]),
    st.dictionaries(st.sampled_from(TYPED_NAMES), SCALAR, max_size=len(TYPED_NAMES)),
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=3)),
)
def test_every_accepted_event_becomes_a_row_the_store_takes(
    chdb: Any, name: str, params: dict[str, Any], flag: Any
) -> None:
    event = orjson.loads(orjson.dumps({"n": name, "h": "agree.example", "a": params, "f": flag}))
    assert check_event(event) is None
    row = normalize(event, NOW, min_ms=0, segment="seg", offset=0, index=0)
    row["event_id"] = "agree"
    chdb.insert_rows("events", [row])  # raises StoreError if a typed value does not fit its column
    stored = chdb.query(
        "SELECT not_found, toDecimalString(revenue, 4), currency, error_line, error_col, "
        "length(error_message) <= 1000, length(error_source) <= 2048, length(error_hash) <= 64 "
        "FROM events WHERE event_id = 'agree'"
    ).rows
    assert stored == [
        [
            row.get("not_found", 0),
            row.get("revenue"),
            row.get("currency", ""),
            row.get("error_line", 0),
            row.get("error_col", 0),
            1,
            1,
            1,
        ]
    ]
    chdb.command("TRUNCATE TABLE events")
