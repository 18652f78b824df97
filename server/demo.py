"""Realistic synthetic traffic for a newcomer's first look (`pixel demo`, `pixel serve --demo`).

Visits on three sites, each a short session of pageviews (with referrers, UTM campaigns, devices,
languages, countries via a trusted proxy's X-Forwarded-For and CF-IPCountry headers) plus scroll,
engagement, outbound and custom events, spread over the last N days by their event timestamps.
The same seed gives the same traffic.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import httpx

SITES = {
    "shop.example": ["/", "/products", "/products/lamp", "/products/chair", "/cart", "/checkout", "/about"],
    "blog.example": [
        "/",
        "/posts/clickhouse-at-home",
        "/posts/privacy-first",
        "/posts/spa-tracking",
        "/tags/python",
    ],
    "docs.example": ["/", "/install", "/install/docker", "/api", "/api/reports", "/faq"],
}
REFERRERS = [
    ("", 30),
    ("https://www.google.com/", 25),
    ("https://www.bing.com/", 5),
    ("https://duckduckgo.com/", 5),
    ("https://news.ycombinator.com/", 5),
    ("https://www.reddit.com/r/selfhosted/", 5),
    ("https://t.co/abc123", 4),
    ("https://www.facebook.com/", 4),
    ("https://chatgpt.com/", 3),
    ("https://www.linkedin.com/feed/", 3),
    ("https://github.com/", 3),
    ("https://www.youtube.com/", 2),
]
CAMPAIGNS = [
    None,
    None,
    None,
    None,
    None,
    None,
    {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "november"},
    {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand", "utm_term": "pixel analytics"},
    {"utm_source": "facebook", "utm_medium": "paid_social", "utm_campaign": "launch"},
]
DEVICES = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "1920x1080",
        30,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "1440x900",
        15,
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0", "2560x1440", 8),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
        "Mobile/15E148 Safari/604.1",
        "390x844",
        22,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile "
        "Safari/537.36",
        "412x915",
        18,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 "
        "Safari/604.1",
        "820x1180",
        5,
    ),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "", 2),
]
PLACES = [
    ("US", "en-US", "America/New_York", 30),
    ("DE", "de-DE", "Europe/Berlin", 15),
    ("GB", "en-GB", "Europe/London", 12),
    ("FR", "fr-FR", "Europe/Paris", 10),
    ("IN", "en-IN", "Asia/Kolkata", 8),
    ("BR", "pt-BR", "America/Sao_Paulo", 7),
    ("JP", "ja-JP", "Asia/Tokyo", 6),
    ("CA", "en-CA", "America/Toronto", 6),
    ("NL", "nl-NL", "Europe/Amsterdam", 6),
]


def _pick(rng: random.Random, items: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    return rng.choices(items, weights=[item[-1] for item in items])[0]


def visits(events: int, days: int, seed: int = 1) -> list[tuple[dict[str, str], list[dict[str, Any]]]]:
    """(request headers, events) per visit, about `events` events in all."""
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    out: list[tuple[dict[str, str], list[dict[str, Any]]]] = []
    total = 0
    while total < events:
        site = rng.choice(list(SITES))
        pages = SITES[site]
        ua, screen, _ = _pick(rng, DEVICES)
        country, lang, tz, _ = _pick(rng, PLACES)
        referrer = _pick(rng, REFERRERS)[0]
        campaign = rng.choice(CAMPAIGNS)
        ip = (
            f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            if rng.random() < 0.5
            else f"203.0.{rng.randrange(113, 114)}.{rng.randrange(1, 255)}"
        )
        start = now_ms - int(rng.random() ** 1.3 * days * 86_400_000)
        visitor = uuid.UUID(int=rng.getrandbits(128)).hex[:16]
        session = uuid.UUID(int=rng.getrandbits(128)).hex[:16]
        headers = {
            "User-Agent": ua,
            "Accept-Language": f"{lang},{lang[:2]};q=0.9",
            "X-Forwarded-For": ip,
            "CF-IPCountry": country,
            "Origin": f"https://{site}",
        }
        batch: list[dict[str, Any]] = []
        ts = start
        path = rng.choice(pages[:3])
        for step in range(rng.choice([1, 1, 1, 2, 2, 3, 4, 6])):
            query = ""
            if step == 0 and campaign:
                query = "?" + "&".join(f"{k}={v.replace(' ', '+')}" for k, v in campaign.items())
            base = {
                "ts": ts,
                "site": site,
                "visitor_id": visitor,
                "session_id": session,
                "user_id": None,
                "page": {
                    "url": f"https://{site}{path}{query}",
                    "path": path,
                    "title": path.strip("/").title() or "Home",
                    "referrer": referrer if step == 0 else f"https://{site}{batch[-1]['page']['path']}",
                },
                "device": {"screen": screen, "viewport": screen, "lang": lang, "tz": tz, "dpr": 2},
            }
            batch.append(
                {**base, "event_id": uuid.UUID(int=rng.getrandbits(128)).hex, "event_name": "pageview"}
            )
            stay = int(rng.expovariate(1 / 45_000))
            if rng.random() < 0.5:
                batch.append(
                    {
                        **base,
                        "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                        "event_name": "scroll",
                        "ts": ts + stay,
                        "scroll_depth": rng.choice([25, 50, 75, 100]),
                    }
                )
            if rng.random() < 0.15:
                batch.append(
                    {
                        **base,
                        "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                        "event_name": "signup" if site != "shop.example" else "purchase",
                        "ts": ts + stay // 2,
                        "params": {"plan": rng.choice(["free", "pro"]), "amount": rng.choice([0, 9, 49])},
                    }
                )
            batch.append(
                {
                    **base,
                    "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                    "event_name": "engagement",
                    "ts": ts + stay,
                    "engaged_ms": stay,
                }
            )
            ts += stay + rng.randrange(1000, 5000)
            path = rng.choice(pages)
        out.append((headers, batch))
        total += len(batch)
    return out


def send(base_url: str, *, events: int = 5000, days: int = 30, seed: int = 1) -> int:
    """POST the demo visits to the collector at base_url; returns the number of events accepted."""
    accepted = 0
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for headers, batch in visits(events, days, seed):
            for i in range(0, len(batch), 100):
                chunk = batch[i : i + 100]
                import orjson

                response = client.post(
                    "/track",
                    content=orjson.dumps(chunk),
                    headers={**headers, "Content-Type": "text/plain;charset=UTF-8"},
                )
                if response.status_code == 204:
                    accepted += len(chunk)
    return accepted
