"""Purchase intent ("next action") as the shop trains it: LSTM, GRU and two baselines side by side.

Two data sets, one run:

1. **Online Retail in the shop**: the full import (541,909 lines) and generated views in a scratch
   PostgreSQL database (``bench_next_action``; set up with the functions of
   ``benchmarks/train_in_shop.py``, kept for ``--reuse``), exported with
   ``recommender.exporters.export_behaviour`` at 2011-12-10 and cut into next-action streams by
   ``recommender.services.intent.streams_from_log`` (``INTENT_VISIT_GAP_MINUTES``). The held-out
   part is what ``holdout_cutoff`` gives (the ``HOLDOUT_DAYS`` up to the last activity).
2. **The Taobao UserBehavior sample** (``UserBehavior_tail10k.csv.gz``): ``pv`` = view, ``cart`` =
   basket, ``buy`` = purchase; ``fav`` rows are left out (the shop records no favourites). Streams
   by ``action_streams`` (30-minute visit gap, as-of = the last timestamp). The sample spans 9 days,
   so ``holdout_cutoff`` holds out the most recent 20 % of its event times, as the shop does when
   the usual held-out days leave nothing to train on.

On each: the LSTM and the GRU of ``build_model`` (the shop's parameters) fitted on what was known
at the cut (``streams.before``) and scored on every next action that became known after it
(``streams.held_out``), beside the majority action of the training part and "repeat the last
action": macro-F1, per-class F1, accuracy, the Brier score of the intent (P(basket or purchase
next)) beside the base rate's, fit seconds. Then the LSTM is saved, loaded with the NumPy
``IntentScorer`` that serves it, and ``scorer.intent`` is timed on single people's last 50 actions
(one thread, ``time.perf_counter``)::

    .venv/bin/python benchmarks/next_action_in_shop.py            # set up the shop database, measure
    .venv/bin/python benchmarks/next_action_in_shop.py --reuse    # on the kept database
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import train_in_shop  # noqa: E402

SHARED = train_in_shop.SHARED
TAOBAO = SHARED / "taobao-sample" / "UserBehavior_tail10k.csv.gz"
DB_NAME = "bench_next_action"
TAOBAO_TYPES = {"pv": 0, "cart": 1, "buy": 2}  # fav: left out
CELLS = ("lstm", "gru")
COLUMNS = ("view", "basket", "purchase", "leave")


# -- the shop database ------------------------------------------------------------------------------


def shop_env(url: str) -> dict[str, str]:
    """The environment of this process and of its ``manage.py`` commands: the scratch database, a
    private var folder (file cache), never the shared Redis."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": train_in_shop.SETTINGS_MODULE,
        "SHOP_VAR_DIR": str(REPO / "var" / DB_NAME),
    }
    env.pop("REDIS_URL", None)
    return env


def holds_data(url: str) -> dict[str, int] | None:
    """Orders and views in an existing scratch database (None: not set up)."""
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            orders = conn.execute("SELECT count(*) FROM order_order").fetchone()[0]
            views = conn.execute("SELECT count(*) FROM recommender_event WHERE kind = 'view'").fetchone()[0]
    except psycopg.Error:
        return None
    return {"orders": int(orders), "views": int(views)} if orders and views else None


def setup_shop(pg_url: str, reuse: bool, n_views: int) -> tuple[str, dict[str, Any]]:
    """The scratch database (dropped and created again unless ``reuse``), migrated, with the full
    import and ``n_views`` generated views unless ``reuse`` finds them there already."""
    train_in_shop.DB_NAME = DB_NAME  # its functions, this benchmark's own database
    url = train_in_shop.setup_database(pg_url, reuse)
    env = shop_env(url)
    found = holds_data(url) if reuse else None
    if found:
        print(f"reusing {DB_NAME}: {found['orders']:,} orders, {found['views']:,} views", flush=True)
        return url, {"reused": True, **found}
    setup: dict[str, Any] = {"reused": False}
    print(f"setting up {DB_NAME}: migrate, import, {n_views:,} views (minutes)", flush=True)
    setup["migrate_s"] = round(train_in_shop._manage(["migrate", "-v0"], env)[0], 1)
    args = ["import_online_retail", str(train_in_shop.DATA), "--no-progress"]
    setup["import_s"] = round(train_in_shop._manage(args, env)[0], 1)
    t = time.perf_counter()
    setup["generated"] = train_in_shop.generate_views(url, n_views)
    setup["generate_s"] = round(time.perf_counter() - t, 1)
    print(f"setup: {setup}", flush=True)
    return url, setup


def configure_django(url: str) -> None:
    os.environ.update(shop_env(url))
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


# -- streams ----------------------------------------------------------------------------------------


def shop_streams() -> tuple[Any, dict[str, Any]]:
    """The shop's behaviour log at ``AS_OF`` as next-action streams."""
    from recommender.exporters import export_behaviour
    from recommender.services.intent import streams_from_log

    as_of = datetime.fromisoformat(train_in_shop.AS_OF).replace(tzinfo=UTC)
    t = time.perf_counter()
    log = export_behaviour(as_of)
    export_s = time.perf_counter() - t
    t = time.perf_counter()
    streams = streams_from_log(log, as_of.timestamp())
    info = {
        "as_of": train_in_shop.AS_OF,
        "log_rows": len(log),
        "log_by_type": {COLUMNS[k]: int(v) for k, v in log.frame["event_type"].value_counts().sort_index().items()},
        "export_s": round(export_s, 2),
        "streams_s": round(time.perf_counter() - t, 2),
    }
    return streams, info


def taobao_streams(path: Path) -> tuple[Any, dict[str, Any]]:
    """The Taobao sample as next-action streams (``fav`` rows left out)."""
    import pandas as pd

    from recommender.ml.intent import action_streams

    df = pd.read_csv(path, header=None, names=["user", "item", "cat", "behavior", "ts"])
    kept = df[df["behavior"].isin(list(TAOBAO_TYPES))]
    ts = kept["ts"].to_numpy(dtype=np.float64)
    streams = action_streams(
        kept["user"].to_numpy(),
        kept["item"].to_numpy(),
        ts,
        kept["behavior"].map(TAOBAO_TYPES).to_numpy(dtype=np.int64),
        np.arange(len(kept)),  # every buy row its own purchase
        30 * 60.0,
        float(ts.max()),
    )
    info = {
        "rows": len(df),
        "rows_by_behaviour": {str(k): int(v) for k, v in df["behavior"].value_counts().items()},
        "fav_rows_left_out": int((df["behavior"] == "fav").sum()),
        "as_of": float(ts.max()),
    }
    return streams, info


def describe(streams: Any, cutoff: float, note: str) -> dict[str, Any]:
    """Sizes of the streams and of the two parts."""
    held = streams.held_out(cutoff)
    known_train = sum(int((t >= 0).sum()) for t in streams.before(cutoff).targets)
    y = np.concatenate([t[t >= 0] for t in held])
    times = np.concatenate(streams.times)
    return {
        "people": len(streams),
        "events": streams.n_events,
        "first": datetime.fromtimestamp(float(times.min()), UTC).isoformat(),
        "last": datetime.fromtimestamp(float(times.max()), UTC).isoformat(),
        "cutoff": datetime.fromtimestamp(cutoff, UTC).isoformat(),
        "holdout_note": note,
        "train_cases": known_train,
        "held_out_cases": len(y),
        "held_out_counts": dict(zip(COLUMNS, np.bincount(y, minlength=4).tolist(), strict=True)),
    }


# -- fits and metrics -------------------------------------------------------------------------------


def fit_cell(streams: Any, cutoff: float, cell: str, budget_s: float, label: str) -> dict[str, Any]:
    """One cell of the shop's network fitted on what was known at ``cutoff`` (an epoch bar), scored on
    the held-out next actions."""
    from tqdm import tqdm

    from recommender.ml import progress
    from recommender.services.intent import build_model

    model = build_model(cell, budget_s)
    train = streams.before(cutoff)
    bar = tqdm(total=model.epochs, desc=f"{label} {cell}", unit="epoch", leave=False)

    def listener(info: dict[str, Any]) -> None:
        if info.get("stage") == "epoch":
            bar.update(1)

    t = time.perf_counter()
    with progress.listening(listener):
        model.fit(train.types, train.times, train.items, targets=train.targets)
    fit_s = time.perf_counter() - t
    bar.close()
    t = time.perf_counter()
    probs, y = model.predict_targets(streams.types, streams.times, streams.items, targets=streams.held_out(cutoff))
    return {
        "model": model,
        "probs": probs,
        "y": y,
        "fit_s": round(fit_s, 1),
        "predict_s": round(time.perf_counter() - t, 1),
        "epochs": len(model.history_),
        "history": model.history_,
    }


def scored(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """``classification_metrics`` and how often each action was predicted."""
    from recommender.ml.intent import classification_metrics

    counts = np.bincount(pred, minlength=len(COLUMNS)).tolist()
    return classification_metrics(y, pred) | {"predicted": dict(zip(COLUMNS, counts, strict=True))}


def measure(streams: Any, cutoff: float, budget_s: float, label: str) -> tuple[dict[str, Any], Any]:
    """Rows LSTM, GRU, majority, repeat-last; and the fitted LSTM."""
    from recommender.ml import intent as ml_intent

    held = streams.held_out(cutoff)
    train_targets = streams.before(cutoff).targets
    rows: dict[str, Any] = {}
    lstm = None
    for cell in CELLS:
        fitted = fit_cell(streams, cutoff, cell, budget_s, label)
        y, probs = fitted["y"], fitted["probs"]
        cal = ml_intent.calibration(ml_intent.intent_of(probs), y)
        rows[cell] = scored(y, fitted["model"].decide(probs)) | {
            "argmax": scored(y, probs.argmax(1)),
            "brier": cal["brier"],
            "brier_base_rate": cal["brier_base_rate"],
            "base_rate": cal["base_rate"],
            "reliability": cal["reliability"],
            "offsets": fitted["model"].offsets_.tolist(),
            "best_epoch": 1 + int(np.argmax([h["val_log_loss"] for h in fitted["history"]])),
            **{k: fitted[k] for k in ("fit_s", "predict_s", "epochs", "history")},
        }
        if cell == "lstm":
            lstm = fitted["model"]
        print(f"  {label} {cell}: fit {fitted['fit_s']} s, {fitted['epochs']} epochs", flush=True)
    majority = ml_intent.majority_class(train_targets)
    base = ml_intent.baseline_predictions(streams, held, majority)
    rows["majority"] = scored(base["y"], base["majority"]) | {"class": COLUMNS[majority]}
    rows["repeat-last"] = scored(base["y"], base["repeat_last"])
    hit = np.isin(base["y"], ml_intent.INTENT_ACTIONS)
    train_y = np.concatenate([t[t >= 0] for t in train_targets])
    train_rate = float(np.isin(train_y, ml_intent.INTENT_ACTIONS).mean())
    extra = {"train_base_rate": train_rate, "brier_train_base_rate": float(np.mean((train_rate - hit) ** 2))}
    return {"rows": rows, **extra}, lstm


# -- scoring one visitor ----------------------------------------------------------------------------


def scoring_latency(model: Any, streams: Any, n: int, seed: int = 0) -> dict[str, Any]:
    """Save ``model``, load it with ``IntentScorer`` and time ``scorer.intent`` on the last
    ``MAX_HISTORY_LENGTH`` actions of ``n`` people drawn at random (fixed seed), one at a time."""
    from recommender.conf import app_settings
    from recommender.ml.intent import IntentScorer, intent_of

    keep = app_settings.MAX_HISTORY_LENGTH
    with tempfile.TemporaryDirectory(prefix="next_action_") as tmp:
        model.save(tmp)
        scorer = IntentScorer.load(tmp)
        files_kb = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1024
    picked = np.random.default_rng(seed).permutation(len(streams))[:n]
    cases = [(streams.types[i][-keep:], streams.times[i][-keep:], streams.items[i][-keep:]) for i in picked]
    for case in cases[:50]:  # warm-up
        scorer.intent(*case)
    ms = np.empty(len(cases))
    for j, case in enumerate(cases):
        t = time.perf_counter()
        scorer.intent(*case)
        ms[j] = 1000 * (time.perf_counter() - t)
    # the NumPy scorer against the torch network it was saved from, on the first 200 cases
    torch_intent = intent_of(model.predict_proba(*[list(c) for c in zip(*cases[:200], strict=True)]))
    numpy_intent = np.array([scorer.intent(*case) for case in cases[:200]])
    lengths = np.array([len(c[0]) for c in cases])
    return {
        "people": len(cases),
        "max_len": keep,
        "median_length": float(np.median(lengths)),
        "share_length_50": round(float((lengths == keep).mean()), 3),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p50_ms_length_50": round(float(np.percentile(ms[lengths == keep], 50)), 3)
        if (lengths == keep).any()
        else None,
        "max_abs_diff_vs_torch": float(np.abs(torch_intent - numpy_intent).max()),
        "files_kb": round(files_kb, 1),
    }


# -- output -----------------------------------------------------------------------------------------


def _f(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_result(name: str, result: dict[str, Any]) -> None:
    d, m, lat = result["data"], result["metrics"], result["scoring"]
    print(f"\n### {name}\n")
    print(
        f"{d['people']:,} people, {d['events']:,} actions, {d['first'][:10]} to {d['last'][:10]}; held out from "
        f"{d['cutoff'][:16]} UTC: {d['held_out_cases']:,} next actions {d['held_out_counts']} "
        f"({d['train_cases']:,} known before the cut)" + (f"; {d['holdout_note']}" if d["holdout_note"] else "")
    )
    print(
        "\n| model | macro-F1 | F1 view | F1 basket | F1 purchase | F1 leave | accuracy | Brier | base-rate Brier "
        "| fit s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    absent = {c for c, k in d["held_out_counts"].items() if not k}
    for row, r in m["rows"].items():
        f1 = [("-" if c in absent else _f(r["per_class_f1"][c])) for c in COLUMNS]
        shown = f"{row} ({r['class']})" if row == "majority" else row
        cells = [shown, _f(r["macro_f1"]), *f1, _f(r["accuracy"]), _f(r.get("brier")), _f(r.get("brier_base_rate"))]
        fit = f"{r['fit_s']} ({r['epochs']} ep., best {r['best_epoch']})" if "fit_s" in r else "-"
        print("| " + " | ".join([*cells, fit]) + " |")
    print(
        f"\n(intent base rate {_f(m['rows']['lstm']['base_rate'])} held out, {_f(m['train_base_rate'])} before the "
        f"cut, whose constant scores Brier {_f(m['brier_train_base_rate'])}; F1 '-': no such next action held out; "
        "fit s: epochs run, and the best by validation log loss, whose weights are kept)"
    )
    predicted = "; ".join(f"{row} {r['predicted']}" for row, r in m["rows"].items() if row in CELLS)
    print(f"\npredicted next actions on the held-out cases: {predicted}")
    print(
        f"\nscoring one person, IntentScorer.intent, one thread, {lat['people']:,} people's last {lat['max_len']} "
        f"actions (median {lat['median_length']:g}, {lat['share_length_50']:.0%} full): p50 {lat['p50_ms']} ms, "
        f"p95 {lat['p95_ms']} ms (full histories p50 {lat['p50_ms_length_50']} ms); NumPy vs torch max |diff| "
        f"{lat['max_abs_diff_vs_torch']:.2e}",
        flush=True,
    )


def run_data_set(name: str, streams: Any, info: dict[str, Any], budget_s: float, n_scoring: int) -> dict[str, Any]:
    from recommender.services.intent import holdout_cutoff

    cutoff, note = holdout_cutoff(streams, has_live=False)
    data = describe(streams, cutoff, note) | info
    print(f"{name}: {data['people']:,} people, {data['held_out_cases']:,} held-out next actions", flush=True)
    metrics, lstm = measure(streams, cutoff, budget_s, name)
    result = {"data": data, "metrics": metrics, "scoring": scoring_latency(lstm, streams, n_scoring)}
    print_result(name, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--reuse", action="store_true", help="keep the scratch database (set up only if empty)")
    parser.add_argument("--views", type=int, default=1_000_000, help="generated views (when setting up)")
    parser.add_argument("--fit-minutes", type=float, default=3.0, help="time budget of each fit")
    parser.add_argument("--scoring-people", type=int, default=2000)
    parser.add_argument("--skip-shop", action="store_true", help="the Taobao sample only")
    parser.add_argument("--taobao", type=Path, default=TAOBAO)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "next_action_in_shop.json")
    args = parser.parse_args(argv)
    for path in ([] if args.skip_shop else [train_in_shop.DATA]) + [args.taobao]:
        if not path.is_file():
            print(f"no data file at {path} (set SHARED_DATA_DIR)", file=sys.stderr)
            return 2
    started = time.perf_counter()
    budget_s = 60.0 * args.fit_minutes
    url, setup = setup_shop(args.pg_url, args.reuse, args.views) if not args.skip_shop else ("", {})
    if not url:  # Django still reads the shop's settings (build_model), on a database it never opens
        url = args.pg_url.rsplit("/", 1)[0] + f"/{DB_NAME}"
    configure_django(url)
    result: dict[str, Any] = {"args": vars(args), "cpus": os.cpu_count()}
    result["setup"] = setup
    if not args.skip_shop:
        streams, info = shop_streams()
        result["online_retail"] = run_data_set(
            "Online Retail in the shop", streams, info, budget_s, args.scoring_people
        )
    streams, info = taobao_streams(args.taobao)
    result["taobao"] = run_data_set("Taobao sample", streams, info, budget_s, args.scoring_people)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwhole benchmark: {result['wall_s']} s (setup included); wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
