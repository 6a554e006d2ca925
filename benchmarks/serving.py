"""What the recommendation blocks cost a page, side by side in one run.

Runs against the database ``benchmarks/train_in_shop.py`` leaves behind (the full Online Retail
import, a million views, live models) with Redis as the cache (``REDIS_URL``, default
``redis://127.0.0.1:6379/0``; only this run's keys are touched). Through Django's test client
(the whole middleware and template stack, no network):

1. product page with ``also_bought`` + ``also_viewed`` + ``recently_viewed`` vs the same page
   with blocks switched off (``SERVING_ENABLED``), interleaved, warm cache;
2. catalogue (home) page with ``for_you`` (+ ``trending``) right after a new product view (the
   visitor's cache invalidated, the model scores) vs the page without blocks: once with the
   recommended products' cards not yet cached, once by a second visitor browsing the same
   products, with the cards cached as in a running shop;
3. the "for you" model's scoring of one history over the whole catalogue, one thread (the histories of
   1,000 people of the shop, and 1,000 random ones);
4. queries per page with and without blocks;
5. what measuring the blocks costs a page: the product page with its three blocks, recording
   impressions (one insert per page) and the click its link carries, vs the same pages with
   ``IMPRESSIONS_ENABLED`` off, interleaved (parts 1-4 run with it off, so they measure serving).

    .venv/bin/python benchmarks/serving.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "serving.json")
    args = parser.parse_args(argv)
    os.environ["DATABASE_URL"] = args.pg_url.rsplit("/", 1)[0] + "/bench_train_in_shop"
    os.environ["REDIS_URL"] = args.redis_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.train_in_shop_settings"
    os.environ.setdefault("SHOP_VAR_DIR", str(REPO / "var" / "bench_train_in_shop"))
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, reset_queries
    from django.test import Client
    from oscar.core.loading import get_model

    from recommender.conf import app_settings
    from recommender.services import versions

    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver"]
    live = versions.live_version_ids()
    if "next_item" not in live:
        print("no live next-item model: run benchmarks/train_in_shop.py first", file=sys.stderr)
        return 2
    Product = get_model("catalogue", "Product")
    products = list(
        Product.objects.browsable()
        .filter(stockrecords__num_in_stock__gt=0)
        .order_by("pk")
        .values_list("pk", flat=True)[:400]
    )
    rng = np.random.default_rng(0)

    def switch(on: bool) -> None:
        app_settings.as_dict()["SERVING_ENABLED"] = on

    def measure(on: bool) -> None:
        app_settings.as_dict()["IMPRESSIONS_ENABLED"] = on

    measure(False)

    client = Client(HTTP_USER_AGENT=UA)
    for pid in rng.choice(products, 5, replace=False):  # a visitor with a history
        client.get(Product.objects.get(pk=pid).get_absolute_url())
    urls = [Product.objects.get(pk=pid).get_absolute_url() for pid in rng.choice(products, 20, replace=False)]

    # 1. product page, warm cache: the same 20 pages again and again, with and without blocks
    for url in urls:  # warm both
        switch(True)
        client.get(url)
    timings: dict[str, list[float]] = {"product_with": [], "product_without": []}
    for n in range(args.requests):
        url = urls[n % len(urls)]
        for on in (True, False) if n % 2 else (False, True):
            switch(on)
            t = time.perf_counter()
            response = client.get(url, {"b": n})
            timings["product_with" if on else "product_without"].append(time.perf_counter() - t)
            assert response.status_code == 200
    # 2. catalogue right after a new view (the visitor's blocks invalidated, the model scores). Twice,
    # by two new visitors browsing the same products: the first meets the recommended products for
    # the first time (their stock, price and cards are fetched and rendered: "cold cards"), the
    # second finds them cached as a running shop does (its own blocks are still computed anew)
    catalogue: dict[str, list[float]] = {
        "home_with": [],
        "home_without": [],
        "home_cold_with": [],
        "home_cold_without": [],
    }
    for prefix in ("home_cold", "home"):
        visitor = Client(HTTP_USER_AGENT=UA)
        for n in range(min(args.requests, 300)):
            visitor.get(Product.objects.get(pk=products[n % len(products)]).get_absolute_url())
            for on in (True, False) if n % 2 else (False, True):
                switch(on)
                t = time.perf_counter()
                response = visitor.get("/catalogue/", {"page": 1, "n": n})
                catalogue[f"{prefix}_with" if on else f"{prefix}_without"].append(time.perf_counter() - t)
                assert response.status_code == 200
    switch(True)
    # 4. queries per page
    queries = {}
    settings.DEBUG = True
    for on in (True, False):
        switch(on)
        client.get(urls[0])  # warm: the shared lists may have expired during the timings above
        reset_queries()
        client.get(urls[0])
        queries["product_with" if on else "product_without"] = len(connection.queries)
        client.get(urls[1])  # a new view: invalidates
        reset_queries()
        client.get("/catalogue/")
        queries["home_with" if on else "home_without"] = len(connection.queries)
    settings.DEBUG = False
    switch(True)
    # 5. measuring: the product pages again, reached through a block's link (a click to record),
    # with impressions and clicks recorded or not
    import re

    measure(True)
    html = client.get(urls[0]).content.decode()
    links = [link.replace("&amp;", "&") for link in re.findall(r'href="([^"]*\?rec=[^"]+)"', html)]
    measured: dict[str, list[float]] = {"measured_with": [], "measured_without": []}
    for n in range(args.requests):
        url = links[n % len(links)] if links else urls[n % len(urls)]
        for on in (True, False) if n % 2 else (False, True):
            measure(on)
            t = time.perf_counter()
            response = client.get(f"{url}&b={n}")  # (a data argument would replace the link's query)
            measured["measured_with" if on else "measured_without"].append(time.perf_counter() - t)
            assert response.status_code == 200
    measure(False)
    Impression = get_model("recommender", "Impression")
    Click = get_model("recommender", "Click")
    recorded = {"impressions": Impression.objects.count(), "clicks": Click.objects.count()}
    Impression.objects.all().delete()
    Click.objects.all().delete()
    # 3. scoring one history, one thread: real shop histories and random ones
    from benchmarks.train_in_shop import scoring_latency

    scoring = scoring_latency(k=40)
    result: dict[str, Any] = {k: _stats(v) for k, v in {**timings, **catalogue, **measured}.items()}
    result["recorded"] = recorded
    result["scoring"] = scoring
    result["queries"] = queries
    result["requests"] = args.requests
    print("| page | with blocks p50 / p95 ms | without p50 / p95 ms | added p50 / p95 ms | queries with / without |")
    print("|---|---|---|---|---|")
    for page, label in (
        ("product", "product page (3 blocks, warm)"),
        ("home_cold", "catalogue right after a view (for you + trending), cold cards"),
        ("home", "catalogue right after a view (for you + trending), cards cached"),
        ("measured", "product page through a block's link: impressions and click recorded vs not"),
    ):
        w, wo = result[f"{page}_with"], result[f"{page}_without"]
        counted = queries.get(f"{page}_with"), queries.get(f"{page}_without")
        print(
            f"| {label} | {w['p50_ms']} / {w['p95_ms']} | {wo['p50_ms']} / {wo['p95_ms']} | "
            f"{w['p50_ms'] - wo['p50_ms']:+.1f} / {w['p95_ms'] - wo['p95_ms']:+.1f} | "
            f"{' / '.join('-' if c is None else str(c) for c in counted)} |"
        )
    print(f"\nrecorded while measuring: {recorded['impressions']:,} impressions, {recorded['clicks']:,} clicks")
    s = result["scoring"]
    print(
        f"\n'for you' scoring of one history over {s['items']:,} items ({s['model']}, one thread): "
        f"shop histories (median length {s['shop_median_length']:g}) p50 {s['shop_p50_ms']} ms, "
        f"p95 {s['shop_p95_ms']} ms; random histories p50 {s['random_p50_ms']} ms, p95 {s['random_p95_ms']} ms"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
