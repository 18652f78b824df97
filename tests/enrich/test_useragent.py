"""User agents: a table of real UA strings with the expected browser, OS, device type, brand and model, and
the bot detector on real crawlers, HTTP libraries, headless Chrome and real browsers (no false positives)."""

from __future__ import annotations

import pytest

from pixel.server.enrich.bots import BotDetector
from pixel.server.enrich.useragent import DEVICE_TYPES, UserAgentParser

# (user agent, (browser, browser_version, os, os_version, device_type, device_brand, device_model))
UA_TABLE = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        ("Chrome", "131", "Windows", "10", "desktop", "", ""),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        ("Edge", "131", "Windows", "10", "desktop", "", ""),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ("Firefox", "133", "Windows", "10", "desktop", "", ""),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
        ("Opera", "115", "Windows", "10", "desktop", "", ""),
    ),
    (
        "Mozilla/5.0 (Windows NT 6.1; Win64; x64; Trident/7.0; rv:11.0) like Gecko",
        ("IE", "11", "Windows", "7", "desktop", "", ""),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        ("Safari", "18.1", "macOS", "10.15", "desktop", "Apple", "Mac"),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        ("Chrome", "131", "macOS", "10.15", "desktop", "Apple", "Mac"),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0",
        ("Firefox", "133", "macOS", "14.7", "desktop", "Apple", "Mac"),
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        ("Chrome", "131", "Linux", "", "desktop", "", ""),
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ("Firefox", "133", "Ubuntu", "", "desktop", "", ""),
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        ("Chrome", "131", "ChromeOS", "14541", "desktop", "", ""),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1.1 Mobile/15E148 Safari/604.1",
        ("Safari", "18.1", "iOS", "18.1", "mobile", "Apple", "iPhone"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        ("Chrome", "131", "iOS", "17.7", "mobile", "Apple", "iPhone"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
        ("Firefox", "133", "iOS", "18.1", "mobile", "Apple", "iPhone"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.1.2;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
        ("Facebook", "", "iOS", "17.1", "mobile", "Apple", "iPhone15,2"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 356.0.0.28.109 (iPhone16,2; iOS 18_0; en_US; en; scale=3.00; 1290x2796; 655938373)",
        ("Instagram", "356", "iOS", "18", "mobile", "Apple", "iPhone16,2"),
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        ("Safari", "17.1", "iOS", "17.1", "tablet", "Apple", "iPad"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
        ("Chrome", "131", "Android", "14", "mobile", "Google", "Pixel 8"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        ("Chrome", "131", "Android", "14", "mobile", "Samsung", "SM-S921B"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        ("Samsung Internet", "26", "Android", "13", "mobile", "Samsung", "SM-A536B"),
    ),
    (
        "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
        ("Firefox", "133", "Android", "14", "mobile", "", ""),
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; 2201117TG) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        ("Chrome", "131", "Android", "13", "mobile", "", "2201117TG"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        ("Chrome", "131", "Android", "10", "mobile", "", ""),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UQ1A.240105.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 Instagram 312.1.0.34.111 Android (34/14; 420dpi; 1080x2205; Google/google; Pixel 8; shiba; shiba; en_US; 548323757)",
        ("Instagram", "312.1", "Android", "14", "mobile", "Google", "Pixel 8"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        ("Chrome", "131", "Android", "13", "tablet", "", "SM-X700"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 11; Lenovo TB-J606F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        ("Chrome", "131", "Android", "11", "tablet", "Lenovo", "TB-J606F"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/131.4.1 like Chrome/131.0.6778.85 Safari/537.36",
        ("Amazon Silk", "131.4", "Android", "9", "tablet", "Amazon", "Kindle"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S908B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 OPR/86.0.0.0",
        ("Opera", "86", "Android", "13", "mobile", "Samsung", "SM-S908B"),
    ),
    (
        "Mozilla/5.0 (Linux; arm_64; Android 12; M2102J20SG) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.116 YaBrowser/24.12.0.126 Mobile Safari/537.36",
        ("Yandex Browser", "24.12", "Android", "12", "mobile", "", "M2102J20SG"),
    ),
    (
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36",
        ("Safari", "", "Tizen", "6", "tv", "Samsung", "SMART-TV"),
    ),
    (
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36 WebAppManager",
        ("Chrome", "79", "Web0S", "", "tv", "LG", "Web0S SmartTV"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/70.0.3538.110 Mobile Safari/537.36",
        ("Chrome WebView", "70", "Android", "9", "tv", "", "AFTMM"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 11; BRAVIA 4K VH2 Build/RTM1.221031.001.S225; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36",
        ("Chrome WebView", "120", "Android", "11", "tv", "", "BRAVIA 4K VH2"),
    ),
    ("Roku/DVP-9.10 (519.10E04111A)", ("Roku", "9.10", "Roku", "9.10", "tv", "", "Roku")),
    ("AppleTV11,1/11.1", ("", "", "tvOS", "", "tv", "Apple", "AppleTV")),
    (
        "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
        ("Safari", "13", "", "", "console", "Sony", "PlayStation 5"),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041",
        ("Edge", "18.19041", "Windows", "10", "console", "", ""),
    ),
    (
        "Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 (KHTML, like Gecko) NF/6.0.1.15.4 NintendoBrowser/5.1.0.20393",
        ("", "", "", "", "console", "Nintendo", "Switch"),
    ),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ("Googlebot", "2.1", "", "", "bot", "", ""),
    ),
    (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ("Googlebot", "2.1", "Android", "6", "bot", "", ""),
    ),
    (
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        ("bingbot", "2", "", "", "bot", "", ""),
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
        ("GPTBot", "1.2", "", "", "bot", "", ""),
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
        ("ClaudeBot", "1", "", "", "bot", "", ""),
    ),
    (
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        ("AhrefsBot", "7", "", "", "bot", "", ""),
    ),
    (
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        ("FacebookBot", "1.1", "", "", "bot", "", ""),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.33 Safari/537.36",
        ("HeadlessChrome", "131", "Windows", "10", "desktop", "", ""),
    ),
    ("curl/8.4.0", ("curl", "8.4", "", "", "other", "", "")),
    ("python-requests/2.32.3", ("Python Requests", "2.32", "", "", "other", "", "")),
    (
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        ("YandexBot", "3", "", "", "bot", "", ""),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.60 Safari/537.36 (compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)",
        ("PerplexityBot", "1", "macOS", "10.15", "bot", "", ""),
    ),
]

BROWSERS = [
    ua
    for ua, expected in UA_TABLE
    if expected[4] != "bot"
    and not ua.startswith(("curl/", "python-requests/"))
    and "HeadlessChrome" not in ua
]
BOTS = {
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": "crawler-list",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": "crawler-list",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)": "crawler-list",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)": "crawler-list",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)": "crawler-list",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)": "crawler-list",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)": "crawler-list",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.33 Safari/537.36": "headless",
    "curl/8.4.0": "crawler-list",
    "python-requests/2.32.3": "crawler-list",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)": "crawler-list",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.60 Safari/537.36 (compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)": "crawler-list",
}


@pytest.fixture(scope="module")
def parser() -> UserAgentParser:
    return UserAgentParser()


@pytest.fixture(scope="module")
def bots() -> BotDetector:
    return BotDetector()


def test_table_is_big_enough_and_covers_every_device_type() -> None:
    assert len(UA_TABLE) >= 40
    assert {expected[4] for _, expected in UA_TABLE} == set(DEVICE_TYPES)


@pytest.mark.parametrize(("ua", "expected"), UA_TABLE, ids=[ua[:60] for ua, _ in UA_TABLE])
def test_user_agent_table(parser: UserAgentParser, ua: str, expected: tuple[str, ...]) -> None:
    assert tuple(parser.parse(ua))[:7] == expected


def test_empty_user_agent_is_other(parser: UserAgentParser) -> None:
    assert tuple(parser.parse("")) == ("", "", "", "", "other", "", "", False)


def test_results_are_cached(parser: UserAgentParser) -> None:
    ua = UA_TABLE[0][0] + " cache-probe"
    before = parser.cache_info()
    first = parser.parse(ua)
    second = parser.parse(ua)
    after = parser.cache_info()
    assert first is second
    assert after.misses == before.misses + 1
    assert after.hits == before.hits + 1


@pytest.mark.parametrize("ua", list(BOTS), ids=[ua[:60] for ua in BOTS])
def test_crawlers_and_automation_are_bots(bots: BotDetector, parser: UserAgentParser, ua: str) -> None:
    assert bots.reason(ua, parser.parse(ua).is_spider, {}, "en-US") == BOTS[ua]


def test_browser_table_has_no_false_positives(bots: BotDetector, parser: UserAgentParser) -> None:
    assert len(BROWSERS) >= 35
    flagged = {
        ua: bots.reason(ua, parser.parse(ua).is_spider, {"device": {"webdriver": False}}, "en-US,en;q=0.9")
        for ua in BROWSERS
    }
    assert {ua: why for ua, why in flagged.items() if why} == {}


def test_webdriver_flag_from_the_tracker_makes_a_bot(bots: BotDetector) -> None:
    ua = BROWSERS[0]
    assert bots.reason(ua, False, {"device": {"webdriver": True}}, "en-US") == "webdriver"
    assert (
        bots.reason(ua, False, {"device": {"webdriver": "true"}}, "en-US") == ""
    )  # only a real boolean counts


def test_missing_accept_language_makes_a_bot(bots: BotDetector) -> None:
    assert bots.reason(BROWSERS[0], False, {}, "") == "no-accept-language"
    assert bots.reason(BROWSERS[0], False, {}, "   ") == "no-accept-language"


def test_missing_user_agent_makes_a_bot(bots: BotDetector) -> None:
    assert bots.reason("", False, {}, "en-US") == "no-user-agent"


def test_ua_parser_spider_family_counts_even_if_the_list_misses_it(bots: BotDetector) -> None:
    assert bots.reason("SomeBrowser/1.0", True, {}, "en-US") == "ua-parser-spider"
