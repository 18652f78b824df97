"""CPU per event of the address scrub (privacy.scrub_row) on a realistic row whose texts do not hold the address
(the usual case), over 6,000 distinct client addresses (5,000 IPv4, 1,000 IPv6), per-address cache warm.

Usage (from the repository root): .venv/bin/python bench/bench_ip_scrub.py
"""

from __future__ import annotations

import random
import time

from pixel.server.enrich.privacy import scrub_row

row = {
    "timestamp": 1.7e9,
    "received_at": 1.7e9,
    "site": "shop.example",
    "event_id": "550e8400-e29b-41d4-a716-446655440000",
    "event_name": "pageview",
    "visitor_id": "v8f3a9c2d1e",
    "session_id": "s1a2b3c4",
    "user_id": "",
    "url": "https://shop.example/products/12345?utm_source=newsletter&utm_medium=email",
    "host": "shop.example",
    "path": "/products/12345",
    "query": "utm_source=newsletter&utm_medium=email",
    "title": "Product 12345 - Shop",
    "referrer": "https://www.google.com/",
    "screen": "1920x1080",
    "language": "en-GB",
    "timezone": "Europe/London",
    "browser": "Chrome",
    "os": "Windows",
    "device_type": "desktop",
    "ip_hash": "0123456789abcdef0123456789abcdef",
    "ref_host": "www.google.com",
    "source": "newsletter",
    "medium": "email",
    "channel": "Email",
    "props": {"plan": "pro", "amount": "49"},
}
rnd = random.Random(1)
ips = [
    f"{rnd.randint(1, 223)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
    for _ in range(5000)
]
ips += [
    f"2a02:{rnd.randint(0, 65535):x}:{rnd.randint(0, 65535):x}::{rnd.randint(1, 65535):x}"
    for _ in range(1000)
]
for ip in ips:
    scrub_row(dict(row), ip)  # warm the per-IP cache
n = 0
t = time.process_time()
for _ in range(20):
    for ip in ips:
        r = dict(row)
        r["props"] = dict(row["props"])
        scrub_row(r, ip)
        n += 1
el = time.process_time() - t
t = time.process_time()
for _ in range(20):
    for _ip in ips:
        r = dict(row)
        r["props"] = dict(row["props"])
base = time.process_time() - t
print(
    f"scrub_row: {(el - base) / n * 1e6:.2f} us/event over {n} events ({len(ips)} distinct IPs, realistic row)"
)
