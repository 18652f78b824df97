"""Typed columns from the tracker's parameters: revenue, web vitals, errors (schema migration 6).

The tracker sends these as ordinary custom parameters (the compact wire format has no keys for them); the
shipper (`pixel.server.shipper.normalize`) turns them into typed columns with `typed_columns`. The rules, one
for every field: **a parameter that becomes a typed column leaves `props`; one that fails its check stays in
`props` exactly as any other parameter, and its typed column keeps its default** (NULL, '' or 0). A bad
typed value never refuses or dead-letters the event: the collector accepts any scalar parameter
(`pixel.server.eventformat`), and the event is always stored.

Revenue, on any event: `revenue` and `currency` are stored together or not at all.
- `revenue`: a JSON number (not a boolean), or a string of plain decimal digits with an optional sign and
  one `.` (surrounding white space ignored; at most `MAX_AMOUNT_TEXT` characters). Locale spellings are
  refused because they are ambiguous (`49,90`, `1,234.56`, `1.234,56`, `€49.90`, `49.90 EUR`, `1e3`).
  The amount becomes a Decimal from its text, never through binary floating point: a string is exact to the
  last digit; a JSON number arrives as a double (the request is parsed as JSON) and is read back by its
  shortest spelling, which is the number the page wrote for any amount of at most 15 significant digits
  (49.90 is stored as 49.9000). More than 4 decimal places are rounded half to even. Zero and negative
  amounts (refunds) are stored; beyond +/-99,999,999,999,999.9999 (Decimal(18, 4)) the amount is refused.
- `currency`: an ISO 4217 code (the active list below, any letter case, stored upper-case); anything else
  (a symbol, `XXX`, `XTS`, a made-up code) is refused, and so is the revenue with it.

Web vitals, on `web_vitals` events (the extended tracker's one event per page): `ttfb`, `fcp`, `lcp`, `inp`
(milliseconds, 0..`MAX_VITAL_MS`) and `cls` (unitless, 0..`MAX_CLS`), each a JSON number, become
`ttfb_ms`, `fcp_ms`, `lcp_ms`, `inp_ms`, `cls` with a rating by Google's thresholds (as the web-vitals
library rates: a value at or below the good threshold is `good`, at or below the poor one
`needs-improvement`, above it `poor`). `lcp_el` and `inp_el` (strings: the LCP element's and the INP
target's short selectors) become `lcp_element` and `inp_target`, at most `MAX_SELECTOR` characters.

Errors, on `error` events: `message` and `source` (strings or numbers), `line` and `col` (whole numbers
0..2^32-1), `hash` (a string or number) become `error_message`, `error_source`, `error_line`, `error_col`,
`error_hash`. Texts have NUL characters removed, e-mail addresses replaced by `[email]` and IP address
literals (IPv4, IPv6) by `[ip]` before they are cut to their length (so a cut never leaves half an address
unredacted); the enrichment then removes the visitor's own address in any spelling, as from every text
column, and strips PII query parameters from an http(s) `error_source` as from page URLs.

The 404 flag (`f` / `not_found`, a top-level key) is stored as `not_found` = 1 when it is 1 or true.
"""

from __future__ import annotations

import ipaddress
import math
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, NamedTuple

from pixel.server.enrich.privacy import redact_emails

# -- revenue ---------------------------------------------------------------------------------------------

REVENUE_PARAM, CURRENCY_PARAM = "revenue", "currency"
MAX_AMOUNT_TEXT = 40
AMOUNT_QUANTUM = Decimal("0.0001")  # Decimal(18, 4)
MAX_AMOUNT = Decimal("99999999999999.9999")
_AMOUNT_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")

# ISO 4217 active codes (list one), with the funds and precious-metal codes; without XTS (testing) and XXX
# (no currency). ANG stays beside its successor XCG while amounts in it are still sent.
CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
    CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
    KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN
    NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL
    SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES
    VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL
    """.split()
)


def parse_amount(value: Any) -> Decimal | None:
    """The amount as Decimal(18, 4) (see the module docstring), or None when it is not one."""
    t = type(value)
    if t is int:
        text = str(value) if -(10**15) < value < 10**15 else ""
    elif t is float:
        text = repr(value) if math.isfinite(value) else ""  # the shortest spelling that reads back as it
    elif t is str:
        text = value.strip() if len(value) <= MAX_AMOUNT_TEXT else ""
        if not _AMOUNT_TEXT.fullmatch(text):
            return None
    else:
        return None  # a boolean, null, anything else
    try:
        amount = Decimal(text)
        if not amount.is_finite() or abs(amount) > MAX_AMOUNT + 1:
            return None
        amount = amount.quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        return None
    if abs(amount) > MAX_AMOUNT:
        return None
    return amount if amount else AMOUNT_QUANTUM * 0  # no negative zero


def parse_currency(value: Any) -> str | None:
    """The ISO 4217 code, upper-case, or None."""
    if type(value) is not str or len(value) > 8:
        return None
    code = value.strip().upper()
    return code if code in CURRENCIES else None


# -- web vitals ------------------------------------------------------------------------------------------

VITALS_EVENT = "web_vitals"
MAX_VITAL_MS = 3_600_000  # an hour: a longer time is not a measurement
MAX_CLS = 100.0
MAX_SELECTOR = 200
GOOD, NEEDS_IMPROVEMENT, POOR = "good", "needs-improvement", "poor"


class Vital(NamedTuple):
    param: str
    column: str
    good: float  # at or below: good
    poor: float  # above: poor
    maximum: float


# Google's thresholds (web.dev/articles/vitals; the web-vitals library's *Thresholds).
VITALS = (
    Vital("ttfb", "ttfb_ms", 800, 1800, MAX_VITAL_MS),
    Vital("fcp", "fcp_ms", 1800, 3000, MAX_VITAL_MS),
    Vital("lcp", "lcp_ms", 2500, 4000, MAX_VITAL_MS),
    Vital("cls", "cls", 0.1, 0.25, MAX_CLS),
    Vital("inp", "inp_ms", 200, 500, MAX_VITAL_MS),
)
VITAL_ELEMENTS = {"lcp_el": "lcp_element", "inp_el": "inp_target"}


def rating_column(vital: Vital) -> str:
    return f"{vital.param}_rating"


def rate(vital: Vital, value: float) -> str:
    """Google's rating of a value, as web-vitals rates it: > poor is poor, > good needs improvement."""
    return POOR if value > vital.poor else NEEDS_IMPROVEMENT if value > vital.good else GOOD


def vital_value(vital: Vital, value: Any) -> float | None:
    """A metric's value (a JSON number within 0..maximum), or None."""
    if (type(value) is int or type(value) is float) and 0 <= value <= vital.maximum:
        return float(value)  # NaN and infinities fail the range test
    return None


# -- errors ----------------------------------------------------------------------------------------------

ERROR_EVENT = "error"
# parameter -> (column, maximum length); line and col are whole numbers
ERROR_TEXTS = {
    "message": ("error_message", 1000),
    "source": ("error_source", 2048),
    "hash": ("error_hash", 64),
}
ERROR_NUMBERS = {"line": "error_line", "col": "error_col"}
MAX_UINT32 = 2**32 - 1

_IPV4 = re.compile(
    r"(?<![0-9.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?!\.?[0-9])"
)
# A run of hex digits and colons with two colons at least, not inside a word (`std::vector` is not one)
_IPV6_RUN = re.compile(r"(?<![0-9A-Za-z_])[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(?![0-9A-Za-z_])")


def _ipv6(match: re.Match[str]) -> str:
    """`[ip]` for a run that is an IPv6 address, give or take a colon of the text around it at either end."""
    run = match.group(0)
    for start, end in ((0, len(run)), (0, len(run) - 1), (1, len(run)), (1, len(run) - 1)):
        candidate = run[start:end]
        if candidate.strip(":"):  # `::` alone is punctuation more often than an address
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            return run[:start] + "[ip]" + run[end:]
    return run


def redact_addresses(text: str) -> str:
    """`text` with e-mail addresses replaced by `[email]` and IP address literals by `[ip]`."""
    if "@" in text or "%40" in text:
        text = redact_emails(text)
    if "." in text:
        text = _IPV4.sub("[ip]", text)
    if ":" in text:
        text = _IPV6_RUN.sub(_ipv6, text)
    return text


def _clean_text(value: Any, limit: int) -> str | None:
    t = type(value)
    if t is int or t is float:
        value = str(value)
    elif t is not str:
        return None
    if "\x00" in value:
        value = value.replace("\x00", "")
    return redact_addresses(value)[:limit]


def _without_credentials(url: str) -> str:
    """An absolute URL without the `user:password@` of its authority."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if not sep or "@" not in authority:
        return url
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


def _whole(value: Any) -> int | None:
    if (type(value) is int or type(value) is float) and 0 <= value <= MAX_UINT32 and value == int(value):
        return int(value)
    return None


# -- all of them -----------------------------------------------------------------------------------------


def typed_columns(event_name: str, params: Any, props: dict[str, str]) -> dict[str, Any]:
    """The typed columns of an event (only those that differ from their column's default), from its raw
    parameters `params`; each parameter stored in them is removed from `props` (the row's custom properties,
    built from the same parameters). The revenue is a string ("49.9000"): JSON carries it to the Decimal
    column digit for digit."""
    if type(params) is not dict or not params:
        return {}
    columns: dict[str, Any] = {}
    if REVENUE_PARAM in params and CURRENCY_PARAM in params:
        amount = parse_amount(params[REVENUE_PARAM])
        currency = parse_currency(params[CURRENCY_PARAM])
        if amount is not None and currency is not None:
            columns["revenue"] = str(amount)
            columns["currency"] = currency
            props.pop(REVENUE_PARAM, None)
            props.pop(CURRENCY_PARAM, None)
    if event_name == VITALS_EVENT:
        for vital in VITALS:
            measured = vital_value(vital, params.get(vital.param))
            if measured is not None:
                columns[vital.column] = measured
                columns[rating_column(vital)] = rate(vital, measured)
                props.pop(vital.param, None)
        for param, column in VITAL_ELEMENTS.items():
            selector = params.get(param)
            if type(selector) is str:
                text = _clean_text(selector, MAX_SELECTOR)
                if text:
                    columns[column] = text
                props.pop(param, None)
    elif event_name == ERROR_EVENT:
        for param, (column, limit) in ERROR_TEXTS.items():
            value = params.get(param)
            if param == "source" and type(value) is str and "@" in value:
                value = _without_credentials(value)
            text = _clean_text(value, limit)
            if text is not None:
                if text:
                    columns[column] = text
                props.pop(param, None)
        for param, column in ERROR_NUMBERS.items():
            number = _whole(params.get(param))
            if number is not None:
                if number:
                    columns[column] = number
                props.pop(param, None)
    return columns
