"""One whole training run inside the shop, on the full Online Retail import plus a million views.

Steps (in a scratch PostgreSQL database on the server of ``--pg-url``, kept after the run
and reused with ``--reuse``):

1. ``migrate`` and ``import_online_retail`` of the full file (541,909 lines; not timed here,
   see ``benchmarks/import_online_retail.py``);
2. a browsing history generated from the orders with a fixed seed (not timed): before each
   purchase line of a registered customer, the customer views the product, and (Poisson) other
   products from their own purchases or drawn by popularity; anonymous visitors browse
   popularity-weighted sessions; at least ``--views`` view events in all, written with COPY;
3. the export (ORM -> arrays) side by side with a naive ORM loop over the same rows;
4. ``manage.py train_recommenders`` in its own process (so its peak RSS is the run's), with the
   library's defaults except the time budget (``--budget-minutes``; ``--skip-full-run``: no steps 4-5);
5. the promoted next-item model's single-request scoring time over the catalogue, one thread;
6. the recurrent cells side by side (``--cells``, default ``lstm gru``): per cell, the live next-item
   version is retired, then ``train_recommenders --models next_item`` runs in its own process with
   ``RNN_CELL`` set to the cell (``BENCH_RNN_CELL``), so every cell is trained, judged and promoted the
   same way (against popularity only); its holdout HR@20 / MRR@20, fit time, peak RSS and the
   promoted model's scoring time;
7. daily retrains (``--daily-retrains N``, default off): N runs with ``--as-of`` one day apart ending at
   2011-12-10 on the ``--retrain-models`` kinds, each as the nightly task would run them: the
   next-item candidate of each day uses the other cell than the live version's (lstm first when none
   is live), so the gate's paired test compares two configurations trained on the same data (with
   daily promotions that alternates lstm and gru; after a rejection the same cell challenges again);
   per day and kind the gate's decision, the candidate's and the live configuration's metric and
   the p-value.

Prints markdown tables and writes JSON::

    .venv/bin/python benchmarks/train_in_shop.py                      # setup, every kind, both cells
    .venv/bin/python benchmarks/train_in_shop.py --reuse --skip-setup  # again on the kept data
    .venv/bin/python benchmarks/train_in_shop.py --reuse --skip-setup --daily-retrains 4  # and 4 nightly runs
    .venv/bin/python benchmarks/train_in_shop.py --reuse --skip-setup --cells            # no cell comparison
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, timedelta
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
NEXT_ITEM = "next_item"
CELLS = ("lstm", "gru")
RETRAIN_MODELS = ["also_bought", "also_viewed", "bought_together", "trending", NEXT_ITEM]


def _manage(args: list[str], env: dict[str, str], check: bool = True) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode:
        failed = f"manage.py {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        if check:
            raise SystemExit(failed)
        print(failed, flush=True)
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
    return {
        "rows": len(log),
        "ours_s": round(ours, 2),
        "naive_rows": len(naive),
        "naive_s": round(naive_s, 2),
        "steps": log.timings,
        "counts": log.counts,
    }


def shop_histories(loaded: Any, n: int = 1000, seed: int = 0) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """What "for you" scores in the shop: the histories (last ``MAX_HISTORY_LENGTH`` events, as serving
    reads them) of ``n`` people drawn at random (fixed seed) among everyone with events, customers
    and anonymous visitors alike, in the model's item index."""
    from django.contrib.auth import get_user_model
    from oscar.core.loading import get_model

    from recommender.serving.history import history_for

    Event = get_model("recommender", "Event")
    users = list(
        Event.objects.filter(user__isnull=False).order_by("user_id").values_list("user_id", flat=True).distinct()
    )
    visitors = list(
        Event.objects.filter(user__isnull=True)
        .exclude(visitor_id="")
        .order_by("visitor_id")
        .values_list("visitor_id", flat=True)
        .distinct()
    )
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
    """``n`` histories of 1-50 random items with random times."""
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


def train(env: dict[str, str], as_of: str = AS_OF, models: list[str] | None = None, cell: str | None = None) -> Any:
    """One ``train_recommenders`` in its own process (``cell``: its ``RNN_CELL``); its TrainingRun row, the
    command's wall time and output. A failed kind does not stop the benchmark: its row says why."""
    from oscar.core.loading import get_model

    TrainingRun = get_model("recommender", "TrainingRun")
    before = TrainingRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    args = ["train_recommenders", "--as-of", as_of, "--no-progress", *(["--models", *models] if models else [])]
    wall, out = _manage(args, env if cell is None else {**env, "BENCH_RNN_CELL": cell}, check=False)
    run = TrainingRun.objects.filter(pk__gt=before).order_by("-pk").first()
    if run is None:
        raise SystemExit(f"manage.py {' '.join(args)} made no training run")
    if cell is not None and run.parameters.get("RNN_CELL") != cell:
        raise SystemExit(f"run {run.pk} trained with RNN_CELL {run.parameters.get('RNN_CELL')!r}, not {cell!r}")
    return run, wall, out


def kind_outcomes(run: Any) -> dict[str, dict[str, Any]]:
    """Per kind of the run: the gate's decision and the figures it rests on (``metrics["gate"]``)."""
    metric = run.parameters.get("GATE_METRIC", "hr@20")
    by_kind = {v.kind: v for v in run.versions.all()}
    outcomes = (run.counts or {}).get("kinds") or {}
    out = {}
    for kind in sorted(outcomes, key=lambda k: run.parameters["kinds"].index(k)):  # training order (jsonb sorts)
        outcome, version = outcomes[kind], by_kind.get(kind)
        m = (version.metrics or {}) if version else {}
        gate = m.get("gate") or {}
        out[kind] = {
            "status": outcome.get("status"),
            "version": outcome.get("version"),
            "reason": outcome.get("reason", ""),
            "model": version.model_name if version else None,
            "cell": (version.parameters or {}).get("network") if version else None,
            "metric": metric,
            "cases": m.get("n_cases"),
            "candidate": (m.get("candidate") or {}).get(metric),
            "popularity": (m.get("popularity") or {}).get(metric),
            "reference": gate.get("reference"),
            "p_value": gate.get("p_value"),
            "live_version": gate.get("live_version"),
            "gate": gate,
            "timings": version.timings if version else {},
        }
    return out


def retire_live_next_item(why: str) -> list[int]:
    """Retire the live next-item version (the next run then has none to be compared with)."""
    from oscar.core.loading import get_model

    from recommender.abstract_models import VersionStatus

    live = get_model("recommender", "ModelVersion").objects.filter(kind=NEXT_ITEM, status=VersionStatus.LIVE)
    ids = list(live.values_list("pk", flat=True))
    live.update(status=VersionStatus.RETIRED, reason=why)
    return ids


def compare_cells(env: dict[str, str], cells: list[str]) -> dict[str, dict[str, Any]]:
    """``train_recommenders --models next_item`` once per cell, each starting without a live version."""
    results = {}
    for cell in cells:
        retired = retire_live_next_item(f"retired by benchmarks/train_in_shop.py before the {cell} run")
        run, wall, out = train(env, models=[NEXT_ITEM], cell=cell)
        print(out, flush=True)
        kind = kind_outcomes(run).get(NEXT_ITEM, {})
        metrics = (run.versions.get(pk=kind["version"]).metrics or {}) if kind.get("version") else {}
        results[cell] = {
            "run": run.pk,
            "run_status": run.status,
            "retired_before": retired,
            "status": kind.get("status"),
            "version": kind.get("version"),
            "model": kind.get("model"),
            "network": kind.get("cell"),
            "reason": kind.get("reason"),
            "cases": metrics.get("n_cases"),
            **{
                f"{who}_{k}": (metrics.get(who) or {}).get(k)
                for who in ("candidate", "popularity", "item_to_item")
                for k in ("hr@20", "mrr@20")
            },
            "fit_s": (kind.get("timings") or {}).get("fit"),
            "refit_s": (kind.get("timings") or {}).get("refit"),
            "peak_rss_mb": run.peak_rss_mb,
            "wall_s": round(wall, 1),
            "run_timings": run.timings,
            "scoring": scoring_latency() if kind.get("status") == "live" else {"note": "not promoted"},
        }
    return results


def daily_retrains(env: dict[str, str], days: int, models: list[str]) -> list[dict[str, Any]]:
    """``days`` runs with ``--as-of`` one day apart, ending at ``AS_OF``; the next-item candidate of each
    day is the other cell than the live version's (lstm when none is live)."""
    from recommender.services import versions

    out = []
    for i in range(days):
        as_of = (date.fromisoformat(AS_OF) - timedelta(days=days - 1 - i)).isoformat()
        live = versions.live_version(NEXT_ITEM)
        live_cell = (live.parameters or {}).get("network") if live else None
        cell = CELLS[(CELLS.index(live_cell) + 1) % len(CELLS)] if live_cell in CELLS else CELLS[0]
        run, wall, out_text = train(env, as_of, models, cell)
        print(out_text, flush=True)
        out.append(
            {
                "as_of": as_of,
                "cell": cell,
                "live_before": live.pk if live else None,
                "run": run.pk,
                "run_status": run.status,
                "wall_s": round(wall, 1),
                "peak_rss_mb": run.peak_rss_mb,
                "run_timings": run.timings,
                "kinds": kind_outcomes(run),
            }
        )
    return out


def short_reason(reason: str) -> str:
    """The gate's reason without the figures the table shows in its own columns."""
    short = re.sub(r"\s*\([^()]*\)", "", reason or "")  # the parenthesised figures
    short = re.sub(r"^(hr|mrr|ndcg)@\d+ [0-9.]+ ", "", short)  # the candidate's metric
    short = re.sub(r"the live version (\d+)'s configuration trained on the same data", r"live v\1's config", short)
    return short if len(short) <= 120 else short[:117] + "..."


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def print_cells(cells: dict[str, dict[str, Any]]) -> None:
    print(
        "\n| cell | hr@20 | mrr@20 | fit s | peak MB | scoring p50 ms | p95 ms | run s |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    for cell, r in cells.items():
        shown = cell if r["status"] == "live" else f"{cell} ({r['status']}: {short_reason(r['reason'])})"
        fit = "-" if r["fit_s"] is None else f"{r['fit_s']:.1f}"
        latency = [r["scoring"].get(f"shop_{q}_ms", "-") for q in ("p50", "p95")]
        row = [shown, _pct(r["candidate_hr@20"]), _pct(r["candidate_mrr@20"]), fit, r["peak_rss_mb"], *latency]
        print("| " + " | ".join(str(c) for c in [*row, r["wall_s"]]) + " |")
    first = next(iter(cells.values()))
    print(
        f"\n({first['cases']} held-out cases; popularity {_pct(first['popularity_hr@20'])} / "
        f"{_pct(first['popularity_mrr@20'])}, item-kNN {_pct(first['item_to_item_hr@20'])} / "
        f"{_pct(first['item_to_item_mrr@20'])}; fit s: the candidate's fit, the promoted model is refitted on "
        "all data after it; run s: the whole command; scoring: shop histories, one thread)"
    )


def print_daily(days: list[dict[str, Any]]) -> dict[str, Any]:
    """The table per day and kind, and the summary (returned for the JSON)."""
    print("\n| as-of | kind | status | candidate | reference (live config) | p | cand/ref better | reason |")
    print("|---|---|---|---:|---:|---:|---|---|")
    counted: dict[str, int] = {}
    for day in days:
        for kind, r in day["kinds"].items():
            counted[r["status"]] = counted.get(r["status"], 0) + 1
            gate = r["gate"]
            name = f"{kind} ({r['cell']})" if kind == NEXT_ITEM and r["cell"] else kind
            p = "-" if r["p_value"] is None else f"{r['p_value']:.3g}"
            wins = f"{gate['candidate_better']} / {gate['reference_better']}" if gate else "-"
            print(
                f"| {day['as_of']} | {name} | {r['status']} | {_pct(r['candidate'])} | {_pct(r['reference'])} | "
                f"{p} | {wins} | {short_reason(r['reason'])} |"
            )
    judged = counted.get("live", 0) + counted.get("rejected", 0)
    next_item = [d["kinds"][NEXT_ITEM]["status"] for d in days if NEXT_ITEM in d["kinds"]]
    summary = {
        "promoted": counted.get("live", 0),
        "judged": judged,
        "by_status": counted,
        "next_item_promoted": next_item.count("live"),
        "next_item_runs": len(next_item),
    }
    metric = next((r["metric"] for d in days for r in d["kinds"].values()), "hr@20")
    print(
        f"\npromoted {summary['promoted']} of {judged} judged candidates over {len(days)} days ({counted}); "
        f"next_item: {summary['next_item_promoted']} of {len(next_item)}; metric {metric}, "
        "figures in %; per run: " + ", ".join(f"{d['as_of']} {d['wall_s']} s {d['peak_rss_mb']} MB" for d in days)
    )
    return summary


def full_run(env: dict[str, str], export: dict[str, Any]) -> dict[str, Any]:
    """``train_recommenders`` of every kind at ``AS_OF`` and the promoted next-item model's scoring time."""
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
            "model": v.model_name,
            "status": v.status,
            "cases": m.get("n_cases"),
            **{
                f"{who}_{k}": (m.get(who) or {}).get(k)
                for who in ("candidate", "popularity", "item_to_item")
                for k in ("hr@20", "mrr@20")
            },
            "timings": v.timings,
        }
    run_info = {
        "id": run.pk,
        "status": run.status,
        "wall_s": round(wall, 1),
        "timings": run.timings,
        "peak_rss_mb": run.peak_rss_mb,
        "counts": run.counts.get("log"),
    }
    print("\n| step | seconds |\n|---|---:|")
    print(f"| export (ORM -> arrays, COPY) | {export['ours_s']} |\n| export, naive ORM loop | {export['naive_s']} |")
    for k, v in run.timings.items():
        if isinstance(v, int | float):
            print(f"| {k} | {v} |")
    print(
        f"| whole command (process start included) | {wall:.1f} |\n\npeak RSS of the training process: "
        f"{run.peak_rss_mb} MB\n"
    )
    print(
        "| kind | model | status | cases | HR@20 | MRR@20 | pop HR@20 | pop MRR@20 | item-kNN HR@20 | item-kNN MRR@20 |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind, r in kinds.items():
        cells = [r.get(f"{w}_{k}") for w in ("candidate", "popularity", "item_to_item") for k in ("hr@20", "mrr@20")]
        shown = " | ".join("-" if c is None else f"{100 * c:.2f}" for c in cells)
        print(f"| {kind} | {r['model']} | {r['status']} | {r['cases'] or '-'} | {shown} |")
    print(f"\n'for you' scoring, one request, one thread: {latency}", flush=True)
    return {"run": run_info, "kinds": kinds, "scoring": latency}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--views", type=int, default=1_000_000)
    parser.add_argument("--budget-minutes", type=float, default=4.0, help="TRAINING_TIME_BUDGET_MINUTES")
    parser.add_argument("--reuse", action="store_true", help="keep an existing scratch database")
    parser.add_argument("--skip-setup", action="store_true", help="with --reuse: no import, no view generation")
    parser.add_argument("--skip-full-run", action="store_true", help="no steps 4-5 (only --cells, --daily-retrains)")
    parser.add_argument(
        "--cells",
        nargs="*",
        choices=CELLS,
        default=list(CELLS),
        help="next-item runs side by side, one per recurrent cell (none: off)",
    )
    parser.add_argument("--daily-retrains", type=int, default=0, metavar="N", help="N daily runs up to AS_OF")
    parser.add_argument(
        "--retrain-models", nargs="+", default=RETRAIN_MODELS, metavar="KIND", help="the kinds of the daily runs"
    )
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "train_in_shop.json")
    args = parser.parse_args(argv)
    if not DATA.is_file():
        print(f"no data file at {DATA} (set SHARED_DATA_DIR)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    url = setup_database(args.pg_url, args.reuse)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "BENCH_BUDGET_MINUTES": str(args.budget_minutes),
    }
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
    print(
        f"export: ours {export['ours_s']} s vs naive ORM loop {export['naive_s']} s for {export['rows']:,} rows",
        flush=True,
    )
    # the benchmark's private file cache: a lock left by an interrupted earlier run would block this one
    shutil.rmtree(Path(env["SHOP_VAR_DIR"]) / "cache", ignore_errors=True)
    result = {"setup": setup, "export": export, "budget_minutes": args.budget_minutes, "cpus": os.cpu_count()}
    if not args.skip_full_run:
        result |= full_run(env, export)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str))  # written again after each part
    if args.cells:
        result["cells"] = compare_cells(env, args.cells)
        print_cells(result["cells"])
        args.json.write_text(json.dumps(result, indent=2, default=str))
    if args.daily_retrains > 0:
        result["daily"] = daily_retrains(env, args.daily_retrains, args.retrain_models)
        result["daily_summary"] = print_daily(result["daily"])
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.json.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwhole benchmark: {result['wall_s']} s; wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
