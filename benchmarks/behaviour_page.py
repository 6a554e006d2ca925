"""How fast the "Shop behaviour" dashboard page renders on the full Online Retail import.

    .venv/bin/python -m benchmarks.behaviour_page                 # import into a scratch database, then measure
    .venv/bin/python -m benchmarks.behaviour_page --reuse         # measure a database imported before

The scratch PostgreSQL database (``--db``, default ``behaviour_bench`` on ``--pg-url``)
is migrated and filled with ``manage.py import_online_retail`` on the full file
(``../shared/data/online-retail/online_retail.parquet``) - not measured. Then, in
one process, with the cache of ``--redis-url`` (Redis, as in production):

* ``cold``: the page's cached counts are deleted before the request, so every
  grouped query runs and every chart is drawn again (the Python process itself
  is already running: imports and the database connection are not counted);
* ``warm``: the same request again, served from the cache.

Each is repeated (``--repeat``); the median and the worst are reported, with the
seconds of each grouped query from a cold run. Goals (issue 14): warm < 2 s,
cold < 10 s. Prints a markdown table and writes JSON (default
``benchmarks/results/behaviour_page.json``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.report import write_json

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data"))
DATA = SHARED / "online-retail" / "online_retail.parquet"
GOALS = {"warm": 2.0, "cold": 10.0}


def _manage(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def create_database(pg_url: str, db: str, data: Path, redis_url: str) -> None:
    import psycopg

    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
        conn.execute(f'CREATE DATABASE "{db}"')
    env = {**os.environ, "DATABASE_URL": f"{pg_url}/{db}", "REDIS_URL": redis_url}
    _manage(["migrate", "-v0"], env)
    _manage(["import_online_retail", str(data), "--no-progress"], env)


def measure(db_url: str, redis_url: str, repeat: int) -> dict[str, Any]:
    os.environ["DATABASE_URL"] = db_url
    os.environ["REDIS_URL"] = redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse
    from oscar.core.loading import get_model

    from segmentation import behaviour

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["*"]
    staff, _ = get_user_model().objects.get_or_create(
        username="behaviour-bench", defaults={"is_staff": True, "email": "b@x.invalid"}
    )
    client = Client()
    client.force_login(staff)
    url = reverse("segmentation_dashboard:segmentation-behaviour")
    Order = get_model("order", "Order")
    Line = get_model("order", "Line")
    Event = get_model("recommender", "Event")
    sizes = {"orders": Order.objects.count(), "lines": Line.objects.count(), "events": Event.objects.count()}

    def get() -> float:
        start = time.perf_counter()
        response = client.get(url)
        seconds = time.perf_counter() - start
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}")
        return seconds

    cold, warm, parts = [], [], {}
    for _ in range(repeat):
        cache.delete(f"{behaviour.CACHE_PREFIX}:{behaviour.fingerprint()}")
        cold.append(get())
        parts = behaviour.shop_behaviour()["seconds"]
        warm.append(get())
    for _ in range(repeat):
        warm.append(get())
    return {
        "data": sizes,
        "cold_seconds": cold,
        "warm_seconds": warm,
        "cold_median": statistics.median(cold),
        "cold_max": max(cold),
        "warm_median": statistics.median(warm),
        "warm_max": max(warm),
        "query_seconds_last_cold": parts,
        "goals": GOALS,
        "met": {"warm": max(warm) < GOALS["warm"], "cold": max(cold) < GOALS["cold"]},
    }


def to_markdown(r: dict[str, Any]) -> str:
    d = r["data"]
    lines = [
        f"Shop behaviour page on {d['orders']:,} orders, {d['lines']:,} order lines, {d['events']:,} events",
        "",
        "| request | median s | worst s | goal s | met |",
        "|---|---|---|---|---|",
        f"| cold (cache emptied) | {r['cold_median']:.2f} | {r['cold_max']:.2f} | < {GOALS['cold']:.0f} | "
        f"{'yes' if r['met']['cold'] else 'NO'} |",
        f"| warm | {r['warm_median']:.3f} | {r['warm_max']:.3f} | < {GOALS['warm']:.0f} | "
        f"{'yes' if r['met']['warm'] else 'NO'} |",
        "",
        "Grouped queries of the last cold request (s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in r["query_seconds_last_cold"].items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="behaviour_bench")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/5"))
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--reuse", action="store_true", help="measure the database of a previous call")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "behaviour_page.json")
    args = parser.parse_args(argv)
    if not args.reuse:
        if not args.data.is_file():
            print(f"{args.data} not found", file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        create_database(args.pg_url, args.db, args.data, args.redis_url)
        print(f"imported {args.data.name} into {args.db} in {time.perf_counter() - t0:.0f} s (not measured)")
    result = measure(f"{args.pg_url}/{args.db}", args.redis_url, args.repeat)
    print(to_markdown(result))
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
