"""CDNOW benchmark for the BG/NBD and Gamma-Gamma models in ``segmentation.ml.clv``.

Usage::

    python -m benchmarks.cdnow_clv [DATA_DIR] [--out PATH] [--cross-check-lifetimes]

``DATA_DIR`` defaults to ``$SHARED_DATA_DIR`` or ``<repo>/../shared/data`` and must
hold ``cdnow/CDNOW_sample.txt.gz`` (2,357 customers, the sample of the papers).

What it does

1. Builds the BTYD summary with weeks as the time unit: calibration is
   1997-01-01 .. 1997-09-30 (weeks 1-39), holdout 1997-10-01 .. 1998-06-30
   (weeks 40-78). A purchase is a customer-day (same-day rows are summed).
2. Fits BG/NBD on (frequency, recency, T) and Gamma-Gamma on the 946
   customers with repeat purchases and their mean repeat-day spend, and
   prints them beside the published parameters.
3. Forecasts each customer's repeat purchase days in the 39 holdout weeks
   and compares with the actual count, beside the naive forecast "same rate as
   in calibration": ``frequency / T * 39``, i.e. the customer's repeat purchases
   per week of observed life since the first purchase, carried on for 39 weeks
   (0 for customers with no repeat purchase; T > 0 for every CDNOW customer).
4. Writes everything as JSON (default ``benchmarks/results/cdnow_clv.json``).

``--cross-check-lifetimes`` also fits the unmaintained ``lifetimes`` package
(if installed) on the same summary and prints the largest differences. It is a
development cross-check only, never a dependency of the project.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.report import write_json
from segmentation.ml.clv import BetaGeoModel, GammaGammaModel, customer_lifetime_value, summarise_transactions

REPO_ROOT = Path(__file__).resolve().parents[1]
CDNOW_FILE = Path("cdnow") / "CDNOW_sample.txt.gz"
CALIBRATION_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"
HOLDOUT_WEEKS = 39.0

PUBLISHED = {
    "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "gamma_gamma": {"p": 6.25, "q": 3.74, "gamma": 15.44},
}
SOURCES = {
    "bgnbd": "Fader, Hardie & Lee (2005), Marketing Science 24(2)",
    "gamma_gamma": "Fader & Hardie (2013), The Gamma-Gamma model of monetary value",
}


def default_data_dir() -> Path:
    """``$SHARED_DATA_DIR`` or ``<repo>/../shared/data``."""
    env = os.environ.get("SHARED_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def load_cdnow_sample(data_dir: Path | str | None = None) -> pd.DataFrame:
    """The CDNOW sample as a transaction log with columns ``customer, date, cds, amount``."""
    path = Path(data_dir or default_data_dir()) / CDNOW_FILE
    if not path.exists():
        raise FileNotFoundError(f"CDNOW sample not found at {path}")
    df = pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        names=["master_id", "customer", "date", "cds", "amount"],
        dtype={"master_id": str, "customer": int, "date": str, "cds": int, "amount": float},
    )
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    return df[["customer", "date", "cds", "amount"]]


def two_sig(x: float) -> float:
    return float(f"{x:.2g}")


def run(data_dir: Path | str | None = None, *, cross_check_lifetimes: bool = False) -> dict[str, Any]:
    """Fit, forecast and compare; returns the result dict written as JSON."""
    t0 = time.perf_counter()
    tx = load_cdnow_sample(data_dir)
    s = summarise_transactions(tx, calibration_end=CALIBRATION_END, holdout_end=HOLDOUT_END, days_per_unit=7.0)
    x, t_x, big_t = s["frequency"].to_numpy(), s["recency"].to_numpy(), s["T"].to_numpy()

    t_fit = time.perf_counter()
    bg = BetaGeoModel().fit(x, t_x, big_t)
    repeat = x > 0
    gg = GammaGammaModel().fit(x[repeat], s["monetary"].to_numpy()[repeat])
    fit_seconds = time.perf_counter() - t_fit

    params = []
    for model, fitted in (("bgnbd", bg.params_), ("gamma_gamma", gg.params_)):
        for name, pub in PUBLISHED[model].items():
            value = fitted[name]
            params.append(
                {
                    "model": model,
                    "param": name,
                    "fitted": value,
                    "published": pub,
                    "match_2_sig_figs": two_sig(value) == two_sig(pub),
                }
            )

    actual = s["frequency_holdout"].to_numpy()
    pred = bg.expected_purchases(HOLDOUT_WEEKS, x, t_x, big_t)
    naive = np.where(big_t > 0, x / np.where(big_t > 0, big_t, 1.0), 0.0) * HOLDOUT_WEEKS
    forecasts = {}
    for name, f in (("bgnbd", pred), ("naive_same_rate", naive)):
        forecasts[name] = {
            "total_predicted": float(f.sum()),
            "total_actual": float(actual.sum()),
            "total_error_pct": float(100 * (f.sum() - actual.sum()) / actual.sum()),
            "mae_per_customer": float(np.mean(np.abs(f - actual))),
            "rmse_per_customer": float(np.sqrt(np.mean((f - actual) ** 2))),
        }

    by_freq = (
        pd.DataFrame({"x": np.minimum(x, 7).astype(int), "actual": actual, "bgnbd": pred, "naive": naive})
        .groupby("x")
        .agg(customers=("actual", "size"), actual=("actual", "mean"), bgnbd=("bgnbd", "mean"), naive=("naive", "mean"))
        .reset_index()
    )

    # spend: Gamma-Gamma conditional mean vs the customer's own calibration mean,
    # scored on customers with repeat purchases in calibration and purchases in holdout
    both = repeat & (actual > 0)
    spend_actual = s["monetary_holdout"].to_numpy()[both]
    spend_gg = gg.expected_average_spend(x[both], s["monetary"].to_numpy()[both])
    spend_own = s["monetary"].to_numpy()[both]
    spend = {
        "customers": int(both.sum()),
        "mae_gamma_gamma": float(np.mean(np.abs(spend_gg - spend_actual))),
        "mae_own_calibration_mean": float(np.mean(np.abs(spend_own - spend_actual))),
        "population_mean_spend": gg.population_mean_spend_,
    }
    clv = customer_lifetime_value(bg, gg, x, t_x, big_t, s["monetary"].to_numpy(), months=12, days_per_unit=7.0)

    result: dict[str, Any] = {
        "data": {
            "customers": len(s),
            "customers_with_repeat": int(repeat.sum()),
            "calibration_end": CALIBRATION_END,
            "holdout_end": HOLDOUT_END,
            "time_unit": "week",
        },
        "parameters": params,
        "log_likelihood_bgnbd": bg.log_likelihood_,
        "holdout_repeat_purchases": forecasts,
        "holdout_by_calibration_frequency": by_freq.to_dict(orient="records"),
        "holdout_spend": spend,
        "clv_12_months_undiscounted": {"total": float(clv.sum()), "mean": float(clv.mean())},
        "fit_seconds": fit_seconds,
        "total_seconds": time.perf_counter() - t0,
        "sources": SOURCES,
    }
    if cross_check_lifetimes:
        result["lifetimes_cross_check"] = _cross_check_lifetimes(s, bg, gg)
    return result


def _cross_check_lifetimes(s: pd.DataFrame, bg: BetaGeoModel, gg: GammaGammaModel) -> dict[str, Any]:
    try:
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    except ImportError as exc:  # pragma: no cover - optional dev tool
        return {"skipped": f"lifetimes not importable: {exc}"}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lbg = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
        rep = s[s["frequency"] > 0]
        lgg = GammaGammaFitter().fit(rep["frequency"], rep["monetary"])
        args = (s["frequency"], s["recency"], s["T"])
        return {
            "lifetimes_bgnbd": {k: float(v) for k, v in lbg.params_.items()},
            "lifetimes_gamma_gamma": {k: float(v) for k, v in lgg.params_.items()},
            "max_abs_diff_expected_39w": float(
                np.max(
                    np.abs(
                        np.asarray(lbg.conditional_expected_number_of_purchases_up_to_time(39, *args))
                        - bg.expected_purchases(39, *args)
                    )
                )
            ),
            "max_abs_diff_p_alive": float(
                np.max(np.abs(np.asarray(lbg.conditional_probability_alive(*args)) - bg.probability_alive(*args)))
            ),
        }


def to_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"CDNOW sample: {result['data']['customers']} customers "
        f"({result['data']['customers_with_repeat']} with repeat purchases), weeks 1-39 calibrate, 40-78 hold out",
        "",
        "| model | parameter | fitted | published | equal to 2 s.f. |",
        "|---|---|---|---|---|",
    ]
    for p in result["parameters"]:
        lines.append(
            f"| {p['model']} | {p['param']} | {p['fitted']:.4f} | {p['published']} | "
            f"{'yes' if p['match_2_sig_figs'] else 'NO'} |"
        )
    lines += [
        "",
        f"BG/NBD log-likelihood: {result['log_likelihood_bgnbd']:.1f}",
        "",
        "Repeat purchase days in weeks 40-78 (actual total "
        f"{result['holdout_repeat_purchases']['bgnbd']['total_actual']:.0f}):",
        "",
        "| forecast | total predicted | total error | MAE per customer | RMSE per customer |",
        "|---|---|---|---|---|",
    ]
    for name, f in result["holdout_repeat_purchases"].items():
        lines.append(
            f"| {name} | {f['total_predicted']:.1f} | {f['total_error_pct']:+.1f} % | "
            f"{f['mae_per_customer']:.3f} | {f['rmse_per_customer']:.3f} |"
        )
    lines += [
        "",
        "Mean holdout repeat purchases by calibration frequency (7 = 7+):",
        "",
        "| x | customers | actual | BG/NBD | naive |",
        "|---|---|---|---|---|",
    ]
    for row in result["holdout_by_calibration_frequency"]:
        lines.append(
            f"| {row['x']} | {row['customers']} | {row['actual']:.2f} | {row['bgnbd']:.2f} | {row['naive']:.2f} |"
        )
    sp = result["holdout_spend"]
    lines += [
        "",
        f"Holdout mean spend per purchase day ({sp['customers']} customers buying in both periods): "
        f"MAE Gamma-Gamma {sp['mae_gamma_gamma']:.2f} $ vs own calibration mean {sp['mae_own_calibration_mean']:.2f} $",
        f"Fit time {result['fit_seconds']:.2f} s, total {result['total_seconds']:.2f} s",
    ]
    if "lifetimes_cross_check" in result:
        lines += ["", "lifetimes cross-check: " + json.dumps(result["lifetimes_cross_check"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=None, help="folder holding cdnow/")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "cdnow_clv.json")
    parser.add_argument("--cross-check-lifetimes", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = run(args.data_dir, cross_check_lifetimes=args.cross_check_lifetimes)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(to_markdown(result))
    write_json(args.out, result)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
