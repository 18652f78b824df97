"""Sources, mediums, click ids and GA4 default channel groups: a table of real referrer + landing URL cases."""

from __future__ import annotations

import pytest

from pixel.server.enrich.privacy import clean_url
from pixel.server.enrich.sources import SourceClassifier, channel_for

# (referrer, page URL on site example.com) -> (ref_host, source, medium, channel, click_id)
CASES = [
    ("", "https://example.com/", "", "", "", "Direct", ""),
    ("", "https://example.com/?page=2", "", "", "", "Direct", ""),
    (
        "https://www.google.com/",
        "https://example.com/",
        "google.com",
        "Google",
        "organic",
        "Organic Search",
        "",
    ),
    (
        "https://www.google.co.uk/",
        "https://example.com/pricing",
        "google.co.uk",
        "Google",
        "organic",
        "Organic Search",
        "",
    ),
    (
        "https://www.google.de/search?q=pixel",
        "https://example.com/",
        "google.de",
        "Google",
        "organic",
        "Organic Search",
        "",
    ),
    (
        "https://www.bing.com/search?q=pixel+analytics",
        "https://example.com/",
        "bing.com",
        "Bing",
        "organic",
        "Organic Search",
        "",
    ),
    (
        "https://duckduckgo.com/",
        "https://example.com/",
        "duckduckgo.com",
        "DuckDuckGo",
        "organic",
        "Organic Search",
        "",
    ),
    (
        "https://search.yahoo.com/search?p=pixel",
        "https://example.com/",
        "search.yahoo.com",
        "Yahoo!",
        "organic",
        "Organic Search",
        "",
    ),
    (
        "https://yandex.ru/search/?text=pixel",
        "https://example.com/",
        "yandex.ru",
        "Yandex",
        "organic",
        "Organic Search",
        "",
    ),
    (
        "https://www.baidu.com/link?url=abc",
        "https://example.com/",
        "baidu.com",
        "Baidu",
        "organic",
        "Organic Search",
        "",
    ),
    (
        "https://www.ecosia.org/search?q=pixel",
        "https://example.com/",
        "ecosia.org",
        "Ecosia",
        "organic",
        "Organic Search",
        "",
    ),
    (
        "https://search.brave.com/search?q=pixel",
        "https://example.com/",
        "search.brave.com",
        "Brave Search",
        "organic",
        "Organic Search",
        "",
    ),
    (
        "https://www.startpage.com/",
        "https://example.com/",
        "startpage.com",
        "Startpage",
        "organic",
        "Organic Search",
        "",
    ),
    ("https://kagi.com/", "https://example.com/", "kagi.com", "Kagi", "organic", "Organic Search", ""),
    (
        "https://search.naver.com/search.naver?query=pixel",
        "https://example.com/",
        "search.naver.com",
        "Naver",
        "organic",
        "Organic Search",
        "",
    ),
    (
        "android-app://com.google.android.googlequicksearchbox/",
        "https://example.com/",
        "com.google.android.googlequicksearchbox",
        "Google",
        "organic",
        "Organic Search",
        "",
    ),
    (
        "https://www.google.com/",
        "https://example.com/?utm_medium=organic",
        "google.com",
        "Google",
        "organic",
        "Organic Search",
        "",
    ),
    (
        "https://www.google.com/",
        "https://example.com/?gclid=Cj0KCQiA",
        "google.com",
        "Google",
        "cpc",
        "Paid Search",
        "gclid",
    ),
    ("", "https://example.com/?gclid=Cj0KCQiA", "", "Google", "cpc", "Paid Search", "gclid"),
    (
        "https://www.google.com/",
        "https://example.com/?gbraid=0AAAAA",
        "google.com",
        "Google",
        "cpc",
        "Paid Search",
        "gbraid",
    ),
    ("", "https://example.com/?wbraid=ClkKCQ", "", "Google", "cpc", "Paid Search", "wbraid"),
    (
        "https://www.bing.com/",
        "https://example.com/?msclkid=7d1c2b3",
        "bing.com",
        "Bing",
        "cpc",
        "Paid Search",
        "msclkid",
    ),
    (
        "",
        "https://example.com/?utm_source=google&utm_medium=cpc&utm_campaign=brand",
        "",
        "Google",
        "cpc",
        "Paid Search",
        "",
    ),
    ("", "https://example.com/?utm_source=bing&utm_medium=ppc", "", "Bing", "ppc", "Paid Search", ""),
    (
        "",
        "https://example.com/?utm_source=duckduckgo&utm_medium=paidsearch",
        "",
        "DuckDuckGo",
        "paidsearch",
        "Paid Search",
        "",
    ),
    (
        "https://www.facebook.com/",
        "https://example.com/",
        "facebook.com",
        "Facebook",
        "social",
        "Organic Social",
        "",
    ),
    (
        "https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.com",
        "https://example.com/?fbclid=IwAR0abc",
        "l.facebook.com",
        "Facebook",
        "social",
        "Organic Social",
        "fbclid",
    ),
    (
        "https://m.facebook.com/",
        "https://example.com/",
        "m.facebook.com",
        "Facebook",
        "social",
        "Organic Social",
        "",
    ),
    (
        "https://l.instagram.com/",
        "https://example.com/",
        "l.instagram.com",
        "Instagram",
        "social",
        "Organic Social",
        "",
    ),
    (
        "https://www.linkedin.com/feed/",
        "https://example.com/",
        "linkedin.com",
        "LinkedIn",
        "social",
        "Organic Social",
        "",
    ),
    ("https://lnkd.in/abc", "https://example.com/", "lnkd.in", "LinkedIn", "social", "Organic Social", ""),
    (
        "https://www.reddit.com/r/selfhosted/",
        "https://example.com/",
        "reddit.com",
        "Reddit",
        "social",
        "Organic Social",
        "",
    ),
    (
        "https://old.reddit.com/",
        "https://example.com/",
        "old.reddit.com",
        "Reddit",
        "social",
        "Organic Social",
        "",
    ),
    ("https://t.co/abc123", "https://example.com/", "t.co", "Twitter", "social", "Organic Social", ""),
    ("https://x.com/", "https://example.com/", "x.com", "Twitter", "social", "Organic Social", ""),
    (
        "https://news.ycombinator.com/item?id=1",
        "https://example.com/",
        "news.ycombinator.com",
        "Hacker News",
        "social",
        "Organic Social",
        "",
    ),
    (
        "https://bsky.app/profile/someone",
        "https://example.com/",
        "bsky.app",
        "Bluesky",
        "social",
        "Organic Social",
        "",
    ),
    (
        "https://www.threads.net/",
        "https://example.com/",
        "threads.net",
        "Threads",
        "social",
        "Organic Social",
        "",
    ),
    (
        "https://mastodon.social/@someone",
        "https://example.com/",
        "mastodon.social",
        "Mastodon",
        "social",
        "Organic Social",
        "",
    ),
    (
        "https://www.pinterest.com/pin/1/",
        "https://example.com/",
        "pinterest.com",
        "Pinterest",
        "social",
        "Organic Social",
        "",
    ),
    (
        "android-app://com.linkedin.android/",
        "https://example.com/",
        "com.linkedin.android",
        "LinkedIn",
        "social",
        "Organic Social",
        "",
    ),
    (
        "",
        "https://example.com/?utm_source=newsletter&utm_medium=social",
        "",
        "newsletter",
        "social",
        "Organic Social",
        "",
    ),
    ("", "https://example.com/?utm_source=fb", "", "Facebook", "", "Organic Social", ""),
    ("", "https://example.com/?fbclid=IwAR0abc", "", "Facebook", "social", "Organic Social", "fbclid"),
    (
        "https://www.facebook.com/",
        "https://example.com/?utm_source=facebook&utm_medium=paid_social&utm_campaign=bf",
        "facebook.com",
        "Facebook",
        "paid_social",
        "Paid Social",
        "",
    ),
    ("", "https://example.com/?utm_source=ig&utm_medium=cpc", "", "Instagram", "cpc", "Paid Social", ""),
    ("", "https://example.com/?ttclid=E.C.P.abc", "", "TikTok", "cpc", "Paid Social", "ttclid"),
    (
        "https://www.linkedin.com/",
        "https://example.com/?li_fat_id=abc",
        "linkedin.com",
        "LinkedIn",
        "cpc",
        "Paid Social",
        "li_fat_id",
    ),
    ("", "https://example.com/?utm_source=reddit&utm_medium=paid", "", "Reddit", "paid", "Paid Social", ""),
    (
        "https://www.youtube.com/",
        "https://example.com/",
        "youtube.com",
        "YouTube",
        "video",
        "Organic Video",
        "",
    ),
    (
        "https://m.youtube.com/watch?v=abc",
        "https://example.com/",
        "m.youtube.com",
        "YouTube",
        "video",
        "Organic Video",
        "",
    ),
    ("https://youtu.be/abc", "https://example.com/", "youtu.be", "YouTube", "video", "Organic Video", ""),
    ("https://vimeo.com/123", "https://example.com/", "vimeo.com", "Vimeo", "video", "Organic Video", ""),
    (
        "https://www.twitch.tv/someone",
        "https://example.com/",
        "twitch.tv",
        "Twitch",
        "video",
        "Organic Video",
        "",
    ),
    ("", "https://example.com/?utm_source=youtube&utm_medium=cpv", "", "YouTube", "cpv", "Paid Video", ""),
    (
        "",
        "https://example.com/?utm_source=partner&utm_medium=video",
        "",
        "partner",
        "video",
        "Organic Video",
        "",
    ),
    (
        "https://www.amazon.com/dp/B000",
        "https://example.com/",
        "amazon.com",
        "Amazon",
        "shopping",
        "Organic Shopping",
        "",
    ),
    (
        "https://www.ebay.co.uk/itm/1",
        "https://example.com/",
        "ebay.co.uk",
        "eBay",
        "shopping",
        "Organic Shopping",
        "",
    ),
    ("https://www.etsy.com/", "https://example.com/", "etsy.com", "Etsy", "shopping", "Organic Shopping", ""),
    (
        "",
        "https://example.com/?utm_source=google&utm_medium=cpc&utm_campaign=shopping-feed",
        "",
        "Google",
        "cpc",
        "Paid Shopping",
        "",
    ),
    (
        "",
        "https://example.com/?utm_source=newsletter&utm_campaign=summer-shop",
        "",
        "newsletter",
        "",
        "Organic Shopping",
        "",
    ),
    ("https://chatgpt.com/", "https://example.com/", "chatgpt.com", "ChatGPT", "ai", "AI assistants", ""),
    ("", "https://example.com/?utm_source=chatgpt.com", "", "ChatGPT", "", "AI assistants", ""),
    (
        "https://chat.openai.com/c/abc",
        "https://example.com/",
        "chat.openai.com",
        "ChatGPT",
        "ai",
        "AI assistants",
        "",
    ),
    (
        "https://www.perplexity.ai/search/abc",
        "https://example.com/",
        "perplexity.ai",
        "Perplexity",
        "ai",
        "AI assistants",
        "",
    ),
    ("https://claude.ai/chat/abc", "https://example.com/", "claude.ai", "Claude", "ai", "AI assistants", ""),
    (
        "https://gemini.google.com/app",
        "https://example.com/",
        "gemini.google.com",
        "Gemini",
        "ai",
        "AI assistants",
        "",
    ),
    (
        "https://copilot.microsoft.com/",
        "https://example.com/",
        "copilot.microsoft.com",
        "Microsoft Copilot",
        "ai",
        "AI assistants",
        "",
    ),
    (
        "https://chat.deepseek.com/",
        "https://example.com/",
        "chat.deepseek.com",
        "DeepSeek",
        "ai",
        "AI assistants",
        "",
    ),
    (
        "https://x.com/i/grok?conversation=1",
        "https://example.com/",
        "x.com",
        "Grok",
        "ai",
        "AI assistants",
        "",
    ),
    ("https://mail.google.com/", "https://example.com/", "mail.google.com", "Gmail", "email", "Email", ""),
    (
        "android-app://com.google.android.gm/",
        "https://example.com/",
        "com.google.android.gm",
        "Gmail",
        "email",
        "Email",
        "",
    ),
    (
        "https://outlook.live.com/",
        "https://example.com/",
        "outlook.live.com",
        "Outlook.com",
        "email",
        "Email",
        "",
    ),
    (
        "",
        "https://example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=nov",
        "",
        "newsletter",
        "email",
        "Email",
        "",
    ),
    ("", "https://example.com/?utm_source=e-mail", "", "e-mail", "", "Email", ""),
    (
        "",
        "https://example.com/?utm_source=mailchimp&utm_medium=e_mail&mc_cid=abc",
        "",
        "mailchimp",
        "e_mail",
        "Email",
        "mc_cid",
    ),
    ("", "https://example.com/?utm_source=gdn&utm_medium=display", "", "gdn", "display", "Display", ""),
    ("", "https://example.com/?utm_source=adroll&utm_medium=banner", "", "adroll", "banner", "Display", ""),
    (
        "https://ad.doubleclick.net/",
        "https://example.com/?dclid=abc",
        "ad.doubleclick.net",
        "Google",
        "display",
        "Display",
        "dclid",
    ),
    (
        "",
        "https://example.com/?utm_source=awin&utm_medium=affiliate",
        "",
        "awin",
        "affiliate",
        "Affiliates",
        "",
    ),
    ("", "https://example.com/?irclickid=xyz", "", "", "affiliate", "Affiliates", "irclickid"),
    ("", "https://example.com/?utm_source=taboola&utm_medium=cpc", "", "Taboola", "cpc", "Paid Other", ""),
    (
        "",
        "https://example.com/?utm_source=partner&utm_medium=retargeting",
        "",
        "partner",
        "retargeting",
        "Paid Other",
        "",
    ),
    (
        "https://github.com/someone/project",
        "https://example.com/",
        "github.com",
        "GitHub",
        "social",
        "Organic Social",
        "",
    ),
    (
        "https://blog.somewhere.org/post",
        "https://example.com/",
        "blog.somewhere.org",
        "blog.somewhere.org",
        "referral",
        "Referral",
        "",
    ),
    (
        "https://en.wikipedia.org/wiki/Web_analytics",
        "https://example.com/",
        "en.wikipedia.org",
        "en.wikipedia.org",
        "referral",
        "Referral",
        "",
    ),
    (
        "https://stackoverflow.com/questions/1",
        "https://example.com/",
        "stackoverflow.com",
        "StackOverflow",
        "social",
        "Organic Social",
        "",
    ),
    (
        "",
        "https://example.com/?utm_source=partner.io&utm_medium=referral",
        "",
        "partner.io",
        "referral",
        "Referral",
        "",
    ),
    (
        "https://example.com/blog",
        "https://example.com/pricing",
        "example.com",
        "",
        "internal",
        "Internal",
        "",
    ),
    ("https://www.example.com/", "https://example.com/", "example.com", "", "internal", "Internal", ""),
    (
        "https://shop.example.com/cart",
        "https://example.com/checkout",
        "shop.example.com",
        "",
        "internal",
        "Internal",
        "",
    ),
    (
        "https://example.com/",
        "https://example.com/?utm_source=homepage-banner&utm_medium=internal-promo",
        "example.com",
        "homepage-banner",
        "internal-promo",
        "Unassigned",
        "",
    ),
    ("", "https://example.com/?utm_source=sms&utm_medium=text", "", "sms", "text", "SMS", ""),
    (
        "",
        "https://example.com/?utm_source=firebase&utm_medium=notification",
        "",
        "firebase",
        "notification",
        "Mobile Push Notifications",
        "",
    ),
    ("", "https://example.com/?utm_source=podcast&utm_medium=audio", "", "podcast", "audio", "Audio", ""),
    ("", "https://example.com/?utm_source=foo&utm_medium=bar", "", "foo", "bar", "Unassigned", ""),
    (
        "",
        "https://example.com/?utm_campaign=cross-network-q4&utm_source=google&utm_medium=cpc",
        "",
        "Google",
        "cpc",
        "Cross-network",
        "",
    ),
    ("", "https://example.com/?utm_campaign=spring", "", "", "", "Direct", ""),
]

GA4_AND_ADDED_CHANNELS = {
    "Direct",
    "Organic Search",
    "Paid Search",
    "Organic Social",
    "Paid Social",
    "Email",
    "Referral",
    "Display",
    "Affiliates",
    "Organic Video",
    "Paid Video",
    "Organic Shopping",
    "Paid Shopping",
    "AI assistants",
    "Internal",
    "Unassigned",
    "Paid Other",
    "Cross-network",
    "Audio",
    "SMS",
    "Mobile Push Notifications",
}


@pytest.fixture(scope="module")
def sources() -> SourceClassifier:
    return SourceClassifier()


def classify(sources: SourceClassifier, referrer: str, url: str):
    _, _, params = clean_url(url, frozenset())
    return sources.classify(referrer, "example.com", "example.com", params)


def test_table_size_and_channel_coverage() -> None:
    assert len(CASES) >= 60
    assert {case[5] for case in CASES} == GA4_AND_ADDED_CHANNELS


@pytest.mark.parametrize(
    ("referrer", "url", "ref_host", "source", "medium", "channel", "click_id"),
    CASES,
    ids=[f"{c[0][:40]}|{c[1][19:60]}" for c in CASES],
)
def test_source_table(
    sources: SourceClassifier,
    referrer: str,
    url: str,
    ref_host: str,
    source: str,
    medium: str,
    channel: str,
    click_id: str,
) -> None:
    got = classify(sources, referrer, url)
    assert (got.ref_host, got.source, got.medium, got.channel, got.click_id) == (
        ref_host,
        source,
        medium,
        channel,
        click_id,
    )


def test_all_five_utm_parameters_are_kept(sources: SourceClassifier) -> None:
    got = classify(
        sources,
        "",
        "https://example.com/?utm_source=Newsletter&utm_medium=Email&utm_campaign=Black%20Friday"
        "&utm_term=running+shoes&utm_content=hero-button",
    )
    assert (got.utm_source, got.utm_medium, got.utm_campaign, got.utm_term, got.utm_content) == (
        "Newsletter",
        "Email",
        "Black Friday",
        "running shoes",
        "hero-button",
    )
    assert (got.source, got.medium, got.channel) == ("Newsletter", "Email", "Email")


def test_utm_parameter_names_are_case_insensitive_and_values_bounded(sources: SourceClassifier) -> None:
    got = classify(
        sources, "", "https://example.com/?UTM_SOURCE=google&Utm_Medium=cpc&utm_campaign=" + "x" * 500
    )
    assert (got.source, got.medium, got.channel) == ("Google", "cpc", "Paid Search")
    assert got.utm_campaign == "x" * 200


def test_first_value_of_a_repeated_parameter_wins(sources: SourceClassifier) -> None:
    got = classify(sources, "", "https://example.com/?utm_source=bing&utm_source=google&utm_medium=cpc")
    assert got.source == "Bing"


def test_non_web_referrers_are_referrals_by_host(sources: SourceClassifier) -> None:
    got = classify(sources, "ftp://files.example.org/x", "https://example.com/")
    assert (got.ref_host, got.source, got.medium, got.channel) == (
        "files.example.org",
        "files.example.org",
        "referral",
        "Referral",
    )


def test_unparsable_referrer_counts_as_direct(sources: SourceClassifier) -> None:
    got = classify(sources, "http://[broken", "https://example.com/")
    assert (got.ref_host, got.source, got.channel) == ("", "", "Direct")


def test_same_site_check_uses_the_site_not_a_shared_suffix(sources: SourceClassifier) -> None:
    _, _, params = clean_url("https://alice.github.io/", frozenset())
    got = sources.classify("https://bob.github.io/post", "alice.github.io", "alice.github.io", params)
    assert (got.source, got.channel) == ("bob.github.io", "Referral")
    got = sources.classify("https://alice.github.io/other", "alice.github.io", "alice.github.io", params)
    assert got.channel == "Internal"


def test_channel_rules_follow_ga4_order() -> None:
    # A paid medium on a search source is Paid Search, not Display, even when the campaign says nothing.
    assert channel_for("Google", "search", "cpc", "") == "Paid Search"
    # "cpm" is a display medium, but it matches GA4's paid regex first for a social source.
    assert channel_for("Facebook", "social", "cpm", "") == "Paid Social"
    assert channel_for("adnet", "", "cpm", "") == "Display"
    assert channel_for("", "", "", "") == "Direct"
    assert channel_for("", "", "(none)", "") == "Direct"
