"""Revenue from events that carry an amount (typed columns `revenue`, `currency`: `pixel.server.typedfields`).

Amounts are never summed across currencies. A report is in one currency, chosen in this order: the request's
`currency` (an ISO 4217 code), else the site's reporting currency (the site setting `currency`), else the
one currency the range's revenue events carry. When none is chosen and the range holds more than one
currency the answer is a 400 `currency_mix` naming them (ask again with `currency=`); a code that is not
ISO 4217 is a 400 `invalid_currency`. Revenue in the other currencies is listed apart, per currency, in
`other_currencies` (never converted, never added). A range without revenue gives empty rows and zero totals.

Figures (amounts are exact decimal strings with four decimals, e.g. "49.9000"):
- `revenue`: the net sum (a refund is a negative amount);
- `orders`: events with a positive amount; `refunds`: events with a negative amount;
- `average_order_value`: the sum of the positive amounts / orders (half to even at four decimals), None
  without an order;
- `visitors`: visitors with a revenue event in the currency.
Rows are one per value of the dimension (`source`, `channel`, `utm_campaign`, `page`, or any event-level
dimension of the breakdowns, `prop:<name>` included; session-level ones are a 400), paged, sortable by
`revenue`, `orders`, `average_order_value`, `visitors` or `value`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pixel.server.api.errors import bad_request
from pixel.server.api.query import cache_sql
from pixel.server.api.query.filters import SESSION_DIMENSIONS, SqlParams, dimension_sql
from pixel.server.api.query.listing import deduped, order_clause
from pixel.server.api.query.scope import Scope
from pixel.server.typedfields import AMOUNT_QUANTUM, CURRENCIES

SORTS = {
    "revenue": "net",
    "orders": "orders",
    "average_order_value": "if(orders > 0, gross / orders, NULL)",
    "visitors": "visitors",
    "value": "value",
}
_FIGURES = f"""toString(sum(revenue)) AS net_text, sum(revenue) AS net, countIf(revenue > 0) AS orders,
    countIf(revenue < 0) AS refunds, toString(ifNull(sumIf(revenue, revenue > 0), 0)) AS gross_text,
    ifNull(sumIf(revenue, revenue > 0), 0) AS gross, {cache_sql.UNIQ_TOTAL}(visitor_id) AS visitors"""


def check_currency(code: str | None) -> str | None:
    """`code` upper-case when it is an ISO 4217 code; None for none; a 400 `invalid_currency` otherwise."""
    if code is None or code.strip() == "":
        return None
    upper = code.strip().upper()
    if upper not in CURRENCIES:
        raise bad_request(
            f"currency must be an ISO 4217 code such as EUR, not {code[:20]!r}", "invalid_currency"
        )
    return upper


def _amount(text: Any) -> str:
    return str(Decimal(str(text)).quantize(AMOUNT_QUANTUM))


def figures(r: dict[str, Any]) -> dict[str, Any]:
    orders = int(r["orders"])
    gross = Decimal(str(r["gross_text"]))
    aov = str((gross / orders).quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_EVEN)) if orders else None
    return {
        "revenue": _amount(r["net_text"]),
        "orders": orders,
        "refunds": int(r["refunds"]),
        "average_order_value": aov,
        "visitors": int(r["visitors"]),
    }


def revenue(
    scope: Scope,
    dimension: str,
    *,
    currency: str | None = None,
    reporting_currency: str | None = None,
    limit: int = 10,
    page: int = 1,
    sort: str = "revenue",
    order: str = "desc",
) -> dict[str, Any]:
    by = order_clause(sort, order, SORTS, "value", limit, page)
    if dimension in SESSION_DIMENSIONS:
        raise bad_request(
            f"{dimension} is a session dimension; revenue is by event dimensions", "invalid_dimension"
        )
    chosen = check_currency(currency) or check_currency(reporting_currency)
    params = SqlParams()
    value_expr = dimension_sql(dimension, params)  # a 400 for an unknown dimension
    # One scan: per currency its totals and its rows ranked, the requested page of each currency's rows kept.
    first, last = (page - 1) * limit, page * limit
    sql = f"""SELECT * FROM (
            SELECT *, row_number() OVER (PARTITION BY currency, is_total ORDER BY {by}) AS rank,
                count() OVER (PARTITION BY currency, is_total) AS total_rows
            FROM (SELECT currency, value, grouping(value) AS is_total, {_FIGURES}
                  FROM {deduped(f"{scope.where(params)} AND revenue IS NOT NULL", f"{value_expr} AS value, currency, revenue, visitor_id")}
                  GROUP BY GROUPING SETS ((currency), (currency, value))))
        WHERE is_total = 1 OR (rank > {int(first)} AND rank <= {int(last)})
        ORDER BY currency, is_total DESC, rank"""
    found = scope.run(sql, params)
    per_currency = [r for r in found if int(r["is_total"])]
    present = [r["currency"] for r in per_currency]
    if chosen is None:
        if len(present) > 1:
            raise bad_request(
                f"this range holds revenue in {len(present)} currencies ({', '.join(present)}): amounts are "
                "never added across currencies; ask for one with currency=, or set the site's reporting currency",
                "currency_mix",
            )
        chosen = present[0] if present else None
    totals = next((r for r in per_currency if r["currency"] == chosen), None)
    rows = [r for r in found if r["currency"] == chosen and not int(r["is_total"])]
    count = next(
        (int(r["total_rows"]) for r in found if r["currency"] == chosen and not int(r["is_total"])), 0
    )
    return {
        "dimension": dimension,
        "currency": chosen,
        "totals": figures(totals) if totals else _zero(),
        "other_currencies": [
            {"currency": r["currency"], **figures(r)} for r in per_currency if r["currency"] != chosen
        ],
        "rows": [{"value": r["value"], **figures(r)} for r in rows],
        "page": page,
        "limit": limit,
        "sort": sort,
        "order": order,
        "total_rows": count,
    }


def _zero() -> dict[str, Any]:
    return {"revenue": "0.0000", "orders": 0, "refunds": 0, "average_order_value": None, "visitors": 0}
