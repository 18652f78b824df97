"""Which events a goal (or a funnel step) matches: a page-path glob on pageviews, or an event name with an
optional property value. The goals report, funnels, journeys and the Plausible-compatible API share it; values
are parameters, never SQL text."""

from __future__ import annotations

import re
from typing import Any

from pixel.server.api.query.filters import SqlParams


def glob_regex(pattern: str) -> str:
    """A page-path glob (`*` = any characters) as an anchored RE2 pattern."""
    return "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"


def condition(goal: dict[str, Any], params: SqlParams) -> str:
    """The goal's condition on an event row."""
    if goal["kind"] == "page":
        return f"(event_name = 'pageview' AND match(path, {params.add(glob_regex(goal['page_pattern']))}))"
    cond = f"event_name = {params.add(goal['event_name'])}"
    if goal.get("prop_key"):
        cond += f" AND props[{params.add(goal['prop_key'])}] = {params.add(goal.get('prop_value') or '')}"
    return f"({cond})"
