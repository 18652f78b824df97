"""Referrer data that Snowplow's referer-parser database (the base, from the `referer-parser` package) lacks.

That database is the maintained community list, but its PyPI release is from 2016: it has no AI assistants and
none of the newer networks, files YouTube and Vimeo under "social" and Amazon under "search", and GA4's channel
rules need "video" and "shopping" categories it does not have. Entries here override the base for the same
host. Categories: search, social, video, shopping, email, ai, referral.

Hosts are written without a leading "www." (lookups strip it). A host also matches its subdomains
(`m.facebook.com` -> facebook.com); a `host/path` entry matches that first path segment only.
"""

from __future__ import annotations

EXTRA: dict[str, dict[str, list[str]]] = {
    "ai": {
        "ChatGPT": ["chatgpt.com", "chat.openai.com", "openai.com", "com.openai.chatgpt"],
        "Perplexity": ["perplexity.ai", "pplx.ai", "ai.perplexity"],
        "Claude": ["claude.ai", "com.anthropic.claude"],
        "Gemini": ["gemini.google.com", "bard.google.com", "aistudio.google.com"],
        "Microsoft Copilot": ["copilot.microsoft.com", "copilot.cloud.microsoft", "m365copilot.com"],
        "DeepSeek": ["chat.deepseek.com", "deepseek.com"],
        "Meta AI": ["meta.ai"],
        "Grok": ["grok.com", "x.com/i/grok"],
        "Mistral Le Chat": ["chat.mistral.ai"],
        "You.com": ["you.com"],
        "Phind": ["phind.com"],
        "Poe": ["poe.com"],
        "HuggingChat": ["huggingface.co/chat"],
        "Qwen": ["chat.qwen.ai", "chat.qwenlm.ai"],
        "Kimi": ["kimi.com", "kimi.moonshot.cn"],
        "Doubao": ["doubao.com"],
    },
    "search": {
        "Google": ["google.com", "com.google.android.googlequicksearchbox", "com.google.android.gm.search"],
        "Bing": ["bing.com", "cn.bing.com"],
        "DuckDuckGo": ["duckduckgo.com", "html.duckduckgo.com", "lite.duckduckgo.com", "start.duckduckgo.com"],
        "Ecosia": ["ecosia.org"],
        "Brave Search": ["search.brave.com"],
        "Startpage": ["startpage.com"],
        "Qwant": ["qwant.com", "lite.qwant.com"],
        "Kagi": ["kagi.com"],
        "Yandex": ["ya.ru", "yandex.ru", "yandex.com", "yandex.com.tr", "yandex.kz"],
        "Naver": ["search.naver.com", "m.search.naver.com"],
        "Seznam": ["search.seznam.cz"],
        "Mojeek": ["mojeek.com"],
        "Swisscows": ["swisscows.com"],
        "Yahoo!": ["search.yahoo.com", "yahoo.com", "search.yahoo.co.jp"],
        "Baidu": ["baidu.com", "m.baidu.com"],
        "Sogou": ["sogou.com", "m.sogou.com"],
        "360 Search": ["so.com"],
    },
    "social": {
        "Facebook": ["facebook.com", "fb.com", "fb.me", "m.facebook.com", "l.facebook.com", "lm.facebook.com",
                     "com.facebook.katana", "messenger.com", "com.facebook.orca"],
        "Instagram": ["instagram.com", "l.instagram.com", "com.instagram.android"],
        "Threads": ["threads.net", "threads.com", "l.threads.com"],
        "Bluesky": ["bsky.app", "bsky.social", "go.bsky.app"],
        "Mastodon": ["mastodon.social", "mastodon.online", "mstdn.social", "fosstodon.org", "hachyderm.io",
                     "mas.to", "infosec.exchange", "org.joinmastodon.android"],
        "Twitter": ["twitter.com", "x.com", "t.co", "mobile.twitter.com", "com.twitter.android"],
        "LinkedIn": ["linkedin.com", "lnkd.in", "com.linkedin.android"],
        "Reddit": ["reddit.com", "old.reddit.com", "out.reddit.com", "redd.it", "com.reddit.frontpage"],
        "Pinterest": ["pinterest.com", "pin.it", "pinterest.co.uk", "pinterest.de", "pinterest.fr"],
        "TikTok": ["tiktok.com", "vm.tiktok.com", "com.zhiliaoapp.musically"],
        "Snapchat": ["snapchat.com"],
        "Discord": ["discord.com", "discordapp.com", "discord.gg"],
        "Telegram": ["t.me", "telegram.org", "web.telegram.org", "org.telegram.messenger"],
        "WhatsApp": ["whatsapp.com", "web.whatsapp.com", "wa.me", "com.whatsapp"],
        "Slack": ["slack.com", "app.slack.com", "com.slack"],
        "Hacker News": ["news.ycombinator.com"],
        "Lobsters": ["lobste.rs"],
        "Quora": ["quora.com"],
        "Medium": ["medium.com"],
        "VK": ["vk.com", "m.vk.com"],
        "Weibo": ["weibo.com", "weibo.cn"],
        "Tumblr": ["tumblr.com"],
        "Xing": ["xing.com"],
        "Nextdoor": ["nextdoor.com"],
        "LINE": ["line.me"],
        "WeChat": ["weixin.qq.com", "wechat.com"],
        "Kakao": ["kakao.com", "story.kakao.com"],
        "Product Hunt": ["producthunt.com"],
    },
    "video": {
        "YouTube": ["youtube.com", "m.youtube.com", "youtu.be", "music.youtube.com", "com.google.android.youtube"],
        "Vimeo": ["vimeo.com"],
        "Dailymotion": ["dailymotion.com", "dai.ly"],
        "Twitch": ["twitch.tv", "m.twitch.tv"],
        "Bilibili": ["bilibili.com", "b23.tv"],
        "Rumble": ["rumble.com"],
        "TED": ["ted.com"],
        "Wistia": ["wistia.com"],
    },
    "shopping": {
        "Amazon": ["amazon.com", "amazon.co.uk", "amazon.de", "amazon.fr", "amazon.it", "amazon.es", "amazon.ca",
                   "amazon.co.jp", "amazon.in", "amazon.com.au", "amazon.com.br", "amazon.nl", "amazon.se",
                   "amazon.pl", "smile.amazon.com"],
        "eBay": ["ebay.com", "ebay.co.uk", "ebay.de", "ebay.fr", "ebay.it", "ebay.com.au", "ebay.ca"],
        "Etsy": ["etsy.com"],
        "Walmart": ["walmart.com"],
        "AliExpress": ["aliexpress.com", "aliexpress.us", "aliexpress.ru"],
        "Shop": ["shop.app"],
        "Google Shopping": ["shopping.google.com"],
        "Mercado Libre": ["mercadolibre.com", "mercadolibre.com.ar", "mercadolibre.com.mx", "mercadolivre.com.br"],
        "Target": ["target.com"],
        "Idealo": ["idealo.de", "idealo.co.uk"],
        "Rakuten": ["rakuten.com", "rakuten.co.jp"],
        "Zalando": ["zalando.com", "zalando.de"],
    },
    "email": {
        "Gmail": ["mail.google.com", "inbox.google.com", "com.google.android.gm"],
        "Outlook.com": ["outlook.live.com", "outlook.office.com", "outlook.office365.com", "outlook.cloud.microsoft",
                        "com.microsoft.office.outlook"],
        "Yahoo! Mail": ["mail.yahoo.com", "mail.yahoo.co.jp"],
        "Proton Mail": ["mail.proton.me", "mail.protonmail.com"],
        "iCloud Mail": ["icloud.com/mail"],
        "Fastmail": ["app.fastmail.com", "fastmail.com"],
        "Zoho Mail": ["mail.zoho.com", "mail.zoho.eu"],
        "AOL Mail": ["mail.aol.com"],
        "GMX Mail": ["gmx.net", "gmx.com", "gmx.de"],
        "Tuta": ["app.tuta.com", "mail.tutanota.com"],
    },
}

# Short utm_source spellings people use for well-known sources (GA4 lists several of them too).
SOURCE_ALIASES: dict[str, str] = {
    "fb": "Facebook", "ig": "Instagram", "insta": "Instagram", "yt": "YouTube", "li": "LinkedIn",
    "tw": "Twitter", "x": "Twitter", "x.com": "Twitter", "twitter": "Twitter", "gmail": "Gmail",
    "openai": "ChatGPT", "chatgpt": "ChatGPT", "perplexity": "Perplexity", "claude": "Claude", "gemini": "Gemini",
    "copilot": "Microsoft Copilot", "adwords": "Google", "googleads": "Google", "google ads": "Google",
    "bingads": "Bing", "microsoft ads": "Bing", "ddg": "DuckDuckGo", "hn": "Hacker News", "ycombinator": "Hacker News",
    "tiktok": "TikTok", "pinterest": "Pinterest", "reddit": "Reddit", "bluesky": "Bluesky", "threads": "Threads",
    "igshopping": "Instagram Shopping",
}
# Names the base database spells differently from how people know them today.
RENAME: dict[str, str] = {"Youtube": "YouTube", "Google+": "Google+", "Vkontakte": "VK", "XING": "Xing"}
# Sources only known by name (no host of their own), with their category.
NAMED: dict[str, str] = {"Instagram Shopping": "shopping"}

# Click ids found in the page URL: parameter -> (source name, medium when no utm_medium is given).
# fbclid is added by Meta to organic links too, so it does not mean "paid" by itself.
CLICK_IDS: dict[str, tuple[str, str]] = {
    "gclid": ("Google", "cpc"),
    "gbraid": ("Google", "cpc"),
    "wbraid": ("Google", "cpc"),
    "gclsrc": ("Google", "cpc"),
    "dclid": ("Google", "display"),
    "gad_source": ("Google", "cpc"),
    "msclkid": ("Bing", "cpc"),
    "fbclid": ("Facebook", ""),
    "igshid": ("Instagram", ""),
    "ttclid": ("TikTok", "cpc"),
    "li_fat_id": ("LinkedIn", "cpc"),
    "twclid": ("Twitter", "cpc"),
    "sccid": ("Snapchat", "cpc"),
    "scclid": ("Snapchat", "cpc"),
    "epik": ("Pinterest", "cpc"),
    "rdt_cid": ("Reddit", "cpc"),
    "yclid": ("Yandex", "cpc"),
    "irclickid": ("", "affiliate"),
    "mc_cid": ("", "email"),
}
