"""Bot detection: every event gets `is_bot`; reports exclude bots by default but they stay queryable.

Signals, strongest first:
- the user agent matches the maintained crawler list of the `crawler-user-agents` package (monperrus/
  crawler-user-agents: ~1,500 patterns for search engines, AI crawlers, SEO tools, monitors, HTTP libraries,
  browser automation), or ua-parser classifies it as a spider;
- automation the tracker saw in the page (`device.webdriver`, i.e. `navigator.webdriver`) or a headless build
  named in the UA;
- request traits a real browser never shows: no User-Agent, or no Accept-Language header.

The UA part is cached per distinct UA string, so the ~1,500-pattern scan runs once per UA, not per event.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import crawleruseragents

try:
    import re2
except ImportError:  # pragma: no cover - google-re2 is a [server] dependency
    re2 = None

# Automation builds and tools not (or not always) named in the crawler list. Deliberately narrow: these never
# appear in a real person's browser UA.
_HEADLESS_RE = re.compile(
    r"HeadlessChrome|PhantomJS|SlimerJS|\bPuppeteer\b|\bPlaywright\b|\bSelenium\b|Chrome-Lighthouse|"
    r"\bLighthouse\b|\bCypress\b|HeadlessShell",
    re.I,
)


def _crawler_patterns() -> list[Any]:
    """The crawler list as compiled alternations. With RE2 (google-re2) the whole list is one automaton and a
    UA is checked in one pass (slower for a new crawler UA while the DFA grows); Python's `re` tries every
    branch for a browser UA, far slower (bench/README.md, "Enrichment"), so it is only
    the fallback, in chunks of 100 like the package's own `is_crawler`. Patterns RE2 cannot compile (none today)
    go to `re`."""
    patterns = [item["pattern"] for item in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
    compiled: list[Any] = []
    if re2 is not None:
        supported = []
        rest = []
        for pattern in patterns:
            try:
                re2.compile(pattern)
                supported.append(pattern)
            except Exception:
                rest.append(pattern)
        options = re2.Options()
        options.max_mem = 64 << 20  # room for the DFA: with RE2's 8 MB default it falls back to a slow NFA
        compiled.append(re2.compile("|".join(supported), options))
        patterns = rest
    size = 100
    compiled += [re.compile("|".join(patterns[i : i + size])) for i in range(0, len(patterns), size)]
    return compiled


class BotDetector:
    def __init__(self, cache_size: int = 20_000) -> None:
        self._patterns = _crawler_patterns()
        self.ua_reason = functools.lru_cache(maxsize=cache_size)(self._ua_reason)

    def _ua_reason(self, ua: str) -> str:
        """Why this user agent is a bot ('' when it looks like a person's browser)."""
        if not ua.strip():
            return "no-user-agent"
        if _HEADLESS_RE.search(ua):
            return "headless"
        for pattern in self._patterns:
            if pattern.search(ua):
                return "crawler-list"
        return ""

    def reason(self, ua: str, is_spider: bool, event: dict[str, Any], accept_language: str) -> str:
        """Why this event is from a bot, or '' when no signal fired."""
        why = self.ua_reason(ua)
        if why:
            return why
        if is_spider:
            return "ua-parser-spider"
        return self.request_reason(event, accept_language)

    @staticmethod
    def request_reason(event: dict[str, Any], accept_language: str) -> str:
        """The per-event signals (the UA's are cached separately): automation seen by the tracker, request traits."""
        device = event.get("device")
        if isinstance(device, dict) and device.get("webdriver") is True:
            return "webdriver"
        if not accept_language.strip():
            return "no-accept-language"
        return ""
