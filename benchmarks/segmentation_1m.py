"""Segmentation at scale: a synthetic shop of 1,000,000 customers and 10,000,000 order lines.

    .venv/bin/python benchmarks/segmentation_1m.py                       # 1M customers, 10M lines
    .venv/bin/python benchmarks/segmentation_1m.py --customers 100000 --lines 1000000
    .venv/bin/python benchmarks/segmentation_1m.py --reuse               # keep the data of a previous call

The shop is written straight into a scratch PostgreSQL database (default
``seg_bench_<customers>`` on ``postgres://postgres@127.0.0.1:5432``; ``--pg`` to change) with
``INSERT ... SELECT generate_series`` after Django's migrations - creating it is
*not* part of the measurement. 90% of customers are registered users, 10% guests;
orders per customer are geometric, 1-5 lines per order; 2% of orders are
cancelled, 1% refunded, 1% in EUR (converted at a configured rate), 0.5% in USD
(no rate: left out and counted).

Measured, each in a fresh subprocess so peak memory (``ru_maxrss``) belongs to
one approach only:

* ``full run``: ``segmentation.services.run_segmentation`` - the one grouped SQL
  query, scores, segments, KMeans with k by silhouette, BG/NBD + Gamma-Gamma,
  churn flags, memberships written with COPY, the run made current.
* ``naive``: every order read through the ORM into pandas and grouped there
  (what one would write first) - the aggregation step only.

Prints a table and the per-stage timings; writes JSON to ``--json``
(default ``var/benchmarks/segmentation_1m.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2024, 12, 31)
RATES = {"EUR": "0.85"}
GOAL_S = 60.0


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _setup_django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    settings.SEGMENTATION = {**getattr(settings, "SEGMENTATION", {}), "CURRENCY_RATES": RATES, "KEEP_RUNS": 2}
    from segmentation.conf import app_settings

    app_settings.reload()


# --------------------------------------------------------------------------- data


def create_shop(db_url: str, customers: int, lines: int, seed: float = 0.42) -> dict:
    """Migrate the scratch database and fill it with SQL (not measured)."""
    _setup_django(db_url)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    t_migrate = time.perf_counter() - t0
    registered = int(customers * 0.9)
    guests = customers - registered
    mean_lines = 3.0  # 1 + id % 5
    orders = max(customers, int(lines / mean_lines))
    extra = orders - customers  # every customer has >= 1 order; the rest spread geometrically
    user_table = get_user_model()._meta.db_table
    t0 = time.perf_counter()
    with connection.cursor() as c:
        c.execute("SET synchronous_commit = off")
        c.execute(f"SELECT setseed({seed})")
        c.execute(
            f"""INSERT INTO {user_table} (password, is_superuser, username, first_name, last_name, email,
                    is_staff, is_active, date_joined)
                SELECT '!', false, 'bench' || g, '', '', 'bench' || g || '@example.com', false, true, now()
                FROM generate_series(1, %s) g""",
            [registered],
        )
        c.execute(f"SELECT min(id) FROM {user_table} WHERE username LIKE 'bench%%'")
        first_user = c.fetchone()[0]
        # customers 0..n-1: < registered are users, the rest guests; order k of the shop belongs to
        # customer k for k < n, else to a customer drawn with a skew (frequent buyers exist)
        for idx in (
            "order_line_order_id_b9148391",
            "order_line_partner_id_258a2fb9",
            "order_line_product_id_e620902d",
            "order_line_stockrecord_id_1d65aff5",
        ):
            c.execute(f"DROP INDEX IF EXISTS {idx}")
        c.execute(
            """
            INSERT INTO order_order (number, currency, total_incl_tax, total_excl_tax, shipping_incl_tax,
                shipping_excl_tax, shipping_method, shipping_code, status, guest_email, date_placed,
                analytics_tracked, site_id, user_id)
            SELECT 'B' || k,
                   CASE WHEN r1 < 0.01 THEN 'EUR' WHEN r1 < 0.015 THEN 'USD' ELSE 'GBP' END,
                   total, total, 0, 0, 'Free shipping', 'free-shipping',
                   CASE WHEN r2 < 0.02 THEN 'Cancelled' WHEN r2 < 0.03 THEN 'Refunded' ELSE 'Complete' END,
                   CASE WHEN cust >= %(registered)s THEN 'guest' || cust || '@example.com' ELSE '' END,
                   timestamptz '2025-01-01 00:00:00+00' - (r3 * r3 * 730) * interval '1 day',
                   true, 1,
                   CASE WHEN cust < %(registered)s THEN %(first_user)s + cust ELSE NULL END
            FROM (
                SELECT k,
                       CASE WHEN k < %(customers)s THEN k
                            ELSE floor(%(customers)s * power(random(), 2))::int END AS cust,
                       random() AS r1, random() AS r2, random() AS r3,
                       round(((1 + k %% 5) * (2 + random() * 30))::numeric, 2) AS total
                FROM generate_series(0, %(orders)s - 1) k
            ) s
            """,
            {"registered": registered, "first_user": first_user, "customers": customers, "orders": orders},
        )
        c.execute(
            """
            INSERT INTO order_line (partner_name, partner_sku, partner_line_reference, partner_line_notes, title,
                quantity, line_price_incl_tax, line_price_excl_tax, line_price_before_discounts_incl_tax,
                line_price_before_discounts_excl_tax, status, order_id, allocation_cancelled, num_allocated)
            SELECT 'Bench', 'SKU' || j, '', '', 'Product ' || j, 1, p, p, p, p, 'Complete', o.id, false, 0
            FROM (SELECT id, (1 + substring(number from 2)::int %% 5) AS n,
                         round(total_incl_tax / (1 + substring(number from 2)::int %% 5), 2) AS p
                  FROM order_order WHERE number LIKE 'B%%') o
            CROSS JOIN LATERAL generate_series(1, o.n) j
            """,
            [],
        )
        c.execute("CREATE INDEX order_line_order_id_b9148391 ON order_line (order_id)")
        c.execute("CREATE INDEX order_line_partner_id_258a2fb9 ON order_line (partner_id)")
        c.execute("CREATE INDEX order_line_product_id_e620902d ON order_line (product_id)")
        c.execute("CREATE INDEX order_line_stockrecord_id_1d65aff5 ON order_line (stockrecord_id)")
        c.execute("ANALYZE")
        c.execute("SELECT count(*) FROM order_order")
        n_orders = c.fetchone()[0]
        c.execute("SELECT count(*) FROM order_line")
        n_lines = c.fetchone()[0]
    return {
        "migrate_s": round(t_migrate, 1),
        "create_s": round(time.perf_counter() - t0, 1),
        "customers": customers,
        "registered": registered,
        "guests": guests,
        "orders": n_orders,
        "lines": n_lines,
        "extra_orders": extra,
    }


# --------------------------------------------------------------------------- measured


def measure_full(db_url: str) -> dict:
    _setup_django(db_url)
    from django.db import connection

    from segmentation import services

    connection.ensure_connection()
    base = _rss_mb()
    t0 = time.perf_counter()
    run = services.run_segmentation(AS_OF)
    wall = time.perf_counter() - t0
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(_rss_mb(), 0),
        "baseline_rss_mb": round(base, 0),
        "customers": run.n_customers,
        "k": run.k,
        "silhouette": run.silhouette,
        "stages": run.timings,
        "excluded_orders": run.parameters.get("excluded_orders_currency"),
        "clv": run.summary.get("clv", {}).get("status"),
        "segments": run.segment_counts,
    }


def measure_naive(db_url: str) -> dict:
    """Read every order through the ORM into pandas and group there (aggregation only)."""
    _setup_django(db_url)
    import pandas as pd
    from django.db import connection
    from oscar.core.loading import get_model

    from segmentation.services import as_of_bounds

    Order = get_model("order", "Order")
    connection.ensure_connection()
    base = _rss_mb()
    end, _ = as_of_bounds(AS_OF)
    t0 = time.perf_counter()
    rows = Order.objects.filter(date_placed__lt=end).values(
        "user_id", "guest_email", "date_placed", "total_incl_tax", "status", "currency"
    )
    df = pd.DataFrame.from_records(list(rows))
    t_read = time.perf_counter() - t0
    df = df[df["status"] != "Cancelled"]
    rate = df["currency"].map({"GBP": 1.0, **{k: float(v) for k, v in RATES.items()}})
    df = df[rate.notna()]
    df["amount"] = df["total_incl_tax"].astype(float) * rate[rate.notna()]
    df.loc[df["status"] == "Refunded", "amount"] = 0.0
    df["key"] = df["user_id"].astype("Int64").astype(str).where(df["user_id"].notna(), df["guest_email"].str.lower())
    g = df.groupby("key").agg(
        last=("date_placed", "max"), frequency=("date_placed", "size"), monetary=("amount", "sum")
    )
    g["recency_days"] = (pd.Timestamp(end) - pd.to_datetime(g["last"], utc=True)).dt.days
    wall = time.perf_counter() - t0
    return {
        "wall_s": round(wall, 2),
        "read_s": round(t_read, 2),
        "group_s": round(wall - t_read, 2),
        "peak_rss_mb": round(_rss_mb(), 0),
        "baseline_rss_mb": round(base, 0),
        "customers": len(g),
    }


def _child(stage: str, db_url: str, timeout: int) -> dict:
    cmd = [sys.executable, __file__, "--child", stage, "--db-url", db_url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{stage} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--lines", type=int, default=10_000_000)
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    ap.add_argument("--db", default=None, help="scratch database name (default seg_bench_<customers>)")
    ap.add_argument("--reuse", action="store_true", help="keep the data already in the scratch database")
    ap.add_argument("--drop", action="store_true", help="drop the scratch database at the end")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per measured subprocess")
    ap.add_argument("--json", default=str(ROOT / "var" / "benchmarks" / "segmentation_1m.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--db-url", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        result = {"full": measure_full, "naive": measure_naive, "create": None}[args.child]
        res = create_shop(args.db_url, args.customers, args.lines) if result is None else result(args.db_url)
        print(json.dumps(res, default=str))
        return

    import psycopg

    db = args.db or f"seg_bench_{args.customers}"
    db_url = f"{args.pg}/{db}"
    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchone()
        if exists and not args.reuse:
            conn.execute(f'DROP DATABASE "{db}"')
            exists = None
        if not exists:
            # a migrated, empty template saves a minute of migrations on repeated calls
            template = "seg_bench_template"
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template]).fetchone():
                conn.execute(f'CREATE DATABASE "{db}" TEMPLATE "{template}"')
            else:
                conn.execute(f'CREATE DATABASE "{template}"')
                subprocess.run(
                    [sys.executable, "manage.py", "migrate", "-v0"],
                    cwd=ROOT,
                    check=True,
                    env={**os.environ, "DATABASE_URL": f"{args.pg}/{template}"},
                )
                conn.execute(f'CREATE DATABASE "{db}" TEMPLATE "{template}"')
    data: dict = {"reused": True}
    if not (exists and args.reuse):
        print(f"creating {args.customers:,} customers / {args.lines:,} lines in {db} (not measured) ...", flush=True)
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "create",
            "--db-url",
            db_url,
            "--customers",
            str(args.customers),
            "--lines",
            str(args.lines),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-3000:])
        data = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  created in {data['create_s']} s (+{data['migrate_s']} s migrations): {data}", flush=True)

    print("measuring the full run ...", flush=True)
    full = _child("full", db_url, args.timeout)
    naive = None
    if not args.skip_naive:
        print("measuring the naive pandas-from-ORM aggregation ...", flush=True)
        naive = _child("naive", db_url, args.timeout)

    print()
    print(f"{'approach':<44}{'customers':>11}{'seconds':>10}{'peak RSS MB':>13}")
    print("-" * 78)
    print(
        f"{'full run (SQL aggregate + ML + COPY write)':<44}{full['customers']:>11,}{full['wall_s']:>10.1f}"
        f"{full['peak_rss_mb']:>13,.0f}"
    )
    agg = full["stages"].get("aggregate")
    print(f"{'  of which: SQL aggregation (one query)':<44}{'':>11}{agg:>10.1f}{'':>13}")
    if naive:
        print(
            f"{'naive: ORM -> pandas -> groupby (agg only)':<44}{naive['customers']:>11,}{naive['wall_s']:>10.1f}"
            f"{naive['peak_rss_mb']:>13,.0f}"
        )
        print(f"{'  of which: reading orders via the ORM':<44}{'':>11}{naive['read_s']:>10.1f}{'':>13}")
    print()
    print("where the full run's time goes:")
    for stage, secs in full["stages"].items():
        print(f"  {stage:<12}{secs:>8.2f} s")
    verdict = "meets" if full["wall_s"] <= GOAL_S else "misses"
    print(
        f"\nfull run {full['wall_s']:.1f} s {verdict} the {GOAL_S:.0f} s goal; k={full['k']}, "
        f"predicted value {full['clv']}, {full['excluded_orders']} orders excluded (no rate)"
    )
    report = {"data": data, "full": full, "naive": naive, "as_of": AS_OF.isoformat(), "goal_s": GOAL_S}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    print(f"JSON: {args.json}")
    if args.drop:
        with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{db}"')


if __name__ == "__main__":
    main()
