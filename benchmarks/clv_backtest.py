"""Customer value and churn forecasts against what customers really did next, side by side.

Usage::

    python -m benchmarks.clv_backtest [--data-dir DIR] [--datasets online_retail cdnow_sample cdnow_master]
                                      [--selection-days 91] [--out PATH]

For each data set, every candidate of ``segmentation.ml.forecast`` is fitted on
the calibration period and scored on the holdout (the customers who bought in
calibration; actual value = their net spend in the holdout):

* ``online_retail``: UCI Online Retail, invoices of customers with an id, net of
  cancellation invoices; calibrate 2010-12-01 .. 2011-05-31, predict
  2011-06-01 .. 2011-11-30 (183 days).
* ``cdnow_sample`` / ``cdnow_master``: CDNOW, weeks 1-39 (to 1997-09-30)
  calibrate, weeks 40-78 (273 days) hold out; the 2,357-customer sample of the
  papers and the full 23,570 customers.

The *chosen* candidate is picked the way a segmentation run picks it, without
seeing the holdout: a backtest inside the calibration period (calibrate on all
but its last ``--selection-days``, predict those), candidates ranked by
``segmentation.ml.backtest.rank_candidates``. Its holdout figures are then
checked against the goals of issue 14. A markdown table is printed and JSON
written (default ``benchmarks/results/clv_backtest.json``).
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
from segmentation.ml.backtest import backtest
from segmentation.ml.forecast import CANDIDATES, daily_log

REPO_ROOT = Path(__file__).resolve().parents[1]

DATASETS: dict[str, dict[str, str]] = {
    "online_retail": {"calibration_start": "2010-12-01", "cutoff": "2011-06-01", "holdout_end": "2011-12-01"},
    "cdnow_sample": {"calibration_start": "1997-01-01", "cutoff": "1997-10-01", "holdout_end": "1998-07-01"},
    "cdnow_master": {"calibration_start": "1997-01-01", "cutoff": "1997-10-01", "holdout_end": "1998-07-01"},
}
GOALS = (
    "beats bgnbd and last_period by >= 10 % on MAE and Spearman; total within 10 %; "
    "deciles within 25 %; churn AUC >= 0.75 and above recency"
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
    """Each goal of issue 14 for the chosen candidate: the measured figure and met / not met."""
    out: dict[str, Any] = {}
    for base in ("bgnbd", "last_period"):
        if base not in others:
            continue
        b = others[base]
        mae_gain = 1 - chosen["mae"] / b["mae"]
        sp_gain = chosen["spearman"] / b["spearman"] - 1
        out[f"mae_vs_{base}"] = {"gain": mae_gain, "met": bool(mae_gain >= 0.10)}
        out[f"spearman_vs_{base}"] = {"gain": sp_gain, "met": bool(sp_gain >= 0.10)}
    out["total_within_10pct"] = {"value": chosen["total_ratio"], "met": bool(abs(chosen["total_ratio"] - 1) <= 0.10)}
    worst = chosen["worst_decile_ratio"]
    dec_ok = all(0.75 <= d["ratio"] <= 1.25 for d in chosen["deciles"] if np.isfinite(d["ratio"])) and all(
        np.isfinite(d["ratio"]) for d in chosen["deciles"]
    )
    out["deciles_within_25pct"] = {"worst": worst, "met": bool(dec_ok)}
    auc = chosen.get("churn_auc", float("nan"))
    out["churn_auc"] = {
        "value": auc,
        "recency": refs["churn_auc_recency"],
        "met": bool(auc >= 0.75 and auc > refs["churn_auc_recency"]),
    }
    return out


def run_dataset(name: str, data_dir: Path, selection_days: int, random_state: int = 0) -> dict[str, Any]:
    spec = DATASETS[name]
    t0 = time.perf_counter()
    tx = load_transactions(name, data_dir)
    log = daily_log(tx)
    start, cutoff, end = (_day(spec[k]) for k in ("calibration_start", "cutoff", "holdout_end"))
    log = log[(log["day"] >= start) & (log["day"] < end)]
    horizon = end - cutoff
    names = list(CANDIDATES)
    # 1. selection: a backtest inside the calibration period only
    calibration = log[log["day"] < cutoff]
    t1 = time.perf_counter()
    selection = backtest(calibration, cutoff - selection_days, selection_days, names, random_state=random_state)
    t_sel = time.perf_counter() - t1
    chosen = selection["winner"]
    # 2. every candidate on the real holdout
    t2 = time.perf_counter()
    holdout = backtest(log, cutoff, horizon, names, random_state=random_state)
    t_hold = time.perf_counter() - t2
    res = holdout["candidates"]
    others = {k: v for k, v in res.items() if k != chosen}
    return {
        "dataset": name,
        "calibration": [spec["calibration_start"], spec["cutoff"]],
        "holdout": [spec["cutoff"], spec["holdout_end"]],
        "horizon_days": horizon,
        "selection_days": selection_days,
        "selection": {k: selection[k] for k in ("ranking", "winner", "failed")}
        | {"metrics": {k: _short(v) for k, v in selection["candidates"].items()}},
        "chosen": chosen,
        "holdout_result": holdout,
        "goals": goals(res[chosen], others, holdout["references"]) if chosen in res else {},
        "seconds": {"selection": t_sel, "holdout": t_hold, "total": time.perf_counter() - t0},
    }


def _short(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("total_ratio", "mae", "spearman", "top10_capture", "churn_auc") if k in r}


def to_markdown(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        h = r["holdout_result"]
        ref = h["references"]
        lines += [
            f"### {r['dataset']}: calibrate {r['calibration'][0]} .. {r['calibration'][1]} (excl.), "
            f"predict {r['horizon_days']} days to {r['holdout'][1]} (excl.); {h['customers']} customers, "
            f"{100 * h['returning_share']:.1f} % bought again",
            "",
            f"Chosen by the backtest inside calibration (last {r['selection_days']} days): **{r['chosen']}** "
            f"(ranking {', '.join(r['selection']['ranking'])})",
            "",
            "| candidate | total pred/actual | MAE | RMSE | Spearman | top-10 % capture | top-20 % capture "
            "| worst decile pred/actual | churn AUC |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, m in h["candidates"].items():
            mark = " (chosen)" if name == r["chosen"] else ""
            worst = m["worst_decile_ratio"]
            lines.append(
                f"| {name}{mark} | {m['total_ratio']:.3f} | {m['mae']:,.1f} | {m['rmse']:,.1f} | {m['spearman']:.3f} "
                f"| {100 * m['top10_capture']:.1f} % | {100 * m['top20_capture']:.1f} % "
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
        lines += ["", f"Goals for {r['chosen']}:", ""]
        for goal, g in r["goals"].items():
            fig = {k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in g.items() if k != "met"}
            lines.append(f"- {goal}: {'met' if g['met'] else 'NOT met'} {fig}")
        lines += ["", f"Seconds: {', '.join(f'{k} {v:.1f}' for k, v in r['seconds'].items())}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--selection-days", type=int, default=91)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "clv_backtest.json")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or default_data_dir()
    try:
        results = [run_dataset(name, data_dir, args.selection_days) for name in args.datasets]
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(to_markdown(results))
    write_json(args.out, {"goals": GOALS, "results": results}, default=float)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
