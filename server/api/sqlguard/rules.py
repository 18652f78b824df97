"""What a console statement may contain (see the package docstring, steps 2 and 3): the function categories
and the few functions allowed beyond them, the slow functions refused, the syntax tree's node types with the
fields each may have, and the refusal every check raises (`SqlRefused`). Deny what is not listed: a node
type, a field or a function missing here is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pixel.server.errors import PixelError

TABLE = "events"
ALLOWED_CATEGORIES = frozenset(
    {
        "Aggregate Functions",
        "Arithmetic",
        "Arrays",
        "Bit",
        "Bitmap",
        "Comparison",
        "Conditional",
        "Dates and Times",
        "Distance",
        "Encoding",
        "Financial",
        "Geo",
        "Geo Polygon",
        "Hash",
        "IP Address",
        "JSON",
        "Logical",
        "Map",
        "Mathematical",
        "Null",
        "Random Number",
        "Rounding",
        "String",
        "String Replacement",
        "String Search",
        "String Splitting",
        "Time Window",
        "Tuple",
        "Type Conversion",
        "URL",
        "UUID",
    }
)
# Pure functions of the "Other" category (the rest of it reads server state).
ALLOWED_OTHER = frozenset(
    {
        "bar",
        "blockNumber",
        "blockSize",
        "byteSize",
        "countDigits",
        "defaultValueOfArgumentType",
        "defaultValueOfTypeName",
        "finalizeAggregation",
        "formatReadableDecimalSize",
        "formatReadableQuantity",
        "formatReadableSize",
        "formatReadableTimeDelta",
        "identity",
        "ignore",
        "indexHint",
        "initializeAggregation",
        "isConstant",
        "isDecimalOverflow",
        "MACNumToString",
        "MACStringToNum",
        "MACStringToOUI",
        "materialize",
        "minSampleSizeContinuous",
        "minSampleSizeConversion",
        "neighbor",
        "parseReadableSize",
        "parseReadableSizeOrNull",
        "parseReadableSizeOrZero",
        "parseTimeDelta",
        "rowNumberInAllBlocks",
        "rowNumberInBlock",
        "runningAccumulate",
        "runningDifference",
        "runningDifferenceStartingWithFirstValue",
        "sleep",
        "sleepEachRow",
        "throwIf",
        "toColumnTypeName",
        "toTypeName",
        "transform",
        "visibleWidth",
    }
)
# Pure, but one call can run for many seconds (quadratic in the length of its arguments), and ClickHouse
# checks a query's limits and cancellation only between calls: such a call would keep a core busy past
# the hard bound. Aliases of these (levenshteinDistance, ...) are refused with them.
SLOW_FUNCTIONS = frozenset(
    {
        "editDistance",
        "editDistanceUTF8",
        "damerauLevenshteinDistance",
        "jaroSimilarity",
        "jaroWinklerSimilarity",
        "arrayLevenshteinDistance",
        "arrayLevenshteinDistanceWeighted",
        "multiFuzzyMatchAny",
        "multiFuzzyMatchAnyIndex",
        "multiFuzzyMatchAllIndices",
    }
)
# Syntax the parser writes as functions but that system.functions does not list.
PSEUDO_FUNCTIONS = frozenset({"lambda", "exists", "grouping", "untuple", "_CAST"})

# Node type -> the fields it may have. Fields holding nodes are walked; a node type or field not
# listed here is refused, so syntax this guard was not written for cannot slip through.
NODES: dict[str, frozenset[str]] = {
    "SelectWithUnionQuery": frozenset(
        {"union_mode", "list_of_modes", "list_of_selects", "is_outfile_append", "is_outfile_truncate"}
        | {"is_into_outfile_with_stdout"}
    ),
    "SelectIntersectExceptQuery": frozenset({"children", "final_operator"}),
    "SelectQuery": frozenset(
        {
            "with",
            "select",
            "tables",
            "prewhere",
            "where",
            "group_by",
            "having",
            "window",
            "qualify",
            "order_by",
            "limit_by_offset",
            "limit_by_length",
            "limit_by",
            "limit_offset",
            "limit_length",
            "interpolate",
            "distinct",
            "group_by_all",
            "order_by_all",
            "group_by_with_totals",
            "group_by_with_rollup",
            "group_by_with_cube",
            "group_by_with_grouping_sets",
            "group_by_with_constant_keys",
            "limit_with_ties",
            "recursive_with",
        }
    ),
    "ExpressionList": frozenset({"children"}),
    "TablesInSelectQuery": frozenset({"children"}),
    "TablesInSelectQueryElement": frozenset({"table_expression", "table_join", "array_join"}),
    "TableExpression": frozenset(
        {"database_and_table_name", "subquery", "table_function", "final", "sample_size", "sample_offset"}
    ),
    "TableJoin": frozenset({"kind", "locality", "strictness", "on_expression", "using_expression_list"}),
    "ArrayJoin": frozenset({"kind", "expression_list"}),
    "TableIdentifier": frozenset({"name", "name_parts", "alias"}),
    "Identifier": frozenset({"name", "name_parts", "alias"}),
    "Function": frozenset(
        {
            "name",
            "alias",
            "arguments",
            "parameters",
            "is_operator",
            "is_lambda_function",
            "is_window_function",
            "kind",
            "window_definition",
            "window_name",
            "nulls_action",
            "no_empty_args",
            "compute_after_window_functions",
        }
    ),
    "Literal": frozenset({"value", "alias"}),
    "Subquery": frozenset({"children", "alias", "cte_name"}),
    "WithElement": frozenset({"name", "subquery", "aliases"}),
    "Asterisk": frozenset({"transformers"}),
    "QualifiedAsterisk": frozenset({"qualifier", "transformers"}),
    "ColumnsRegexpMatcher": frozenset({"pattern", "transformers"}),
    "ColumnsListMatcher": frozenset({"column_list", "transformers"}),
    "QualifiedColumnsRegexpMatcher": frozenset({"pattern", "qualifier", "transformers"}),
    "QualifiedColumnsListMatcher": frozenset({"column_list", "qualifier", "transformers"}),
    "ColumnsTransformerList": frozenset({"children"}),
    "ColumnsExceptTransformer": frozenset({"children", "pattern", "is_strict"}),
    "ColumnsReplaceTransformer": frozenset({"children", "is_strict"}),
    "ColumnsReplaceTransformerReplacement": frozenset({"children", "name"}),
    "ColumnsApplyTransformer": frozenset(
        {"func_name", "lambda", "lambda_arg", "parameters", "column_name_prefix"}
    ),
    "OrderByElement": frozenset(
        {
            "direction",
            "nulls_direction",
            "nulls_direction_was_explicitly_specified",
            "with_fill",
            "expression",
            "collation",
            "fill_from",
            "fill_to",
            "fill_step",
            "fill_staleness",
        }
    ),
    "InterpolateElement": frozenset({"column", "expr"}),
    "WindowDefinition": frozenset(
        {
            "parent_window_name",
            "partition_by",
            "order_by",
            "frame_is_default",
            "frame_type",
            "frame_begin_type",
            "frame_begin_offset",
            "frame_begin_preceding",
            "frame_end_type",
            "frame_end_offset",
            "frame_end_preceding",
        }
    ),
    "WindowListElement": frozenset({"name", "definition"}),
    "SampleRatio": frozenset({"numerator", "denominator"}),
}


class SqlRefused(PixelError, ValueError):
    """The statement breaks a console rule; the message is the reason shown to the user."""


class ConsoleBusy(SqlRefused):
    """Another console query is running or still being stopped (one at a time per store)."""

    retryable = True


@dataclass(frozen=True, slots=True)
class Catalog:
    """The functions a console statement may call."""

    exact: frozenset[str]
    lowered: frozenset[str]  # case-insensitive ones, lower-cased
    aggregates: frozenset[str]
    combinators: tuple[str, ...]  # longest first

    def allows(self, name: str) -> bool:
        if name in PSEUDO_FUNCTIONS or name in self.exact or name.lower() in self.lowered:
            return True
        base = name
        while True:  # aggregate combinators: countIf, uniqMergeState, sumArrayIf, ...
            suffix = next((c for c in self.combinators if base.endswith(c) and len(base) > len(c)), None)
            if suffix is None:
                return False
            base = base[: -len(suffix)]
            if base in self.aggregates or base.lower() in self.aggregates:
                return True


def build_catalog(rows: list[list[Any]], combinators: list[str]) -> Catalog:
    """From `system.functions` rows (name, case_insensitive, alias_to, categories, is_aggregate)."""
    by_name = {row[0]: row for row in rows}
    exact: set[str] = set()
    lowered: set[str] = set()
    aggregates: set[str] = set()
    for name, case_insensitive, *_ in rows:
        target = by_name.get(name)
        for _ in range(4):  # follow aliases to the function they name
            if target is None or not target[2]:
                break
            target = by_name.get(target[2]) or by_name.get(str(target[2]).lower())
        if target is None:
            continue
        categories = {c.strip() for c in str(target[3]).split(",") if c.strip()}
        allowed = (categories and categories <= ALLOWED_CATEGORIES) or target[0] in ALLOWED_OTHER
        if not allowed or target[0] in SLOW_FUNCTIONS:
            continue
        (lowered if case_insensitive else exact).add(name.lower() if case_insensitive else name)
        if target[4]:
            aggregates.add(name.lower() if case_insensitive else name)
    return Catalog(
        frozenset(exact),
        frozenset(lowered),
        frozenset(aggregates),
        tuple(sorted((c for c in combinators if c != "Null"), key=len, reverse=True)),
    )
