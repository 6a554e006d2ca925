"""Capture overhead: the product page with event capture on vs off, side by side.

    python -m benchmarks.capture_overhead [--requests 1000] [--json PATH]

Runs against a scratch PostgreSQL database (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/bench_capture``, dropped and recreated).
Both variants are measured in one process with the request order interleaved
(off, on, off, on, ...) so drift hits both alike. "off" is the shop without our
middleware and with our receivers disconnected; "on" is the full capture path
(middleware, receiver, one INSERT per view). Times are Django's handling time of
``GET /catalogue/<slug>_<pk>/`` through the test client (no network).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from urllib.parse import urlparse

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_capture"


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def on_off_summary(timings: dict[str, list[float]]) -> dict[str, float]:
    """Median and p95 (ms) of the ``off`` and ``on`` timings, and what ``on`` adds to each."""
    out = {
        f"{name}_{stat}_ms": round(fn(values), 3)
        for name, values in timings.items()
        for stat, fn in (("median", statistics.median), ("p95", lambda v: percentile(v, 95)))
    }
    out["added_median_ms"] = round(out["on_median_ms"] - out["off_median_ms"], 3)
    out["added_p95_ms"] = round(out["on_p95_ms"] - out["off_p95_ms"], 3)
    low, high = median_difference_ci(timings["on"], timings["off"])
    out["added_median_ci95_ms"] = [round(low, 3), round(high, 3)]
    return out


def on_off_table(result: dict, requests: int, what: str, added: str) -> str:
    """The markdown table of an on/off run: each variant's median and p95, then what ``on`` adds,
    with the 95 % interval of the change in the median."""
    low, high = result["added_median_ci95_ms"]
    rows = [f"| {what} | requests | median ms | p95 ms |", "|---|---:|---:|---:|"]
    for n in ("off", "on"):
        rows.append(f"| {n} | {requests} | {result[f'{n}_median_ms']:.2f} | {result[f'{n}_p95_ms']:.2f} |")
    rows.append(
        f"| **{added}** (median: 95 % interval {low:+.2f} to {high:+.2f}) | |"
        f" **{result['added_median_ms']:+.2f}** | {result['added_p95_ms']:+.2f} |"
    )
    return "\n".join(rows)


def off_vs_off(timings: dict[str, list[float]]) -> dict[str, float]:
    """An A/A check of an interleaved on/off run: the "off" requests that came first in their pair
    against those that came second in the next pair (neither variant differs), summarised like the
    on/off comparison; how far the page-level comparison moves on its own."""
    return on_off_summary({"on": timings["off"][0::2], "off": timings["off"][1::2]})


def off_vs_off_row(result: dict, neither: str) -> str:
    """The A/A line under :func:`on_off_table` (``neither``: what neither variant does)."""
    aa = result["off_vs_off"]
    low, high = aa["added_median_ci95_ms"]
    pairs = result["requests_per_variant"] // 2
    return (
        f'| A/A: the "off" requests of even against odd pairs ({neither}) | {pairs} |'
        f" {aa['added_median_ms']:+.2f} (95 % interval {low:+.2f} to {high:+.2f}) | |"
    )


def median_difference_ci(on: list[float], off: list[float], seed: int = 0) -> tuple[float, float]:
    """A 95 % bootstrap interval (SciPy, BCa) of median(on) - median(off), resampling the
    interleaved requests in pairs (the n-th "on" beside the n-th "off"), so drift in the machine
    moves both sides of a resampled pair alike."""
    import numpy as np
    from scipy import stats

    n = min(len(on), len(off))
    result = stats.bootstrap(
        (np.asarray(on[:n]), np.asarray(off[:n])),
        lambda a, b, axis: np.median(a, axis=axis) - np.median(b, axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=2000,
        random_state=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per variant (>= 500)")
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--json", default="benchmarks/results/capture_overhead.json")
    args = parser.parse_args(argv)

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    recreate_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client, override_settings
    from django.test.utils import setup_test_environment
    from tqdm import tqdm

    from recommender import receivers
    from recommender.models import Event
    from tests.helpers import BROWSER, make_product

    setup_test_environment()
    call_command("migrate", interactive=False, verbosity=0)
    products = [make_product(title=f"Product {i}", price="9.99") for i in range(args.products)]
    urls = [p.get_absolute_url() for p in products]

    client_on = Client(HTTP_USER_AGENT=BROWSER)
    client_off = Client(HTTP_USER_AGENT=BROWSER)
    without_ours = [m for m in settings.MIDDLEWARE if not m.startswith("recommender.")]
    with override_settings(MIDDLEWARE=without_ours):
        client_off.get(urls[0])  # the handler loads its middleware chain on the first request
    client_on.get(urls[0])

    def disconnect() -> None:
        from oscar.apps.catalogue.signals import product_viewed

        product_viewed.disconnect(dispatch_uid="recommender.view")

    def reconnect() -> None:
        receivers.connect()

    # warm up both paths
    for u in urls[:50]:
        client_on.get(u)
        disconnect()
        client_off.get(u)
        reconnect()

    timings: dict[str, list[float]] = {"off": [], "on": []}
    before = Event.objects.count()
    for i in tqdm(range(args.requests), desc="requests (per variant)", file=sys.stderr):
        u = urls[i % len(urls)]
        disconnect()
        t = time.perf_counter()
        r = client_off.get(u)
        timings["off"].append((time.perf_counter() - t) * 1000)
        reconnect()
        assert r.status_code == 200
        t = time.perf_counter()
        r = client_on.get(u)
        timings["on"].append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200
    recorded = Event.objects.count() - before
    assert recorded == args.requests, f"expected {args.requests} events, got {recorded}"

    result = {
        "database": settings.DATABASES["default"]["ENGINE"],
        "requests_per_variant": args.requests,
        "events_recorded": recorded,
        **on_off_summary(timings),
    }

    print("\n" + on_off_table(result, args.requests, "capture", "added by capture"))
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
