"""User-agent parsing: browser, OS, device type, brand and model.

Parsing uses ua-parser 1.x with its native resolver (ua-parser-rs, the `ua-parser[regex]` extra), which is many
times faster than the pure-Python one (bench/README.md, "Enrichment"); results are kept in an LRU cache because
real traffic repeats the same few thousand user agents. ua-parser has no notion of a device *type*, so
`device_type` is derived here from the parsed families plus a few well-known UA tokens (TV and console
platforms are named in the UA, not in ua-parser's data).
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

from ua_parser import Domain, load_builtins

_NativeResolver: Any
try:  # the native resolver; fall back to ua-parser's best available (re2 or pure re) if it is missing
    from ua_parser.regex import Resolver as _NativeResolver
except ImportError:  # pragma: no cover - depends on the installed extra
    _NativeResolver = None

DEVICE_TYPES = ("desktop", "mobile", "tablet", "tv", "console", "bot", "other")


class DeviceInfo(NamedTuple):
    browser: str
    browser_version: str
    os: str
    os_version: str
    device_type: str
    device_brand: str
    device_model: str
    is_spider: bool  # ua-parser's own crawler family ("Spider"); one of the bot signals


EMPTY = DeviceInfo("", "", "", "", "other", "", "", False)

# ua-parser reports separate families for a browser's mobile builds; the device type already says "mobile".
_BROWSER_NAMES = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome WebView",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari WebView",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "IE Mobile": "IE",
    "Samsung Internet": "Samsung Internet",
    "Other": "",
}
_OS_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS", "ATV OS X": "tvOS", "Other": ""}

_DESKTOP_OS = frozenset(
    {
        "Windows",
        "macOS",
        "Linux",
        "Ubuntu",
        "Fedora",
        "Debian",
        "Red Hat",
        "SUSE",
        "openSUSE",
        "Mint",
        "Arch Linux",
        "ChromeOS",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
        "Gentoo",
        "Slackware",
        "Mageia",
        "Mandriva",
        "CentOS",
        "Kubuntu",
        "Xubuntu",
        "Lubuntu",
        "Windows 95",
        "Windows 98",
        "Windows ME",
        "Windows 2000",
        "Windows XP",
        "Windows Vista",
        "Windows 7",
        "Windows 8",
        "Windows 8.1",
        "Haiku",
        "BeOS",
    }
)
_MOBILE_OS = frozenset(
    {
        "Windows Phone",
        "Windows Mobile",
        "Windows CE",
        "Symbian OS",
        "Symbian^3",
        "BlackBerry OS",
        "Bada",
        "KaiOS",
        "Firefox OS",
        "Sailfish",
        "Tizen Mobile",
        "webOS",
        "Maemo",
        "MeeGo",
        "HarmonyOS",
    }
)
_TABLET_FAMILIES = frozenset(
    {
        "iPad",
        "Kindle",
        "Kindle Fire",
        "Kindle Fire HD",
        "BlackBerry Playbook",
        "Nexus 7",
        "Nexus 9",
        "Nexus 10",
        "Galaxy Tab",
        "Xoom",
        "Surface",
    }
)
_GENERIC_FAMILIES = frozenset(
    {"Generic Smartphone", "Generic Feature Phone", "Generic Tablet", "Other", "Spider"}
)
# Chrome's reduced UA says "Android 10; K" for every phone: K is no model.
_NO_MODELS = frozenset({"K", "Smartphone", "Tablet", "Feature Phone"})
_MOBILE_FAMILIES = frozenset({"iPhone", "iPod", "Generic Smartphone", "Generic Feature Phone", "iOS-Device"})

_CONSOLE_RE = re.compile(r"PlayStation|Xbox|Nintendo|\bOUYA\b", re.I)
_TV_RE = re.compile(
    r"SMART-?TV|Smart[ _]?TV|HbbTV|\bTV Safari|Web0S|NetCast|AppleTV|Apple TV|\bRoku\b|BRAVIA|GoogleTV|Google TV"
    r"|Android TV|AndroidTV|\bAFT[A-Z]{1,4}\b|\bCrKey\b|VIDAA|Opera TV|\bTizen\b.*\bTV\b|\bDTV\b|Philips.*TV"
    r"|\bSTB\b|\bMiBOX\b|\bFire TV\b",
    re.I,
)
_TABLET_RE = re.compile(r"\bTablet\b|\biPad\b|\bKindle\b|\bSilk\b(?!.*Mobile)|\bPlayBook\b|\bTab\b", re.I)
_MOBILE_RE = re.compile(
    r"\bMobi(le)?\b|\biPhone\b|\biPod\b|Opera Mini|\bKAIOS\b|IEMobile|Windows Phone", re.I
)


def _version(major: str | None, minor: str | None) -> str:
    if not major:
        return ""
    return f"{major}.{minor}" if minor and minor != "0" else major


def _brand(brand: str | None) -> str:
    if not brand or brand.startswith("Generic") or brand == "Spider":
        return ""
    return brand


def device_type(ua: str, browser_family: str, os_name: str, device_family: str, brand: str) -> str:
    """desktop / mobile / tablet / tv / console / bot / other, from the parse result and the UA's own tokens."""
    if device_family == "Spider":
        return "bot"
    if _CONSOLE_RE.search(ua) or brand in ("Nintendo",) or device_family.startswith(("PlayStation", "Xbox")):
        return "console"
    if _TV_RE.search(ua) or brand == "Generic_Inettv" or device_family in ("AppleTV", "Roku"):
        return "tv"
    if device_family in _TABLET_FAMILIES or brand == "Generic_Android_Tablet":
        return "tablet"
    if os_name == "Android":
        # Android phones say "Mobile"; tablets (and TV sticks, caught above) do not.
        if _TABLET_RE.search(ua) or "Mobile" not in ua:
            return "tablet"
        return "mobile"
    if device_family in _MOBILE_FAMILIES or os_name in _MOBILE_OS or os_name == "iOS":
        return "mobile"
    if _TABLET_RE.search(ua) and "Windows NT" not in ua:
        return "tablet"
    if _MOBILE_RE.search(ua):
        return "mobile"
    if os_name in _DESKTOP_OS or os_name.startswith("Windows"):
        return "desktop"
    return "other"


@functools.cache
def _resolver() -> Any:
    """The compiled rule set (slow to build, bench/README.md): one per process, shared by every parser."""
    if _NativeResolver is not None:
        return _NativeResolver(load_builtins())
    from ua_parser import BestAvailableResolver  # pragma: no cover

    return BestAvailableResolver(load_builtins())  # pragma: no cover


class UserAgentParser:
    """Parses user agents with ua-parser's native resolver behind an LRU cache."""

    def __init__(self, cache_size: int = 20_000) -> None:
        self._resolve = _resolver()
        self.parse = functools.lru_cache(maxsize=cache_size)(self._parse)

    def _parse(self, ua: str) -> DeviceInfo:
        if not ua:
            return EMPTY
        result = self._resolve(ua, Domain.ALL)
        agent, os_, device = result.user_agent, result.os, result.device
        browser_family = agent.family if agent else ""
        browser = _BROWSER_NAMES.get(browser_family, browser_family)
        os_family = os_.family if os_ else ""
        os_name = _OS_NAMES.get(os_family, os_family)
        device_family = device.family if device else ""
        raw_brand = (device.brand or "") if device else ""
        kind = device_type(ua, browser_family, os_name, device_family, raw_brand)
        model = (device.model or "") if device else ""
        return DeviceInfo(
            browser=browser,
            browser_version=_version(agent.major, agent.minor) if agent else "",
            os=os_name,
            os_version=_version(os_.major, os_.minor) if os_ else "",
            device_type=kind,
            device_brand=_brand(raw_brand),
            device_model="" if device_family in _GENERIC_FAMILIES or model in _NO_MODELS else model,
            is_spider=device_family == "Spider",
        )

    def cache_info(self) -> functools._CacheInfo:
        return self.parse.cache_info()
