"""Traffic sources: referrer host and source name, UTM parameters, click ids, and GA4's default channel group.

Source names and categories come from Snowplow's referer-parser database (the `referer-parser` package) with
the additions in `sources_data.py` (AI assistants, video and shopping sites, newer networks). Source and medium
follow GA4's logic: `utm_source`/`utm_medium` when the URL has them, else the click id's network (gclid ->
Google / cpc), else the referrer (a search engine -> "organic", a network -> "social", ...), else direct
(both empty). The channel follows GA4's default channel grouping rules in their order, with two additions the
issue asks for: "AI assistants" (ChatGPT, Perplexity, Claude, Gemini, Copilot, ... before the organic rules)
and "Internal" (a same-site referrer without campaign parameters).
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import NamedTuple
from urllib.parse import urlsplit

from pixel.server.enrich import sources_data
from pixel.server.enrich.columns import non_empty

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_UTM = 200

# GA4 default channel grouping, https://support.google.com/analytics/answer/9756891
_PAID_RE = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
_SHOP_CAMPAIGN_RE = re.compile(r"^(.*(([^a-df-z]|^)shop|shopping).*)$")
_DISPLAY_MEDIA = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
_SOCIAL_MEDIA = frozenset(
    {"social", "social-network", "social-media", "sm", "social network", "social media"}
)
_EMAIL = frozenset({"email", "e-mail", "e_mail", "e mail"})
_REFERRAL_MEDIA = frozenset({"referral", "app", "link"})
_NO_MEDIUM = frozenset({"", "(none)", "(not set)"})

# Medium implied by a referrer of each category (GA4 itself says "referral" for all, "organic" for search).
_CATEGORY_MEDIUM = {
    "search": "organic",
    "social": "social",
    "video": "video",
    "shopping": "shopping",
    "email": "email",
    "ai": "ai",
    "referral": "referral",
}


_CLICK_PRIORITY = {name: i for i, name in enumerate(sources_data.CLICK_IDS)}  # first listed wins


class SourceInfo(NamedTuple):
    ref_host: str
    source: str
    medium: str
    channel: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    utm_term: str
    utm_content: str
    click_id: str


_DIRECT = SourceInfo("", "", "", "Direct", "", "", "", "", "", "")
_DIRECT_COLUMNS = non_empty(_DIRECT._asdict())


class Referrer(NamedTuple):
    name: str
    category: str


def _load_base() -> dict[str, Referrer]:
    """Snowplow's referers.json: medium -> name -> {domains}; 'unknown' is a plain referral."""
    data = json.loads(resources.files("referer_parser").joinpath("data/referers.json").read_text("utf-8"))
    index: dict[str, Referrer] = {}
    for medium, entries in data.items():
        category = medium if medium in ("search", "social", "email") else "referral"
        for name, conf in entries.items():
            name = sources_data.RENAME.get(name, name)
            for domain in conf["domains"]:
                index[_strip_www(domain.lower())] = Referrer(name, category)
    return index


def _strip_www(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def build_index() -> tuple[dict[str, Referrer], dict[str, Referrer]]:
    """(host-or-host/path -> Referrer, lower-case name or alias -> Referrer)."""
    hosts = _load_base()
    # Re-categorise base entries whose *name* the supplement files elsewhere (YouTube is video, Amazon shopping).
    extra_names = {name: cat for cat, entries in sources_data.EXTRA.items() for name in entries}
    for key, ref in list(hosts.items()):
        if ref.name in extra_names and extra_names[ref.name] != ref.category:
            hosts[key] = Referrer(ref.name, extra_names[ref.name])
    for category, entries in sources_data.EXTRA.items():
        for name, domains in entries.items():
            for domain in domains:
                hosts[_strip_www(domain.lower())] = Referrer(name, category)
    names: dict[str, Referrer] = {}
    for ref in hosts.values():
        names.setdefault(ref.name.lower(), ref)
    for category, entries in sources_data.EXTRA.items():  # the supplement's category wins for a shared name
        for name in entries:
            names[name.lower()] = Referrer(name, category)
    for name, category in sources_data.NAMED.items():
        names[name.lower()] = Referrer(name, category)
    for alias, name in sources_data.SOURCE_ALIASES.items():
        if name.lower() in names:
            names[alias] = names[name.lower()]
    return hosts, names


@functools.lru_cache(maxsize=20_000)
def channel_for(source: str, category: str, medium: str, campaign: str) -> str:
    """GA4's default channel group for a (source, source category, medium, campaign); all may be ''."""
    src = source.lower()
    med = medium.lower()
    camp = campaign.lower()
    if not src and med in _NO_MEDIUM:
        return "Direct"
    if "cross-network" in camp:
        return "Cross-network"
    paid = bool(_PAID_RE.match(med))
    shop_campaign = bool(camp and _SHOP_CAMPAIGN_RE.match(camp))
    if paid:
        if category == "shopping" or shop_campaign:
            return "Paid Shopping"
        if category == "search":
            return "Paid Search"
        if category == "social":
            return "Paid Social"
        if category == "video":
            return "Paid Video"
    if med in _DISPLAY_MEDIA:
        return "Display"
    if paid:
        return "Paid Other"
    if category == "ai" or med == "ai":
        return "AI assistants"
    if category == "shopping" or shop_campaign:
        return "Organic Shopping"
    if category == "social" or med in _SOCIAL_MEDIA:
        return "Organic Social"
    if category == "video" or "video" in med:
        return "Organic Video"
    if category == "search" or med == "organic":
        return "Organic Search"
    if med in _REFERRAL_MEDIA:
        return "Referral"
    if src in _EMAIL or med in _EMAIL or category == "email":
        return "Email"
    if med == "affiliate":
        return "Affiliates"
    if med == "audio":
        return "Audio"
    if src == "sms" or med == "sms":
        return "SMS"
    if med.endswith("push") or "mobile" in med or "notification" in med or src == "firebase":
        return "Mobile Push Notifications"
    return "Unassigned"


def _split_url(url: str) -> tuple[str, str, str] | None:
    """(scheme, lower-case host, path) of an absolute URL, or None; a fast path for the common shapes with
    urllib's parser for the rest (IPv6 literals, odd authorities)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.isalpha() and "-" not in scheme:
        return None
    end = len(rest)
    for ch in "/?#":
        i = rest.find(ch)
        if 0 <= i < end:
            end = i
    authority = rest[:end]
    if "[" in authority or "@" in authority or "%" in authority or "\\" in authority:
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:
            return None
        return parts.scheme.lower(), host, parts.path
    host = authority.partition(":")[0].lower()
    tail = rest[end:]
    path = tail.split("?", 1)[0].split("#", 1)[0] if tail[:1] == "/" else ""
    return scheme.lower(), host, path


def _same_site(ref_host: str, page_host: str, site: str) -> bool:
    if not ref_host:
        return False
    for own in (page_host, site):
        own = _strip_www(own.lower())
        if own and (ref_host == own or ref_host.endswith("." + own) or own.endswith("." + ref_host)):
            return True
    return False


class SourceClassifier:
    def __init__(self, cache_size: int = 50_000) -> None:
        self.hosts, self.names = build_index()
        self.lookup_host = functools.lru_cache(maxsize=cache_size)(self._lookup_host)
        self.lookup_source = functools.lru_cache(maxsize=cache_size)(self._lookup_source)
        self.path_hosts = frozenset(key.split("/", 1)[0] for key in self.hosts if "/" in key)
        self.has_path_entries = functools.lru_cache(maxsize=cache_size)(self._has_path_entries)
        self.referrer = functools.lru_cache(maxsize=cache_size)(self._referrer)
        self.decide_columns = functools.lru_cache(maxsize=cache_size)(self._decide_columns)
        self.same_site = functools.lru_cache(maxsize=cache_size)(_same_site)

    def _has_path_entries(self, host: str) -> bool:
        """Whether some suffix of `host` has `host/path` entries (only then does the path matter)."""
        h = host
        while True:
            if h in self.path_hosts:
                return True
            dot = h.find(".")
            if dot < 0:
                return False
            h = h[dot + 1 :]

    def _lookup_host(self, host: str, path: str) -> Referrer | None:
        """Longest known suffix of `host` (`host/a/b` and `host/a` entries first), e.g. l.facebook.com ->
        Facebook; `path` is the URL path's first two segments, lower case, or ''."""
        hosts = self.hosts
        if "." not in host:
            return hosts.get(host)
        h = host
        prefixes: list[str] = []
        if path:
            parts = path.split("/")
            prefixes = ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
        while True:
            for prefix in prefixes:
                hit = hosts.get(f"{h}/{prefix}")
                if hit is not None:
                    return hit
            hit = hosts.get(h)
            if hit is not None:
                return hit
            dot = h.find(".")
            if dot < 0 or h.count(".") < 1:
                return None
            h = h[dot + 1 :]
            if "." not in h:  # never match a bare TLD
                return None

    def _lookup_source(self, value: str) -> Referrer | None:
        """A utm_source value: a known name ('google', 'fb'), or a host ('chatgpt.com', 'news.ycombinator.com')."""
        v = value.strip().lower()
        hit = self.names.get(v)
        if hit is not None:
            return hit
        if "." in v and " " not in v:
            host = v.split("://", 1)[-1].split("/", 1)[0]
            return self._lookup_host(_strip_www(host), "")
        return None

    def _referrer(self, referrer: str) -> tuple[str, Referrer | None]:
        """(ref_host, known referrer or None) for a referrer URL; android-app://pkg/ referrers use the package."""
        if not referrer:
            return "", None
        split = _split_url(referrer)
        if split is None:
            return "", None
        scheme, host, path = split
        host = _strip_www(host.rstrip("."))
        if not host:
            return "", None
        if scheme == "android-app":
            return host, self.hosts.get(host)
        if scheme not in ("http", "https"):
            return host, None
        key = ""
        if len(path) > 1 and self.has_path_entries(host):
            key = "/".join(path[1:].lower().split("/", 2)[:2]).rstrip("/")
        return host, self.lookup_host(host, key)

    def classify(self, referrer: str, page_host: str, site: str, params: dict[str, str]) -> SourceInfo:
        """`params`: the page URL's query parameters (first value of each name, names in lower case)."""
        if not referrer and not params:
            return _DIRECT
        ref_host, ref = self.referrer(referrer)
        return self.decide(ref_host, ref, _same_site(ref_host, page_host, site), campaign(params))

    def columns(
        self, referrer: str, page_host: str, site: str, campaign_key: tuple[str, ...]
    ) -> dict[str, str]:
        """The row's source columns as one (cached) dict; `campaign_key` is `campaign(params)`."""
        if not referrer and campaign_key is NO_CAMPAIGN:
            return _DIRECT_COLUMNS
        ref_host, ref = self.referrer(referrer)
        return self.decide_columns(ref_host, ref, self.same_site(ref_host, page_host, site), campaign_key)

    def _decide_columns(
        self, ref_host: str, ref: Referrer | None, internal: bool, campaign_key: tuple[str, ...]
    ) -> dict[str, str]:
        return non_empty(self.decide(ref_host, ref, internal, campaign_key)._asdict())

    def decide(
        self, ref_host: str, ref: Referrer | None, internal: bool, campaign_key: tuple[str, ...]
    ) -> SourceInfo:
        """Source, medium and channel from the parsed referrer and the URL's campaign parameters."""
        utm_source, utm_medium, utm_campaign, utm_term, utm_content = campaign_key[:5]
        utm = (utm_source, utm_medium, utm_campaign, utm_term, utm_content)
        click_id = campaign_key[5]
        click_source, click_medium = sources_data.CLICK_IDS[click_id] if click_id else ("", "")
        if not ref_host and campaign_key is NO_CAMPAIGN:
            return _DIRECT
        if internal and not (utm_source or utm_medium or utm_campaign or click_id):
            return SourceInfo(ref_host, "", "internal", "Internal", *utm, click_id)

        category = ""
        if utm_source or utm_medium:
            known = self.lookup_source(utm_source) if utm_source else None
            if known is None and not utm_source and click_source:
                known = self.lookup_source(click_source)
            if known is None and not utm_source and ref is not None and not internal:
                known = ref
            source = known.name if known else utm_source
            category = known.category if known else ""
            medium = utm_medium or click_medium
        elif click_id:
            known = self.lookup_source(click_source) if click_source else None
            if known is None and ref is not None and not internal:
                known = ref
            source = known.name if known else (ref_host if not internal else "")
            category = known.category if known else ""
            medium = click_medium or (_CATEGORY_MEDIUM.get(category, "referral") if source else "")
        elif ref_host:
            source = ref.name if ref else ref_host
            category = ref.category if ref else "referral"
            medium = _CATEGORY_MEDIUM[category]
        else:
            source = medium = ""
        channel = channel_for(source, category, medium, utm_campaign)
        return SourceInfo(ref_host, source, medium, channel, *utm, click_id)


NO_CAMPAIGN = ("", "", "", "", "", "")


def campaign(params: dict[str, str]) -> tuple[str, str, str, str, str, str]:
    """(utm_source, utm_medium, utm_campaign, utm_term, utm_content, click id name) from a URL's parameters;
    the values that matter for sources, so a gclid's value never splits a cache entry."""
    if not params:
        return NO_CAMPAIGN
    utm = [params.get(k, "")[:MAX_UTM] for k in UTM_KEYS]
    found = [name for name, value in params.items() if value and name in _CLICK_PRIORITY]
    click_id = ""
    if found:
        click_id = min(found, key=_CLICK_PRIORITY.__getitem__) if len(found) > 1 else found[0]
    if not click_id and not any(utm):
        return NO_CAMPAIGN
    return (utm[0], utm[1], utm[2], utm[3], utm[4], click_id)
