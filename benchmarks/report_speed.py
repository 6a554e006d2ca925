"""How fast the recommendation report is on 1,000,000 impressions and 100,000 orders.

    .venv/bin/python -m benchmarks.report_speed            # build the scratch database, then measure
    .venv/bin/python -m benchmarks.report_speed --reuse    # measure a database built before

The scratch PostgreSQL database (``--db``, default ``report_bench`` on ``--pg-url``) is migrated,
then filled with ``INSERT ... SELECT generate_series`` (not measured): one experiment of 30 days
(10 % control) with ``--impressions`` blocks shown (default 1,000,000) over 4 placements,
about a fifth of them clicked (~200,000 clicks), ``--orders`` orders (default 100,000) of 1-3
lines placed by ``--people`` people (default 400,000 exposures, skewed: some order often),
and about a sixth of the lines attributed to a click.

Measured in one process, with the cache of ``--redis-url`` (Redis, as in production; only the
report's own keys are deleted), each ``--repeat`` times (median and worst):

* ``service cold``: :func:`recommender.measurement.report.report` with its cached copy deleted
  first (the grouped queries run; the Python process, imports and connection are warm: the page
  is requested once before any timing, as a running server has);
* ``service warm``: the same call again, from the cache;
* ``page cold`` / ``page warm``: ``GET /dashboard/recommendations/report/`` as staff (the same,
  plus the two plots and the template), cold with the report's cached copy deleted;
* ``all shoppers, cold``: the report of the last 30 days without an experiment;
* ``naive``: the same figures from every row read into Python (``values_list`` iterators over the
  impressions, clicks, attributed lines and exposures of the experiment, counted in loops), the way
  one would write it first - run once.

The goal (issue 23): the report renders in under 2 s. Prints a markdown table and writes JSON
(default ``benchmarks/results/report_speed.json``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.report import write_json

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 2.0
PLACEMENTS = ("also_viewed", "also_bought", "for_you", "bought_together")


def _manage(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def create_database(pg_url: str, db: str, redis_url: str) -> None:
    import psycopg

    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
        conn.execute(f'CREATE DATABASE "{db}"')
    _manage(["migrate", "-v0"], {**os.environ, "DATABASE_URL": f"{pg_url}/{db}", "REDIS_URL": redis_url})


def _setup_django(db_url: str, redis_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ["REDIS_URL"] = redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def fill(impressions: int, orders: int, people: int, seed: float = 0.23) -> dict[str, Any]:
    """Write the experiment's rows with SQL (not measured); the row counts."""
    from django.db import connection
    from django.utils import timezone
    from oscar.core.loading import get_model

    Experiment = get_model("recommender", "Experiment")
    now = timezone.now()
    experiment = Experiment.objects.create(
        name=f"bench {now:%Y%m%d%H%M%S}", control_share=0.1, started=now - timedelta(days=30)
    )
    placements = "ARRAY[" + ", ".join(f"'{p}'" for p in PLACEMENTS) + "]"
    arm = "CASE WHEN {p} %% 10 = 0 THEN 'control' ELSE 'treatment' END"
    params = {"exp": experiment.pk, "start": experiment.started, "people": people}
    with connection.cursor() as c:
        c.execute("SET synchronous_commit = off")
        c.execute(f"SELECT setseed({seed})")
        # orders: person p placed it (in guest_email), skewed so that some people order often
        c.execute(
            """INSERT INTO order_order (number, currency, total_incl_tax, total_excl_tax, shipping_incl_tax,
                   shipping_excl_tax, shipping_method, shipping_code, status, guest_email, date_placed, site_id,
                   analytics_tracked)
               SELECT 'RB' || k, 'GBP', total, total, 0, 0, 'Free shipping', 'free-shipping', 'Complete',
                      'p' || floor(%(people)s * power(random(), 1.6))::int || '@bench.invalid',
                      %(start)s::timestamptz + random() * interval '30 days', 1, true
               FROM (SELECT k, round((5 + random() * 80)::numeric, 2) AS total
                     FROM generate_series(1, %(orders)s) k) s""",
            {**params, "orders": orders},
        )
        c.execute(
            """INSERT INTO order_line (partner_name, partner_sku, partner_line_reference, partner_line_notes, title,
                   quantity, line_price_incl_tax, line_price_excl_tax, line_price_before_discounts_incl_tax,
                   line_price_before_discounts_excl_tax, status, order_id, allocation_cancelled, num_allocated)
               SELECT 'Bench', 'SKU' || j, '', '', 'Product ' || j, 1, p, p, p, p, 'Complete', o.id, false, 0
               FROM (SELECT id, 1 + id %% 3 AS n, round(total_incl_tax / (1 + id %% 3), 2) AS p
                     FROM order_order WHERE number LIKE 'RB%%') o
               CROSS JOIN LATERAL generate_series(1, o.n) j""",
            [],
        )
        # every person shown a block, with the orders and revenue they placed since
        c.execute(
            f"""INSERT INTO recommender_exposure (experiment_id, person, arm, first_seen, orders, revenue)
                SELECT %(exp)s, 'v' || g, {arm.format(p="g")},
                       %(start)s::timestamptz + random() * interval '20 days',
                       coalesce(o.n, 0), coalesce(o.revenue, 0)
                FROM generate_series(0, %(people)s - 1) g
                LEFT JOIN (SELECT substring(guest_email from 'p([0-9]+)@')::int AS person, count(*) AS n,
                                  sum(total_incl_tax) AS revenue
                           FROM order_order WHERE number LIKE 'RB%%' GROUP BY 1) o ON o.person = g""",
            params,
        )
        c.execute(
            f"""INSERT INTO recommender_impression (impression_id, created, placement, experiment_id, arm, visitor_id,
                    product_ids, rungs, version_ids)
                SELECT gen_random_uuid(), %(start)s::timestamptz + random() * interval '30 days',
                       ({placements})[1 + floor(random() * 4)::int], %(exp)s, {arm.format(p="v")},
                       lpad(to_hex(v), 32, '0'), '[11, 12, 13, 14, 15, 16, 17, 18]'::jsonb,
                       '["model", "model", "model", "model", "model", "model", "model", "model"]'::jsonb,
                       '[7, 7, 7, 7, 7, 7, 7, 7]'::jsonb
                FROM (SELECT floor(%(people)s * power(random(), 1.3))::int AS v
                      FROM generate_series(1, %(impressions)s)) s""",
            {**params, "impressions": impressions},
        )
        c.execute(
            """INSERT INTO recommender_click (impression_id, created, placement, position, rung, version_id,
                   experiment_id, arm, visitor_id, session)
               SELECT impression_id, created + random() * interval '10 minutes', placement,
                      1 + floor(random() * 8)::int, 'model', 7, experiment_id, arm, visitor_id, ''
               FROM recommender_impression
               WHERE random() < CASE WHEN arm = 'control' THEN 0.15 ELSE 0.2 END""",  # best sellers: fewer clicks
            [],
        )
        c.execute(
            f"""INSERT INTO recommender_attributedline (line_id, created, placement, experiment_id, arm, version_id,
                    quantity, revenue, currency)
                SELECT l.id, o.date_placed, ({placements})[1 + floor(random() * 4)::int], %(exp)s,
                       {arm.format(p="substring(o.guest_email from 'p([0-9]+)@')::int")}, 7, l.quantity,
                       l.line_price_incl_tax, 'GBP'
                FROM order_line l JOIN order_order o ON o.id = l.order_id
                WHERE o.number LIKE 'RB%%' AND random() < 0.17""",
            params,
        )
        c.execute("ANALYZE")
        counts = {}
        for table in ("impression", "click", "attributedline", "exposure"):
            c.execute(f"SELECT count(*) FROM recommender_{table}", [])
            counts[table] = c.fetchone()[0]
        c.execute("SELECT count(*), count(DISTINCT guest_email) FROM order_order WHERE number LIKE 'RB%%'", [])
        counts["orders"], counts["buyers"] = c.fetchone()
    return counts


def naive(flt: Any) -> dict[str, Any]:
    """The per-placement and per-arm figures from every row read into Python (the baseline)."""
    from oscar.core.loading import get_model

    from recommender.ml.experiments import compare_means, compare_proportions

    Impression = get_model("recommender", "Impression")
    Click = get_model("recommender", "Click")
    AttributedLine = get_model("recommender", "AttributedLine")
    Exposure = get_model("recommender", "Exposure")
    lo, hi = flt.bounds()
    scope = {"created__gte": lo, "created__lt": hi, "experiment_id": flt.experiment.pk}
    table: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for placement, arm in Impression.objects.filter(**scope).values_list("placement", "arm").iterator(10_000):
        table[(placement, arm)]["impressions"] += 1
    for placement, arm in Click.objects.filter(**scope).values_list("placement", "arm").iterator(10_000):
        table[(placement, arm)]["clicks"] += 1
    lines = AttributedLine.objects.filter(**scope).values_list("placement", "arm", "quantity", "revenue")
    for placement, arm, quantity, revenue in lines.iterator(10_000):
        row = table[(placement, arm)]
        row["lines"] += 1
        row["quantity"] += quantity
        row["revenue"] += float(revenue)
    arms: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0, 0.0, 0.0])
    people = Exposure.objects.filter(experiment_id=flt.experiment.pk, first_seen__gte=lo, first_seen__lt=hi)
    for arm, orders, revenue in people.values_list("arm", "orders", "revenue").iterator(10_000):
        a, r = arms[arm], float(revenue)
        a[0] += 1
        a[1] += orders > 0
        a[2] += orders
        a[3] += orders * orders
        a[4] += r
        a[5] += r * r
    c, t = arms["control"], arms["treatment"]
    compare_proportions(c[1], c[0], t[1], t[0])
    compare_means(c[0], c[4], c[5], t[0], t[4], t[5])
    return {"rows": len(table), "visitors": c[0] + t[0]}


def _timed(func: Any) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _summary(seconds: list[float]) -> dict[str, Any]:
    return {"seconds": [round(s, 4) for s in seconds], "median": statistics.median(seconds), "max": max(seconds)}


def measure(repeat: int, skip_naive: bool) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from recommender.measurement import report

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["*"]
    staff, _ = get_user_model().objects.get_or_create(
        username="report-bench", defaults={"is_staff": True, "email": "r@bench.invalid"}
    )
    client = Client()
    client.force_login(staff)
    flt = report.make_filter()
    everyone = report.make_filter(experiment=None)
    url = "/dashboard/recommendations/report/"

    def page() -> None:
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}")

    queries: list[tuple[float, str]] = []

    def timer(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.append((time.perf_counter() - start, sql))

    page()  # once before timing: templates compiled, matplotlib's fonts loaded (a running server has done it)
    runs: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeat):
        report.forget(flt)
        queries.clear()
        with connection.execute_wrapper(timer):
            runs["service cold"].append(_timed(lambda: report.report(flt)))
        runs["service warm"].append(_timed(lambda: report.report(flt)))
        report.forget(flt)
        runs["page cold"].append(_timed(page))
        runs["page warm"].append(_timed(page))
        report.forget(everyone)
        runs["all shoppers, cold"].append(_timed(lambda: report.report(everyone)))
    data = report.report(flt)
    result: dict[str, Any] = {
        "filter": {"start": flt.start.isoformat(), "end": flt.end.isoformat(), "experiment": flt.experiment.pk},
        "runs": {name: _summary(s) for name, s in runs.items()},
        "queries_last_cold": [
            {"seconds": round(s, 4), "sql": sql[:160]}
            for s, sql in queries
            if sql.lstrip().upper().startswith("SELECT")
        ],
        "report": {
            "placement_rows": len(data["placements"]),
            "impressions": sum(r["impressions"] for r in data["placements"]),
            "clicks": sum(r["clicks"] for r in data["placements"]),
            "attributed_lines": sum(r["attributed_lines"] for r in data["placements"]),
            "visitors": sum(a["visitors"] for a in data["arms"]),
            "orders": sum(a["orders"] for a in data["arms"]),
            "verdict": data["verdict"],
        },
        "goal_s": GOAL_S,
    }
    if not skip_naive:
        result["runs"]["naive (rows into Python)"] = _summary([_timed(lambda: naive(flt))])
    worst = max(result["runs"]["page cold"]["max"], result["runs"]["service cold"]["max"])
    result["met"] = worst < GOAL_S
    return result


def to_markdown(r: dict[str, Any], counts: dict[str, Any] | None) -> str:
    d = r["report"]
    lines = [
        f"Report of one experiment, {r['filter']['start']} to {r['filter']['end']}: {d['impressions']:,} impressions, "
        f"{d['clicks']:,} clicks, {d['attributed_lines']:,} attributed lines, {d['visitors']:,} people with "
        f"{d['orders']:,} orders",
        "",
        "| call | median s | worst s | runs |",
        "|---|---|---|---|",
    ]
    for name, s in r["runs"].items():
        lines.append(f"| {name} | {s['median']:.3f} | {s['max']:.3f} | {len(s['seconds'])} |")
    lines += [
        "",
        f"Goal: the report in under {GOAL_S:.0f} s, cold: {'met' if r['met'] else 'NOT met'}.",
        "Grouped queries of the last cold call (s): "
        + ", ".join(f"{q['seconds']:.3f}" for q in r["queries_last_cold"]),
    ]
    if counts:
        lines.append(f"Rows written: {counts}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="report_bench")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/5"))
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=400_000)
    parser.add_argument("--reuse", action="store_true", help="measure the database of a previous call")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "report_speed.json")
    args = parser.parse_args(argv)
    counts = None
    if not args.reuse:
        t0 = time.perf_counter()
        create_database(args.pg_url, args.db, args.redis_url)
        _setup_django(f"{args.pg_url}/{args.db}", args.redis_url)
        counts = fill(args.impressions, args.orders, args.people)
        print(f"built {args.db} in {time.perf_counter() - t0:.0f} s (not measured): {counts}", flush=True)
    else:
        _setup_django(f"{args.pg_url}/{args.db}", args.redis_url)
    result = measure(args.repeat, args.skip_naive)
    if counts:
        result["rows"] = counts
    print(to_markdown(result, counts))
    write_json(args.out, result, default=str)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
