"""Customer value and churn forecasts against what customers really did next, side by side.

Usage::

    python -m benchmarks.clv_backtest [--data-dir DIR] [--datasets online_retail cdnow_sample cdnow_master]
                                      [--out PATH]

Each data set is cut where a shop would stand (the "as of" cutoff) and forecast the way a
segmentation run does, without seeing what follows:

* the horizon is :func:`segmentation.ml.forecast.history_horizon_months` of the history before the
  cutoff (half of it, at most 12 months);
* the model is picked by a backtest inside that history over the same horizon (fitted on all but
  its last horizon, scored on it), ranked by ``segmentation.ml.backtest.rank_candidates``;
* with ``FORECAST_CALIBRATE``, the chosen model's predictions are scaled by ``calibration_factor``
  of its backtest total (both are reported).

Then every candidate, and the chosen one scaled, are scored on the real next
horizon after the cutoff: the customers who bought before it, actual value = their net spend.

* ``online_retail``: UCI Online Retail, invoices of customers with an id, net of cancellation
  invoices; history 2010-12-01 .. 2011-07-31 (8 months: horizon 4 months, to 2011-11-30).
* ``cdnow_sample`` / ``cdnow_master``: CDNOW, history 1997-01-01 .. 1997-12-31 (12 months:
  horizon 6 months, to 1998-06-30); the 2,357-customer sample of the papers and all 23,570.

The goals (issue "Numbers staff can act on"): the chosen forecast's total within 10 %
of the actual, MAE and Spearman at least 10 % better than "same as last period", churn AUC at
least 0.75. A markdown table is printed and JSON written (default
``benchmarks/results/clv_backtest.json``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.cdnow_clv import default_data_dir
from benchmarks.report import write_json
from segmentation.ml.backtest import backtest, calibration_factor, evaluate_forecast
from segmentation.ml.clv import DAYS_PER_MONTH
from segmentation.ml.forecast import (
    CANDIDATES,
    customer_features,
    daily_log,
    history_horizon_months,
    holdout_actuals,
    make_forecaster,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

DATASETS: dict[str, dict[str, str]] = {
    "online_retail": {"calibration_start": "2010-12-01", "cutoff": "2011-08-01"},
    "cdnow_sample": {"calibration_start": "1997-01-01", "cutoff": "1998-01-01"},
    "cdnow_master": {"calibration_start": "1997-01-01", "cutoff": "1998-01-01"},
}
GOALS = (
    "the chosen forecast: total within 10 %; MAE and Spearman >= 10 % better than last_period "
    "(and than bgnbd); churn AUC >= 0.75"
)


def _day(date: str) -> int:
    return int((pd.Timestamp(date) - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1))


def load_transactions(name: str, data_dir: Path) -> pd.DataFrame:
    """``customer, date, amount`` per invoice (Online Retail) or purchase row (CDNOW)."""
    if name == "online_retail":
        path = data_dir / "online-retail" / "online_retail.parquet"
        df = pd.read_parquet(path, columns=["InvoiceNo", "InvoiceDate", "Quantity", "UnitPrice", "CustomerID"])
        df = df[df["CustomerID"].notna()]
        df["amount"] = df["Quantity"].astype(float) * df["UnitPrice"].astype(float)
        inv = df.groupby("InvoiceNo", sort=False).agg(
            customer=("CustomerID", "first"), date=("InvoiceDate", "first"), amount=("amount", "sum")
        )
        inv["customer"] = inv["customer"].astype(float).astype(np.int64)
        return inv.reset_index(drop=True)
    if name in ("cdnow_sample", "cdnow_master"):
        if name == "cdnow_sample":
            path = data_dir / "cdnow" / "CDNOW_sample.txt.gz"
            df = pd.read_csv(path, sep=r"\s+", header=None, names=["master", "customer", "date", "cds", "amount"])
        else:
            path = data_dir / "cdnow" / "cdnow_master.csv.gz"
            df = pd.read_csv(path)
            df.columns = ["customer", "date", "cds", "amount"]
        df["date"] = pd.to_datetime(df["date"].astype(str), format="%Y%m%d")
        return df[["customer", "date", "amount"]]
    raise ValueError(f"unknown data set {name!r}")


def goals(chosen: dict[str, Any], others: dict[str, dict[str, Any]], refs: dict[str, Any]) -> dict[str, Any]:
    """Each goal for the chosen, calibrated forecast: the measured figure and met / not met."""
    out: dict[str, Any] = {}
    for base in ("last_period", "bgnbd"):
        if base not in others:
            continue
        b = others[base]
        mae_gain = 1 - chosen["mae"] / b["mae"]
        sp_gain = chosen["spearman"] / b["spearman"] - 1
        out[f"mae_vs_{base}"] = {"gain": mae_gain, "met": bool(mae_gain >= 0.10)}
        out[f"spearman_vs_{base}"] = {"gain": sp_gain, "met": bool(sp_gain >= 0.10)}
    out["total_within_10pct"] = {"value": chosen["total_ratio"], "met": bool(abs(chosen["total_ratio"] - 1) <= 0.10)}
    auc = chosen.get("churn_auc", float("nan"))
    out["churn_auc"] = {"value": auc, "recency": refs["churn_auc_recency"], "met": bool(auc >= 0.75)}
    return out


def run_dataset(name: str, data_dir: Path, random_state: int = 0) -> dict[str, Any]:
    spec = DATASETS[name]
    t0 = time.perf_counter()
    tx = load_transactions(name, data_dir)
    log = daily_log(tx)
    start, cutoff = _day(spec["calibration_start"]), _day(spec["cutoff"])
    months = history_horizon_months(cutoff - start)
    horizon = round(months * DAYS_PER_MONTH)
    log = log[(log["day"] >= start) & (log["day"] < cutoff + horizon)]
    names = list(CANDIDATES)
    # 1. selection and calibration: a backtest over the same horizon inside the history only
    history = log[log["day"] < cutoff]
    t1 = time.perf_counter()
    selection = backtest(history, cutoff - horizon, horizon, names, random_state=random_state)
    t_sel = time.perf_counter() - t1
    chosen = selection["winner"]
    factor = calibration_factor(selection["candidates"][chosen]["total_ratio"]) or 1.0
    # 2. every candidate on the real next horizon, and the chosen one calibrated
    t2 = time.perf_counter()
    holdout = backtest(log, cutoff, horizon, names, random_state=random_state)
    feat = customer_features(log, cutoff, horizon)
    act = holdout_actuals(log, feat.index, cutoff, cutoff + horizon)
    fc = make_forecaster(chosen, random_state).fit_predict(log, cutoff, horizon)
    calibrated = evaluate_forecast(
        fc.value.reindex(feat.index).fillna(0.0).to_numpy() * factor,
        act["spend"].to_numpy(),
        fc.churn_score.reindex(feat.index).fillna(0.0).to_numpy(),
        bought=act["purchase_days"].to_numpy(),
    )
    t_hold = time.perf_counter() - t2
    res = holdout["candidates"]
    return {
        "dataset": name,
        "calibration": [spec["calibration_start"], spec["cutoff"]],
        "holdout": [spec["cutoff"], _iso(cutoff + horizon)],
        "horizon_months": months,
        "horizon_days": horizon,
        "selection": {k: selection[k] for k in ("ranking", "winner", "failed")}
        | {"metrics": {k: _short(v) for k, v in selection["candidates"].items()}},
        "chosen": chosen,
        "calibration_factor": factor,
        "chosen_calibrated": calibrated,
        "holdout_result": holdout,
        "goals": goals(res[chosen], res, holdout["references"]),
        "goals_calibrated": goals(calibrated, res, holdout["references"]),
        "seconds": {"selection": t_sel, "holdout": t_hold, "total": time.perf_counter() - t0},
    }


def _iso(day: int) -> str:
    return (pd.Timestamp("1970-01-01") + pd.Timedelta(days=day)).date().isoformat()


def _short(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("total_ratio", "mae", "spearman", "top10_capture", "churn_auc") if k in r}


def to_markdown(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        h = r["holdout_result"]
        ref = h["references"]
        lines += [
            f"### {r['dataset']}: history {r['calibration'][0]} .. {r['calibration'][1]} (excl.), "
            f"horizon {r['horizon_months']} months ({r['horizon_days']} days, to {r['holdout'][1]} excl.); "
            f"{h['customers']} customers, {100 * h['returning_share']:.1f} % bought again",
            "",
            f"Chosen by the backtest inside the history (its last {r['horizon_days']} days): **{r['chosen']}** "
            f"(ranking {', '.join(r['selection']['ranking'])}), calibration factor {r['calibration_factor']:.3f}",
            "",
            "| candidate | total pred/actual | MAE | RMSE | Spearman | top-10 % capture | top-20 % capture "
            "| worst decile pred/actual | churn AUC |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, m in h["candidates"].items():
            mark = " (chosen, shown)" if name == r["chosen"] else ""
            worst = m["worst_decile_ratio"]
            lines.append(
                f"| {name}{mark} | {m['total_ratio']:.3f} | {m['mae']:,.1f} | {m['rmse']:,.1f} | {m['spearman']:.3f} "
                f"| {100 * m['top10_capture']:.1f} % | {100 * m['top20_capture']:.1f} % "
                f"| {worst if worst is None else f'{worst:.2f}'} | {m['churn_auc']:.3f} |"
            )
        m, worst = r["chosen_calibrated"], r["chosen_calibrated"]["worst_decile_ratio"]
        lines.append(
            f"| {r['chosen']} scaled by the backtest (`FORECAST_CALIBRATE`) | {m['total_ratio']:.3f} "
            f"| {m['mae']:,.1f} | {m['rmse']:,.1f} "
            f"| {m['spearman']:.3f} | {100 * m['top10_capture']:.1f} % | {100 * m['top20_capture']:.1f} % "
            f"| {worst if worst is None else f'{worst:.2f}'} | {m['churn_auc']:.3f} |"
        )
        lines.append(f"| all zero (reference) | 0.000 | {ref['mae_all_zero']:,.1f} | | | | | | |")
        lines.append(
            f"| perfect ranking / recency alone / fewer repeat purchases | | | | | "
            f"{100 * ref['top10_capture_perfect']:.1f} % | {100 * ref['top20_capture_perfect']:.1f} % | | "
            f"{ref['churn_auc_recency']:.3f} / {ref['churn_auc_fewer_repeat_purchases']:.3f} |"
        )
        for name, why in h["failed"].items():
            lines.append(f"\n{name} failed: {why}")
        lines += ["", "Deciles of predicted value (pred/actual), 1 = lowest:", ""]
        lines.append("| candidate | " + " | ".join(str(d) for d in range(1, 11)) + " |")
        lines.append("|---|" + "---|" * 10)
        for name, m in h["candidates"].items():
            cells = [f"{d['ratio']:.2f}" if np.isfinite(d["ratio"]) else "n/a" for d in m["deciles"]]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        for title, key in (("as shown", "goals"), ("scaled by the backtest", "goals_calibrated")):
            lines += ["", f"Goals for {r['chosen']}, {title}:", ""]
            for goal, g in r[key].items():
                fig = {k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in g.items() if k != "met"}
                lines.append(f"- {goal}: {'met' if g['met'] else 'NOT met'} {fig}")
        lines += ["", f"Seconds: {', '.join(f'{k} {v:.1f}' for k, v in r['seconds'].items())}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "clv_backtest.json")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or default_data_dir()
    try:
        results = [run_dataset(name, data_dir) for name in args.datasets]
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(to_markdown(results))
    write_json(args.out, {"goals": GOALS, "results": results}, default=float)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
