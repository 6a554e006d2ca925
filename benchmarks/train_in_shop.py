"""One whole training run inside the shop, on the full Online Retail import plus a million views.

Steps (in a scratch PostgreSQL database on the server of ``--pg-url``, kept with ``--keep``
and reused with ``--reuse``):

1. ``migrate`` and ``import_online_retail`` of the full file (541,909 lines; not timed here,
   see ``benchmarks/import_online_retail.py``);
2. a browsing history generated from the orders with a fixed seed (not timed): before each
   purchase line of a registered customer, the customer views the product, and (Poisson) other
   products from their own purchases or drawn by popularity; anonymous visitors browse
   popularity-weighted sessions; at least ``--views`` view events in all, written with COPY;
3. the export (ORM -> arrays) side by side with a naive ORM loop over the same rows;
4. ``manage.py train_recommenders`` in its own process (so its peak RSS is the run's), with the
   library's defaults except the time budget (``--budget-minutes``);
5. the promoted next-item model's single-request scoring time over the catalogue, one thread.

Prints markdown tables and writes JSON::

    .venv/bin/python benchmarks/train_in_shop.py                      # full run (about 15 min here)
    .venv/bin/python benchmarks/train_in_shop.py --reuse --skip-setup  # again on the kept data
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data"))
DATA = SHARED / "online-retail" / "online_retail.csv.gz"
DB_NAME = "bench_train_in_shop"
AS_OF = "2011-12-10"  # the day after the last invoice
SETTINGS_MODULE = "benchmarks.train_in_shop_settings"


def _manage(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc.stdout


def setup_database(pg_url: str, reuse: bool) -> str:
    import psycopg

    url = pg_url.rsplit("/", 1)[0] + f"/{DB_NAME}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if exists and not reuse:
            conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    return url


def generate_views(url: str, n_views: int, seed: int = 0) -> dict[str, int]:
    """Views around the real purchases (customers) and popularity-weighted visitor sessions."""
    import pandas as pd
    import psycopg

    rng = np.random.default_rng(seed)
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM recommender_event WHERE kind = 'view'")
        rows = conn.execute(
            "SELECT o.user_id, l.product_id, extract(epoch from o.date_placed)::float8 FROM order_line l "
            "JOIN order_order o ON o.id = l.order_id JOIN catalogue_product p ON p.id = l.product_id "
            "WHERE o.user_id IS NOT NULL AND l.quantity > 0 AND p.is_public ORDER BY o.user_id, o.date_placed"
        ).fetchall()
        users = np.array([r[0] for r in rows], dtype=np.int64)
        items = np.array([r[1] for r in rows], dtype=np.int64)
        times = np.array([r[2] for r in rows], dtype=np.float64)
        products, counts = np.unique(items, return_counts=True)
        popularity = counts / counts.sum()
        # each purchase line: one view of the product shortly before, and Poisson more views (half from
        # the customer's own purchases, half by popularity) in the minutes before that
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        seg_start = np.repeat(starts, np.diff(np.r_[starts, len(users)]))
        seg_len = np.repeat(np.diff(np.r_[starts, len(users)]), np.diff(np.r_[starts, len(users)]))
        view_time = times - rng.uniform(300, 7200, len(rows))
        extra = rng.poisson(max(int(n_views * 0.9) / len(rows) - 1.0, 0.0), len(rows))
        line = np.repeat(np.arange(len(rows)), extra)
        rank = np.arange(len(line)) - np.repeat(np.cumsum(extra) - extra, extra)
        own = items[seg_start[line] + (rng.random(len(line)) * seg_len[line]).astype(np.int64)]
        popular = products[rng.choice(len(products), size=len(line), p=popularity)]
        c_user = np.r_[users, users[line]]
        c_item = np.r_[items, np.where(rng.random(len(line)) < 0.5, own, popular)]
        c_time = np.r_[view_time, view_time[line] - 60.0 * (rank + 1)]
        # anonymous visitors: sessions of five popularity-weighted views
        n_visitor = max(n_views - len(c_item), 0)
        v_item = products[rng.choice(len(products), size=n_visitor, p=popularity)]
        session = np.arange(n_visitor) // 5
        v_time = rng.uniform(times.min(), times.max(), session.max() + 1 if n_visitor else 0)[session] + 45.0 * (
            np.arange(n_visitor) % 5
        )
        frame = pd.DataFrame(
            {
                "event_id": [str(uuid.uuid4()) for _ in range(len(c_item) + n_visitor)],
                "kind": "view",
                "created": pd.to_datetime(np.r_[c_time, v_time], unit="s", utc=True),
                "user_id": pd.array(np.r_[c_user, np.zeros(n_visitor, np.int64)], dtype="Int64"),
                "visitor_id": [""] * len(c_item) + [f"{s:032x}" for s in session],
                "product_id": np.r_[c_item, v_item],
            }
        )
        frame.loc[len(c_item) :, "user_id"] = pd.NA
        for col in ("order_number", "currency", "query", "old_status", "new_status"):
            frame[col] = ""
        buf = io.StringIO()
        frame.to_csv(buf, index=False, header=False, na_rep="\\N")
        buf.seek(0)
        cols = ", ".join(frame.columns)
        with conn.cursor().copy(f"COPY recommender_event ({cols}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy:
            while chunk := buf.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        total = conn.execute("SELECT count(*) FROM recommender_event WHERE kind = 'view'").fetchone()[0]
        conn.execute("ANALYZE recommender_event")
    return {"views": int(total), "customer_views": len(c_item), "visitor_views": n_visitor}


def compare_export(url: str) -> dict[str, Any]:
    """Our export (COPY) vs a naive ORM loop over the same rows, in this process."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    import django

    django.setup()
    from datetime import datetime

    from oscar.core.loading import get_model

    from recommender.exporters import export_behaviour

    as_of = datetime.fromisoformat(AS_OF).replace(tzinfo=UTC)
    t = time.perf_counter()
    log = export_behaviour(as_of)
    ours = time.perf_counter() - t

    Line = get_model("order", "Line")
    Event = get_model("recommender", "Event")
    t = time.perf_counter()
    naive = []
    for line in (
        Line.objects.select_related("order")
        .filter(order__date_placed__lt=as_of, quantity__gt=0)
        .iterator(chunk_size=5000)
    ):
        naive.append((line.order.user_id, line.product_id, line.order.date_placed.timestamp(), 2))
    for event in Event.objects.filter(created__lt=as_of, kind__in=["view", "basket"]).iterator(chunk_size=5000):
        naive.append((event.user_id or event.visitor_id, event.product_id, event.created.timestamp(), 0))
    naive_s = time.perf_counter() - t
    return {"rows": len(log), "ours_s": round(ours, 2), "naive_rows": len(naive), "naive_s": round(naive_s, 2),
            "steps": log.timings, "counts": log.counts}  # fmt: skip


def shop_histories(loaded: Any, n: int = 1000, seed: int = 0) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """What "for you" scores in the shop: the histories (last ``MAX_HISTORY_LENGTH`` events, as serving
    reads them) of ``n`` people drawn at random (fixed seed) among everyone with events, customers
    and anonymous visitors alike, in the model's item index."""
    from django.contrib.auth import get_user_model
    from oscar.core.loading import get_model

    from recommender.services.serving import history_for

    Event = get_model("recommender", "Event")
    users = list(Event.objects.filter(user__isnull=False).order_by("user_id").values_list("user_id", flat=True)
                 .distinct())  # fmt: skip
    visitors = list(
        Event.objects.filter(user__isnull=True).exclude(visitor_id="").order_by("visitor_id")
        .values_list("visitor_id", flat=True).distinct()
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    people = [("u", u) for u in users] + [("v", v) for v in visitors]
    picked = [people[i] for i in rng.permutation(len(people))[: 2 * n]]
    by_id = get_user_model().objects.in_bulk([p for kind, p in picked if kind == "u"])
    out = []
    for kind, person in picked:
        rows = history_for(by_id.get(person), "") if kind == "u" else history_for(None, person)
        known = [(loaded.index_of[p], t, e) for p, t, e in rows if p in loaded.index_of]
        if known:
            ctx = {
                "timestamps": [np.asarray([r[1] for r in known])],
                "event_types": [np.asarray([r[2] for r in known])],
            }
            out.append((np.asarray([r[0] for r in known], dtype=np.int64), ctx))
        if len(out) == n:
            break
    return out


def random_histories(n_items: int, n: int = 1000, seed: int = 0) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """``n`` histories of 1-50 random items with random times (the figure earlier runs reported)."""
    rng = np.random.default_rng(seed)
    out = []
    for length in rng.integers(1, 51, n):
        ts = np.sort(rng.uniform(1.29e9, 1.32e9, length))
        out.append((rng.integers(0, n_items, length), {"timestamps": [ts], "event_types": [np.zeros(length, int)]}))
    return out


def scoring_latency(n: int = 1000, seed: int = 0, k: int = 20) -> dict[str, Any]:
    """p50 / p95 of one "for you" request (scores over the whole catalogue, top ``k``), one thread:
    on real shop histories and on random ones."""
    from recommender.abstract_models import ModelKind
    from recommender.services import versions

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    live = versions.live_version(ModelKind.NEXT_ITEM)
    if live is None:
        return {"note": "no live next-item version"}
    loaded = versions.load(live)
    result: dict[str, Any] = {"model": live.model_name, "items": loaded.model.n_items_, "requests": n}
    for name, cases in (
        ("shop", shop_histories(loaded, n, seed)),
        ("random", random_histories(loaded.model.n_items_, n, seed)),
    ):
        for history, ctx in cases[:20]:  # warm-up
            loaded.model.recommend(history, k=k, context=ctx)
        times = []
        for history, ctx in cases:
            t = time.perf_counter()
            loaded.model.recommend(history, k=k, context=ctx)
            times.append(time.perf_counter() - t)
        ms = np.asarray(times) * 1000
        result[f"{name}_p50_ms"], result[f"{name}_p95_ms"] = (round(float(np.percentile(ms, q)), 2) for q in (50, 95))
        lengths = np.asarray([len(h) for h, _ in cases])
        result[f"{name}_median_length"] = float(np.median(lengths))
        for low, high in ((1, 10), (11, 30), (31, 50)):  # by history length: the cost grows with it
            inside = (lengths >= low) & (lengths <= high)
            if inside.any():
                result[f"{name}_p50_ms_length_{low}_{high}"] = round(float(np.percentile(ms[inside], 50)), 2)
                result[f"{name}_share_length_{low}_{high}"] = round(float(inside.mean()), 3)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--views", type=int, default=1_000_000)
    parser.add_argument("--budget-minutes", type=float, default=4.0, help="TRAINING_TIME_BUDGET_MINUTES")
    parser.add_argument("--reuse", action="store_true", help="keep an existing scratch database")
    parser.add_argument("--skip-setup", action="store_true", help="with --reuse: no import, no view generation")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "train_in_shop.json")
    args = parser.parse_args(argv)
    if not DATA.is_file():
        print(f"no data file at {DATA} (set SHARED_DATA_DIR)", file=sys.stderr)
        return 2
    url = setup_database(args.pg_url, args.reuse)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
           "BENCH_BUDGET_MINUTES": str(args.budget_minutes)}  # fmt: skip
    env.pop("REDIS_URL", None)  # a private file cache (the lock), never the shared Redis
    env["SHOP_VAR_DIR"] = str(REPO / "var" / "bench_train_in_shop")
    os.environ.update({k: env[k] for k in ("SHOP_VAR_DIR", "BENCH_BUDGET_MINUTES")})
    os.environ.pop("REDIS_URL", None)
    setup: dict[str, Any] = {}
    if not args.skip_setup:
        setup["migrate_s"] = round(_manage(["migrate", "-v0"], env)[0], 1)
        setup["import_s"] = round(_manage(["import_online_retail", str(DATA), "--no-progress"], env)[0], 1)
        t = time.perf_counter()
        setup["generated"] = generate_views(url, args.views)
        setup["generate_s"] = round(time.perf_counter() - t, 1)
        print(f"setup: {setup}", flush=True)
    export = compare_export(url)
    print(f"export: ours {export['ours_s']} s vs naive ORM loop {export['naive_s']} s for {export['rows']:,} rows",
          flush=True)  # fmt: skip
    # the benchmark's private file cache: a lock left by an interrupted earlier run would block this one
    shutil.rmtree(Path(env["SHOP_VAR_DIR"]) / "cache", ignore_errors=True)
    wall, out = _manage(["train_recommenders", "--as-of", AS_OF, "--no-progress"], env)
    print(out)
    from oscar.core.loading import get_model

    TrainingRun = get_model("recommender", "TrainingRun")
    run = TrainingRun.objects.order_by("-pk").first()
    latency = scoring_latency()
    kinds = {}
    for v in run.versions.all():
        m = v.metrics or {}
        kinds[v.kind] = {
            "model": v.model_name, "status": v.status, "cases": m.get("n_cases"),
            **{f"{who}_{k}": (m.get(who) or {}).get(k) for who in ("candidate", "popularity", "item_to_item")
               for k in ("hr@20", "mrr@20")},
            "timings": v.timings,
        }  # fmt: skip
    run_info = {"id": run.pk, "status": run.status, "wall_s": round(wall, 1), "timings": run.timings,
                "peak_rss_mb": run.peak_rss_mb, "counts": run.counts.get("log")}  # fmt: skip
    result = {"setup": setup, "export": export, "run": run_info, "kinds": kinds, "scoring": latency,
              "budget_minutes": args.budget_minutes, "cpus": os.cpu_count()}  # fmt: skip
    print("\n| step | seconds |\n|---|---:|")
    print(f"| export (ORM -> arrays, COPY) | {export['ours_s']} |\n| export, naive ORM loop | {export['naive_s']} |")
    for k, v in run.timings.items():
        if isinstance(v, int | float):
            print(f"| {k} | {v} |")
    print(f"| whole command (process start included) | {wall:.1f} |\n\npeak RSS of the training process: "
          f"{run.peak_rss_mb} MB\n")  # fmt: skip
    print(
        "| kind | model | status | cases | HR@20 | MRR@20 | pop HR@20 | pop MRR@20 | item-kNN HR@20 | item-kNN MRR@20 |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind, r in kinds.items():
        cells = [r.get(f"{w}_{k}") for w in ("candidate", "popularity", "item_to_item") for k in ("hr@20", "mrr@20")]
        shown = " | ".join("-" if c is None else f"{100 * c:.2f}" for c in cells)
        print(f"| {kind} | {r['model']} | {r['status']} | {r['cases'] or '-'} | {shown} |")
    print(f"\n'for you' scoring, one request, one thread: {latency}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
