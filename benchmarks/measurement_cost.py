"""What measuring the blocks costs a page: impressions and clicks recorded vs not, side by side.

    python -m benchmarks.measurement_cost [--requests 1000] [--writer thread|request] [--json PATH]

Builds its own shop in a scratch PostgreSQL database (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/bench_measurement``, dropped and recreated): the forty
products, views and orders of ``tests/training_shop.py``, with Redis as the cache (``REDIS_URL``,
default ``redis://127.0.0.1:6379/0``; only this shop's keys are written). A visitor with a history
opens product pages through the links of a product page's blocks, each time freshly rendered (``also_bought``,
``also_viewed``, ``recently_viewed``), each link carrying its signed ``?rec=`` token. Every
request is made twice, interleaved: with ``IMPRESSIONS_ENABLED`` (the page's impressions in one
insert, the click its link carries, after the response is rendered: by this process's writer
thread, or with ``--writer request`` by the page itself) and without. An experiment
runs (10 % control), so every impression takes an arm and the visitor's exposure is written once.
Times are Django's handling time through the test client (the whole middleware and template
stack, no network); the recording's own code (noting the blocks, reading the click's token, the
insert after the response) is timed inside each "on" request too, and an A/A check compares the
"off" requests with each other. The goal (issue "Measure what recommendations earn") is at most
+1 ms at the median.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from typing import Any

from benchmarks.capture_overhead import (
    off_vs_off,
    off_vs_off_row,
    on_off_summary,
    on_off_table,
    percentile,
    recreate_database,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_measurement"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per variant")
    parser.add_argument("--json", default="benchmarks/results/measurement_cost.json")
    parser.add_argument(
        "--writer",
        choices=("thread", "request"),
        default="thread",
        help="IMPRESSIONS_WRITER: the rows written by this process's writer thread, or by the page",
    )
    args = parser.parse_args(argv)

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    recreate_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    import django
    from django.conf import settings

    # the shop's own cache keys: a test run or another shop on the same Redis never shares them
    settings.CACHES["default"]["KEY_PREFIX"] = "bench_measurement"
    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment
    from oscar.core.loading import get_model
    from tqdm import tqdm

    from recommender import middleware, receivers
    from recommender.conf import app_settings
    from recommender.measurement import writer
    from recommender.measurement.assignment import start_experiment
    from recommender.serving import service
    from tests.helpers import BROWSER
    from tests.training_shop import build_shop

    setup_test_environment()
    settings.DEBUG = False
    call_command("migrate", interactive=False, verbosity=0)
    shop = build_shop(end=django.utils.timezone.now())
    Impression = get_model("recommender", "Impression")
    Click = get_model("recommender", "Click")
    Exposure = get_model("recommender", "Exposure")

    def measure(on: bool) -> None:
        app_settings.as_dict()["IMPRESSIONS_ENABLED"] = on

    app_settings.as_dict()["IMPRESSIONS_WRITER"] = args.writer

    # the recording's own code, timed inside each request: noting a block, reading the click's
    # token, and the insert after the response (the only code that runs in one variant only)
    own = [0.0]

    def timed(fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                own[0] += time.perf_counter() - t

        return wrapper

    middleware.flush_impressions = timed(middleware.flush_impressions)
    receivers.record_click = timed(receivers.record_click)
    service.note_block = timed(service.note_block)
    experiment = start_experiment("benchmark", control_share=0.1)  # every impression takes an arm

    client = Client(HTTP_USER_AGENT=BROWSER)
    for product in shop.products[:6]:  # a visitor with a history: recently viewed fills
        client.get(product.get_absolute_url())
    source = shop.products[0].get_absolute_url()

    def fresh_links() -> list[str]:
        """The block links of the source page, rendered anew (untimed): each carries a new impression,
        so following one is a click to record rather than a reload of an earlier one."""
        measure(True)
        html = client.get(source).content.decode()
        return sorted({link.replace("&amp;", "&") for link in re.findall(r'href="([^"]*\?rec=[^"]+)"', html)})

    links = fresh_links()
    blocks = len(re.findall(r"data-placement=", client.get(source).content.decode()))
    if not links:
        print("the product page shows no block link to follow", file=sys.stderr)
        return {}
    for link in links:  # warm every page in both variants
        for on in (True, False):
            measure(on)
            client.get(link)

    timings: dict[str, list[float]] = {"on": [], "off": []}
    inside: list[float] = []
    impressions, clicks = Impression.objects.count(), Click.objects.count()
    for n in tqdm(range(args.requests), desc="requests (per variant)", file=sys.stderr):
        links = fresh_links()
        for on in (True, False) if n % 2 else (False, True):
            link = links[n % len(links)]
            measure(on)
            own[0] = 0.0
            t = time.perf_counter()
            response = client.get(f"{link}&b={n}")  # a data argument would replace the link's query
            timings["on" if on else "off"].append((time.perf_counter() - t) * 1000)
            if on:
                inside.append(own[0] * 1000)
            assert response.status_code == 200, (link, response.status_code)
    measure(True)
    writer.wait(30)  # what the thread has yet to write
    recorded = {
        "impressions": Impression.objects.count() - impressions,
        "clicks": Click.objects.count() - clicks,
    }
    recorded["impressions"] -= blocks * args.requests  # those of the untimed source pages
    result = {
        "database": settings.DATABASES["default"]["ENGINE"],
        "cache": settings.CACHES["default"]["BACKEND"],
        "requests_per_variant": args.requests,
        "writer": args.writer,
        "blocks_per_page": blocks,
        "links_followed": len(links),
        "recorded": recorded,
        **on_off_summary(timings),
        "own_median_ms": round(statistics.median(inside), 3),
        "own_p95_ms": round(percentile(inside, 95), 3),
        "off_vs_off": off_vs_off(timings),
        "exposures": Exposure.objects.filter(experiment=experiment).count(),
        "timings_ms": timings,
    }

    print(
        f"\nproduct page with {blocks} blocks, reached through one of {len(links)} block links;"
        f" IMPRESSIONS_WRITER = {args.writer!r}"
    )
    print(on_off_table(result, args.requests, "impressions and clicks", "added by measuring"))
    own = f"{result['own_median_ms']:.2f} | {result['own_p95_ms']:.2f}"
    print(f"| the recording's own time inside the page | {len(inside)} | {own} |")
    print(off_vs_off_row(result, "neither records"))
    print(f"\nrecorded while measuring: {recorded['impressions']:,} impressions, {recorded['clicks']:,} clicks")
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
