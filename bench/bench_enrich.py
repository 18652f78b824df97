"""Enrichment cost per event on a realistic mix, and the shipper's per-event CPU with enrichment on.

Usage (from the repository root):
    .venv/bin/python bench/bench_enrich.py [--events 200000] [--visitors 20000] [--uas 300] [--shipper 200000]

The mix: events from `--visitors` visitors (one IP each, picked uniformly: 10 events per visitor for 200,000), `--uas`
distinct user agents (real UA strings with varied build numbers, Zipf-like popularity), 40% direct, 25% Google,
15% social, 10% other referrers with unique paths, 10% AI/email; 30% of landing URLs carry UTMs or click ids, 5%
carry a PII parameter; 80% of events carry the tracker's visitor/session ids, 20% need the server-side ones.
Rows are built with the shipper's own `normalize` *before* timing, so "enrich" is Enricher.enrich alone and
"normalize + enrich" is the shipper's per-event CPU apart from JSON decoding and the insert.
A cold run (every UA, IP and referrer distinct) shows the cache-miss worst case. Times are CPU time of the
process (time.process_time), so other load on the shared machine inflates them less than wall time.
Last, the shipper itself runs over a spool filled with the same mix (parse, normalize, enrich, insert into chDB,
checkpoint), once with enrichment on and once with only the ip_hash, to show what enrichment adds end to end;
then again with the garbage collector tuned as a long-running shipper can (gc.freeze() after start-up, a gen-0
threshold of 50,000), since batches of 50,000 live row dicts make CPython's default GC rescan a lot.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

from pixel.server.enrich import Enricher, RequestFacts
from pixel.server.settings import Settings
from pixel.server.shipper.normalize import normalize

ROOT = Path(__file__).resolve().parent.parent
CITY = ROOT / "tests" / "enrich" / "data" / "GeoLite2-City-Test.mmdb"

UA_TEMPLATES = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.{b}.{p} Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.{b}.{p} Safari/537.36 Edg/131.0.{b}.{p}",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.{p} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_{p} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.{p} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.{b}.{p} Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.{p} Chrome/122.0.{b}.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.{p}",
    "Mozilla/5.0 (iPad; CPU OS 17_{p} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{p} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.{p}; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.{b}.{p} Safari/537.36",
]
REFERRERS = (
    [""] * 40
    + ["https://www.google.com/"] * 20
    + ["https://www.google.de/"] * 5
    + [
        "https://l.facebook.com/l.php?u=x",
        "https://t.co/{u}",
        "https://www.reddit.com/r/selfhosted/comments/{u}/",
        "https://www.linkedin.com/feed/",
        "https://news.ycombinator.com/item?id={u}",
    ]
    * 3
    + ["https://blog{u}.example.org/post/{u}", "https://github.com/someone/repo{u}"] * 5
    + [
        "https://chatgpt.com/",
        "https://www.perplexity.ai/search/{u}",
        "https://mail.google.com/",
        "android-app://com.google.android.gm/",
        "https://duckduckgo.com/",
    ]
    * 2
)
QUERIES = (
    [""] * 65
    + ["utm_source=newsletter&utm_medium=email&utm_campaign=nov{u}"] * 10
    + ["gclid=Cj0KCQiA{u}"] * 8
    + ["utm_source=facebook&utm_medium=paid_social&fbclid=IwAR{u}"] * 6
    + ["page={u}"] * 6
    + ["email=jane{u}%40example.com&ref=x"] * 3
    + ["token=abc{u}&step=2"] * 2
)


def zipf_index(rng: random.Random, n: int) -> int:
    return min(int(rng.paretovariate(1.1)) - 1, n - 1)


def make_mix(n: int, visitors: int, uas: int, seed: int = 7, cold: bool = False):
    rng = random.Random(seed)
    ua_pool = [
        UA_TEMPLATES[i % len(UA_TEMPLATES)].format(b=6000 + i // len(UA_TEMPLATES), p=i % 7)
        for i in range(uas)
    ]
    ips = ["81.2.69.142", "216.160.83.56", "89.160.20.112", "2.125.160.216", "175.16.199.1"]
    ips += [
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        for _ in range(visitors)
    ]
    now = int(time.time() * 1000)
    rows, events, facts = [], [], []
    for i in range(n):
        v = i if cold else rng.randrange(visitors)
        ip = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" if cold else ips[v]
        ua = f"{ua_pool[i % uas]} cold/{i}" if cold else ua_pool[(v * 31 + zipf_index(rng, uas)) % uas]
        u = i if cold else rng.randint(1, 5000)
        ref = rng.choice(REFERRERS).format(u=u)
        query = rng.choice(QUERIES).format(u=u)
        ids = rng.random() < 0.8
        event = {
            "event_name": "pageview" if rng.random() < 0.7 else "scroll",
            "event_id": f"e{i}",
            "ts": now - (n - i),
            "site": "example.com",
            "visitor_id": f"v{v}" if ids else None,
            "session_id": f"s{v}" if ids else None,
            "page": {
                "url": f"https://example.com/p/{u % 300}" + (f"?{query}" if query else ""),
                "title": "A page title",
                "referrer": ref,
            },
            "device": {
                "screen": "1920x1080",
                "viewport": "1280x720",
                "lang": "en-US",
                "tz": "Europe/Berlin",
                "dpr": 1,
                "webdriver": False,
            },
        }
        events.append(event)
        facts.append(RequestFacts(now, ip, ua, "en-US,en;q=0.9", "example.com"))
        rows.append(orjson.dumps(event))
    return rows, events, facts


def bench(n: int, visitors: int, uas: int, cold: bool, repeat: int) -> None:
    raw, events, facts = make_mix(n, visitors, uas, cold=cold)
    now = int(time.time() * 1000)
    with tempfile.TemporaryDirectory() as tmp:
        best_enrich = best_total = float("inf")
        for _ in range(repeat):
            enricher = Enricher(Settings(data_dir=tmp, geoip_db=str(CITY)))  # fresh caches every run
            rows = [normalize(e, now, min_ms=0, segment="s", offset=0, index=i) for i, e in enumerate(events)]
            t = time.process_time()
            for row, event, f in zip(rows, events, facts, strict=True):
                enricher.enrich(row, event, f)
            best_enrich = min(best_enrich, time.process_time() - t)
            enricher.close()

            enricher = Enricher(Settings(data_dir=tmp, geoip_db=str(CITY)))
            t = time.process_time()
            for i, (body, f) in enumerate(zip(raw, facts, strict=True)):
                event = orjson.loads(body)
                row = normalize(event, now, min_ms=0, segment="s", offset=0, index=i)
                enricher.enrich(row, event, f)
            best_total = min(best_total, time.process_time() - t)
            caches = {
                "UA": enricher._ua_columns.cache_info(),
                "IP": enricher._ip_columns.cache_info(),
                "URL": enricher._clean_url.cache_info(),
                "referrer": enricher.sources.referrer.cache_info(),
                "source": enricher.sources.decide_columns.cache_info(),
            }
            enricher.close()
    label = "cold (every UA/IP/referrer new)" if cold else f"realistic ({visitors} visitors, {uas} UAs)"
    print(f"{label}: {n} events")
    print(
        f"  enrich only:                 {best_enrich / n * 1e6:6.1f} us/event  {n / best_enrich:9,.0f} events/s"
    )
    print(
        f"  json + normalize + enrich:   {best_total / n * 1e6:6.1f} us/event  {n / best_total:9,.0f} events/s"
    )
    print(
        "  cache hit rates: "
        + ", ".join(f"{name} {c.hits / max(1, c.hits + c.misses):.0%}" for name, c in caches.items())
    )


class _NoEnrichment(Enricher):
    """The baseline: only the ip_hash every row needs, no other enrichment."""

    def enrich(self, row, event, facts) -> bool:  # type: ignore[override]
        row["ip_hash"] = self.salt.hash_ip(facts.ip, facts.received_ms)
        return True


def bench_shipper(n: int, visitors: int, uas: int, gc_tuned: bool = False) -> None:
    """The shipper end to end over a filled spool: parse, normalize, enrich, insert into chDB, checkpoint."""
    from pixel.server.shipper.shipper import Shipper
    from pixel.server.spool.record import encode_record
    from pixel.server.spool.writer import SpoolWriter
    from pixel.server.store.chdb_engine import ChdbStore

    raw, _events, facts = make_mix(n, visitors, uas)
    results = {}
    for name, cls in (("no enrichment", _NoEnrichment), ("enrichment on", Enricher)):
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=tmp, geoip_db=str(CITY), batch_max_rows=50_000)
            writer = SpoolWriter(settings.spool_dir, max_bytes=64 << 20, fsync_interval=1.0)
            for body, f in zip(raw, facts, strict=True):
                writer.append(
                    encode_record(
                        f.received_ms,
                        f.ip.encode(),
                        f.user_agent.encode(),
                        f.accept_language.encode(),
                        b"example.com",
                        b"",
                        b"",
                        body,
                    )
                )
            writer.close()
            store = ChdbStore(settings.store_dir)
            store.migrate()
            shipper = Shipper(settings, store, cls(settings))
            if gc_tuned:  # what a long-running shipper can do: long-lived objects out of the GC's way
                gc.collect()
                gc.freeze()
                gc.set_threshold(50_000, 20, 100)
            t_wall, t_cpu = time.perf_counter(), time.process_time()
            shipped = 0
            while (step := shipper.step()) > 0:
                shipped += step
            wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
            store.close()
            assert shipped == n, (shipped, n)
            results[name] = (wall, cpu)
            if gc_tuned:
                gc.unfreeze()
                gc.set_threshold(700, 10, 10)
            print(
                f"shipper{' (gc tuned)' if gc_tuned else ''}, {name}: {n} events in {wall:.2f} s wall ({n / wall:,.0f} events/s), "
                f"{cpu / n * 1e6:.1f} us CPU/event in this process"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--visitors", type=int, default=20_000)
    ap.add_argument("--uas", type=int, default=300)
    ap.add_argument("--cold-events", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shipper", type=int, default=200_000, help="events for the shipper run (0 = skip)")
    args = ap.parse_args(argv)
    bench(args.events, args.visitors, args.uas, cold=False, repeat=args.repeat)
    bench(args.cold_events, args.visitors, args.uas, cold=True, repeat=1)
    if args.shipper:
        bench_shipper(args.shipper, args.visitors, args.uas)
        bench_shipper(args.shipper, args.visitors, args.uas, gc_tuned=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
