"""The SQL console's guard: read-only SQL over one site's `events`, checked as ClickHouse parses it.

Contract: a console statement reads the table `events` - only the rows of the caller's site - and
nothing else of the server: no other table (in FROM, JOIN, `IN <table>`, subqueries, CTEs), no table
function, no dictionary, no function that reads files, the network, settings or server facts.

0. The parser is the store's own engine, or - for a ClickHouse server before 26.8, which has no
   `parseQueryToJSON` - chDB in memory in this process (`LocalParser`), the same ClickHouse parser.
1. The text goes to ClickHouse as a *parameter* of `formatQuery()` - never as SQL - so a syntax error
   or a second statement (`SELECT 1; DROP ...`) is refused before anything runs, and what comes back
   is one canonical statement without comments.
2. `parseQueryToJSON()` of that statement gives its syntax tree, which is walked node by node against
   allow-lists (deny what is not understood): every node type and every field of it must be known;
   the root is a SELECT (or UNION/INTERSECT/EXCEPT of SELECTs) without INTO OUTFILE, FORMAT or
   SETTINGS; every table named is `events` itself (bare, no database) or a CTE defined in an
   enclosing query (before it, and not its own name inside its own body, which ClickHouse reads as
   the table of that name); there is no table function; the right side of `IN` is a subquery or values, not
   a name; every function is in the allowed set (below), including those `APPLY` names.
3. Allowed functions are read from `system.functions` of the parser: every function of the pure
   categories (arithmetic, strings, dates, arrays, JSON, hashes, aggregates and window functions with
   their combinators, ...), plus a few pure ones from "Other" (`toTypeName`, `formatReadableSize`,
   `throwIf`, `sleep`, ...). Not allowed: "Other" otherwise (server settings, paths, host name,
   version, uptime, current user, files, macros, `joinGet`, ...), dictionaries, introspection,
   machine learning and AI functions, user-defined functions, anything the catalog does not list,
   and the few pure functions one call of which can run for many seconds (`SLOW_FUNCTIONS`: edit
   distances on long strings), since ClickHouse cannot stop a query in the middle of a call.
4. It runs wrapped as `SELECT * FROM (<statement>) AS <tag> LIMIT <rows+1> SETTINGS readonly = 1,
   final = 1, additional_table_filters = {events: site = <site>}, ...` - the wrapped text is parsed
   again and must hold exactly the checked tree - through `Store.console_query`: beside the reports
   (they never wait behind it), stopped from outside at the hard deadline (`Limits.hard_seconds`).
   ClickHouse's own `max_execution_time` cuts a query at `max_seconds` and returns what it has
   (`truncated_reason: "time limit"`); a query still running at `hard_seconds` (a single function call
   ClickHouse cannot interrupt) is answered with a refusal at that moment and cancelled.

The guard in four modules, each a step of the contract above: `rules` (what is allowed: the function
categories, the syntax tree's node types and fields, `SqlRefused`), `parser` (0, 1 and 3: where statements
are formatted and parsed, the function catalog read once per parser), `tree` (2: the walk of a syntax tree
against the rules) and `console` (4: the limits, the wrapped statement and `run`). Callers import from this
package: `from pixel.server.api import sqlguard; sqlguard.run(...)`.
"""

from __future__ import annotations

from pixel.server.api.sqlguard.console import Limits, run, wrap
from pixel.server.api.sqlguard.parser import LocalParser, Parser, canonical, catalog, parse, parser_for
from pixel.server.api.sqlguard.rules import (
    ALLOWED_CATEGORIES,
    ALLOWED_OTHER,
    NODES,
    PSEUDO_FUNCTIONS,
    SLOW_FUNCTIONS,
    TABLE,
    Catalog,
    ConsoleBusy,
    SqlRefused,
    build_catalog,
)
from pixel.server.api.sqlguard.tree import check, check_statement

__all__ = [
    "ALLOWED_CATEGORIES",
    "ALLOWED_OTHER",
    "NODES",
    "PSEUDO_FUNCTIONS",
    "SLOW_FUNCTIONS",
    "TABLE",
    "Catalog",
    "ConsoleBusy",
    "Limits",
    "LocalParser",
    "Parser",
    "SqlRefused",
    "build_catalog",
    "canonical",
    "catalog",
    "check",
    "check_statement",
    "parse",
    "parser_for",
    "run",
    "wrap",
]
